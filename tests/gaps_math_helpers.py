"""Helpers shared by tests/test_gaps_math.py and tests/test_gaps_math_inplace.py: the same
values in both libraries, and a check of shape, dtype name and values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds


def _both(arr, dtype=None, rg=False):
    """The same values as a descent and a torch tensor."""
    a = np.array(arr, dtype=dtype)
    return ds.tensor(a.copy(), requires_grad=rg), torch.tensor(a.copy(), requires_grad=rg)


def _name(dtype) -> str:
    """A dtype's bare name ('float32' for torch.float32, descent.float32, np.float32)."""
    return str(dtype).rpartition(".")[2]


def _check(got, want, rtol=None, atol=0.0):
    """Same shape, dtype and values (exact unless rtol is given; nan equal to nan)."""
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _check(g, w, rtol, atol)
        return
    assert tuple(got.shape) == tuple(want.shape), (got.shape, want.shape)
    assert _name(got.dtype) == _name(want.dtype), (got.dtype, want.dtype)
    g, w = got.detach().numpy(), want.detach().numpy()
    if rtol is None:
        np.testing.assert_array_equal(g, w)
    else:
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


def _raises_like(fd, ft):
    """descent raises the exception class torch raises."""
    with pytest.raises(Exception) as te:
        ft()
    with pytest.raises(type(te.value)):
        fd()
