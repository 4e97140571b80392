"""The engine's slice-gradient assembly for attention's heads (session 26, helper-191).

`autograd_backward._Slices.value` writes the pieces of a split whose gradients arrive as
transposed views (`_Reshaped`: nanoGPT's q, k, v heads) by a copy into place and one + 0.0
over the whole result, instead of a strided `piece + 0.0` per piece. These tests check the
bits against the definition (each piece zero-padded to the full shape, summed in delivery
order, as the engine's plain path and GetItem's backward do), with -0.0, NaN, inf and
subnormal values, whole and partial cover, in float16, float32 and float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from descent import autograd_backward as ab


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize])


def _values(shape, seed, dtype):
    """Random values with -0.0, NaN, inf and subnormals among them."""
    w = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = w.reshape(-1)
    flat[::7] = -0.0
    flat[3::29] = np.nan
    flat[5::31] = -np.inf
    flat[6::17] = np.finfo(dtype).smallest_subnormal * -3
    return w


B, T, NH, HS = 2, 3, 2, 4
C = NH * HS
SHAPE = (B, T, 3 * C)


def _pieces(dtype, used, plain):
    """(index, gradient) of the used thirds of SHAPE's last axis: each the transposed view of
    a (B, nh, T, hs) array as a head's view delivers it (`_Reshaped`), or with `plain` the
    first one a plain (B, T, C) array, as a piece read without a view."""
    out = []
    for i in used:
        idx = (slice(None), slice(None), slice(C * i, C * i + C))
        g = _values((B, NH, T, HS), 10 + i, dtype)
        if plain and i == used[0]:
            out.append((idx, np.ascontiguousarray(g.transpose(0, 2, 1, 3).reshape(B, T, C))))
        else:
            out.append((idx, ab._Reshaped(g.transpose(0, 2, 1, 3), (B, T, C))))
    return out


def _reference(pieces, dtype):
    """Each piece zero-padded to SHAPE, summed in delivery order (the engine's plain path)."""
    acc = None
    for idx, g in pieces:
        full = np.zeros(SHAPE, dtype)
        full[idx] = g.value() if type(g) is ab._Reshaped else g
        acc = full if acc is None else acc + full
    return acc


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("used", [(0, 1, 2), (2, 0, 1), (0, 2), (1,)])
@pytest.mark.parametrize("plain", [False, True])
def test_head_pieces_copied_then_plus_zero_are_the_sums_bits(dtype, used, plain):
    pieces = _pieces(dtype, used, plain)
    (idx0, g0), rest = pieces[0], pieces[1:]
    s = ab._Slices(SHAPE, idx0, ab._slice_span(idx0, SHAPE), g0)
    for idx, g in rest:
        s.add(idx, ab._slice_span(idx, SHAPE), g)
    got = s.value()
    want = _reference(pieces, dtype)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(_bits(got), _bits(want))
    if len(used) > 1:  # summed: -0.0 pieces read as +0.0 (one piece is not summed)
        assert not np.signbit(got[got == 0]).any()


# -- attention's backward: gv after the softmax backward (P read twice in a row) -------------


@pytest.mark.parametrize("dtype, causal", [(np.float32, True), (np.float64, False)])
def test_sdpa_backward_products_are_the_old_orders_bits(dtype, causal):
    """gv = P^T go now runs after the softmax backward; its value is the same product's, and
    gq, gk the same as in the old order (gv first), computed here from the saved P."""
    import descent
    import descent.nn.functional as F
    from descent.ops.nt_product import matmul_nt

    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((2, 2, 5, 4)).astype(dtype) for _ in range(3))
    go = _values((2, 2, 5, 4), 8, dtype)
    go[np.isnan(go) | np.isinf(go)] = 1.5  # finite: the products' bits, not NaN payloads
    tq, tk, tv = (descent.tensor(a, requires_grad=True) for a in (q, k, v))
    y = F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    probs = y._node.probs.copy()  # P, saved by the forward
    scale = y._node.scale
    y.backward(descent.tensor(go))
    gv = np.matmul(probs.swapaxes(-1, -2), go)  # the old order: gv first
    gp = matmul_nt(go, v)
    gp -= np.einsum("...ij,...ij->...i", gp, probs)[..., None]
    gp *= probs
    gp *= dtype(scale)
    if dtype == np.float32:  # the numba kernel's bits (descent's float32 CPU path)
        from descent import backend

        kern = backend.fused("softmax_backward", probs, gp)
        if kern is not None:
            gp = kern(probs, matmul_nt(go, v), scale=scale, out=None)
    np.testing.assert_array_equal(_bits(tv.grad.numpy()), _bits(gv))
    np.testing.assert_array_equal(_bits(tq.grad.numpy()), _bits(np.matmul(gp, k)))
    np.testing.assert_array_equal(_bits(tk.grad.numpy()), _bits(np.matmul(gp.swapaxes(-1, -2), q)))


def test_transpose_backward_inverse_permutation_is_argsorts():
    """Transpose.backward's inverse permutation (sorted() on the axes, was np.argsort)."""
    import itertools

    import descent

    for n in range(1, 5):
        gy = np.arange(2 * 3 * 4 * 5, dtype=np.float32)[: np.prod((2, 3, 4, 5)[:n])]
        gy = gy.reshape((2, 3, 4, 5)[:n])
        for axes in itertools.permutations(range(n)):
            x = descent.tensor(np.zeros(np.transpose(gy, np.argsort(axes)).shape, np.float32))
            x.requires_grad_(True)
            x.permute(*axes).backward(descent.tensor(gy))
            np.testing.assert_array_equal(x.grad.numpy(), np.transpose(gy, np.argsort(axes)))
