"""descent.nn.rotary: rotary position embeddings against a PyTorch re-implementation (the
half-split layout of GPT-NeoX / LLaMA), finite differences, and RoPE's defining properties."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent import nn
from descent.explain import gradcheck, gradgradcheck
from descent.nn.rotary import (
    RotaryEmbedding,
    apply_rotary_emb,
    rotary_cos_sin,
    rotary_frequencies,
)

torch = pytest.importorskip("torch")


def _torch_rope(x: torch.Tensor, offset: int = 0, base: float = 10000.0) -> torch.Tensor:
    """The reference, written independently: rotate_half as in Hugging Face's LLaMA."""
    d = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    pos = torch.arange(offset, offset + x.shape[-2], dtype=torch.float64)
    ang = torch.outer(pos, inv_freq)
    emb = torch.cat([ang, ang], dim=-1)  # (T, D)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    rotate_half = torch.cat([-x2, x1], dim=-1)
    return x * cos + rotate_half * sin


@pytest.mark.parametrize(
    "dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)], ids=["float32", "float64"]
)
@pytest.mark.parametrize("offset", [0, 5])
def test_rotary_matches_torch_reference_and_gradient(dtype, tol, offset):
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((2, 3, 7, 8)).astype(dtype)  # (B, H, T, D)
    ga = rng.standard_normal(xa.shape).astype(dtype)
    rope = RotaryEmbedding(8)
    x = descent.tensor(xa, dtype=dtype, requires_grad=True)
    y = rope(x, offset=offset)
    (y * descent.tensor(ga, dtype=dtype)).sum().backward()
    tx = torch.tensor(xa, requires_grad=True)
    ty = _torch_rope(tx, offset)
    (ty * torch.tensor(ga)).sum().backward()
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)


def test_rotary_gradcheck():
    rng = np.random.default_rng(1)
    x = descent.tensor(rng.standard_normal((2, 5, 6)), dtype=np.float64, requires_grad=True)
    cos, sin = rotary_cos_sin(5, 6, dtype=np.float64)
    res = gradcheck(lambda t: apply_rotary_emb(t, cos, sin), [x])
    assert res.passed, str(res)


def test_rotary_is_one_op_bitwise_the_composite_and_twice_differentiable():
    """The fused op (descent.ops.rotary) gives bitwise the slices/products/cat formula forward,
    records one node, and its backward (the inverse rotation) is differentiable again."""
    rng = np.random.default_rng(2)
    xa = rng.standard_normal((3, 2, 7, 8)).astype(np.float32)
    cos, sin = rotary_cos_sin(7, 8)
    y = apply_rotary_emb(descent.tensor(xa, requires_grad=True), cos, sin)
    assert y.grad_fn.name == "RotaryBackward"
    c, s = cos.numpy(), sin.numpy()
    x1, x2 = xa[..., :4], xa[..., 4:]
    want = np.concatenate([x1 * c - x2 * s, x1 * s + x2 * c], axis=-1)
    assert np.array_equal(y.numpy(), want)
    # a transposed (non-contiguous) input, as attention's heads are
    xt = descent.tensor(xa.transpose(0, 2, 1, 3).copy()).transpose(1, 2)
    assert np.array_equal(apply_rotary_emb(xt, cos, sin).numpy(), want)
    x = descent.tensor(rng.standard_normal((2, 5, 6)), dtype=np.float64, requires_grad=True)
    c64, s64 = rotary_cos_sin(5, 6, dtype=np.float64)
    res = gradgradcheck(lambda t: apply_rotary_emb(t, c64, s64) ** 2, [x])
    assert res.passed, str(res)


def test_rotary_properties_norm_and_relative_position():
    """A rotation keeps each vector's norm, and q_m . k_n depends only on m - n."""
    rng = np.random.default_rng(2)
    d = 16
    q = rng.standard_normal(d)
    k = rng.standard_normal(d)
    rope = RotaryEmbedding(d)

    def at(v, pos):
        t = descent.tensor(v[None, :], dtype=np.float64)  # (1, D) at one position
        return rope(t, offset=pos).numpy()[0]

    qm = at(q, 3)
    assert np.linalg.norm(qm) == pytest.approx(np.linalg.norm(q), rel=1e-12)
    s1 = at(q, 7) @ at(k, 4)  # m - n = 3
    s2 = at(q, 23) @ at(k, 20)  # m - n = 3
    s3 = at(q, 8) @ at(k, 4)  # m - n = 4
    assert s1 == pytest.approx(s2, rel=1e-10)
    assert abs(s1 - s3) > 1e-3
    # Position 0 is the identity.
    np.testing.assert_allclose(at(q, 0), q, rtol=0, atol=0)


def test_rotary_tables_offsets_and_dtypes():
    rope = RotaryEmbedding(4, max_seq_len=10)
    cos, sin = rope.cos_sin(3, offset=2)
    full_cos, full_sin = rotary_cos_sin(5, 4)
    np.testing.assert_array_equal(cos.numpy(), full_cos.numpy()[2:5])
    np.testing.assert_array_equal(sin.numpy(), full_sin.numpy()[2:5])
    assert cos.dtype == np.float32 and not cos.requires_grad
    c64, _ = rope.cos_sin(3, dtype=np.float64)
    assert c64.dtype == np.float64
    np.testing.assert_allclose(rotary_frequencies(4), [1.0, 0.01])
    # No parameters, no state: nothing to save in a checkpoint.
    assert list(rope.parameters()) == [] and len(rope.state_dict()) == 0
    assert isinstance(rope, nn.Module) and nn.RotaryEmbedding is RotaryEmbedding


def test_rotary_errors_are_explained():
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(5)
    rope = RotaryEmbedding(4, max_seq_len=6)
    with pytest.raises(ValueError, match="max_seq_len=6"):
        rope(descent.zeros(1, 4, 4), offset=3)
    with pytest.raises(ValueError, match="dim=4"):
        rope(descent.zeros(1, 3, 6))
    cos, sin = rotary_cos_sin(3, 4)
    with pytest.raises(ValueError, match="D // 2"):
        apply_rotary_emb(descent.zeros(3, 6), cos, sin)
    with pytest.raises(TypeError, match="dtype"):
        apply_rotary_emb(descent.zeros(3, 4, dtype=np.float64), cos, sin)
