"""Ops at the edges, second sweep: the disagreements with PyTorch found by running a peer
project's op suite against descent (docs/pytorch.md, "Peer op suite"). Each test compares
values, gradients, dtypes or the exception type with PyTorch 2.x."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

# ---------------------------------------------------------------------------------------- roll


@pytest.mark.parametrize(
    "shifts,dims",
    [
        (1, None),
        ((1,), None),
        (-3, 0),
        ((2, 1), (0, 1)),
        ([2, -3], [0, 2]),
        ((1, 1), (1, 1)),
        (5, -1),
    ],
)
def test_roll_matches_torch_values_and_gradients(shifts, dims):
    a = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    x = ds.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    y = x.roll(shifts, dims) if dims is not None else x.roll(shifts)
    ty = t.roll(shifts, dims) if dims is not None else t.roll(shifts)
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    w = np.arange(a.size, dtype=np.float32).reshape(a.shape)
    (y * ds.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_roll_gradient_float64_finite_differences():
    x = ds.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    assert ds.autograd.gradcheck(lambda v: v.roll((1, -2), (0, 1)) * v, (x,))


@pytest.mark.parametrize(
    "shifts,dims",
    [((1, 2), None), (1, (0, 1)), ((1, 2), 0), ((), ()), ([1, 2, 3], [0, 1])],
)
def test_roll_refuses_unaligned_shifts_and_dims_as_torch(shifts, dims):
    # NumPy broadcasts a scalar shift over the axes or adds several shifts on one axis; PyTorch
    # refuses both, and so must descent (it returned a rolled tensor before).
    t = torch.zeros(2, 4)
    x = ds.zeros(2, 4)
    with pytest.raises(RuntimeError):
        t.roll(shifts, dims) if dims is not None else t.roll(shifts)
    with pytest.raises(RuntimeError, match="roll"):
        x.roll(shifts, dims) if dims is not None else x.roll(shifts)
    with pytest.raises(RuntimeError, match="roll"):
        ds.roll(x, shifts, dims)


def test_roll_of_empty_and_0d_as_torch():
    for shape in [(0, 3), ()]:
        t = torch.zeros(shape)
        x = ds.zeros(shape)
        assert tuple(x.roll(1).shape) == tuple(t.roll(1).shape)


# ------------------------------------------------------------------------------- scatter dtypes


def _scatter_calls(lib):
    idx = lib.tensor([[0, 2, 1, 0], [1, 1, 0, 2], [2, 0, 0, 1]])
    return {
        "scatter": lambda x, s: x.scatter(1, idx, s),
        "scatter_": lambda x, s: x.clone().scatter_(1, idx, s),
        "torch.scatter": lambda x, s: lib.scatter(x, 1, idx, s),
        "scatter_add": lambda x, s: x.scatter_add(1, idx, s),
        "scatter reduce=add": lambda x, s: x.scatter(1, idx, s, reduce="add"),
        "scatter_reduce": lambda x, s: x.scatter_reduce(1, idx, s, "amax"),
    }


@pytest.mark.filterwarnings("ignore:The reduce argument")
@pytest.mark.parametrize("name", list(_scatter_calls(torch)))
@pytest.mark.parametrize(
    "xdt,sdt", [("float16", "float32"), ("float32", "float64"), ("float32", "int64")]
)
def test_scatter_family_refuses_a_src_of_another_dtype_as_torch(name, xdt, sdt):
    # descent converted src to x's dtype silently; PyTorch refuses the mix (RuntimeError).
    a = np.arange(15, dtype=np.float32).reshape(3, 5)
    with pytest.raises(RuntimeError, match="dtype"):
        _scatter_calls(torch)[name](
            torch.tensor(a, dtype=getattr(torch, xdt)), torch.ones(3, 4, dtype=getattr(torch, sdt))
        )
    with pytest.raises(RuntimeError, match="src.dtype"):
        _scatter_calls(ds)[name](
            ds.tensor(a, dtype=getattr(ds, xdt)), ds.ones(3, 4, dtype=getattr(ds, sdt))
        )


@pytest.mark.filterwarnings("ignore:The reduce argument")
@pytest.mark.parametrize("name", list(_scatter_calls(torch)))
@pytest.mark.parametrize("dt", ["float32", "float16", "int64"])
def test_scatter_family_same_dtype_matches_torch(name, dt):
    a = np.arange(15).reshape(3, 5)
    s = np.arange(12).reshape(3, 4) * 3 - 7
    t = _scatter_calls(torch)[name](
        torch.tensor(a, dtype=getattr(torch, dt)), torch.tensor(s, dtype=getattr(torch, dt))
    )
    y = _scatter_calls(ds)[name](
        ds.tensor(a, dtype=getattr(ds, dt)), ds.tensor(s, dtype=getattr(ds, dt))
    )
    assert str(y.dtype) == str(t.dtype).replace("torch", "descent")
    np.testing.assert_array_equal(y.numpy(), t.numpy())


def test_scatter_numbers_still_take_the_tensor_dtype():
    idx = [[0, 2], [1, 0]]
    for dt in ("int32", "float16"):
        t = torch.zeros(2, 3, dtype=getattr(torch, dt)).scatter(1, torch.tensor(idx), 2.5)
        y = ds.zeros(2, 3, dtype=getattr(ds, dt)).scatter(1, ds.tensor(idx), 2.5)
        assert str(y.dtype) == str(t.dtype).replace("torch", "descent")
        np.testing.assert_array_equal(y.numpy(), t.numpy())


def test_scatter_gradients_match_torch():
    rng = np.random.default_rng(2)
    a, s = (
        rng.standard_normal((3, 5)).astype(np.float32),
        rng.standard_normal((3, 4)).astype(np.float32),
    )
    idx = [[0, 2, 1, 4], [3, 1, 0, 2], [2, 4, 3, 1]]
    x, xs = ds.tensor(a, requires_grad=True), ds.tensor(s, requires_grad=True)
    t, ts = torch.tensor(a, requires_grad=True), torch.tensor(s, requires_grad=True)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    (x.scatter(1, ds.tensor(idx), xs) * ds.tensor(w)).sum().backward()
    (t.scatter(1, torch.tensor(idx), ts) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(xs.grad.numpy(), ts.grad.numpy(), rtol=1e-6)


def test_scatter_refuses_an_index_larger_than_self_as_torch():
    # NumPy failed with an unrelated IndexError ('index 2 is out of bounds for axis 0').
    idx = np.zeros((3, 4, 5), dtype=np.int64)
    with pytest.raises(RuntimeError):
        torch.ones(2, 3, 10).scatter(1, torch.tensor(idx), torch.ones(10, 10, 10))
    with pytest.raises(RuntimeError, match="smaller than self"):
        ds.ones(2, 3, 10).scatter(1, ds.tensor(idx), ds.ones(10, 10, 10))


# ------------------------------------------------------------------------ integer max_pool2d

_POOLS = [
    dict(kernel_size=2),
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=2, dilation=2, stride=1),
    dict(kernel_size=(3, 3), stride=1, return_indices=True),
    dict(kernel_size=(3, 3), padding=1, stride=2, return_indices=True, ceil_mode=True),
]


@pytest.mark.parametrize("kw", _POOLS)
@pytest.mark.parametrize("dt", ["int32", "int64", "uint8", "int8"])
def test_max_pool2d_on_integers_matches_torch(kw, dt):
    # descent refused integer input ("expected a floating tensor"); PyTorch pools it, padding
    # with the dtype's minimum so that a padded cell never wins.
    a = np.random.default_rng(3).integers(-120, 120, (2, 3, 7, 8))
    if dt == "uint8":
        a = np.abs(a)
    a[0, 0, 0, :] = np.iinfo(getattr(np, dt)).min  # ties with the padding value
    t = torch.nn.functional.max_pool2d(torch.tensor(a, dtype=getattr(torch, dt)), **kw)
    y = ds.nn.functional.max_pool2d(ds.tensor(a, dtype=getattr(ds, dt)), **kw)
    if kw.get("return_indices"):
        (t, ti), (y, yi) = t, y
        np.testing.assert_array_equal(yi.numpy(), ti.numpy())
    assert str(y.dtype) == str(t.dtype).replace("torch", "descent")
    np.testing.assert_array_equal(y.numpy(), t.numpy())


def test_max_pool2d_integer_module_and_unbatched():
    a = np.arange(2 * 4 * 4).reshape(2, 4, 4) % 7
    t = torch.nn.MaxPool2d(2, padding=1)(torch.tensor(a))
    y = ds.nn.MaxPool2d(2, padding=1)(ds.tensor(a))
    assert str(y.dtype) == "descent.int64"
    np.testing.assert_array_equal(y.numpy(), t.numpy())


def test_max_pool2d_float_gradient_unchanged_and_bool_refused():
    a = np.random.default_rng(4).standard_normal((1, 2, 5, 5)).astype(np.float32)
    x, t = ds.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    ds.nn.functional.max_pool2d(x, 3, stride=2, padding=1).sum().backward()
    torch.nn.functional.max_pool2d(t, 3, stride=2, padding=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    with pytest.raises((TypeError, RuntimeError)):
        ds.nn.functional.max_pool2d(ds.ones(1, 1, 4, 4, dtype=ds.bool), 2)


# ------------------------------------------------------------------ PyTorch's exception types

# Each call is refused by both libraries; descent raised a plain ValueError (or NumPy's own
# error, or nothing) where PyTorch raises the type named here. descent's errors now derive from
# PyTorch's type and still from ValueError (code written against older descent keeps working).
_REFUSED = {
    "flip repeated dims": (lambda m: m.zeros(3, 4).flip((1, -1)), RuntimeError),
    "div rounding_mode typo": (
        lambda m: m.ones(3).div(m.ones(3), rounding_mode="typo"),
        RuntimeError,
    ),
    "gather index rank": (lambda m: m.ones(4, 5).gather(0, m.tensor([1])), RuntimeError),
    "cross_entropy target shape": (
        lambda m: m.nn.functional.cross_entropy(m.ones(4, 10), m.ones(4, 1)),
        RuntimeError,
    ),
    "pad unknown mode": (
        lambda m: m.nn.functional.pad(m.ones(1, 3, 3), (1, 0), mode="typo"),
        NotImplementedError,
    ),
    "sdpa causal and mask": (
        lambda m: m.nn.functional.scaled_dot_product_attention(
            m.ones(1, 2, 3, 4),
            m.ones(1, 2, 3, 4),
            m.ones(1, 2, 3, 4),
            m.ones(1, 2, 3, 3, requires_grad=True),  # torch refuses on its autograd path
            is_causal=True,
        ),
        RuntimeError,
    ),
    "scatter_reduce unknown reduce": (
        lambda m: m.ones(3).scatter_reduce(0, m.tensor([0, 1]), m.ones(2), "INVALID"),
        RuntimeError,
    ),
    "meshgrid indexing": (lambda m: m.meshgrid(m.ones(3), indexing="bad"), RuntimeError),
    "empty negative": (lambda m: m.empty(-3, 2), RuntimeError),
    "zeros negative": (lambda m: m.zeros((2, -3)), RuntimeError),
    "ones negative": (lambda m: m.ones(2, -3, 0), RuntimeError),
    "rand negative": (lambda m: m.rand(-1), RuntimeError),
    "randn negative": (lambda m: m.randn(2, -1), RuntimeError),
    "full negative": (lambda m: m.full((-3,), 2.0), RuntimeError),
    "eye negative n": (lambda m: m.eye(-3, 3), RuntimeError),
    "eye negative m": (lambda m: m.eye(3, -3), RuntimeError),
    "expand shrinks a dim": (lambda m: m.ones(4, 3, 1, 6).expand(4, 1, 1, 6), RuntimeError),
    "avg_pool2d padding of 3": (
        lambda m: m.nn.functional.avg_pool2d(m.ones(1, 1, 6, 6), 2, padding=(1, 1, 1)),
        RuntimeError,
    ),
    "linspace negative steps": (lambda m: m.linspace(1, 2, -1), RuntimeError),
    "linspace bool": (lambda m: m.linspace(5, 10, 3, dtype=m.bool), RuntimeError),
    "arange bool": (lambda m: m.arange(3, dtype=m.bool), RuntimeError),
}


@pytest.mark.parametrize("name", list(_REFUSED))
def test_refused_calls_raise_torch_exception_types(name):
    call, exc = _REFUSED[name]
    with pytest.raises(exc):
        call(torch)
    with pytest.raises(exc) as info:
        call(ds)
    if "bool" not in name:  # the bool ranges were accepted before: no older contract
        assert isinstance(info.value, ValueError), "descent's earlier ValueError contract"


def test_the_accepted_neighbours_still_work():
    # The checks above must not refuse what PyTorch accepts.
    assert tuple(ds.zeros(0, 3).shape) == (0, 3)
    assert tuple(ds.full((0,), 1.0).shape) == (0,)
    assert tuple(ds.eye(0).shape) == (0, 0)
    assert tuple(ds.ones(3, 1).expand(2, 3, 4).shape) == (2, 3, 4)
    assert tuple(ds.ones(3, 1).expand(-1, 0).shape) == (3, 0)
    assert tuple(ds.ones(2, 3).flip((0, 1)).shape) == (2, 3)
    np.testing.assert_array_equal(
        ds.linspace(5, -5, 20, dtype=ds.int32).numpy(),
        torch.linspace(5, -5, 20, dtype=torch.int32).numpy(),
    )
    assert ds.linspace(0, 1, 0).shape == (0,)
    assert str(ds.arange(3, dtype=ds.int32).dtype) == "descent.int32"
    for m in ("constant", "reflect", "replicate", "circular"):
        t = torch.nn.functional.pad(torch.arange(9.0).reshape(1, 3, 3), (1, 2), mode=m)
        y = ds.nn.functional.pad(ds.arange(9.0).reshape(1, 3, 3), (1, 2), mode=m)
        np.testing.assert_array_equal(y.numpy(), t.numpy())
