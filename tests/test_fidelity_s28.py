"""PyTorch fidelity, session 28 (helper-208): the graph a program walks from `t.grad_fn`.

`type(t.grad_fn).__name__` is PyTorch's node name (torchviz labels its drawing with it; it
was descent's op class, `Sum` for `SumBackward0`); copy_ is CopyBackwards over the old value
and the source; ops descent composes from others (addmm, hardtanh, conv1d...) show PyTorch's
one node over the op's inputs; an in-place op on a view makes the base CopySlices and the view
AsStridedBackward0. Each case walks both graphs through `next_functions` and compares the
class names, `name()` and the edges, against torch 2.13. The second part holds the leftovers of
session 27's probe (helper-194's) fixed on descent's side (docs/pytorch.md, "Edges, session
28").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent
from descent import autograd
from fidelity_helpers import results_or_same_error

RNG = np.random.default_rng(28)
X = RNG.standard_normal((3, 4)).astype(np.float32)
Y = RNG.standard_normal((3, 4)).astype(np.float32)


def walk(root, limit: int = 60) -> list:
    """[(class name, name(), ((position of the next node or None, its index), ...))] in
    breadth-first order: what a torchviz-style walker reads."""
    seen = {id(root): 0}
    queue, out = [root], []
    while len(out) < min(len(queue), limit):
        node = queue[len(out)]
        edges = []
        for nxt, k in node.next_functions:
            if nxt is None:
                edges.append((None, k))
                continue
            if id(nxt) not in seen:
                seen[id(nxt)] = len(queue)
                queue.append(nxt)
            edges.append((seen[id(nxt)], k))
        out.append((type(node).__name__, node.name(), tuple(edges)))
    return out


def _cube(lib):
    class Cube(lib.autograd.Function):  # PyTorch names its node CubeBackward
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x**2 * g

    return Cube


_TorchCube, _DescentCube = _cube(torch), _cube(descent)

# (statements; the last line's value is the tensor whose graph is walked)
CASES = [
    "x * 2",
    "x + 1",
    "x - y",
    "x / 2",
    "x ** 2",
    "x.exp()",
    "x.relu()",
    "x.tanh()",
    "x.sum()",
    "x.sum(0)",
    "x.mean(1)",
    "x.max()",
    "x.max(0)[0]",
    "x.norm()",
    "x.var()",
    "x.std(0)",
    "x.clamp(0, 1)",
    "x.cumsum(0)",
    "x.sort(1)[0]",
    "x.topk(2)[0]",
    "x.view(-1)",
    "x.reshape(2, 6)",
    "x.flatten()",
    "x.transpose(0, 1)",
    "x.t()",
    "x.T",
    "x.permute(1, 0)",
    "x.movedim(0, 1)",
    "x[1:]",
    "x[:, 1:]",
    "x[0]",
    "x[:, 0]",
    "x[None]",
    "x[..., None]",
    "x[[0, 1]]",
    "x[x > 0]",
    "x.expand(2, 3, 4)",
    "x.as_strided((2, 2), (1, 2))",
    "x.unsqueeze(0)",
    "x.squeeze()",
    "x.narrow(0, 1, 2)",
    "x.select(1, 2)",
    "x.diagonal()",
    "x.repeat(2, 1)",
    "x.flip(0)",
    "x.roll(1, 0)",
    "x @ y.t()",
    "x[0] @ y[0]",
    "x @ y[0]",
    "torch.cat([x, y])",
    "torch.stack([x, y])",
    "torch.where(x > 0, x, y)",
    "x.masked_fill(x > 0, 0.)",
    "x.double()",
    "x.clone()",
    "x.gather(1, torch.tensor([[0], [1], [2]]))",
    "F.softmax(x, -1)",
    "F.log_softmax(x, -1)",
    "F.mse_loss(x, y)",
    "F.gelu(x)",
    "F.layer_norm(x, (4,))",
    "Cube.apply(x)",
    # copy_ and in-place ops
    "a = x * 1\na.copy_(y)",
    "a = x.clone()\na.copy_(y)\na",
    "a = x.clone()\na.copy_(y[0])\na",
    "a = x.clone()\na.copy_(y.double())\na",
    "a = x.clone()\na[0] = y[0]\na",
    "a = x.clone()\na[:, 1] = y[:, 1]\na",
    "a = x.clone()\na.mul_(2)\na",
    "a = x.clone()\na.add_(y)\na",
    "a = x.clone()\na.relu_()\na",
    # in-place ops on views: the base is CopySlices, the view PyTorch's AsStrided of it
    "a = x * 1\na[1:].copy_(y[1:])\na",
    "a = x * 1\nb = a[1:]\nb.copy_(y[1:])\nb",
    "a = x.clone()\na[0].mul_(2)\na",
    "a = x.clone()\na[:, 1].add_(y[:, 1])\na",
    "a = x.clone()\nv = a.t()\nv.mul_(y.t())\na",
    "a = x.clone()\nv = a.view(2, 6)\nv.relu_()\nv",
    "a = x.clone()\na.diagonal().zero_()\na",
    "a = x * 1\na.zero_()\na",
    "a = x * 1\na.fill_(2.0)\na",
    "a = x * 1\na.fill_(y.sum())\na",
    "a = x * 1\ntorch.zero_(a[1])\na",
    # ops descent composes, shown as PyTorch's one node
    "torch.addmm(x[0], y.t(), x)",
    "torch.addmm(x[0], y.t(), x, beta=0.5, alpha=2)",
    "torch.addmv(x[:, 0], x, y[0])",
    "torch.addr(x, x[:, 0], y[0])",
    "torch.addcmul(x, x, y, value=0.5)",
    "torch.addcdiv(x, x, y + 3)",
    "torch.baddbmm((y.t() @ x)[None], y.t()[None], x[None])",
    "torch.addbmm(y.t() @ x, y.t()[None], x[None])",
    "torch.vdot(x[0], y[0])",
    "torch.fmax(x, y)",
    "torch.fmin(x, y)",
    "torch.deg2rad(x)",
    "torch.rad2deg(x)",
    "torch.cummax(x, 1)[0]",
    "torch.cummin(x, 0)[0]",
    "torch.var_mean(x, 1)[0]",
    "torch.std_mean(x)[0]",
    "torch.trace(x)",
    "F.hardtanh(x)",
    "F.relu6(x)",
    "F.hardsigmoid(x)",
    "F.selu(x)",
    "F.celu(x)",
    "F.glu(x)",
    "F.softshrink(x)",
    "F.hardshrink(x)",
    "F.threshold(x, 0.1, 2.0)",
    "F.conv1d(x[None], y.reshape(2, 3, 2))",
    "F.conv1d(x[None], y.reshape(2, 3, 2), x.sum(0)[:2], padding=1)",
    "F.conv1d(x[None], y.reshape(4, 3, 1), padding='same')",
    "F.conv3d(x.reshape(1, 1, 3, 2, 2), y.reshape(3, 1, 1, 2, 2), padding='same')",
    "F.conv3d(x.reshape(1, 1, 3, 2, 2), y.reshape(3, 1, 1, 2, 2))",
    "F.conv_transpose1d(x[None], y.reshape(3, 2, 2))",
    "F.group_norm(x.reshape(1, 4, 3), 2)",
    "F.group_norm(x.reshape(1, 4, 3), 2, y[0], x[0])",
    # pieces: one node shared by them in PyTorch, one per piece here (same name and edges)
    "x.split(2, 1)[1]",
    "x.split([1, 2])[0]",
    "x.chunk(2, 1)[0]",
    "x.unbind(1)[2]",
    "torch.unsafe_split(x, 2)[1]",
    "torch.unsafe_chunk(x, 3)[2]",
    "x.index_select(1, torch.tensor([0, 2]))",
    "torch.rsub(x, y)",
    "torch.frac(x * 3)",
    "torch.take(x, torch.tensor([0, 5, 11]))",
    "torch.nansum(x)",
    "torch.nansum(x, 1)",
    "torch.dist(x, y)",
    "F.pixel_shuffle(x.reshape(1, 12, 1, 1), 2)",
    "F.pixel_unshuffle(x.reshape(1, 1, 2, 6), 2)",
    "F.channel_shuffle(x.reshape(1, 4, 3), 2)",
    # the *_copy ops: a clone of the view here, one "..._copy" node there
    "torch.select_copy(x, 0, 1)",
    "torch.slice_copy(x, 1, 1, 3)",
    "torch.diagonal_copy(x)",
    "torch.expand_copy(x[0], (2, 4))",
    "torch.permute_copy(x, (1, 0))",
    "torch.t_copy(x)",
    "torch.transpose_copy(x, 0, 1)",
    "torch.unsqueeze_copy(x, 0)",
    "torch.squeeze_copy(x[None], 0)",
    "torch.view_copy(x, (4, 3))",
    "torch.unfold_copy(x, 0, 2, 1)",
    "torch.narrow_copy(x, 1, 0, 2)",
    "torch.as_strided_copy(x, (2, 2), (1, 2))",
    "torch.alias_copy(x)",
    "torch.split_copy(x, 2, 1)[1]",
    "torch.split_with_sizes_copy(x, [1, 2])[1]",
    "torch.unbind_copy(x, 1)[0]",
]


def _graph(lib, src: str, cube):
    ns = {"torch": lib, "F": lib.nn.functional, "Cube": cube}
    ns["x"] = lib.tensor(X, requires_grad=True)
    ns["y"] = lib.tensor(Y, requires_grad=True)
    *stmts, last = src.split("\n")
    for s in stmts:
        exec(s, ns)
    return eval(last, ns)


@pytest.mark.parametrize("src", CASES)
def test_graph_walk_as_torch(src):
    t = _graph(torch, src, _TorchCube)
    d = _graph(descent, src, _DescentCube)
    assert walk(d.grad_fn) == walk(t.grad_fn)


@pytest.mark.parametrize(
    "src",
    [
        "x.sum()",
        "x[1:]",
        "a = x.clone()\na.copy_(y)\na",
        "torch.addmm(x[0], y.t(), x)",
        "F.hardtanh(x)",
        "x.diagonal()",
    ],
)
def test_repr_and_print_as_torch(src):
    t = _graph(torch, src, _TorchCube)
    d = _graph(descent, src, _DescentCube)
    assert repr(d.grad_fn).split(" object")[0] == repr(t.grad_fn).split(" object")[0]
    assert repr(d).rsplit("grad_fn=", 1)[1] == repr(t).rsplit("grad_fn=", 1)[1]


def test_grad_fn_keeps_its_identity_and_op():
    """The renamed node is the same object, read after read; it is still descent's op (its
    own name, isinstance, the Node ABC), and its input's AccumulateGrad holds the leaf."""
    x = descent.tensor(X, requires_grad=True)
    y = (x * 2).sum(0)
    g = y.grad_fn
    assert g is y.grad_fn and type(g).__name__ == "SumBackward1"
    assert g.op_class.__name__ == "Sum" and isinstance(g, g.op_class)
    assert g.name == "SumBackward" and g.name() == "SumBackward1"  # descent's, PyTorch's
    assert isinstance(g, descent.autograd.graph.Node)
    mul = g.next_functions[0][0]
    assert type(mul).__name__ == "MulBackward0" and mul is y.grad_fn.next_functions[0][0]
    acc = mul.next_functions[0][0]
    assert type(acc).__name__ == "AccumulateGrad" and acc.variable is x


def test_gradients_after_the_graph_was_read():
    """Reading (renaming) every node first changes no gradient, also where the engine has
    fast paths for slices (split's pieces) and reshapes of slices."""

    def run(lib, read: bool):
        x = lib.tensor(X, requires_grad=True)
        a, b = x.split(2, dim=1)
        q = (a * b).reshape(-1).view(3, 2)[1:]
        loss = q.sum() + x.t()[1:].pow(2).sum() + lib.addmm(x[0], x.t(), x).sum()
        if read:
            stack, seen = [loss.grad_fn], set()
            while stack:
                n = stack.pop()
                if n is None or id(n) in seen:
                    continue
                seen.add(id(n))
                stack.extend(p for p, _ in n.next_functions)
        loss.backward()
        return x.grad.numpy()

    ref = run(torch, False)
    for read in (False, True):
        np.testing.assert_allclose(run(descent, read), ref, rtol=1e-6, atol=1e-6)


def test_gradients_through_copy_and_composites_float64():
    """The nodes shown as PyTorch's change nothing in backward: float64 gradients of copy_,
    addmm, addcdiv, hardtanh and conv1d against finite differences."""

    def f(x, w):
        a = x.clone()
        a[1:].copy_(w[:2])
        h = descent.addmm(x, w, x.t() @ x) + descent.addcdiv(x, x, w * w + 1)
        h = descent.nn.functional.hardtanh(h, -2.0, 2.0)
        y = descent.nn.functional.conv1d(h.reshape(1, 3, 4), w.reshape(2, 3, 2), w[0, :2])
        return y.sum() + a.sum()

    x = descent.tensor(X.astype(np.float64), requires_grad=True)
    w = descent.tensor(Y.astype(np.float64), requires_grad=True)
    assert descent.autograd.gradcheck(f, (x, w))


def test_node_hooks_on_renamed_nodes():
    """grad_fn.register_prehook / register_hook work on a node read (renamed) first."""
    res = {}
    for lib in (torch, descent):
        x = lib.tensor(X, requires_grad=True)
        y = x.exp()
        seen = []
        y.grad_fn.register_prehook(lambda g, seen=seen: seen.append(g[0].sum().item()))
        y.grad_fn.register_hook(lambda gi, go: (gi[0] * 2,))
        (y * 3).sum().backward()
        res[lib.__name__] = (type(y.grad_fn).__name__, seen, x.grad.numpy())
    assert res["descent"][:2] == res["torch"][:2]
    np.testing.assert_allclose(res["descent"][2], res["torch"][2], rtol=1e-6)


def test_descent_names_kept_for_messages_and_explain():
    """descent's own name (error messages, anomaly mode, explain's graph) stays the op's."""
    x = descent.tensor(X, requires_grad=True)
    y = x.exp().sum()
    _ = y.grad_fn
    y.backward()
    with pytest.raises(RuntimeError, match="'ExpBackward'"):
        y.backward()  # freed: the message names descent's node
    from descent.explain.graph import graph

    z = (descent.tensor(X, requires_grad=True) * 2).exp().sum()
    before = str(graph(z, record_grads=False))
    assert "MulScalarBackward" in before or "MulScalar" in before
    _ = z.grad_fn.next_functions[0][0].next_functions
    assert str(graph(z, record_grads=False)) == before


def test_compile_recording_keeps_its_ops():
    """A function descent.compile records may read grad_fn: the program's ops keep their class
    (it tells them apart by class), and the compiled step computes what eager computes."""
    w0 = RNG.standard_normal((4, 3)).astype(np.float32)

    def make():
        w = descent.tensor(w0, requires_grad=True)

        def step(x):
            h = (x @ w)[:, 1:].relu()
            loss = h.sum()
            names.append(type(loss.grad_fn).__name__)
            loss.backward()
            return loss

        return w, step

    names: list = []
    w, step = make()
    cstep = descent.compile(step)
    x = descent.tensor(X)
    for _ in range(5):
        w.grad = None
        cstep(x)
    got = w.grad.numpy()
    w_e, step_e = make()
    step_e(x)
    np.testing.assert_allclose(got, w_e.grad.numpy(), rtol=1e-6)
    assert names[-1] == "SumBackward0"  # the eager call (a recording keeps descent's class)
    assert autograd.Function.op_class is autograd.Function


# -- the session 27 probe's leftovers fixed on descent's side (helper-194's probe, re-run) ------


def _same(fn):
    """Both libraries raise (descent an instance of torch's class) or give equal results."""
    got = results_or_same_error(fn, torch, descent)
    if got is not None:
        t, d = got
        if isinstance(t, torch.Tensor):
            assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
            t, d = t.float().numpy(), d.float().numpy()
        np.testing.assert_allclose(np.asarray(d), np.asarray(t), rtol=1e-3)


@pytest.mark.parametrize("conv", [int, float])
@pytest.mark.parametrize(
    "value", [1.75 + 0j, -2.5 + 0j, 3 + 0j, 1.5 + 2j, -0.5j], ids=lambda v: f"{v}"
)
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_int_float_of_complex_tensor(conv, value, dtype, shape):
    """int(t) / float(t) of a one-element complex tensor: its real part, as PyTorch's checked
    conversion (descent raised Python's TypeError); a nonzero imaginary part raises there."""
    _same(lambda m: conv(m.full(shape, value, dtype=getattr(m, dtype))))


@pytest.mark.parametrize("ydt", ["uint8", "int8", "int32", "int64"])
@pytest.mark.parametrize("xdt", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("op", ["trapezoid", "trapz", "cumulative_trapezoid"])
def test_trapezoid_integer_samples_take_the_points_dtype(ydt, xdt, op):
    """Integer samples at floating points promote to the points' dtype (int y at float16 x:
    float16), as PyTorch; descent made them float32 first."""

    def f(m):
        y = m.tensor([[3, 1, 4, 1], [5, 9, 2, 6]], dtype=getattr(m, ydt))
        x = m.tensor([0.0, 0.5, 1.5, 2.0], dtype=getattr(m, xdt))
        return getattr(m, op)(y, x)

    _same(f)


@pytest.mark.parametrize("dtype", ["float32", "int64", "float64"])
@pytest.mark.parametrize("index", ["mask", "bools", "int", "slice"])
@pytest.mark.parametrize("value", [1 + 2j, 2 + 0j], ids=["imag", "real"])
def test_setitem_complex_value_through_a_mask(dtype, index, value):
    """x[mask] = a 0-d complex tensor on a real x: PyTorch's masked fill converts its number and
    raises for a nonzero imaginary part (descent dropped it); other indexes copy (a warning)."""

    def f(m):
        x = m.zeros(3, dtype=getattr(m, dtype))
        idx = {"mask": m.tensor([True, False, True]), "bools": [True, False, True], "int": 1,
               "slice": slice(0, 2)}[index]  # fmt: skip
        x[idx] = m.tensor(value)
        return x

    _same(f)


@pytest.mark.parametrize(
    "op, dtype",
    [("polar", "float16"), ("polar", "bfloat16"), ("polar", "float32"), ("complex", "bfloat16"),
     ("complex", "float32")],
)  # fmt: skip
def test_polar_complex_dtypes(op, dtype):
    """bfloat16 parts raise PyTorch's RuntimeError (descent computed complex64); polar of
    float16 its NotImplementedError (no half kernel). complex of float16 (PyTorch's complex32,
    which descent lacks) stays a documented difference (docs/pytorch.md)."""

    def f(m):
        a = m.tensor([1.0, 2.0], dtype=getattr(m, dtype))
        return getattr(m, op)(a, a * 0.5)

    _same(f)
