"""Tensor: creation, dtypes, attributes, conversion, repr, and seeded random numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import descent as ds


def test_tensor_from_data_and_default_dtypes():
    assert ds.tensor([1.0, 2.0]).dtype == ds.float32
    # PyTorch's rule (issue 12): an array keeps its dtype; the legacy Tensor() constructor and
    # Python floats give the default float32.
    assert ds.tensor(np.array([1.0, 2.0], np.float64)).dtype == ds.float64
    assert ds.Tensor(np.array([1.0, 2.0], np.float64)).dtype == ds.float32
    assert ds.tensor(2.5).shape == () and ds.tensor(2.5).dtype == ds.float32
    assert ds.tensor([1, 2]).dtype == ds.int64
    assert ds.tensor([True, False]).dtype == ds.bool
    assert ds.tensor([1, 2], dtype=ds.int32).dtype == ds.int32
    assert ds.tensor([1, 2], dtype=ds.float16).dtype == ds.float16
    assert ds.tensor([[1, 2], [3, 4]], dtype=ds.float64).dtype == ds.float64
    t = ds.tensor([1.0, 2.0])
    assert ds.tensor(t).dtype == ds.float32
    # complex data makes complex tensors (docs/complex.md): a complex128 array keeps its dtype
    assert ds.tensor(np.array([1j])).dtype == ds.complex128
    assert ds.tensor([1j]).dtype == ds.complex64


def test_dtype_names_are_exposed():
    for name in ("float16", "float32", "float64", "int32", "int64", "bool"):
        assert np.dtype(getattr(ds, name)) == np.dtype(name if name != "bool" else np.bool_)


def test_creation_functions():
    assert ds.zeros(2, 3).shape == (2, 3) and not ds.zeros(2, 3).numpy().any()
    assert ds.zeros((2, 3)).shape == (2, 3)
    assert ds.ones(4).numpy().sum() == 4 and ds.ones(4).dtype == ds.float32
    assert ds.full((2, 2), 7.0).numpy().tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert ds.full((2,), 3).dtype == ds.int64
    assert ds.arange(5).tolist() == [0, 1, 2, 3, 4] and ds.arange(5).dtype == ds.int64
    assert ds.arange(1, 2, 0.5).dtype == ds.float32
    np.testing.assert_allclose(ds.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(ds.eye(3).numpy(), np.eye(3))
    assert ds.eye(2, 3).shape == (2, 3)
    x = ds.randn(2, 3, dtype=ds.float64)
    for like, val in ((ds.zeros_like, 0), (ds.ones_like, 1)):
        y = like(x)
        assert y.shape == x.shape and y.dtype == ds.float64 and np.all(y.numpy() == val)
    assert ds.full_like(x, 2.0).numpy().max() == 2.0
    assert ds.empty(3, 2).shape == (3, 2)
    assert ds.rand_like(x).dtype == ds.float64 and ds.randn_like(x).shape == (2, 3)
    r = ds.rand(1000)
    assert 0 <= r.numpy().min() and r.numpy().max() < 1 and r.dtype == ds.float32
    i = ds.randint(0, 5, (100,))
    assert i.dtype == ds.int64 and set(i.tolist()) <= set(range(5))
    assert ds.zeros(2, requires_grad=True).requires_grad


def test_from_numpy_shares_memory_and_keeps_dtype():
    a = np.arange(3.0)
    t = ds.from_numpy(a)
    assert t.dtype == ds.float64
    a[0] = 42.0
    assert t.numpy()[0] == 42.0
    with pytest.raises(TypeError):
        ds.from_numpy([1, 2])


def test_attributes():
    x = ds.tensor(np.ones((2, 3, 4)), requires_grad=True)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.size() == (2, 3, 4) and x.numel() == 24
    assert x.dim() == 3 and len(x) == 2 and x.device == "cpu"
    assert x.is_leaf and x.requires_grad and x.grad is None
    y = x * 2
    assert not y.is_leaf and y.requires_grad and y.grad_fn is not None
    assert ds.ones(2, 3).T.shape == (3, 2)
    assert ds.ones(2, 3, 4).mT.shape == (2, 4, 3)


def test_conversions():
    x = ds.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert ds.tensor(3.5).item() == 3.5
    assert isinstance(ds.tensor(3.5).item(), float)
    assert ds.tensor([7]).item() == 7
    assert x.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert isinstance(x.numpy(), np.ndarray) and x.numpy().dtype == np.float32
    np.testing.assert_array_equal(np.asarray(x), x.numpy())
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert float(ds.tensor(2.0)) == 2.0 and int(ds.tensor(3)) == 3
    assert [t.tolist() for t in x] == [[1.5, 2.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match="one element"):
        x.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    assert bool(ds.tensor([1.0]))
    assert list(range(5))[ds.tensor(2)] == 2  # __index__


def test_detach_and_clone():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d._data is x._data
    c = x.clone()
    assert c.requires_grad and c._data is not x._data
    c.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="detach"):
        (x * 2).requires_grad = False


def test_astype_and_to():
    x = ds.tensor([1.5, 2.5])
    assert x.double().dtype == ds.float64 and x.half().dtype == ds.float16
    assert x.long().tolist() == [1, 2] and x.int().dtype == ds.int32
    assert x.to(ds.float64).dtype == ds.float64 and x.to("cpu") is x
    assert x.astype(ds.float64).dtype == ds.float64 and x.bool().dtype == ds.bool


def test_repr_shows_values_dtype_and_requires_grad():
    r = repr(ds.tensor([1.0, 2.5], requires_grad=True))
    assert r == "tensor([1.0000, 2.5000], requires_grad=True)"  # float32, the default: no dtype
    assert repr(ds.tensor([1, 2])) == "tensor([1, 2])"  # int64: no dtype, as in PyTorch
    assert repr(ds.tensor([1, 2], dtype=ds.int32)) == "tensor([1, 2], dtype=descent.int32)"
    r = repr(ds.tensor([1.0], requires_grad=True) * 2)
    assert "grad_fn=<MulBackward0>" in r
    assert "..." in repr(ds.zeros(1001))  # more than 1000 elements (PyTorch's threshold) summarised
    assert str(ds.tensor(3.0, dtype=ds.float64)) == "tensor(3., dtype=descent.float64)"


_REPR_CASES = [
    ("[1.0, 2.5]", None), ("[1, 2]", None), ("[1, 2]", "int32"), ("True", None),
    ("[[True, False]]", None), ("3.0", "float64"), ("[0.5, -1.0]", "float16"), ("[]", None),
    ("[[1, 2], [3, 4]]", "uint8"), ("7", None), ("[1e-8, 1e8]", None),
    ("[float('nan'), 1.0]", None),
]  # fmt: skip


@pytest.mark.parametrize("values,dtype", _REPR_CASES)
def test_repr_matches_torch_up_to_the_module_name(values, dtype):
    """PyTorch's layout: the dtype only when not the default float, int64 or bool."""
    torch = pytest.importorskip("torch")
    kw = {} if dtype is None else {"dtype": getattr(ds, dtype)}
    tkw = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    v = eval(values)
    ours, theirs = repr(ds.tensor(v, **kw)), repr(torch.tensor(v, **tkw))
    assert ours == theirs.replace("torch.", "descent.")


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 4)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_repr_of_empty_tensors_matches_torch(shape, dtype):
    torch = pytest.importorskip("torch")
    ours = repr(ds.zeros(shape, dtype=getattr(ds, dtype)))
    theirs = repr(torch.zeros(shape, dtype=getattr(torch, dtype)))
    assert ours == theirs.replace("torch.", "descent.")


def test_repr_follows_the_default_dtype():
    ds.set_default_dtype(ds.float64)
    try:
        assert repr(ds.tensor([1.0, 2.0])) == "tensor([1., 2.])"
        assert repr(ds.tensor([1.0], dtype=ds.float32)) == "tensor([1.], dtype=descent.float32)"
    finally:
        ds.set_default_dtype(ds.float32)


def test_manual_seed_makes_random_numbers_repeat():
    ds.manual_seed(123)
    a = (ds.randn(5), ds.rand(3), ds.randint(0, 10, (4,)), ds.randperm(6))
    ds.manual_seed(123)
    b = (ds.randn(5), ds.rand(3), ds.randint(0, 10, (4,)), ds.randperm(6))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
    ds.manual_seed(124)
    assert not np.array_equal(ds.randn(5).numpy(), a[0].numpy())


def test_generator_is_independent_and_its_state_round_trips_through_json():
    g1, g2 = ds.Generator(7), ds.Generator(7)
    ds.manual_seed(0)
    ds.randn(3)  # the default generator does not disturb g1/g2
    np.testing.assert_array_equal(ds.randn(4, generator=g1).numpy(),
                                  ds.randn(4, generator=g2).numpy())  # fmt: skip
    state = json.loads(json.dumps(g1.get_state().tolist()))  # a uint8 tensor, as torch's
    first = ds.rand(3, generator=g1).numpy()
    g1.set_state(ds.tensor(state, dtype=ds.uint8))
    np.testing.assert_array_equal(ds.rand(3, generator=g1).numpy(), first)
    assert g1.initial_seed() == 7
    assert isinstance(g1.numpy_rng, np.random.Generator)


def test_generator_seed_reseeds_from_entropy_as_torch():
    # torch.Generator().seed(): a fresh non-deterministic seed, returned and kept as initial_seed
    torch = pytest.importorskip("torch")
    assert isinstance(torch.Generator().seed(), int)
    g = ds.Generator(7)
    s = g.seed()
    assert isinstance(s, int) and s == g.initial_seed() and 0 <= s < 2**64
    first = ds.rand(4, generator=g).numpy()
    np.testing.assert_array_equal(ds.rand(4, generator=ds.Generator(s)).numpy(), first)
    assert ds.Generator().seed() != ds.Generator().seed()  # 2**-63 odds of a false failure


def test_random_dtypes_are_drawn_directly():
    assert ds.randn(3, dtype=ds.float64).dtype == ds.float64
    assert ds.randn(3, dtype=ds.float16).dtype == ds.float16
    assert ds.randn(3).dtype == ds.float32


def test_reductions_amax_values_max_dim_named_tuple():
    x = ds.tensor([[1.0, 5.0], [7.0, 2.0]])
    assert x.amax(1).tolist() == [5.0, 7.0]
    assert x.max(axis=0).values.tolist() == [7.0, 5.0]
    assert x.min(dim=1, keepdim=True).values.shape == (2, 1)
    assert x.sum(dim=0).tolist() == [8.0, 7.0]
    with pytest.raises(TypeError, match="either axis= or dim="):
        x.sum(0, dim=1)


def test_subpackages_load_on_attribute_access():
    import descent

    assert callable(descent.explain.gradcheck)
    assert descent.nn.Parameter is not None
    with pytest.raises(AttributeError, match="no attribute 'not_a_thing'"):
        descent.not_a_thing  # noqa: B018


def test_tensor_copies_its_input_but_from_numpy_shares():
    import numpy as np

    import descent as ds

    a = np.ones(3, dtype=np.float32)
    t = ds.tensor(a)
    a[0] = 5.0
    assert t.tolist() == [1.0, 1.0, 1.0]
    u = ds.tensor(t)
    t._data[1] = 7.0
    assert u.tolist() == [1.0, 1.0, 1.0]
    s = ds.from_numpy(a)
    a[2] = 9.0
    assert s.tolist() == [5.0, 1.0, 9.0]


def test_contiguous_makes_a_c_contiguous_copy_only_when_needed():
    x = ds.randn(3, 4, requires_grad=True)
    assert x.contiguous() is x
    y = x.t().contiguous()
    assert y.is_contiguous() and y._data.flags.c_contiguous
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((3, 4), np.float32))


def test_numpy_ufuncs_on_tensors_give_tensors_and_keep_gradients():
    torch = pytest.importorskip("torch")
    t = ds.tensor([1.0, 4.0], requires_grad=True)
    y = np.sqrt(t)
    assert isinstance(y, ds.Tensor) and y.requires_grad
    np.exp(t).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), np.exp([1.0, 4.0]), rtol=1e-6)
    assert isinstance(np.add(t, 1), ds.Tensor) and np.add(t, 1).tolist() == [2.0, 5.0]
    assert (np.ones(2) < t).tolist() == [False, True]  # reflected comparison
    r = np.ones(2, dtype=np.float32) + t
    assert isinstance(r, ds.Tensor) and r.requires_grad  # ndarray + Tensor is Tensor.__radd__
    frac, whole = np.modf(ds.tensor([1.5, -2.25]))
    assert frac.tolist() == [0.5, -0.25] and whole.tolist() == [1.0, -2.0]
    assert isinstance(np.hypot(ds.tensor([3.0]), 4.0), ds.Tensor)
    t2 = torch.tensor([1.0, 4.0])
    np.testing.assert_allclose(np.sqrt(t.detach()).numpy(), np.sqrt(t2).numpy())


def test_contains_and_dlpack_as_torch():
    torch = pytest.importorskip("torch")
    t = ds.tensor([[1.5, -2.0], [3.0, 4.0]])
    tt = torch.tensor([[1.5, -2.0], [3.0, 4.0]])
    for v in (3.0, 5, ds.tensor(4.0)):
        tv = torch.tensor(4.0) if isinstance(v, ds.Tensor) else v
        assert (v in t) == (tv in tt)
    with pytest.raises(RuntimeError, match="only supports Tensor or scalar"):
        _ = "a" in t
    with pytest.raises(RuntimeError, match="only supports Tensor or scalar"):
        _ = "a" in tt
    shared = np.arange(3.0)
    d = ds.from_dlpack(shared)
    shared[0] = 9.0
    assert d[0].item() == 9.0  # shares memory, as torch.from_dlpack
    assert ds.from_dlpack(torch.tensor([1.0, 2.0])).tolist() == [1.0, 2.0]
    assert torch.from_dlpack(ds.tensor([5.0])).tolist() == [5.0]
    assert np.from_dlpack(ds.tensor([6.0])).tolist() == [6.0]


def _augmented(lib):
    res = []
    x = lib.tensor([2.0, 3.0])
    v, y = x[1:], x
    x **= 2
    res.append((x.tolist(), v.tolist(), y is x))  # in place: the view sees it, identity kept
    for start, op, other in [([7, -7], "%=", 3), ([7, -7], "//=", 2), ([5, 3], "^=", 1),
                             ([1, 2], "<<=", 2), ([8, 4], ">>=", 1)]:  # fmt: skip
        t = lib.tensor(start)
        ns = {"t": t, "o": other}
        exec(f"t {op} o", ns)
        res.append((ns["t"].tolist(), ns["t"] is t))
    m = lib.tensor([True, False])
    m |= lib.tensor([False, True])
    n = lib.tensor([True, True])
    n &= lib.tensor([False, True])
    res += [m.tolist(), n.tolist(), reversed(lib.tensor([[1, 2], [3, 4]])).tolist()]
    p = lib.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError):
        p **= 2
    return res


def test_augmented_assignments_run_in_place_as_torch():
    torch = pytest.importorskip("torch")
    assert _augmented(ds) == _augmented(torch)


def test_comparison_with_none_is_a_python_bool_as_torch():
    """`if mask == None:` in PyTorch code: torch returns False / True, not a bool tensor (whose
    truth value would raise for more than one element)."""
    import torch

    for lib in (torch, ds):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]])
        assert (x == None) is False  # noqa: E711 - the comparison under test
        assert (x != None) is True  # noqa: E711
        assert x in [None, x] and None not in [x]
    assert (ds.tensor([1.0]) == ds.tensor([1.0])).dtype == ds.bool


def test_numpy_array_of_a_tensor_copies_as_torch():
    """np.array(t) copies (NumPy's copy=True), np.asarray(t) shares on the CPU, as with a
    PyTorch tensor; np.array(t) used to return t's own memory, so writing to the array
    changed the tensor. No NumPy 2 DeprecationWarning about the copy keyword either."""
    import warnings

    import torch

    for lib in (torch, ds):
        t = lib.ones(3)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning) if lib is ds else None
            a = np.array(t)
            a[0] = 5.0
            b = np.array(t, copy=True)
            b[1] = 6.0
            c = np.asarray(t)
            c[2] = 7.0
            d = np.array(t, dtype=np.float64)
        assert t.tolist() == [1.0, 1.0, 7.0]
        assert d.dtype == np.float64 and d.tolist() == [1.0, 1.0, 7.0]


def test_user_attributes_on_tensors_and_parameters_as_torch():
    """Programs tag tensors with their own attributes (Mamba's `A_log._no_weight_decay = True`,
    then an optimizer-group filter by getattr): a Tensor took none (__slots__ only)."""
    torch = pytest.importorskip("torch")
    import copy  # noqa: PLC0415
    import pickle  # noqa: PLC0415

    for lib in (ds, torch):
        x = lib.zeros(3)
        x.tag = "mine"
        p = lib.nn.Parameter(lib.ones(2))
        p._no_weight_decay = True
        m = lib.nn.Linear(2, 2)
        m.weight._no_reinit = True
        got = (
            x.tag,
            copy.deepcopy(x).tag,  # a Tensor's deepcopy and pickle keep them
            pickle.loads(pickle.dumps(x)).tag,
            getattr(p, "_no_weight_decay", False),
            hasattr(copy.deepcopy(p), "_no_weight_decay"),  # Parameter's deepcopy drops them
            hasattr(x * 2, "tag") or hasattr(x.detach(), "tag") or hasattr(x.clone(), "tag"),
            m.weight._no_reinit,
            [n for n, q in m.named_parameters() if getattr(q, "_no_reinit", False)],
        )
        if lib is ds:
            ours = got
    assert ours == got == ("mine", "mine", "mine", True, False, False, True, ["weight"])
    with pytest.raises(AttributeError):
        ds.zeros(1).not_set  # noqa: B018 - unknown attributes still raise
