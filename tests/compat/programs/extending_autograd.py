# Code that extends PyTorch rather than uses it, in the shape of the official "Extending PyTorch",
# "Extending torch.func with autograd.Function", "Python custom operators", "Hooks for saved
# tensors" and "How to save memory by fusing the optimizer step into the backward pass" pages
# (our own condensed rewrites): the docs' LinearFunction and MulConstant (ctx.needs_input_grad,
# a None bias, set_materialize_grads(False), once_differentiable), Functions in the
# forward / setup_context form under torch.func.grad, vmap (generate_vmap_rule and a vmap
# staticmethod) and jvp; an in-place Function with mark_dirty; NumpySort's
# mark_non_differentiable outputs; torch.library.custom_op with register_fake and
# register_autograd, a mutating op (mutates_args) called through torch.ops; saved-tensor hooks
# (pack to float64 and back, pack counts, save_on_cpu), register_multi_grad_hook, grad_fn
# next_functions walks, Node.register_hook / register_prehook; module hooks with_kwargs, a global
# forward hook, full backward pre-hooks, state-dict pre/post hooks and load post-hooks, and the
# optimizer step fused into backward by register_post_accumulate_grad_hook compared with a
# plain training loop.
import copy

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

rng = np.random.default_rng(31)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def T(*shape, dtype=np.float32):
    return torch.from_numpy(rng.standard_normal(shape).astype(dtype))


# ------------------------------------------------------------- the docs' Functions
class LinearFunction(Function):
    @staticmethod
    def forward(input, weight, bias):
        output = input.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, weight, bias = inputs
        ctx.save_for_backward(input, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, bias = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(input)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)
        return grad_input, grad_weight, grad_bias


class Linear(nn.Module):
    def __init__(self, input_features, output_features, bias=True):
        super().__init__()
        self.input_features = input_features
        self.output_features = output_features
        self.weight = nn.Parameter(torch.empty(output_features, input_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(output_features))
        else:
            self.register_parameter("bias", None)
        nn.init.uniform_(self.weight, -0.1, 0.1)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -0.1, 0.1)

    def forward(self, input):
        return LinearFunction.apply(input, self.weight, self.bias)

    def extra_repr(self):
        return "input_features={}, output_features={}, bias={}".format(
            self.input_features, self.output_features, self.bias is not None)


class MulConstant(Function):
    @staticmethod
    def forward(ctx, tensor, constant):
        ctx.set_materialize_grads(False)
        ctx.constant = constant
        return tensor * constant

    @staticmethod
    def backward(ctx, grad_output):
        if grad_output is None:
            return None, None
        return grad_output * ctx.constant, None


class SquareSum(Function):  # the non-differentiable-twice kind
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x * x).sum(dim=-1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return 2 * x * grad_output.unsqueeze(-1)


class MyCube(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        result = x ** 3
        dx = 3 * x ** 2
        return result, dx

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, = inputs
        result, dx = output
        ctx.save_for_backward(x, dx)
        ctx.save_for_forward(x)

    @staticmethod
    def backward(ctx, grad_output, grad_dx):
        x, dx = ctx.saved_tensors
        result = grad_output * dx + grad_dx * 6 * x
        return result

    @staticmethod
    def jvp(ctx, x_t):
        x, = ctx.saved_tensors
        return 3 * x ** 2 * x_t, 6 * x * x_t


def my_cube(x):
    result, _ = MyCube.apply(x)
    return result


def to_numpy(tensor):
    return tensor.cpu().numpy()


class NumpyTake(Function):
    @staticmethod
    def forward(x, ind, ind_inv, dim):
        device = x.device
        x = to_numpy(x)
        ind = to_numpy(ind)
        return torch.tensor(np.take_along_axis(x, ind, dim), device=device)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, ind, ind_inv, dim = inputs
        ctx.save_for_backward(ind, ind_inv)
        ctx.dim = dim

    @staticmethod
    def backward(ctx, grad_output):
        ind, ind_inv = ctx.saved_tensors
        result = NumpyTake.apply(grad_output, ind_inv, ind, ctx.dim)
        return result, None, None, None

    @staticmethod
    def vmap(info, in_dims, x, ind, ind_inv, dim):
        x_bdim, ind_bdim, ind_inv_bdim, _ = in_dims
        logical_dim = x.dim() if x_bdim is None else x_bdim - 1
        dim = dim if dim >= 0 else dim + logical_dim

        def maybe_expand_bdim_at_front(x, x_bdim):
            if x_bdim is None:
                return x.expand(info.batch_size, *x.shape)
            return x.movedim(x_bdim, 0)

        x = maybe_expand_bdim_at_front(x, x_bdim)
        ind = maybe_expand_bdim_at_front(ind, ind_bdim)
        ind_inv = maybe_expand_bdim_at_front(ind_inv, ind_inv_bdim)
        return NumpyTake.apply(x, ind, ind_inv, dim + 1), 0


class NumpySort(Function):
    @staticmethod
    def forward(x, dim):
        device = x.device
        x = to_numpy(x)
        ind = np.argsort(x, axis=dim)
        ind_inv = np.argsort(ind, axis=dim)
        result = np.take_along_axis(x, ind, axis=dim)
        return (torch.tensor(result, device=device), torch.tensor(ind, device=device),
                torch.tensor(ind_inv, device=device))

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, dim = inputs
        _, ind, ind_inv = output
        ctx.mark_non_differentiable(ind, ind_inv)
        ctx.save_for_backward(ind, ind_inv)
        ctx.dim = dim

    @staticmethod
    def backward(ctx, grad_output, _0, _1):
        ind, ind_inv = ctx.saved_tensors
        return NumpyTake.apply(grad_output, ind_inv, ind, ctx.dim), None

    @staticmethod
    def vmap(info, in_dims, x, dim):
        x_bdim, _ = in_dims
        x = x.movedim(x_bdim, 0)
        dim = dim if dim >= 0 else dim + x.dim() - 1
        return NumpySort.apply(x, dim + 1), (0, 0, 0)


def numpy_sort(x, dim=-1):
    result, _, _ = NumpySort.apply(x, dim)
    return result


class InplaceLeakyClamp(Function):
    @staticmethod
    def forward(ctx, x, slope):
        ctx.mark_dirty(x)
        mask = x < 0
        x[mask] = x[mask] * slope
        ctx.save_for_backward(mask)
        ctx.slope = slope
        return x

    @staticmethod
    def backward(ctx, grad_output):
        mask, = ctx.saved_tensors
        return torch.where(mask, grad_output * ctx.slope, grad_output), None


# the docs' checks
lin = Linear(5, 3)
load(lin)
x = T(4, 5).requires_grad_()
out = lin(x)
ref = F.linear(x, lin.weight, lin.bias)
out.pow(2).sum().backward()
linear_grads = [lin.weight.grad.tolist(), lin.bias.grad.tolist(), x.grad.tolist()]
lin_nb = Linear(5, 3, bias=False)
load(lin_nb)
x2 = T(4, 5)
lin_nb(x2).sum().backward()
no_bias = [lin_nb.weight.grad.sum().item(), x2.grad is None, repr(lin_nb)]
xd = torch.from_numpy(rng.standard_normal((3, 4))).requires_grad_()
wd = torch.from_numpy(rng.standard_normal((2, 4))).requires_grad_()
bd = torch.from_numpy(rng.standard_normal(2)).requires_grad_()
gradcheck_ok = torch.autograd.gradcheck(LinearFunction.apply, (xd, wd, bd), eps=1e-6, atol=1e-4)

a = T(3).requires_grad_()
b = T(3).requires_grad_()
y1 = MulConstant.apply(a, 2.5)
y2 = b * 1.0
torch.autograd.backward([y1.sum(), y2.sum()])  # both used
mc = [a.grad.tolist(), b.grad.tolist()]
a.grad = None
pair = MulConstant.apply(a, -1.5)
z = torch.stack([pair, b]).sum(0)[0]  # only element 0 reaches the loss
z.backward()
mc.append(a.grad.tolist())

s = T(2, 3).requires_grad_()
g, = torch.autograd.grad(SquareSum.apply(s).sum(), s, create_graph=True)
try:
    g.sum().backward()
    once_diff = "no error"
except RuntimeError:
    once_diff = "RuntimeError"

xc = torch.tensor([0.5, -1.0, 2.0])
cube_grads = [torch.func.grad(my_cube)(torch.tensor(t)).item() for t in [0.5, -1.0, 2.0]]
cube_gradgrad = torch.func.grad(torch.func.grad(my_cube))(torch.tensor(1.5)).item()
cube_vmap = torch.func.vmap(torch.func.grad(my_cube))(xc).tolist()
_, cube_jvp = torch.func.jvp(my_cube, (xc,), (torch.ones(3),))
cube_jvp = cube_jvp.tolist()
xs = T(3, 5).requires_grad_()
sorted_vals = numpy_sort(xs)
(sorted_vals * torch.arange(5.0)).sum().backward()
np_sort = [sorted_vals.tolist(), xs.grad.tolist(), NumpySort.apply(xs, 1)[1].requires_grad]
batched_sort = torch.func.vmap(numpy_sort)(xs.detach()).tolist()
weights5 = torch.linspace(0, 1, 5)
per_row_grad = torch.func.vmap(torch.func.grad(lambda r: (numpy_sort(r) * weights5).sum()))(
    xs.detach()).tolist()

leaf = T(6).requires_grad_()
h = leaf * 2.0
h2 = InplaceLeakyClamp.apply(h, 0.1)
(h2 * torch.arange(6.0)).sum().backward()
inplace = [h2 is h, h.tolist(), leaf.grad.tolist(), h2.grad_fn is not None]


# ------------------------------------------------------------- torch.library custom ops
@torch.library.custom_op("compatlib::numpy_sin", mutates_args=())
def numpy_sin(x: torch.Tensor) -> torch.Tensor:
    x_np = x.cpu().numpy()
    y_np = np.sin(x_np)
    return torch.from_numpy(y_np).to(device=x.device)


@numpy_sin.register_fake
def _(x):
    return torch.empty_like(x)


def setup_context(ctx, inputs, output):
    x, = inputs
    ctx.save_for_backward(x)


def backward(ctx, grad):
    x, = ctx.saved_tensors
    return grad * x.cos()


numpy_sin.register_autograd(backward, setup_context=setup_context)


@torch.library.custom_op("compatlib::scaled_add_", mutates_args={"out"})
def scaled_add_(out: torch.Tensor, x: torch.Tensor, alpha: float) -> None:
    out_np = out.numpy()
    out_np += alpha * x.numpy()


xo = T(5).requires_grad_()
yo = numpy_sin(xo)
yo2 = torch.ops.compatlib.numpy_sin(xo)
(yo * yo2).sum().backward()
buf = torch.zeros(5)
scaled_add_(buf, xo.detach(), 0.5)
torch.ops.compatlib.scaled_add_.default(buf, torch.ones(5), 2.0)
custom_ops = [yo.tolist(), xo.grad.tolist(), buf.tolist(), torch.equal(yo, yo2)]


# ------------------------------------------------------------- graph-level hooks
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x, scale=1.0):
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x)) * scale
        return self.head(x)


net = load(Net())
data = T(8, 6)
labels = torch.from_numpy(rng.integers(0, 3, 8))
packed_shapes, unpacked = [], [0]


def pack_hook(t):
    packed_shapes.append(list(t.shape))
    return t.double() if t.is_floating_point() else t


def unpack_hook(t):
    unpacked[0] += 1
    return t.float() if t.dtype == torch.float64 else t


with torch.autograd.graph.saved_tensors_hooks(pack_hook, unpack_hook):
    loss_h = F.cross_entropy(net(data), labels)
loss_h.backward()
grads_hooked = [p.grad.clone() for p in net.parameters()]
net.zero_grad()
with torch.autograd.graph.save_on_cpu(pin_memory=False):
    loss_c = F.cross_entropy(net(data), labels)
loss_c.backward()
save_hooks = [len(packed_shapes) > 0, unpacked[0] > 0, loss_h.item(), loss_c.item(),
              max((g - p.grad).abs().max().item() for g, p in zip(grads_hooked, net.parameters()))]

# grad_fn walks: which tensors an op saves and how many nodes a graph has are each library's
# own (reported by structure only); the leaves reached are not
def walk(fn, depth=0, seen=None):
    seen = set() if seen is None else seen
    if fn is None or fn in seen:
        return 0
    seen.add(fn)
    return 1 + sum(walk(nf, depth + 1, seen) for nf, _ in fn.next_functions)


nodes = walk(loss_c.grad_fn)
leaves = 0
stack = [loss_c.grad_fn]
while stack:
    fn = stack.pop()
    for nf, _ in fn.next_functions:
        if nf is None:
            continue
        if hasattr(nf, "variable"):
            leaves += 1
        else:
            stack.append(nf)

seen_multi = []
ta, tb = T(3).requires_grad_(), T(3).requires_grad_()
handle = torch.autograd.graph.register_multi_grad_hook(
    (ta, tb), lambda grads: seen_multi.append([g is not None for g in grads]))
(ta * 2).sum().backward()
(ta * tb).sum().backward()
handle.remove()
(ta * tb).sum().backward()

node_log = []
tn = T(4).requires_grad_()
mid = tn.exp()
mid.grad_fn.register_prehook(lambda gouts: node_log.append(("pre", gouts[0].sum().item())))
mid.grad_fn.register_hook(lambda gins, gouts: node_log.append(("post", gins[0].sum().item())))
mid.register_hook(lambda g: g * 2)
mid.retain_grad()
(mid * torch.arange(4.0)).sum().backward()
node_log.append(("retained", mid.grad.tolist()))
node_log.append(("leaf", tn.grad.tolist()))


# ------------------------------------------------------------- module hooks
calls = []


def pre_kwargs(module, args, kwargs):
    kwargs = dict(kwargs)
    kwargs["scale"] = kwargs.get("scale", 1.0) * 0.5
    return args, kwargs


def fwd_kwargs(module, args, kwargs, output):
    calls.append(("fwd", sorted(kwargs), float(kwargs["scale"])))
    return output + 0.25


def global_hook(module, inp, out):
    calls.append(("global", type(module).__name__))


def bwd_pre(module, grad_output):
    calls.append(("bwd_pre", type(module).__name__))
    return (grad_output[0] * 3.0,)


net2 = copy.deepcopy(net)
net2.zero_grad()
h1 = net2.register_forward_pre_hook(pre_kwargs, with_kwargs=True)
h2 = net2.register_forward_hook(fwd_kwargs, with_kwargs=True)
h3 = nn.modules.module.register_module_forward_hook(global_hook)
h4 = net2.head.register_full_backward_pre_hook(bwd_pre)
out2 = net2(data, scale=2.0)
h3.remove()
F.cross_entropy(out2, labels).backward()
for h in (h1, h2, h4):
    h.remove()
out3 = net2(data, scale=2.0)
hook_results = [calls, out2.sum().item(), out3.sum().item(), net2.head.bias.grad.tolist()]

sd_log = []


def sd_pre(module, prefix, keep_vars):
    sd_log.append(("pre", prefix, keep_vars))


def sd_post(module, state_dict, prefix, local_metadata):
    state_dict[prefix + "version_tag"] = torch.tensor(3)
    return state_dict


def load_post(module, incompatible_keys):
    sd_log.append(("load_post", sorted(incompatible_keys.missing_keys),
                   sorted(incompatible_keys.unexpected_keys)))
    incompatible_keys.unexpected_keys[:] = [k for k in incompatible_keys.unexpected_keys
                                            if not k.endswith("version_tag")]


net.fc2.register_state_dict_pre_hook(sd_pre)
net.fc2._register_state_dict_hook(sd_post)
sd = net.state_dict()
sd_keys = list(sd)
fresh = Net()
fresh.register_load_state_dict_post_hook(load_post)
fresh.load_state_dict(sd)
net.set_submodule("head", nn.Linear(16, 4))
hook_sd = [sd_keys, sd_log, sd["fc2.version_tag"].item(),
           torch.equal(fresh.fc1.weight, net.fc1.weight), net.get_submodule("head").out_features]


# ------------------------------------------------------------- optimizer step in backward
def build():
    torch.manual_seed(0)
    return load(nn.Sequential(nn.Linear(6, 24), nn.GELU(), nn.LayerNorm(24), nn.Linear(24, 3)))


model_a = build()
model_b = build()
opt_a = torch.optim.AdamW(model_a.parameters(), lr=1e-2, weight_decay=0.1)
optimizer_dict = {p: torch.optim.AdamW([p], lr=1e-2, weight_decay=0.1, foreach=False)
                  for p in model_b.parameters()}


def optimizer_hook(parameter) -> None:
    optimizer_dict[parameter].step()
    optimizer_dict[parameter].zero_grad()


for p in model_b.parameters():
    p.register_post_accumulate_grad_hook(optimizer_hook)
fused_losses = []
for step in range(6):
    xb = data if step % 2 == 0 else data.flip(0)
    la = F.cross_entropy(model_a(xb), labels)
    opt_a.zero_grad()
    la.backward()
    opt_a.step()
    lb = F.cross_entropy(model_b(xb), labels)
    lb.backward()
    fused_losses.append([la.item(), lb.item()])
fused_same = [max((pa - pb).abs().max().item() for pa, pb in zip(model_a.parameters(),
                                                                  model_b.parameters())),
              all(p.grad is None for p in model_b.parameters())]

report(linear_grads=linear_grads, no_bias=no_bias, gradcheck_ok=gradcheck_ok, mc=mc,
       once_diff=once_diff, cube_grads=cube_grads, cube_gradgrad=cube_gradgrad,
       cube_vmap=cube_vmap, cube_jvp=cube_jvp, np_sort=np_sort, batched_sort=batched_sort,
       per_row_grad=per_row_grad, inplace=inplace, custom_ops=custom_ops,
       save_hooks=save_hooks, random_nodes=nodes, leaves=leaves,
       seen_multi=seen_multi, node_log=node_log, hook_results=hook_results, hook_sd=hook_sd,
       fused_losses=fused_losses, fused_same=fused_same)
