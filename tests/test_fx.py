"""descent.fx against torch.fx 2.13 (docs/fx.md): the same models traced by both libraries give
the same graphs (ops, names, targets, printed text), the GraphModules compute the original's
values and gradients, and editing (node surgery, replace_pattern, Transformer), Interpreter,
ShapeProp, concrete_args, wrap and the tracing errors behave as torch's. The tracer patches
descent's namespaces while it runs; the last tests check that everything is restored."""

from __future__ import annotations

import copy
import inspect
import math
import operator

import numpy as np
import pytest
import torch
import torch.fx

import descent as ds
import descent.fx


def fx_scale(x, k):
    """A leaf function for both libraries' `wrap` (never traced into)."""
    if k > 0:  # control flow that tracing could not follow
        return x * k
    return x


torch.fx.wrap("fx_scale")
descent.fx.wrap("fx_scale")


def _models(lib):
    """The same model definitions over torch or descent."""
    nn, F = lib.nn, lib.nn.functional

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(2, 2, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(2)
            self.conv2 = nn.Conv2d(2, 2, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(2)

        def forward(self, x):
            out = lib.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return lib.relu(out + x)

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 2, 3, padding=1)
            self.layer1 = nn.Sequential(Block(), Block())
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            x = F.max_pool2d(self.layer1(self.stem(x)), 2)
            return self.fc(lib.flatten(x, 1))

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.n_head = 2
            self.ln = nn.LayerNorm(8)
            self.qkv = nn.Linear(8, 24)
            self.proj = nn.Linear(8, 8)

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.qkv(self.ln(x)).split(C, dim=2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = F.softmax(att, dim=-1)
            y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
            return x + self.proj(y)

    class Scale(nn.Module):  # a user module made a leaf by the custom tracer below
        def __init__(self):
            super().__init__()
            self.k = nn.Parameter(lib.ones(3))

        def forward(self, x):
            return x * self.k

    class WithLeaf(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.scale = Scale()
            self.register_buffer("shift", lib.arange(3.0))

        def forward(self, x):
            h = fx_scale(self.scale(self.fc(x)), 2.0)
            return lib.tanh(h - self.shift) + x.shape[0]

    class Leafy(lib.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return type(m).__name__ == "Scale" or super().is_leaf_module(m, qualname)

    return {"MLP": MLP, "CNN": CNN, "Attention": Attention, "WithLeaf": WithLeaf,
            "Leafy": Leafy}  # fmt: skip


TM, DM = _models(torch), _models(ds)
SHAPES = {"MLP": (2, 4), "CNN": (2, 1, 4, 4), "Attention": (2, 3, 8), "WithLeaf": (2, 4)}


def _pair(name, seed=0):
    """The torch model and the descent model with the same weights, and an input for both."""
    tm = TM[name]()
    dm = DM[name]()
    dm.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(seed).standard_normal(SHAPES[name]).astype(np.float32)
    return tm, dm, x


def _trace(lib_models, lib, model):
    if type(model).__name__ == "WithLeaf":
        return lib.fx.GraphModule(model, lib_models["Leafy"]().trace(model), "WithLeaf")
    return lib.fx.symbolic_trace(model)


def _norm(text: str) -> str:
    # torch names its C-implemented functionals by their home (torch._C._nn.gelu); descent by
    # the public path (descent.nn.functional.gelu): docs/fx.md
    return text.replace("torch._C._nn.", "torch.nn.functional.").replace("torch.", "descent.")


def _summary(graph):
    return [(n.op, n.name, _norm(n._pretty_print_target(n.target))) for n in graph.nodes]


@pytest.mark.parametrize("name", ["MLP", "CNN", "Attention", "WithLeaf"])
def test_trace_matches_torch(name):
    tm, dm, x = _pair(name)
    tgm, dgm = _trace(TM, torch, tm), _trace(DM, ds, dm)
    assert _summary(dgm.graph) == _summary(tgm.graph)
    assert str(dgm.graph) == _norm(str(tgm.graph))
    assert dgm.code == _norm(tgm.code)
    assert dgm.print_readable(False) == _norm(tgm.print_readable(False))
    assert str(dgm) == _norm(str(tgm))  # the module tree, the code, torch's reminder line
    assert list(dgm.state_dict()) == list(tgm.state_dict())
    # values: the GraphModule equals the original, and torch's
    tm.eval(), dm.eval(), tgm.eval(), dgm.eval()
    want = tm(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(dgm(ds.tensor(x)).numpy(), dm(ds.tensor(x)).numpy(), rtol=0,
                               atol=0)  # fmt: skip
    np.testing.assert_allclose(dgm(ds.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["CNN", "Attention"])
def test_graph_module_gradients_equal_the_original(name):
    _, dm, x = _pair(name)
    gm = ds.fx.symbolic_trace(dm)
    grads = []
    for model in (dm, gm):
        model.zero_grad()
        model(ds.tensor(x)).square().sum().backward()
        grads.append({k: p.grad.numpy().copy() for k, p in model.named_parameters()})
    assert list(grads[0]) == list(grads[1])
    for k in grads[0]:
        np.testing.assert_allclose(grads[1][k], grads[0][k], rtol=1e-6, atol=1e-7)
    # training mode: BatchNorm's running statistics move in the GraphModule's own buffers,
    # which are the original's (shared, as in torch)
    if name == "CNN":
        assert getattr(gm.layer1, "0").bn1.running_mean is dm.layer1[0].bn1.running_mean


def _swap_relu_for_gelu(lib, gm):
    graph = gm.graph
    for n in list(graph.nodes):
        if n.op == "call_function" and n.target is lib.relu:
            with graph.inserting_after(n):
                new = graph.call_function(lib.nn.functional.gelu, n.args, n.kwargs)
            n.replace_all_uses_with(new)
            graph.erase_node(n)
    graph.lint()
    gm.recompile()


def test_node_editing_relu_to_gelu_matches_torch():
    tm, dm, x = _pair("CNN")
    tgm, dgm = torch.fx.symbolic_trace(tm.eval()), ds.fx.symbolic_trace(dm.eval())
    _swap_relu_for_gelu(torch, tgm)
    _swap_relu_for_gelu(ds, dgm)
    assert str(dgm.graph) == _norm(str(tgm.graph))
    assert dgm.code == _norm(tgm.code)
    np.testing.assert_allclose(dgm(ds.tensor(x)).numpy(), tgm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def _replace_relu_add(lib, model):
    gm = lib.fx.symbolic_trace(model)

    def pattern(a, b):
        return lib.relu(operator.add(a, b))

    def replacement(a, b):
        return lib.nn.functional.gelu(a - b)

    matches = lib.fx.subgraph_rewriter.replace_pattern(gm, pattern, replacement)
    return gm, [(m.anchor.name, sorted(k.name for k in m.nodes_map)) for m in matches]


def test_replace_pattern_matches_torch():
    tm, dm, x = _pair("CNN")
    tgm, tmatch = _replace_relu_add(torch, tm.eval())
    dgm, dmatch = _replace_relu_add(ds, dm.eval())
    assert dmatch == tmatch and len(dmatch) == 2
    assert str(dgm.graph) == _norm(str(tgm.graph))
    np.testing.assert_allclose(
        dgm(ds.tensor(x)).numpy(), tgm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5
    )


def _run_passes(lib, model, arg):
    """Interpreter (counting call_module), Transformer (relu -> sigmoid), ShapeProp."""
    from importlib import import_module

    gm = lib.fx.symbolic_trace(model)
    seen = []

    class Counting(lib.fx.Interpreter):
        def call_module(self, target, args, kwargs):
            seen.append(target)
            return super().call_module(target, args, kwargs)

    value = Counting(gm).run(arg)

    class ReluToSigmoid(lib.fx.Transformer):
        def call_function(self, target, args, kwargs):
            if target is lib.nn.functional.relu:
                return super().call_function(lib.sigmoid, args[:1], {})
            return super().call_function(target, args, kwargs)

    new = ReluToSigmoid(gm).transform()
    shape_prop = import_module(f"{lib.__name__}.fx.passes.shape_prop")
    shape_prop.ShapeProp(gm).propagate(arg)
    metas = [
        (n.name, tuple(m.shape), str(m.dtype), m.requires_grad, tuple(m.stride))
        for n in gm.graph.nodes
        if (m := n.meta.get("tensor_meta")) is not None
    ]
    return (seen, value.detach().numpy(), _norm(str(new.graph)), new(arg).detach().numpy(),
            [_norm(str(m)) for m in metas])  # fmt: skip


def test_interpreter_transformer_and_shape_prop_match_torch():
    tm, dm, x = _pair("MLP")
    t = _run_passes(torch, tm, torch.tensor(x))
    d = _run_passes(ds, dm, ds.tensor(x))
    assert d[0] == t[0] == ["fc1", "fc2"]
    np.testing.assert_allclose(d[1], t[1], rtol=1e-5, atol=1e-6)
    assert d[2] == t[2] and "sigmoid" in d[2]
    np.testing.assert_allclose(d[3], t[3], rtol=1e-5, atol=1e-6)
    assert d[4] == t[4] and len(d[4]) == 5


def _flagged(lib):
    class Flagged(lib.nn.Module):
        def forward(self, x, flag=True, bias=None):
            # timm's idiom: skip a data-dependent check while tracing
            if not lib.fx._symbolic_trace.is_fx_tracing():
                assert x.sum() > -100
            if flag:
                x = lib.relu(x)
            if bias is not None:
                x = x + bias
            return x * 2

    return Flagged()


def test_concrete_args_match_torch():
    tgm = torch.fx.symbolic_trace(_flagged(torch), concrete_args={"flag": False, "bias": None})
    dgm = ds.fx.symbolic_trace(_flagged(ds), concrete_args={"flag": False, "bias": None})
    assert str(dgm.graph) == _norm(str(tgm.graph))
    assert dgm.code == _norm(tgm.code)
    # dead-code elimination keeps the _assert guard (a side effect), drops _assert_is_none
    assert tgm.graph.eliminate_dead_code() and dgm.graph.eliminate_dead_code()
    assert str(dgm.graph) == _norm(str(tgm.graph)) and "%_assert :" in str(dgm.graph)
    dgm.recompile()
    x = ds.tensor([-1.0, 2.0])
    np.testing.assert_array_equal(dgm(x, False, None).numpy(), [-2.0, 4.0])
    assert not ds.fx._symbolic_trace.is_fx_tracing()
    np.testing.assert_array_equal(_flagged(ds)(x).numpy(), [0.0, 4.0])  # eager: checks run
    with pytest.raises(AssertionError, match="flag has been specialized to have value False"):
        dgm(x, True, None)


def test_trace_errors_match_torch_and_restore_everything():
    def branchy(lib):
        class Branchy(lib.nn.Module):
            def forward(self, x):
                if x.sum() > 0:
                    return x
                return -x

        return Branchy()

    def looping(x):
        return [r for r in x]

    def sized(x):
        return x.view(len(x), -1)

    for fn in (branchy, lambda lib: looping, lambda lib: sized):
        errors = []
        for lib in (torch, ds):
            with pytest.raises((lib.fx.proxy.TraceError, RuntimeError)) as info:
                lib.fx.symbolic_trace(fn(lib))
            errors.append((type(info.value).__name__, str(info.value)))
        assert errors[0] == errors[1]
    _assert_restored()


SAMPLE = {
    ds: ["relu", "add", "cat", "matmul", "flatten", "tanh", "_assert", "zeros", "softmax"],
    ds.nn.functional: ["relu", "gelu", "linear", "softmax", "max_pool2d", "layer_norm"],
    ds.linalg: ["norm", "solve"],
    ds.special: ["erf", "expit"],
    ds.fft: ["fft", "rfft"],
}
ORIGINALS = {(ns, name): vars(ns)[name] for ns, names in SAMPLE.items() for name in names}
ORIGINAL_METHODS = {name: vars(ds.nn.Module).get(name) for name in ("__call__", "__getattr__")}
ORIGINAL_SQRT = math.sqrt
TENSOR_SAMPLE = ("mul", "expand", "view", "size", "__add__", "__eq__", "t", "__getitem__")
ORIGINAL_TENSOR = {name: inspect.getattr_static(ds.Tensor, name) for name in TENSOR_SAMPLE}


def _assert_restored():
    for (ns, name), obj in ORIGINALS.items():
        assert vars(ns)[name] is obj, f"{ns.__name__}.{name} was not restored"
    for name, obj in ORIGINAL_METHODS.items():
        assert vars(ds.nn.Module).get(name) is obj
    for name, obj in ORIGINAL_TENSOR.items():
        assert inspect.getattr_static(ds.Tensor, name) is obj, f"Tensor.{name} not restored"
    assert "__add__" not in vars(ds.Tensor) and "__eq__" not in vars(ds.Tensor)
    assert math.sqrt is ORIGINAL_SQRT
    assert globals()["fx_scale"].__name__ == "fx_scale" and not hasattr(
        globals()["fx_scale"], "__fx_wrapper_of__")  # fmt: skip


def test_everything_restored_after_tracing():
    _, dm, _ = _pair("Attention")
    ds.fx.symbolic_trace(dm)
    DM["Leafy"]().trace(_pair("WithLeaf")[1])
    _assert_restored()


def test_graph_editing_api():
    g = ds.fx.Graph()
    x = g.placeholder("x")
    y = g.placeholder("y", default_value=2)
    a = g.call_function(operator.add, (x, y))
    dead = g.call_method("sum", (a,))
    r = g.call_function(ds.relu, (a,))
    g.output(r)
    assert [n.name for n in g.nodes] == ["x", "y", "add", "sum_1", "relu", "output"]
    assert a.users == {dead: None, r: None} and r.all_input_nodes == [a]
    assert g.eliminate_dead_code() and "sum_1" not in [n.name for n in g.nodes]
    with g.inserting_before(r):
        m = g.call_function(operator.mul, (a, 3))
    r.replace_input_with(a, m)
    assert [n.name for n in g.nodes] == ["x", "y", "add", "mul", "relu", "output"]
    r.update_arg(0, a)
    assert m.users == {} and a.users == {m: None, r: None}
    g.erase_node(m)
    with pytest.raises(RuntimeError, match="still had 1 users"):
        g.erase_node(a)
    r.prepend(g.call_function(operator.neg, (x,)))  # made at the end, moved before relu
    assert [n.name for n in g.nodes] == ["x", "y", "add", "neg", "relu", "output"]
    g2 = ds.fx.Graph()
    val_map = {}
    out = g2.graph_copy(g, val_map)
    g2.output(out)
    assert str(g2) == str(g) and str(copy.deepcopy(g)) == str(g)
    assert r.format_node() == (
        "%relu : [num_users=1] = call_function[target=descent.relu](args = (%add,), kwargs = {})"
    )
    gm = ds.fx.GraphModule(ds.nn.Module(), g)
    np.testing.assert_array_equal(gm(ds.tensor([-3.0, 1.0])).numpy(), [0.0, 3.0])
    assert ds.fx.map_arg((a, [x, 1]), lambda n: n.name) == ("add", ["x", 1])
    with pytest.raises(ModuleNotFoundError):  # tabulate is not installed: torch raises too
        g.print_tabular()


def test_retrace_and_copies():
    _, dm, x = _pair("WithLeaf")
    gm = DM["Leafy"]().trace(dm)
    gm = ds.fx.GraphModule(dm, gm)
    again = DM["Leafy"]().trace(gm)  # a GraphModule traces to the same graph (wrap kept)
    assert str(again) == str(gm.graph)
    assert "scale_k" in str(ds.fx.symbolic_trace(gm).graph)  # the default tracer enters Scale
    clone = copy.deepcopy(gm)
    np.testing.assert_allclose(clone(ds.tensor(x)).numpy(), gm(ds.tensor(x)).numpy())
    assert clone.fc.weight is not gm.fc.weight
    assert "fx_scale" in gm.code and 'wrap("test_fx_fx_scale")' in gm.code.replace(
        "tests_", "")  # fmt: skip


def _kitchen_sink(lib):
    """Parameters read for their shape, a buffer on the LEFT of an operator (torch records
    `buf.add(y)`), a plain tensor attribute, torch.cat (an alias of concatenate in descent),
    a factory called with a traced size, tensor constants, functionals with recorded
    defaults, a named-tuple attribute (`.values`) and a tuple output."""
    nn, F = lib.nn, lib.nn.functional

    class Sink(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(lib.ones(3, 3))
            self.register_buffer("buf", lib.arange(3.0))
            self.const = lib.tensor([1.0, 2.0, 3.0])
            self.emb = nn.Embedding(5, 3)

        def forward(self, x, idx):
            n = self.w.shape[0]
            y = lib.cat([x, x * 2], 1)[:, :n]
            y = self.buf + y @ self.w.t() + self.const
            y = y + self.emb(idx).sum(1) - self.buf * 2
            z = lib.zeros((x.size(0), 3)) + lib.tensor([0.5, 0.5, 0.5])
            y = F.dropout(y, 0.1, training=self.training) + z
            gelu = F.gelu(y, approximate="tanh")
            masked = self.buf.mul(y).masked_fill(y > 0, 0.0)  # a tensor's method, Proxy argument
            return (lib.softmax(y, -1), y.max(dim=1).values, F.layer_norm(y, (3,)), gelu,
                    abs(y) // 2, lib.where(y > 0, y, -y), masked, self.buf[idx % 3])  # fmt: skip

    return Sink()


def test_kitchen_sink_matches_torch():
    tm, dm = _kitchen_sink(torch).eval(), _kitchen_sink(ds).eval()
    dm.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    tgm, dgm = torch.fx.symbolic_trace(tm), ds.fx.symbolic_trace(dm)
    assert str(dgm.graph) == _norm(str(tgm.graph))
    assert dgm.code == _norm(tgm.code)
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    idx = np.array([[1, 2], [3, 4]])
    want = tgm(torch.tensor(x), torch.tensor(idx))
    got = dgm(ds.tensor(x), ds.tensor(idx))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w.detach().numpy(), rtol=1e-5, atol=1e-6)
    _assert_restored()


def _varargs(lib):
    class Inner(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lib.nn.Linear(2, 2)

        def forward(self, x):
            return lib.relu(self.lin(x))

    class VarArgs(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x, *args, k=1, **kw):
            return self.inner(x) + self.inner(args[0]) + kw["z"] * k

    return VarArgs()


def test_varargs_kwonly_and_module_stack_match_torch():
    tm, dm = _varargs(torch), _varargs(ds)
    dm.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    tgm, dgm = torch.fx.symbolic_trace(tm), ds.fx.symbolic_trace(dm)
    assert str(dgm.graph) == _norm(str(tgm.graph))
    assert dgm.code == _norm(tgm.code)

    def stacks(gm):
        return [[(key, path, cls.__name__) for key, (path, cls) in
                 n.meta.get("nn_module_stack", {}).items()] for n in gm.graph.nodes]  # fmt: skip

    assert stacks(dgm) == stacks(tgm)
    assert ["inner@1", "inner.lin@1"] in [[k for k, _, _ in st] for st in stacks(dgm)]
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    want = tgm(torch.tensor(x), 2, torch.tensor(-x), z=torch.tensor(x)).detach().numpy()
    got = dgm(ds.tensor(x), 2, ds.tensor(-x), z=ds.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_submodule_management_and_side_effects():
    _, dm, x = _pair("CNN")
    gm = ds.fx.symbolic_trace(dm.eval())
    assert gm.add_submodule("extra.deep", ds.nn.ReLU()) and isinstance(gm.extra.deep, ds.nn.ReLU)
    assert not gm.add_submodule("fc.weight.x", ds.nn.ReLU())  # a parameter is not a path
    assert gm.delete_submodule("extra.deep") and not gm.delete_submodule("extra.deep")
    gm.delete_all_unused_submodules()
    assert "extra" not in dict(gm.named_modules())
    assert {n for n, _ in gm.named_modules()} >= {"layer1.0.conv1", "fc", "stem"}

    calls = []

    @ds.fx.has_side_effect
    def log(v):
        calls.append(1)

    g = ds.fx.Graph()
    a = g.placeholder("a")
    g.call_function(log, (a,))
    g.call_function(operator.neg, (a,))  # unused and pure: removed
    g.output(a)
    assert g.eliminate_dead_code() and [n.name for n in g.nodes] == ["a", "log", "output"]
    ds.fx.GraphModule(ds.nn.Module(), g)(ds.tensor(1.0))
    assert calls == [1]


def _stored_activation(lib):
    class Stored(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.act = lib.nn.functional.gelu  # a function kept as an attribute
            self.fc = lib.nn.Linear(2, 2)

        def forward(self, x):
            return self.act(self.fc(x))

    return Stored()


ACTIVATIONS = [ds.relu]  # a reference the tracer cannot see


def test_stored_functions():
    dm = _stored_activation(ds)
    tgm = torch.fx.symbolic_trace(_stored_activation(torch))
    dgm = ds.fx.symbolic_trace(dm)
    assert str(dgm.graph) == _norm(str(tgm.graph))
    assert vars(dm)["act"] is ds.nn.functional.gelu  # the instance's attribute is put back
    with pytest.raises(ds.fx.TraceError, match="did not replace"):
        ds.fx.symbolic_trace(lambda x: ACTIVATIONS[0](x))
    _assert_restored()


def test_generated_code_names_devices_dtypes_and_formats():
    def convert(lib):
        def f(x):
            y = x.to(lib.device("cpu"), lib.float64).contiguous(memory_format=lib.contiguous_format)
            return y + lib.ones(2, dtype=lib.float64)

        return f

    tgm, dgm = torch.fx.symbolic_trace(convert(torch)), ds.fx.symbolic_trace(convert(ds))
    assert dgm.code == _norm(tgm.code)
    out = dgm(ds.tensor([1.0, 2.0]))
    assert out.dtype == ds.float64 and out.tolist() == [2.0, 3.0]


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")
def test_experimental_fuse_and_remove_dropout_match_torch():
    import torch.fx.experimental.optimization as t_opt

    import descent.fx.experimental.optimization as d_opt

    tm, dm, x = _pair("CNN")
    tm.eval(), dm.eval()
    tf, df = t_opt.fuse(tm), d_opt.fuse(dm)
    assert str(df.graph) == _norm(str(tf.graph)) and "bn" not in str(df.graph)
    np.testing.assert_allclose(df(ds.tensor(x)).numpy(), dm(ds.tensor(x)).numpy(), rtol=1e-4,
                               atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(df(ds.tensor(x)).numpy(), tf(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    assert dm.layer1[0].bn1 is not None and "bn1" in dict(dm.layer1[0].named_children())

    def dropped(lib):
        return lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Dropout(0.5), lib.nn.ReLU())

    td, dd = t_opt.remove_dropout(dropped(torch)), d_opt.remove_dropout(dropped(ds))
    assert str(dd.graph) == _norm(str(td.graph)) and "call_module[target=1]" not in str(dd.graph)


def _helper_module(lib):
    """A helper in ANOTHER module, calling a function imported by name from the library."""
    import types

    mod = types.ModuleType(f"fx_helper_{lib.__name__}")
    source = f"from {lib.__name__} import relu\n\n\ndef act(x):\n    return relu(x) * 2\n"
    exec(source, vars(mod))  # noqa: S102

    class UsesHelper(lib.nn.Module):
        def forward(self, x):
            return mod.act(x) + 1

    return UsesHelper(), mod


def test_functions_imported_by_helpers_in_other_modules():
    import sys

    profile_before = sys.getprofile()
    (tm, _), (dm, dmod) = _helper_module(torch), _helper_module(ds)
    tgm, dgm = torch.fx.symbolic_trace(tm), ds.fx.symbolic_trace(dm)
    assert str(dgm.graph) == _norm(str(tgm.graph)) and "descent.relu" in str(dgm.graph)
    assert vars(dmod)["relu"] is ds.relu  # the helper's globals are put back
    assert sys.getprofile() is profile_before  # the tracer's profile hook is gone
    np.testing.assert_array_equal(dgm(ds.tensor([-1.0, 2.0])).numpy(), [1.0, 5.0])


def test_assigning_a_target_matches_torch():
    def fn(lib):
        return lambda x, y: lib.add(lib.cat([x, y]), 1)

    out = []
    for lib in (torch, ds):
        gm = lib.fx.symbolic_trace(fn(lib))
        for node in gm.graph.nodes:
            if node.op == "call_function" and node.target is lib.add:
                node.target = lib.mul  # the FX tutorial's "replace one op"
        gm.recompile()
        out.append((_norm(str(gm.graph)), _norm(gm.code)))
    assert out[0] == out[1] and "descent.mul" in out[1][1]
    x = ds.tensor([1.0, 3.0])
    assert gm(x, x).tolist() == [1.0, 3.0, 1.0, 3.0]  # (x ++ x) * 1, not + 1


def test_names_of_hand_made_nodes_match_torch():
    out = []
    for lib, fn in ((torch, torch.concatenate), (ds, ds.concatenate), (torch, torch.cat),
                    (ds, ds.cat)):  # fmt: skip
        g = lib.fx.Graph()
        x = g.placeholder("x")
        g.output(g.call_function(fn, ([x, x],)))
        out.append(_norm(str(g)))
    # torch's cat and concatenate are two functions, descent's one: both print as descent.cat
    assert out[3] == out[2] and out[1] == out[2]


def _filtered_rewrite(lib):
    """replace_pattern_with_filters: x * <literal> -> x + 1, only where the literal is 2 (a
    filter) and with ignore_literals so the pattern's 3.0 matches any literal."""
    from importlib import import_module

    rewriter = import_module(f"{lib.__name__}.fx.subgraph_rewriter")
    gm = lib.fx.symbolic_trace(lambda x: (x * 2) - (x * 5))

    def pattern(a):
        return a * 3.0

    def replacement(a):
        return a + 1

    def only_two(match, original, pattern_graph):
        return match.returning_nodes[0].args[1] == 2

    done = rewriter.replace_pattern_with_filters(gm, pattern, replacement,
                                                 match_filters=[only_two],
                                                 ignore_literals=True)  # fmt: skip
    return gm, [sorted(n.name for n in r.replacements) for r in done]


def test_replace_pattern_with_filters_matches_torch():
    (tgm, tdone), (dgm, ddone) = _filtered_rewrite(torch), _filtered_rewrite(ds)
    assert ddone == tdone == [["add"]]
    assert str(dgm.graph) == _norm(str(tgm.graph))
    assert dgm(ds.tensor([1.0])).tolist() == [2.0 - 5.0]
