"""descent.compile's replay of the GPT step, session 16: attention's NT products (q k^T forward,
go v^T backward) run as NN products on a transposed copy of k or v (`compiler/replay_kernels.
matmul_nt`) where a check on the shape says the NN product gives the NT product's bits. Each
is compared with eager bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from descent.ops import nt_product

pytest.importorskip("numba")

from test_compile_gpt_s14 import _assert_bitwise, _gpt_train  # noqa: E402


def _bits(a):
    return np.ascontiguousarray(a).view(np.int32)


@pytest.mark.parametrize("shape", [(2, 3, 16, 8), (12, 4, 64, 32), (1, 2, 7, 5), (3, 1, 33, 17)])
def test_matmul_nt_gives_the_nt_products_bits(shape):
    """a @ b^T from the pooled transposed copy: NumPy's NT product's bits, on the head-split
    layout (views of a (B, T, 3C) array) and on contiguous operands."""
    from descent.compiler import replay_kernels as rk
    from descent.compiler.program import Pool

    B, H, T, D = shape
    rng = np.random.default_rng(sum(shape))
    qkv = rng.standard_normal((B, T, 3 * H * D)).astype(np.float32)
    q, k = (qkv[..., i * H * D:(i + 1) * H * D].reshape(B, T, H, D).transpose(0, 2, 1, 3)
            for i in range(2))  # fmt: skip
    pool = Pool()
    for a, b in ((q, k), (np.ascontiguousarray(q), np.ascontiguousarray(k))):
        got = rk.matmul_nt(a, b, pool)
        np.testing.assert_array_equal(_bits(got), _bits(a @ b.swapaxes(-1, -2)))
    assert (q.shape, k.shape, np.dtype(np.float32)) in nt_product._NN_SAME
    # 3-D operands take NumPy's copy instead of the 4-D kernel
    a3, b3 = q.reshape(-1, T, D), np.ascontiguousarray(k).reshape(-1, T, D)
    np.testing.assert_array_equal(_bits(rk.matmul_nt(a3, b3, pool)),
                                  _bits(a3 @ b3.swapaxes(-1, -2)))  # fmt: skip


def test_matmul_nt_keeps_the_nt_product_where_the_bits_differ(monkeypatch):
    """A shape whose check failed runs NumPy's NT product (no transposed copy)."""
    from descent.compiler import replay_kernels as rk
    from descent.compiler.program import Pool

    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 9, 6)).astype(np.float32)
    b = rng.standard_normal((2, 11, 6)).astype(np.float32)
    monkeypatch.setitem(nt_product._NN_SAME, (a.shape, b.shape, a.dtype), False)
    calls = []
    monkeypatch.setattr(nt_product, "transpose_last2", lambda *x: calls.append(1))
    got = rk.matmul_nt(a, b, Pool())
    np.testing.assert_array_equal(_bits(got), _bits(a @ b.swapaxes(-1, -2)))
    a4, b4 = a[None], b[None]
    monkeypatch.setitem(nt_product._NN_SAME, (a4.shape, b4.shape, a.dtype), False)
    got = rk.matmul_nt(a4, b4, Pool())
    np.testing.assert_array_equal(_bits(got), _bits(a4 @ b4.swapaxes(-1, -2)))
    assert not calls


def test_transpose_kernel_on_strided_views():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 2, 7, 4)).astype(np.float32)
    for src in (x[:, 1], x[:, :, 1], x[0, ..., ::2, :], x.swapaxes(1, 3)[..., 0]):
        out = np.empty(src.shape[:-2] + src.shape[-2:][::-1], np.float32)
        nt_product._transpose4()(src, out)
        np.testing.assert_array_equal(out, src.swapaxes(-1, -2))


@pytest.mark.parametrize("exact", [False, True])
def test_gpt_step_with_nn_attention_products_is_bitwise_eager(monkeypatch, exact):
    """Losses, gradients and parameters of five compiled AdamW steps are eager's bits, with the
    forward's q k^T and the backward's go v^T both taken as NN products."""

    nn_calls = []
    t0 = nt_product._transpose4

    def spy():
        nn_calls.append(1)
        return t0()

    monkeypatch.setattr(nt_product, "_transpose4", spy)
    eager, _ = _gpt_train(False)
    n_eager = len(nn_calls)
    compiled, f = _gpt_train(True, exact=exact)
    _assert_bitwise(eager, compiled)
    # 2 layers x (forward + backward) per call, eager's (ops/attention.py) and the replay's
    assert f.stats["replays"] >= 2 and n_eager > 0
    assert len(nn_calls) - n_eager == 2 * 2 * f.stats["calls"]
