"""Fixes found by session 31's compat programs (helper-236, tests/compat/programs)."""

from __future__ import annotations

import warnings

import pytest

import descent as ds

torch = pytest.importorskip("torch")

MSG = ".grad attribute of a Tensor that is not a leaf Tensor is being accessed"


def _grad_warnings(lib, make):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        t = make(lib)
        _ = t.grad
    return [str(x.message) for x in w if MSG in str(x.message)], [x.category for x in w]


def _nonleaf(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    h.sum().backward()
    return h


def _retained(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    h.retain_grad()
    return h  # .grad None before any backward: retains_grad, so no warning


def _leaf(lib):
    return lib.tensor([1.0, 2.0], requires_grad=True)


def _plain(lib):
    return lib.tensor([1.0, 2.0])


def _nograd_result(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    with lib.no_grad():
        return x * 2


@pytest.mark.parametrize("make", [_nonleaf, _retained, _leaf, _plain, _nograd_result])
def test_non_leaf_grad_access_warns_as_pytorch(make):
    """Reading .grad of a non-leaf that does not retain its gradient warns (PyTorch's
    UserWarning, autograd_gotchas_forum): it is None, and the user meant the leaf."""
    ours, our_cats = _grad_warnings(ds, make)
    theirs, their_cats = _grad_warnings(torch, make)
    assert len(ours) == len(theirs)
    if theirs:
        assert our_cats == their_cats == [UserWarning]
        assert "retain_grad()" in ours[0]


def test_non_leaf_grad_warning_points_at_the_caller():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _ = _nonleaf(ds).grad
    assert w and w[0].filename == __file__


def test_optimizer_loops_read_leaf_grads_without_warnings():
    lin = ds.nn.Linear(3, 2)
    opt = ds.optim.Adam(lin.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lin(ds.ones(4, 3)).sum().backward()
        ds.nn.utils.clip_grad_norm_(lin.parameters(), 1.0)
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("default", ["float32", "float64"])
@pytest.mark.parametrize("src", ["float64", "int64", "float16", "bool"])
def test_type_of_the_tensor_class_is_the_default_dtype(src, default):
    """`x.type(torch.Tensor)` (the stock-price LSTM notebooks' torch.from_numpy(x).type(
    torch.Tensor)) casts to the default dtype, as PyTorch's default tensor type; descent
    took the class for a dtype and made an object array."""
    import numpy as np

    arr = np.arange(6).reshape(2, 3).astype(src)
    out = {}
    for lib in (ds, torch):
        prev = lib.get_default_dtype()
        lib.set_default_dtype(getattr(lib, default))
        try:
            y = lib.from_numpy(arr).type(lib.Tensor)
        finally:
            lib.set_default_dtype(prev)
        out[lib.__name__] = (str(y.dtype).split(".")[-1], y.tolist())
    assert out["descent"] == out["torch"]
