"""ops/nt_product.py: a @ b^T through an NN product on a transposed copy of b only where that
gives the NT product's bits, and eager attention's use of it (the same values as before)."""

import numpy as np
import pytest

import descent
import descent.nn.functional as F
from descent.ops import nt_product

SHAPES = [  # (a's shape, b's shape)
    ((48, 64, 32), (48, 64, 32)),
    ((12, 4, 64, 32), (12, 4, 64, 32)),
    ((8, 64), (32, 64)),
    ((64, 8), (32, 8)),
    ((2, 3, 5, 7), (2, 3, 11, 7)),
    ((128, 784), (256, 784)),
    ((1, 1, 1, 1), (1, 1, 1, 1)),
    ((0, 4, 8), (0, 5, 8)),
    ((3, 0, 8), (3, 5, 8)),
    ((2, 4, 0), (2, 5, 0)),
]


def _bits(x):
    return np.asarray(x).view(np.uint8)


@pytest.mark.parametrize("sa, sb", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_nt_bits_of_nt_product(sa, sb, dtype):
    rng = np.random.default_rng(hash((sa, sb)) % 2**32)
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    want = a @ b.swapaxes(-1, -2)
    got = nt_product.matmul_nt(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(_bits(got), _bits(want))


def test_matmul_nt_views_and_out():
    rng = np.random.default_rng(0)
    qkv = rng.standard_normal((12, 64, 3 * 128)).astype(np.float32)
    heads = qkv.reshape(12, 64, 3, 4, 32).transpose(2, 0, 3, 1, 4)  # (3, B, nh, T, hs) views
    q, k = heads[0], heads[1]
    want = q @ k.swapaxes(-1, -2)
    out = np.empty_like(want)
    got = nt_product.matmul_nt(q, k, out=out)
    assert got is out and np.array_equal(_bits(got), _bits(want))
    # special values go through unchanged
    q2, k2 = q.copy(), k.copy()
    q2[0, 0, 0, :3] = [np.nan, np.inf, -0.0]
    k2[1, 2, 3, :2] = [-np.inf, 1e38]
    want = q2 @ k2.swapaxes(-1, -2)
    assert np.array_equal(_bits(nt_product.matmul_nt(q2, k2)), _bits(want))


def test_transposed_copy_runs_only_where_checked(monkeypatch):
    """With the check saying no, the NT product runs (no transposed copy is made)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 8, 16)).astype(np.float32)
    b = rng.standard_normal((4, 8, 16)).astype(np.float32)
    calls = []
    monkeypatch.setattr(nt_product, "transpose_last2", lambda *x: calls.append(1))
    monkeypatch.setattr(nt_product, "nn_same", lambda a, b: False)
    got = nt_product.matmul_nt(a, b)
    assert not calls and np.array_equal(_bits(got), _bits(a @ b.swapaxes(-1, -2)))


def test_transpose_last2():
    rng = np.random.default_rng(2)
    for shape in [(2, 3, 5, 7), (3, 5, 7), (5, 7), (1, 0, 4, 2)]:
        b = rng.standard_normal(shape).astype(np.float32)
        out = np.empty(shape[:-2] + (shape[-1], shape[-2]), np.float32)
        nt_product.transpose_last2(b, out)
        assert np.array_equal(out, b.swapaxes(-1, -2))
    b = rng.standard_normal((2, 7, 3, 5)).astype(np.float32).transpose(0, 2, 1, 3)  # strided
    out = np.empty((2, 3, 5, 7), np.float32)
    nt_product.transpose_last2(b, out)
    assert np.array_equal(out, b.swapaxes(-1, -2))


@pytest.mark.parametrize("causal", [False, True])
def test_eager_attention_same_bits_as_nt(monkeypatch, causal):
    """Eager attention's values and gradients are those of the plain NT products."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((12, 4, 64, 32)).astype(np.float32) for _ in range(3)]
    go = rng.standard_normal((12, 4, 64, 32)).astype(np.float32)

    def run():
        q, k, v = (descent.tensor(a, requires_grad=True) for a in arrays)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        y.backward(descent.tensor(go))
        return [y.detach().numpy()] + [t.grad.numpy() for t in (q, k, v)]

    got = run()
    from descent.ops import attention

    monkeypatch.setattr(attention, "matmul_nt", lambda a, b: a @ b.swapaxes(-1, -2))
    want = run()
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(_bits(g), _bits(w))
