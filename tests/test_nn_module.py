"""descent.nn.Module, the containers and descent.nn.init.

References: PyTorch's behaviour (names, orders, repr, errors) and the init formulas of
`torch.nn.init` checked by their statistics and bounds.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch

import descent
import descent.nn.functional as F
from descent import nn
from descent.nn import Module, ModuleDict, ModuleList, Parameter, Sequential, init
from descent.optim import SGD

# ---------------------------------------------------------------------------------------------
# Small modules built only from Parameters and buffers (no nn.functional needed)


class Affine(Module):
    """y = x * w + b, with a running-count buffer and a non-persistent cache."""

    def __init__(self, n: int, bias: bool = True) -> None:
        super().__init__()
        self.w = Parameter(descent.ones(n))
        if bias:
            self.b = Parameter(descent.zeros(n))
        else:
            self.register_parameter("b", None)
        self.register_buffer("count", descent.zeros((), dtype=descent.int64))
        self.register_buffer("cache", descent.zeros(n), persistent=False)
        self.n = n

    def forward(self, x):
        y = x * self.w
        return y if self.b is None else y + self.b

    def extra_repr(self) -> str:
        return f"n={self.n}, bias={self.b is not None}"


class TorchAffine(torch.nn.Module):
    """The same module in PyTorch, for comparing names, state_dict keys and repr."""

    def __init__(self, n: int, bias: bool = True) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(n))
        if bias:
            self.b = torch.nn.Parameter(torch.zeros(n))
        else:
            self.register_parameter("b", None)
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self.register_buffer("cache", torch.zeros(n), persistent=False)
        self.n = n

    def extra_repr(self) -> str:
        return f"n={self.n}, bias={self.b is not None}"


def _affine_tree(mod_cls, seq_cls, dict_cls, list_cls):
    """The same nested structure built from either library's classes."""

    class Net(mod_cls):  # the class name appears in the repr
        pass

    def build():
        net = Net()
        net.first = mod_cls_affine[mod_cls](3)
        net.body = seq_cls(mod_cls_affine[mod_cls](3), mod_cls_affine[mod_cls](3, bias=False))
        net.heads = dict_cls({"a": mod_cls_affine[mod_cls](3), "b": mod_cls_affine[mod_cls](2)})
        net.extra = list_cls([mod_cls_affine[mod_cls](1)])
        return net

    return build()


mod_cls_affine = {Module: Affine, torch.nn.Module: TorchAffine}


def build_pair():
    ours = _affine_tree(Module, Sequential, ModuleDict, ModuleList)
    theirs = _affine_tree(
        torch.nn.Module, torch.nn.Sequential, torch.nn.ModuleDict, torch.nn.ModuleList
    )
    return ours, theirs


# ---------------------------------------------------------------------------------------------
# Registration and traversal


def test_registration_orders_match_pytorch():
    ours, theirs = build_pair()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(list(ours.parameters())) == len(list(theirs.parameters()))
    assert len(list(ours.modules())) == len(list(theirs.modules()))


def test_repr_tree_matches_pytorch():
    ours, theirs = build_pair()
    assert repr(ours) == repr(theirs).replace("TorchAffine", "Affine")
    assert repr(Affine(2)) == "Affine(n=2, bias=True)"


def test_named_parameters_prefix_and_recurse():
    net = Sequential(Affine(2), Affine(2))
    assert [n for n, _ in net.named_parameters(prefix="m")] == ["m.0.w", "m.0.b", "m.1.w", "m.1.b"]
    assert list(net.named_parameters(recurse=False)) == []
    assert [n for n, _ in net[0].named_parameters(recurse=False)] == ["w", "b"]


def test_tied_weights_appear_once():
    class Tied(Module):
        def __init__(self):
            super().__init__()
            self.enc = Affine(4)
            self.dec = Affine(4)
            self.dec.w = self.enc.w  # weight tying (as GPT's lm_head / wte)

    m = Tied()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["enc.w", "enc.b", "dec.b"]
    assert m.num_parameters() == 12
    ids = [id(p) for p in m.parameters()]
    assert len(ids) == len(set(ids))
    # state_dict keeps every name, as PyTorch does, with values sharing the same memory.
    sd = m.state_dict()
    assert "dec.w" in sd and np.shares_memory(sd["dec.w"].numpy(), sd["enc.w"].numpy())
    # remove_duplicate=False lists the tied tensor under both names.
    assert len(list(m.named_parameters(remove_duplicate=False))) == 4


def test_shared_submodule_listed_once():
    shared = Affine(2)
    net = Sequential(shared, shared)
    assert len(list(net.modules())) == 2
    assert len(list(net.children())) == 1
    assert len(list(net.parameters())) == 2


def test_num_parameters_trainable_only():
    net = Sequential(Affine(3), Affine(5))
    assert net.num_parameters() == 16
    net[1].requires_grad_(False)
    assert net.num_parameters(trainable_only=True) == 6
    assert net.num_parameters() == 16


def test_assignment_rules():
    m = Affine(2)
    with pytest.raises(TypeError, match="Parameter or None"):
        m.w = descent.ones(2)  # a plain tensor cannot replace a registered parameter
    m.w = None
    assert m.w is None and "w" in m._parameters
    m.w = Parameter(descent.ones(2))
    m.count = descent.ones((), dtype=descent.int64)  # buffers accept tensors
    with pytest.raises(TypeError, match="buffer"):
        m.count = 3
    m.child = Affine(1)
    assert "child" in m._modules
    m.child = Parameter(descent.ones(1))  # re-registering moves the name between registries
    assert "child" not in m._modules and "child" in m._parameters
    del m.child
    assert not hasattr(m, "child")

    class Bad(Module):
        def __init__(self):
            self.w = Parameter(descent.ones(1))  # before super().__init__()

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()
    with pytest.raises(KeyError, match="cannot contain"):
        m.register_buffer("a.b", descent.zeros(1))
    with pytest.raises(TypeError, match="Parameter"):
        m.register_parameter("p", descent.zeros(1))
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = m.missing


def test_get_submodule_and_parameter():
    net = Sequential(Affine(2), Sequential(Affine(3)))
    assert net.get_submodule("1.0") is net[1][0]
    assert net.get_parameter("1.0.w") is net[1][0].w
    with pytest.raises(AttributeError):
        net.get_submodule("1.5")


def test_apply_visits_children_first():
    net = Sequential(Affine(1), Sequential(Affine(1)))
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Affine", "Affine", "Sequential", "Sequential"]
    tnet = torch.nn.Sequential(TorchAffine(1), torch.nn.Sequential(TorchAffine(1)))
    tseen = []
    tnet.apply(lambda m: tseen.append(type(m).__name__.replace("Torch", "")))
    assert seen == tseen


def test_train_eval_recursive():
    net = Sequential(Affine(1), Sequential(Affine(1)))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError):
        net.train("no")


def test_deep_nesting_is_not_recursive():
    net = Affine(1)
    for _ in range(3000):  # deeper than Python's recursion limit
        outer = Sequential()
        outer.append(net)
        net = outer
    assert len(list(net.parameters())) == 2
    assert len(net.state_dict()) == 3


# ---------------------------------------------------------------------------------------------
# Gradients


def test_zero_grad():
    m = Affine(3)
    x = descent.tensor([1.0, 2.0, 3.0])
    m(x).sum().backward()
    np.testing.assert_allclose(m.w.grad.numpy(), [1, 2, 3])
    m(x).sum().backward()  # gradients accumulate
    np.testing.assert_allclose(m.w.grad.numpy(), [2, 4, 6])
    grad = m.w.grad
    m.zero_grad(set_to_none=False)
    assert m.w.grad is grad and np.all(grad.numpy() == 0)
    m.zero_grad()
    assert m.w.grad is None and m.b.grad is None


def test_requires_grad_freezes():
    m = Affine(2)
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    m.requires_grad_()
    assert all(p.requires_grad for p in m.parameters())


# ---------------------------------------------------------------------------------------------
# state_dict / load_state_dict


def test_state_dict_contents_share_memory():
    m = Affine(3)
    sd = m.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["w", "b", "count"]  # the non-persistent buffer is left out
    assert not sd["w"].requires_grad and not isinstance(sd["w"], Parameter)
    with descent.no_grad():
        m.w.fill_(5.0)
    assert np.all(sd["w"].numpy() == 5.0)  # detached, but the same memory (as PyTorch)
    assert m.state_dict(keep_vars=True)["w"] is m.w
    assert list(m.state_dict(prefix="p.")) == ["p.w", "p.b", "p.count"]


def test_state_dict_round_trip_and_torch_load():
    ours, theirs = build_pair()
    gen = np.random.default_rng(0)
    # Random values from torch's state_dict (as NumPy arrays) load into ours...
    tsd = {k: v.numpy() for k, v in theirs.state_dict().items()}
    rand = {k: (gen.standard_normal(v.shape).astype(v.dtype) if v.dtype.kind == "f" else v + 3)
            for k, v in tsd.items()}  # fmt: skip
    result = ours.load_state_dict(rand)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), rand[k])
    # ... and ours loads into torch.
    theirs.load_state_dict(
        {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    )
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), rand[k])
    # torch tensors themselves are accepted as values too.
    fresh, _ = build_pair()
    fresh.load_state_dict(theirs.state_dict())
    np.testing.assert_array_equal(fresh.first.w.numpy(), rand["first.w"])


def test_load_keeps_parameter_identity_and_dtype():
    m = Affine(2)
    w = m.w
    m.load_state_dict({"w": np.array([2.0, 3.0]), "b": np.zeros(2), "count": np.array(7)})
    assert m.w is w and m.w.dtype == np.float32  # float64 values cast to float32
    np.testing.assert_array_equal(m.w.numpy(), [2.0, 3.0])
    assert m.count.dtype == np.int64 and m.count.item() == 7


def test_load_state_dict_errors_list_every_problem():
    m = Affine(2)
    before = m.w.numpy().copy()
    bad = {"w": np.full(3, 9.0, np.float32), "count": np.array(1), "extra": np.zeros(1)}
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(bad)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for Affine" in msg
    assert 'Missing key(s) in state_dict: "b"' in msg
    assert 'Unexpected key(s) in state_dict: "extra"' in msg
    assert "size mismatch for w: copying a param with shape (3,) from checkpoint, the shape in " \
           "current model is (2,)" in msg  # fmt: skip
    np.testing.assert_array_equal(m.w.numpy(), before)  # nothing was copied
    assert m.count.item() == 0


def test_load_state_dict_non_strict():
    m = Affine(2)
    result = m.load_state_dict({"w": np.ones(2) * 4, "junk": np.ones(1)}, strict=False)
    assert result.missing_keys == ["b", "count"]
    assert result.unexpected_keys == ["junk"]
    np.testing.assert_array_equal(m.w.numpy(), [4, 4])
    with pytest.raises(RuntimeError, match="size mismatch for w"):  # shapes are always checked
        m.load_state_dict({"w": np.ones(5)}, strict=False)


def test_load_state_dict_dtype_rules():
    m = Affine(2)
    with pytest.raises(RuntimeError, match="dtype mismatch for count"):
        m.load_state_dict({"w": np.ones(2), "b": np.ones(2), "count": np.array(1.5)})
    # int -> float and int32 -> int64 are 'same_kind' casts and allowed.
    m.load_state_dict({"w": np.array([1, 2]), "b": np.ones(2), "count": np.array(2, np.int32)})
    assert m.w.dtype == np.float32 and m.count.dtype == np.int64
    with pytest.raises(TypeError, match="mapping"):
        m.load_state_dict([("w", np.ones(2))])


# ---------------------------------------------------------------------------------------------
# Hooks and call


def test_forward_hooks():
    m = Affine(2)
    calls = []

    def pre(mod, args):
        calls.append("pre")
        return (args[0] * 2.0,)

    def post(mod, args, out):
        calls.append("post")
        return out + 1.0

    h1 = m.register_forward_pre_hook(pre)
    h2 = m.register_forward_hook(post)
    y = m(descent.tensor([1.0, 2.0]))
    np.testing.assert_allclose(y.numpy(), [3.0, 5.0])
    assert calls == ["pre", "post"]
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(m(descent.tensor([1.0, 2.0])).numpy(), [1.0, 2.0])
    captured = []
    with m.register_forward_hook(lambda mod, a, o: captured.append(o.shape)):
        m(descent.ones(2))
    m(descent.ones(2))
    assert captured == [(2,)]


def test_forward_missing_raises():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        Module()(1)
    with pytest.raises(TypeError, match="unexpected arguments"):
        Module(3)


# ---------------------------------------------------------------------------------------------
# Containers


def test_sequential_indexing_slicing_append():
    a, b, c = Affine(1), Affine(1), Affine(1)
    seq = Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b
    seq.append(c)
    assert list(seq) == [a, b, c]
    sub = seq[1:]
    assert isinstance(sub, Sequential) and list(sub) == [b, c]
    assert [n for n, _ in sub.named_children()] == ["1", "2"]  # torch keeps the original names
    with pytest.raises(IndexError):
        seq[3]
    seq[1] = Affine(1)
    assert seq[1] is not b
    del seq[0]
    assert [n for n, _ in seq.named_children()] == ["0", "1"] and seq[1] is c
    seq.insert(0, a)
    assert seq[0] is a and len(seq) == 3
    assert seq.pop(0) is a and len(seq) == 2
    named = Sequential(OrderedDict(first=Affine(1), second=Affine(1)))
    assert [n for n, _ in named.named_parameters()] == [
        "first.w",
        "first.b",
        "second.w",
        "second.b",
    ]
    x = descent.tensor([2.0])
    np.testing.assert_allclose(named(x).numpy(), [2.0])


def test_sequential_matches_torch_slicing_names():
    tseq = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity())
    seq = Sequential(nn_identity(), nn_identity(), nn_identity())
    assert [n for n, _ in seq[1:].named_children()] == [n for n, _ in tseq[1:].named_children()]


def test_sequential_arithmetic_matches_torch():
    # seq + seq, seq * n, n * seq, += and *=: new or grown Sequentials of the same (shared)
    # module objects under positional names, as torch.nn.Sequential's operators
    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.ReLU()), lib.nn.Sequential(
            lib.nn.Linear(3, 2)
        )

    ours, theirs = build(descent), build(torch)
    for (a, b), lib in ((ours, descent), (theirs, torch)):
        with lib.no_grad():
            for i, p in enumerate(list(a.parameters()) + list(b.parameters())):
                p.copy_(lib.from_numpy(np.linspace(-1, 1, p.numel()).reshape(p.shape) * (i + 1)))
    x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(4, 2)
    for make in (
        lambda a, b: a + b,
        lambda a, b: (a + b) * 2 + a,
        lambda a, b: 1 * (a + b),
        lambda a, b: True * (a + b),
    ):
        mine, ref = make(*ours), make(*theirs)
        assert isinstance(mine, Sequential)
        assert [n for n, _ in mine.named_children()] == [n for n, _ in ref.named_children()]
        assert [type(m).__name__ for m in mine] == [type(m).__name__ for m in ref]
        np.testing.assert_allclose(
            mine(descent.tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(), rtol=1e-6
        )
    a, b = ours
    summed = a + b
    assert summed[0] is a[0] and summed[2] is b[0]  # shared, not copied
    assert len(list((a * 3).parameters())) == 2  # one Linear, listed once
    grown = Sequential(*a)
    grown += b
    grown *= 2
    assert len(grown) == 6 and [n for n, _ in grown.named_children()] == ["0", "1", "2"]
    assert grown[3] is a[0] and grown[5] is b[0]
    for bad, err in (
        (lambda: a + [b], ValueError),
        (lambda: a * 0, ValueError),
        (lambda: a * 2.0, TypeError),
        (lambda: a.__iadd__(b[0]), ValueError),
    ):
        with pytest.raises(err):
            bad()
    for bad, err in (
        (lambda: theirs[0] + [theirs[1]], ValueError),
        (lambda: theirs[0] * 0, ValueError),
        (lambda: theirs[0] * 2.0, TypeError),
    ):
        with pytest.raises(err):
            bad()


def nn_identity():
    class Id(Module):
        def forward(self, x):
            return x

    return Id()


def test_module_list():
    layers = ModuleList([Affine(1) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(Affine(1))
    layers.extend([Affine(1)])
    layers += [Affine(1)]
    assert len(layers) == 6
    assert [n for n, _ in layers.named_children()] == [str(i) for i in range(6)]
    assert isinstance(layers[1:3], ModuleList) and len(layers[1:3]) == 2
    last = layers[-1]
    del layers[0]
    assert layers[-1] is last and len(layers) == 5
    layers.insert(0, Affine(2))
    assert layers[0].n == 2
    with pytest.raises(NotImplementedError, match="iterate"):
        layers(1)


def test_module_dict():
    d = ModuleDict({"x": Affine(1)})
    d["y"] = Affine(2)
    d.update([("z", Affine(3))])
    assert list(d) == ["x", "y", "z"] and "y" in d and len(d) == 3
    assert [m.n for m in d.values()] == [1, 2, 3]
    assert list(d.keys()) == ["x", "y", "z"]
    assert d.pop("x").n == 1 and list(d) == ["y", "z"]
    assert [n for n, _ in d.named_parameters()] == ["y.w", "y.b", "z.w", "z.b"]


# ---------------------------------------------------------------------------------------------
# Device and dtype


def test_to_dtype_keeps_identity_and_converts_grads():
    m = Sequential(Affine(2), Affine(2))
    params = list(m.parameters())
    m(descent.ones(2)).sum().backward()
    assert m.double() is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert all(p.grad.dtype == np.float64 for p in m.parameters())
    assert m[0].count.dtype == np.int64  # integer buffers keep their dtype
    assert m[0].cache.dtype == np.float64  # non-persistent buffers move too
    m.to(dtype=descent.float32)
    assert all(p.dtype == np.float32 for p in params)
    y = m(descent.ones(2))
    assert y.dtype == np.float32
    with pytest.raises(TypeError, match="floating point"):
        m.to(descent.int64)


def test_optimizer_keeps_working_after_to_double():
    m = Affine(2)
    opt = SGD(m.parameters(), lr=0.5)
    m.double()  # after the optimizer was built: it holds the same Parameter objects
    x = descent.tensor([1.0, 3.0], dtype=descent.float64)
    m(x).sum().backward()
    opt.step()
    assert m.w.dtype == np.float64
    np.testing.assert_allclose(m.w.numpy(), [0.5, -0.5])  # w - 0.5 * x
    np.testing.assert_allclose(m.b.numpy(), [-0.5, -0.5])


def test_to_cpu_is_in_place():
    m = Affine(2)
    w = m.w
    assert m.to("cpu") is m and m.cpu() is m and m.w is w and m.w.device == "cpu"
    t = descent.zeros(1, dtype=descent.float64)
    m.to(t)  # to(tensor): its device and dtype
    assert m.w.dtype == np.float64 and m.w is w


def test_to_cuda_without_gpu_is_a_clear_error():
    if descent.backend.cuda_available():
        m = Affine(2)
        w = m.w
        m.to("cuda")
        assert m.w is w and m.w.device.startswith("cuda") and m.count.device.startswith("cuda")
        m.cpu()
        assert m.w.device == "cpu"
        return
    m = Affine(2)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        m.to("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        m.cuda()
    assert m.w.device == "cpu"


# ---------------------------------------------------------------------------------------------
# descent.nn.init


def test_calculate_gain_and_fans_match_torch():
    for name in ["linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]:
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2)
    )
    with pytest.raises(ValueError):
        init.calculate_gain("swish")
    for shape in [(5, 3), (8, 4, 3, 3), (6, 2, 5)]:
        ours = init._calculate_fan_in_and_fan_out(descent.empty(*shape))
        theirs = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
        assert ours == theirs
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(descent.empty(4))


def _uniform_checks(arr, bound):
    assert arr.min() >= -bound and arr.max() <= bound
    assert arr.max() > 0.95 * bound and arr.min() < -0.95 * bound  # the range is filled
    # The variance of U(-b, b) is b^2 / 3; 40k samples estimate it within ~1%.
    assert arr.var() == pytest.approx(bound**2 / 3, rel=0.03)


@pytest.mark.parametrize("shape", [(200, 200), (64, 16, 5, 5)])
def test_xavier_and_kaiming_match_torch_formulas(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(descent.empty(*shape))
    w = descent.empty(*shape)
    init.xavier_uniform_(w, gain=2.0)
    _uniform_checks(w.numpy(), 2.0 * math.sqrt(6.0 / (fan_in + fan_out)))
    init.xavier_normal_(w)
    assert w.numpy().std() == pytest.approx(math.sqrt(2.0 / (fan_in + fan_out)), rel=0.03)
    init.kaiming_uniform_(w, a=math.sqrt(5))  # Linear's default: bound 1/sqrt(fan_in)
    _uniform_checks(w.numpy(), 1 / math.sqrt(fan_in))
    init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    _uniform_checks(w.numpy(), math.sqrt(2.0) * math.sqrt(3.0 / fan_out))
    init.kaiming_normal_(w, nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.03)
    assert abs(w.numpy().mean()) < 0.03 * math.sqrt(2.0 / fan_in) * 3
    with pytest.raises(ValueError, match="fan_in, fan_out"):
        init.kaiming_normal_(w, mode="fan_avg")


def test_uniform_normal_constant():
    w = descent.empty(100, 400)
    assert init.uniform_(w, -2.0, 3.0) is w
    a = w.numpy()
    assert a.min() >= -2.0 and a.max() < 3.0 and a.mean() == pytest.approx(0.5, abs=0.02)
    init.normal_(w, mean=1.0, std=0.5)
    assert w.numpy().mean() == pytest.approx(1.0, abs=0.01)
    assert w.numpy().std() == pytest.approx(0.5, rel=0.02)
    init.constant_(w, 0.25)
    assert np.all(w.numpy() == 0.25)
    init.ones_(w)
    assert np.all(w.numpy() == 1)
    init.zeros_(w)
    assert np.all(w.numpy() == 0)
    e = descent.empty(3, 4)
    init.eye_(e)
    np.testing.assert_array_equal(e.numpy(), np.eye(3, 4))


def test_trunc_normal_bounds_and_moments():
    w = descent.empty(200, 250)
    init.trunc_normal_(w, mean=0.5, std=2.0, a=-1.0, b=3.0)
    arr = w.numpy().astype(np.float64)
    assert arr.min() >= -1.0 and arr.max() <= 3.0
    # Moments of the truncated normal: alpha, beta standardised bounds, Z the kept mass.
    alpha, beta = (-1.0 - 0.5) / 2.0, (3.0 - 0.5) / 2.0

    def pdf(x):
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def cdf(x):
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    z = cdf(beta) - cdf(alpha)
    mean = 0.5 + 2.0 * (pdf(alpha) - pdf(beta)) / z
    var = 4.0 * (
        1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - ((pdf(alpha) - pdf(beta)) / z) ** 2
    )
    assert arr.mean() == pytest.approx(mean, abs=0.02)
    assert arr.var() == pytest.approx(var, rel=0.03)
    # torch's sampler gives the same distribution.
    t = torch.nn.init.trunc_normal_(torch.empty(200, 250), mean=0.5, std=2.0, a=-1.0, b=3.0)
    assert t.double().mean().item() == pytest.approx(mean, abs=0.02)
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(w, a=1.0, b=0.0)
    with pytest.raises(ValueError, match="holds only"):
        init.trunc_normal_(w, a=50.0, b=60.0)


def test_init_dtype_generator_and_no_graph():
    w = Parameter(descent.empty(30, 20, dtype=descent.float64))
    assert w.dtype == np.float64  # Parameter keeps a Tensor's dtype
    # Grad mode is on and w requires grad: init still works in place, recording nothing.
    init.kaiming_uniform_(w, generator=descent.Generator(3))
    assert w.dtype == np.float64 and w.is_leaf and w.grad_fn is None
    first = w.numpy().copy()
    init.kaiming_uniform_(w, generator=descent.Generator(3))
    np.testing.assert_array_equal(w.numpy(), first)  # same generator seed, same values
    init.kaiming_uniform_(w, generator=descent.Generator(4))
    assert not np.array_equal(w.numpy(), first)
    descent.manual_seed(11)
    init.normal_(w)
    a = w.numpy().copy()
    descent.manual_seed(11)
    init.normal_(w)
    np.testing.assert_array_equal(w.numpy(), a)
    h = descent.empty(10, 10, dtype=descent.float16)
    init.xavier_uniform_(h)
    assert h.dtype == np.float16 and np.all(np.abs(h.numpy()) <= math.sqrt(6 / 20) + 1e-3)
    with pytest.raises(TypeError, match="floating"):
        init.normal_(descent.zeros(3, dtype=descent.int64))
    with pytest.raises(TypeError, match="descent Tensor"):
        init.normal_(np.zeros(3))


def test_nn_exports():
    for name in ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "init"]:
        assert hasattr(nn, name)
    assert nn.functional is F


def test_module_to_memory_format_is_accepted():
    """model.to(memory_format=torch.channels_last), as image recipes write it: the 4-D weight is
    laid out as NHWC in place (test_memory_layout.py), the bias keeps its layout, the module is
    returned; other unknown keywords still raise."""
    m = descent.nn.Conv2d(3, 4, 3)
    w, b = m.weight, m.bias._data
    assert m.to(memory_format=descent.channels_last) is m
    assert m.weight is w and m.weight.stride() == (27, 1, 9, 3) and m.bias._data is b
    with pytest.raises(TypeError, match="unexpected keyword"):
        m.to(memory_fmt=descent.channels_last)


def test_deepcopy_of_parameters_drops_grad_as_torch():
    # torch.nn.Parameter.__deepcopy__ copies values and requires_grad, not .grad: a model
    # deep-copied after backward (EMA, best-model snapshots) starts with empty gradients, and a
    # backward through the copy gives the fresh gradient, not copied + fresh
    import copy

    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)
    results = []
    for lib in (descent, torch):
        m = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Tanh(), lib.nn.Linear(2, 1))
        with lib.no_grad():
            for i, p in enumerate(m.parameters()):
                p.copy_(lib.from_numpy(np.linspace(-0.5, 0.5, p.numel()).reshape(p.shape) + i))
        m[0].bias.requires_grad_(False)
        m(lib.from_numpy(x)).sum().backward()
        c = copy.deepcopy(m)
        grads_after_copy = [p.grad for p in c.parameters()]
        c(lib.from_numpy(x)).sum().backward()
        results.append(
            (
                grads_after_copy,
                [p.requires_grad for p in c.parameters()],
                [type(p).__name__ for p in c.parameters()],
                [None if p.grad is None else p.grad.numpy() for p in c.parameters()],
                [p.detach().numpy() for p in c.parameters()],
                c[0].weight is not m[0].weight,
            )
        )
    ours, theirs = results
    assert ours[0] == theirs[0] == [None, None, None, None]
    assert ours[1] == theirs[1] and ours[2] == theirs[2] and ours[5] and theirs[5]
    for a, b in zip(ours[3], theirs[3], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-6)  # the fresh gradient only
    for a, b in zip(ours[4], theirs[4], strict=True):
        np.testing.assert_array_equal(a, b)
    # shared parameters stay shared in the copy; a plain tensor leaf keeps its .grad (as torch)
    lin = nn.Linear(2, 2)
    tied = copy.deepcopy(Sequential(lin, lin))
    assert tied[0].weight is tied[1].weight
    t = descent.ones(2, requires_grad=True)
    t.grad = descent.full((2,), 3.0)
    assert copy.deepcopy(t).grad.tolist() == [3.0, 3.0]
    p64 = copy.deepcopy(Parameter(descent.ones(2, dtype=descent.float64), requires_grad=False))
    assert p64.dtype == descent.float64 and not p64.requires_grad


def test_nn_modules_reachable_as_attribute_and_base_classes_as_torch():
    # `nn.modules.batchnorm._BatchNorm` right after `import torch.nn as nn` (no import of
    # torch.nn.modules first): a fresh process, since other tests import descent.nn.modules
    import subprocess
    import sys

    code = (
        "import descent.nn as nn\n"
        "print(nn.modules.batchnorm._BatchNorm.__name__, hasattr(nn, 'no_such_thing'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == ["_BatchNorm", "False"]
    # the base classes code tests with isinstance, as torch's hierarchy
    for path, base, layers in [
        ("batchnorm", "_BatchNorm", ["BatchNorm1d", "BatchNorm2d", "SyncBatchNorm"]),
        ("batchnorm", "_NormBase", ["BatchNorm2d", "InstanceNorm1d", "InstanceNorm2d"]),
        ("dropout", "_DropoutNd", ["Dropout", "Dropout1d", "Dropout2d", "AlphaDropout"]),
        ("instancenorm", "_InstanceNorm", ["InstanceNorm2d"]),
        ("conv", "_ConvNd", ["Conv1d", "Conv2d"]),
        ("loss", "_Loss", ["MSELoss", "CrossEntropyLoss"]),
    ]:
        ours = getattr(getattr(nn.modules, path), base)
        theirs = getattr(getattr(torch.nn.modules, path), base)
        for layer in layers:
            assert issubclass(getattr(nn, layer), ours) == issubclass(
                getattr(torch.nn, layer), theirs
            ), (layer, base)
    assert not issubclass(nn.LayerNorm, nn.modules.batchnorm._NormBase)
    d = nn.Dropout(0.25)
    assert repr(d) == repr(torch.nn.Dropout(0.25)) and d.p == 0.25 and not d.inplace
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_old_checkpoint_without_num_batches_tracked_loads_as_torch():
    # BatchNorm / InstanceNorm(track_running_stats) state dicts saved before PyTorch 0.4.1 or
    # written by converters lack num_batches_tracked: torch fills it with the module's current
    # count (strict loading passes); a checkpoint whose _metadata says version 2 still misses it
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
    results = []
    for lib in (descent, torch):
        m = lib.nn.Sequential(lib.nn.Identity(), lib.nn.BatchNorm1d(3))
        m(lib.from_numpy(x))
        m(lib.from_numpy(x))  # the count is 2 now
        old = {k: v.clone() * 0.5 for k, v in m.state_dict().items() if "num_batches" not in k}
        res = m.load_state_dict(old)
        inorm = lib.nn.InstanceNorm1d(3, track_running_stats=True)
        res2 = inorm.load_state_dict({"running_mean": lib.zeros(3), "running_var": lib.ones(3)})
        plain = lib.nn.BatchNorm1d(3, track_running_stats=False)
        res3 = plain.load_state_dict({"weight": lib.ones(3), "bias": lib.zeros(3)})
        results.append(
            (
                list(res.missing_keys),
                list(res2.missing_keys),
                list(res3.missing_keys),
                int(m[1].num_batches_tracked),
                m[1].running_var.tolist(),
                int(inorm.num_batches_tracked),
                "1.num_batches_tracked" in old,  # the caller's dict is not changed
            )
        )
    assert results[0] == results[1]
    assert results[0][3] == 2 and results[0][0] == []
    # a state dict that records version 2 in its metadata: the key is really missing
    sd = OrderedDict((k, v) for k, v in nn.BatchNorm1d(3).state_dict().items() if "num" not in k)
    sd._metadata = {"": {"version": 2}}
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        nn.BatchNorm1d(3).load_state_dict(sd)
    tsd = OrderedDict(
        (k, v) for k, v in torch.nn.BatchNorm1d(3).state_dict().items() if "num" not in k
    )
    tsd._metadata = {"": {"version": 2}}
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        torch.nn.BatchNorm1d(3).load_state_dict(tsd)
