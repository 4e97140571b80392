"""einsum broadcasts a labelled dimension of size 1 against the other operands' size, as
torch 2.13 does ('bij,bjk->bik' with b = 1 and 5 raised in descent); values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

CASES = [
    ("bij,bjk->bik", [(1, 3, 4), (5, 4, 6)]),
    ("ij,j->i", [(3, 1), (4,)]),
    ("i,i->", [(1,), (5,)]),
    ("bi,bi->b", [(1, 3), (4, 1)]),
    ("bij,bjk", [(2, 1, 4), (1, 4, 3)]),
    ("...ij,jk->...ik", [(2, 1, 3, 4), (4, 5)]),
]


@pytest.mark.parametrize("eq, shapes", CASES)
def test_size_one_dimensions_broadcast_as_torch(eq, shapes):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    d = [ds.tensor(x, requires_grad=True) for x in xs]
    t = [torch.tensor(x, requires_grad=True) for x in xs]
    rd, rt = ds.einsum(eq, *d), torch.einsum(eq, *t)
    assert tuple(rd.shape) == tuple(rt.shape)
    np.testing.assert_allclose(rd.detach().numpy(), rt.detach().numpy(), rtol=1e-5, atol=1e-6)
    w = rng.standard_normal(tuple(rt.shape)).astype(np.float32)
    (rd * ds.tensor(w)).sum().backward()
    (rt * torch.tensor(w)).sum().backward()
    for a, b in zip(d, t, strict=True):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_sizes_other_than_one_must_agree():
    for lib, exc in ((ds, Exception), (torch, RuntimeError)):
        with pytest.raises(exc):
            lib.einsum("bij,bjk->bik", lib.zeros(2, 3, 4), lib.zeros(5, 4, 6))
