"""Session 27's small PyTorch-fidelity leftovers (helper-203), each compared with torch 2.13
computed here: two Ellipsis in one index (PyTorch's applySlicing moves its cursor past the
dims the other entries leave at each one), complex cummax / cummin / sign (PyTorch's
NotImplementedError), vmap's out_dims=None on an output computed from the mapped inputs
(PyTorch's ValueError) and the node of `x[:] = x` (CopyBackwards)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _x(m, dtype="float32"):
    return m.arange(24, dtype=getattr(m, dtype)).reshape(2, 3, 4)


E = Ellipsis
FULL = slice(None)

# Indexes of a (2, 3, 4) tensor with two or more Ellipsis that PyTorch computes (NumPy and,
# before, descent raised "an index can only have a single ellipsis").
TWO_ELLIPSES = {
    "e0e": (E, 0, E),
    "ee": (E, E),
    "eee": (E, E, E),
    "0ee": (0, E, E),
    "e_neg1_e": (E, -1, E),
    "e_slice_e": (E, slice(1, 3), E),
    "e_step_e": (E, slice(None, None, 2), E),
    "e_full3_e": (E, FULL, FULL, FULL, E),
    "none_e_none_e": (None, E, None, E),
    "e_true_e": (E, True, E),
    "0e1e2_none": (0, E, 1, E, 2, None),  # (every Ellipsis names 0 dims)
    "0ee12": (0, E, E, 1, 2),
    "0ee_full": (0, E, E, FULL),  # (a full slice past the end: PyTorch returns x itself)
    "e0e_full": (E, 0, E, FULL),  # (so the 0 is in dim 1: the slice counts as a named dim)
    "e_list_e": (E, [0, 1], E),
    "e_list_ee": (E, [0, 1], E, E),
    "list_e_list_e": ([0, 1], E, [0, 1], E),
    "e_list_full_e": (E, [0, 1], FULL, E),
    "e_mask_e": (E, "mask4", E),
}

# PyTorch raises an IndexError for these (an entry after the second Ellipsis is past the end,
# or too many entries); so does descent
TWO_ELLIPSES_RAISE = {
    "ee0": (E, E, 0),
    "e1e2": (E, 1, E, 2),
    "ee_none": (E, E, None),
    "e0e_none": (E, 0, E, None),
    "ee_true": (E, E, True),
    "ee_list": (E, E, [0]),
    "ee_slice": (E, E, slice(1, None)),
    "e5e": (E, 5, E),
    "too_many": (0, 1, 2, 3, E, E),
    "e_mask3_e": (E, "mask3", E),  # (the mask lands on the last dim, of size 4)
}


def _index(m, idx):
    masks = {
        "mask4": m.tensor([True, False, True, True]),
        "mask3": m.tensor([True, False, True]),
    }
    return tuple(masks[i] if isinstance(i, str) else i for i in idx)


@pytest.mark.parametrize("name", sorted(TWO_ELLIPSES))
def test_two_ellipses_read_as_pytorch(name):
    idx = TWO_ELLIPSES[name]
    t = _x(torch)[_index(torch, idx)]
    d = _x(descent)[_index(descent, idx)]
    assert tuple(d.shape) == tuple(t.shape)
    assert [s for s, n in zip(d.stride(), d.shape) if n > 1] == [
        s for s, n in zip(t.stride(), t.shape) if n > 1
    ]
    np.testing.assert_array_equal(d.numpy(), t.numpy())
    # a view exactly where PyTorch's result is one (basic entries only): a write goes through
    xt, xd = _x(torch), _x(descent)
    xt[_index(torch, idx)].mul_(-1)
    xd[_index(descent, idx)].mul_(-1)
    np.testing.assert_array_equal(xd.numpy(), xt.numpy())


@pytest.mark.parametrize("name", sorted(TWO_ELLIPSES_RAISE))
def test_two_ellipses_past_the_end_raise_as_pytorch(name):
    idx = TWO_ELLIPSES_RAISE[name]
    with pytest.raises(IndexError):
        _x(torch)[_index(torch, idx)]
    with pytest.raises(IndexError, match="Ellipsis|too many|mask|out of bounds"):
        _x(descent)[_index(descent, idx)]
    with pytest.raises(IndexError):
        _x(torch)[_index(torch, idx)] = 1.0
    with pytest.raises(IndexError):
        _x(descent)[_index(descent, idx)] = 1.0


@pytest.mark.parametrize("name", ["e0e", "ee", "e_list_e", "list_e_list_e", "e_mask_e", "0ee_full"])
def test_two_ellipses_gradients_float32_vs_torch(name):
    idx = TWO_ELLIPSES[name]
    grads, names = [], []
    for m in (torch, descent):
        x = (_x(m) / 7).requires_grad_()
        y = x[_index(m, idx)]
        names.append(y.grad_fn.name())
        w = m.arange(y.numel(), dtype=m.float32).reshape(y.shape) + 1
        (y * w).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)
    assert names[1] == names[0]


@pytest.mark.parametrize("name", ["e0e", "e_list_ee", "e0e_full"])
def test_two_ellipses_gradients_float64_finite_differences(name):
    idx = _index(descent, TWO_ELLIPSES[name])
    x0 = np.sin(np.arange(24.0)).reshape(2, 3, 4)

    def f(a):
        y = a[idx]
        return (
            y * y * (descent.arange(y.numel(), dtype=descent.float64).reshape(y.shape) + 1)
        ).sum()

    leaf = descent.tensor(x0, requires_grad=True)
    f(leaf).backward()
    num = np.zeros_like(x0)
    h = 1e-6
    for i in np.ndindex(x0.shape):
        up, down = x0.copy(), x0.copy()
        up[i] += h
        down[i] -= h
        num[i] = (f(descent.tensor(up)).item() - f(descent.tensor(down)).item()) / (2 * h)
    np.testing.assert_allclose(leaf.grad.numpy(), num, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["e0e", "ee", "e_slice_e", "e_list_e", "list_e_list_e", "0ee_full"]
)
def test_two_ellipses_setitem_as_pytorch(name):
    idx = TWO_ELLIPSES[name]
    out = []
    for m in (torch, descent):
        x = _x(m)
        x[_index(m, idx)] = -1.0
        v = _x(m) * 0 + 5.0
        x[_index(m, idx)] = v[_index(m, idx)] * 2
        out.append(x.numpy())
    np.testing.assert_array_equal(out[1], out[0])
    # with a graph: values, the node's name and the gradients of x and of the value
    res = []
    for m in (torch, descent):
        a = (_x(m) / 5).requires_grad_()
        b = m.ones(2, 3, 4).requires_grad_()
        x = a * 2
        x[_index(m, idx)] = (b * 3)[_index(m, idx)]
        (x * (m.arange(24.0).reshape(2, 3, 4) + 1)).sum().backward()
        res.append((x.detach().numpy(), x.grad_fn.name(), a.grad.numpy(), b.grad.numpy()))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-6)
    if name not in ("e_list_e", "list_e_list_e"):  # (an advanced index: PyTorch's node is
        assert res[1][1] == res[0][1]  # IndexPutBackward0, descent's CopySlices, as for one '...')
    np.testing.assert_allclose(res[1][2], res[0][2], rtol=1e-6)
    np.testing.assert_allclose(res[1][3], res[0][3], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# complex cummax / cummin / sign: PyTorch's NotImplementedError (descent's DtypeError is one;
# it is also the TypeError descent raised before). Controls: they passed before this session's
# work too; 0-d and empty complex tensors compute in both.


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("op", ["cummax", "cummin", "sign", "sign_", "Tensor.cummax"])
def test_complex_cummax_cummin_sign_raise_not_implemented(op, dtype):
    for m in (torch, descent):
        z = m.ones(3, 2, dtype=getattr(m, dtype))
        fn = {
            "cummax": lambda z, m=m: m.cummax(z, 0),
            "cummin": lambda z, m=m: m.cummin(z, dim=1),
            "sign": lambda z, m=m: m.sign(z),
            "sign_": lambda z: z.sign_(),
            "Tensor.cummax": lambda z: z.cummax(0),
        }[op]
        with pytest.raises(NotImplementedError) as info:
            fn(z)
        if m is descent:  # descent's message names the op, the dtype and the way out
            assert op.split(".")[-1].rstrip("_") in str(info.value)
            assert dtype in str(info.value)
            assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("shape", [(), (0,), (2, 0)])
def test_complex_cummax_of_empty_or_0d_computes_as_pytorch(shape):
    for m in (torch, descent):
        r = m.cummax(m.ones(shape, dtype=m.complex64), 0)
        assert tuple(r.values.shape) == shape
        assert str(r.indices.dtype).endswith("int64")


# ---------------------------------------------------------------------------------------------
# vmap: an output with out_dim None computed from the mapped inputs is PyTorch's ValueError
# ("can not return a BatchedTensor when out_dim is None"), also when every slice gives the same
# value (descent's loop compared the values only)

VMAP_BATCHED = {
    "sum": lambda m: lambda x: (x, x.sum()),
    "sum_times_0": lambda m: lambda x: (x, x.sum() * 0),
    "detached": lambda m: lambda x: (x, x.detach().sum()),
    "the_slice": lambda m: lambda x: (x * 2, x),
    "cummax_indices": lambda m: lambda x: (x, m.cummax(x, 0).indices),
    "dict": lambda m: lambda x: {"a": x, "b": x.mean()},
}


@pytest.mark.parametrize("name", sorted(VMAP_BATCHED))
def test_vmap_out_dims_none_on_a_batched_output_raises(name):
    out_dims = {"a": 0, "b": None} if name == "dict" else (0, None)
    with pytest.raises(ValueError, match="BatchedTensor"):
        torch.func.vmap(VMAP_BATCHED[name](torch), out_dims=out_dims)(torch.ones(2, 3))
    with pytest.raises(ValueError, match="BatchedTensor.*computed from the mapped inputs"):
        descent.func.vmap(VMAP_BATCHED[name](descent), out_dims=out_dims)(descent.ones(2, 3))


def test_vmap_out_dims_none_single_output_raises():
    with pytest.raises(ValueError, match="BatchedTensor"):
        torch.func.vmap(lambda x: x.sum(), out_dims=None)(torch.ones(2, 3))
    with pytest.raises(ValueError, match="the output is computed"):
        descent.func.vmap(lambda x: x.sum(), out_dims=None)(descent.ones(2, 3))


def test_vmap_out_dims_none_unbatched_outputs_still_work():
    """Controls: outputs from unmapped inputs or new tensors pass through, as in PyTorch, and the
    op hook is gone afterwards."""
    from descent.hooks import _forward_hooks

    before = len(_forward_hooks)
    for m in (torch, descent):
        w = m.arange(3.0)
        f = m.func.vmap(
            lambda x, w, m=m: (x @ w, w * 2, m.ones(2)), in_dims=(0, None), out_dims=(0, None, None)
        )
        a, b, c = f(m.ones(4, 3), w)
        np.testing.assert_array_equal(a.numpy(), np.full(4, 3.0))
        np.testing.assert_array_equal(b.numpy(), [0.0, 2.0, 4.0])
        np.testing.assert_array_equal(c.numpy(), [1.0, 1.0])
    assert len(_forward_hooks) == before
    # nested: the inner output with out_dim None reads a tensor mapped at neither level
    res = []
    for m in (torch, descent):
        w = m.arange(2.0) + 1
        inner = m.func.vmap(lambda a, w: (a * w, w * 2), in_dims=(0, None), out_dims=(0, None))
        outer = m.func.vmap(lambda x, f=inner, w=w: f(x, w)[0] + f(x, w)[1])
        res.append(outer(m.arange(12.0).reshape(3, 2, 2)).numpy())
    np.testing.assert_array_equal(res[1], res[0])
    assert len(_forward_hooks) == before


def test_vmap_hook_removed_when_func_raises():
    from descent.hooks import _forward_hooks

    before = len(_forward_hooks)

    def f(x):
        raise KeyError("boom")

    with pytest.raises(KeyError):
        descent.func.vmap(f, out_dims=None)(descent.ones(2, 3))
    assert len(_forward_hooks) == before


# ---------------------------------------------------------------------------------------------
# x[:] = x on a graph tensor: PyTorch's setitem slices nothing off (x itself) and copies x into
# itself, a node named CopyBackwards (descent's copy_ recorded AddBackward0); its repr prints
# the class name, as PyTorch's (`<CopySlices object at ...>`, not the "torch::autograd::" name)


@pytest.mark.parametrize("idx", [FULL, E, (FULL,), slice(0, None), (E, E)], ids=str)
def test_setitem_of_itself_is_copybackwards(idx):
    res = []
    for m in (torch, descent):
        a = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = a * 2
        b[idx] = b
        (b * m.tensor([1.0, 10.0, 100.0])).sum().backward()
        res.append((b.grad_fn.name(), repr(b.grad_fn).split(" object")[0], a.grad.numpy()))
    assert res[1][0] == res[0][0] == "torch::autograd::CopyBackwards"
    assert res[1][1] == res[0][1] == "<CopyBackwards"
    np.testing.assert_array_equal(res[1][2], res[0][2])


def test_setitem_node_reprs_are_class_names():
    for m in (torch, descent):
        a = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
        c = a * 2
        c[0] = a[1]
        assert repr(c.grad_fn).startswith("<CopySlices object at 0x")
        assert c.grad_fn.name() == "torch::autograd::CopySlices"


def test_two_ellipses_with_a_mask_under_compile_match_eager():
    """descent.compile: a write and a read through `[..., mask, ...]` (the mask's positions
    change between calls) give eager's values (NumPy cannot replay two Ellipsis: eager runs)."""

    def f(x, m):
        y = x * 1
        y[..., m, ...] = 0.0
        return (y[..., m, ...] + y[..., 0, ...].sum()).sum() + y.sum()

    g = descent.compile(f)
    rng = np.random.default_rng(0)
    x = descent.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32))
    for _ in range(5):
        m = rng.random(4) > 0.5
        want = f(x, descent.tensor(m)).item()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = g(x, descent.tensor(m)).item()
        assert got == want
        xt = torch.tensor(x.numpy())
        yt = xt * 1
        yt[..., torch.tensor(m), ...] = 0.0
        ref = (yt[..., torch.tensor(m), ...] + yt[..., 0, ...].sum()).sum() + yt.sum()
        assert abs(ref.item() - want) <= 1e-5 * max(1.0, abs(want))
