"""descent.nn.attention.flex_attention against PyTorch 2.13's (forward: PyTorch's CPU build
refuses backward) and gradients against finite differences in float64 and against an explicit
attention in descent; BlockMask's block-sparse fields against PyTorch's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import descent
import descent.nn.attention.flex_attention as dflex

torch = pytest.importorskip("torch")
tflex = pytest.importorskip("torch.nn.attention.flex_attention")


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def sliding(b, h, q_idx, kv_idx):
    return (q_idx - kv_idx).abs() <= 3


def head0_strict(b, h, q_idx, kv_idx):
    return (kv_idx < q_idx) & (h == 0)


def document(b, h, q_idx, kv_idx):  # two documents per sequence, split at 5
    return (q_idx >= 5) == (kv_idx >= 5)


def relative(score, b, h, q_idx, kv_idx):
    return score + (q_idx - kv_idx) * 0.1


def softcap(score, b, h, q_idx, kv_idx):
    return 2.0 * (score / 2.0).tanh()


def per_head(score, b, h, q_idx, kv_idx):
    return score * (h + 1) - b


CASES = [
    (None, None), (relative, None), (None, causal), (relative, causal), (softcap, sliding),
    (per_head, document), (None, head0_strict),
]  # fmt: skip


def _inputs(B=2, H=3, L=9, S=9, E=8, Ev=5, Hkv=None, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, H, L, E)).astype(np.float32)
    k = rng.standard_normal((B, Hkv or H, S, E)).astype(np.float32)
    v = rng.standard_normal((B, Hkv or H, S, Ev)).astype(np.float32)
    return q, k, v


def _run(lib_flex, lib, arrays, score_mod, mask_mod, **kw):
    q, k, v = (lib.tensor(a) for a in arrays)
    B, H, L, _ = q.shape
    S = k.shape[2]
    bm = None
    if mask_mod is not None:
        bm = lib_flex.create_block_mask(mask_mod, B=None, H=H, Q_LEN=L, KV_LEN=S,
                                        device="cpu", BLOCK_SIZE=4)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lib_flex.flex_attention(q, k, v, score_mod=score_mod, block_mask=bm,
                                       return_lse=True, **kw)  # fmt: skip


@pytest.mark.parametrize(("score_mod", "mask_mod"), CASES,
                         ids=[f"{s.__name__ if s else '-'}/{m.__name__ if m else '-'}"
                              for s, m in CASES])  # fmt: skip
def test_forward_and_lse_match_pytorch(score_mod, mask_mod):
    arrays = _inputs()
    to, tl = _run(tflex, torch, arrays, score_mod, mask_mod)
    do, dl = _run(dflex, descent, arrays, score_mod, mask_mod)
    np.testing.assert_allclose(do.numpy(), to.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dl.numpy(), tl.numpy(), rtol=1e-5, atol=1e-5)


def test_gqa_scale_and_different_lengths_match_pytorch():
    arrays = _inputs(L=6, S=10, H=4, Hkv=2)
    to, _ = _run(tflex, torch, arrays, relative, None, enable_gqa=True, scale=0.3)
    do, _ = _run(dflex, descent, arrays, relative, None, enable_gqa=True, scale=0.3)
    np.testing.assert_allclose(do.numpy(), to.numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="enable_gqa"):
        _run(dflex, descent, arrays, None, None)


@pytest.mark.parametrize("mask_mod", [causal, sliding, head0_strict, document])
def test_block_mask_fields_match_pytorch(mask_mod):
    t = tflex.create_block_mask(mask_mod, B=None, H=2, Q_LEN=9, KV_LEN=11, device="cpu",
                                BLOCK_SIZE=4)  # fmt: skip
    d = dflex.create_block_mask(mask_mod, B=None, H=2, Q_LEN=9, KV_LEN=11, BLOCK_SIZE=4)
    assert d.shape == tuple(t.shape) and d.sparsity() == pytest.approx(t.sparsity())
    for name in ("kv_num_blocks", "full_kv_num_blocks", "q_num_blocks", "full_q_num_blocks"):
        np.testing.assert_array_equal(getattr(d, name).numpy(), getattr(t, name).numpy(), name)
    np.testing.assert_array_equal(d.to_dense().numpy(), t.to_dense().numpy())
    # indices: the first n of each row (the listed blocks) are the same blocks
    for num, idx in (("kv_num_blocks", "kv_indices"), ("full_kv_num_blocks", "full_kv_indices")):
        n = getattr(t, num).numpy()
        ti, di = getattr(t, idx).numpy(), getattr(d, idx).numpy()
        for pos in np.ndindex(n.shape):
            assert list(di[pos][: n[pos]]) == list(ti[pos][: n[pos]]), (idx, pos)
    assert d.to_string() == t.to_string()
    np.testing.assert_array_equal(
        dflex.create_mask(mask_mod, 1, 2, 9, 11).numpy(),
        tflex.create_mask(mask_mod, 1, 2, 9, 11, device="cpu").numpy())


def test_and_or_noop_masks_match_pytorch():
    for combine in ("and_masks", "or_masks"):
        tm = getattr(tflex, combine)(causal, sliding)
        dm = getattr(dflex, combine)(causal, sliding)
        np.testing.assert_array_equal(dflex.create_mask(dm, 1, 1, 8, 8).numpy(),
                                      tflex.create_mask(tm, 1, 1, 8, 8, device="cpu").numpy())
    assert dflex.create_mask(dflex.noop_mask, 1, 1, 3, 4).numpy().all()


def test_gradients_match_an_explicit_attention_and_finite_differences():
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 2, 5, 4)) for _ in range(3))
    bias = rng.standard_normal((2, 9))

    def run(q, k, v, bias_t):
        def rel_bias(score, b, h, q_idx, kv_idx):
            return score + bias_t[h, q_idx - kv_idx + 4]

        bm = dflex.create_block_mask(causal, None, None, 5, 5)
        return dflex.flex_attention(q, k, v, score_mod=rel_bias, block_mask=bm)

    ts = [descent.tensor(a, dtype=descent.float64, requires_grad=True) for a in (q, k, v, bias)]
    assert descent.autograd.gradcheck(run, tuple(ts))
    out = run(*ts)
    w = descent.tensor(rng.standard_normal(out.shape), dtype=descent.float64)
    grads = descent.autograd.grad((out * w).sum(), ts)
    # the same attention written out
    es = [t.detach().requires_grad_() for t in ts]
    qi = descent.arange(5).reshape(5, 1)
    ki = descent.arange(5).reshape(1, 5)
    s = es[0] @ es[1].transpose(-2, -1) / 2.0 + es[3][:, (qi - ki + 4)].unsqueeze(0)
    s = s.masked_fill(qi < ki, float("-inf"))
    ref = descent.softmax(s, dim=-1) @ es[2]
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    rgrads = descent.autograd.grad((ref * w).sum(), es)
    for g, r in zip(grads, rgrads, strict=True):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-10, atol=1e-12)


def test_an_emptied_row_gives_zeros_and_a_finite_gradient():
    q, k, v = (descent.randn(1, 1, 3, 4, requires_grad=True) for _ in range(3))
    bm = dflex.create_block_mask(lambda b, h, qi, ki: ki < qi, None, None, 3, 3)
    out, lse = dflex.flex_attention(q, k, v, block_mask=bm, return_lse=True)
    assert (out[0, 0, 0] == 0).all() and lse[0, 0, 0].item() == float("-inf")
    out.sum().backward()
    assert all(np.isfinite(t.grad.numpy()).all() for t in (q, k, v))


def test_importable_as_pytorchs_path():
    import subprocess
    import sys

    src = ("import descent as torch\n"
           "from descent.nn.attention.flex_attention import flex_attention, create_block_mask\n"
           "from descent.nn.attention import sdpa_kernel, SDPBackend\n"
           "print(torch.nn.attention.flex_attention.noop_mask is not None)\n")
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
