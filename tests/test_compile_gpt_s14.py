"""descent.compile's replay of the GPT step, session 14's paths: attention's products written
where the head split and join need them (`compiler/replay_kernels.sdpa_layouts`,
`sdpa_grad_plan`). Each is compared with eager bit for bit (the same products and kernels,
only the output strides change)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")


def _gpt_train(compiled: bool, steps: int = 5, dropout: float = 0.0, config: dict | None = None,
               batch: int = 4, dtype=None, **options):  # fmt: skip
    """Losses, gradients each step and the parameters after it; config: GPTConfig's sizes;
    dtype: the model's (descent's default when None)."""
    import descent
    from descent.models import GPT, GPTConfig

    sizes = config or dict(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32)
    cfg = GPTConfig(**sizes, dropout=dropout)
    descent.manual_seed(0)
    m = GPT(cfg)
    if dtype is not None:
        m = m.to(dtype)
    opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.99))

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        _, loss = m(x, y)
        loss.backward()
        descent.optim.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss

    f = descent.compile(step, options=options) if compiled else step
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        shape = (batch, cfg.block_size)
        x, y = (descent.tensor(rng.integers(0, cfg.vocab_size, shape)) for _ in range(2))
        out.append(f(x, y)._data.copy())
        out += [p.grad._data.copy() for p in m.parameters()]
    return out + [p._data.copy() for p in m.parameters()], f


def _assert_bitwise(a_list, b_list):
    assert len(a_list) == len(b_list)
    for a, b in zip(a_list, b_list):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


@pytest.mark.parametrize("exact", [False, True])
def test_attention_products_written_in_place_are_bitwise_eager(monkeypatch, exact):
    """P v is written in the (B, T, nh, hs) layout and gq, gk, gv straight into the qkv
    gradient: losses, gradients and parameters are eager's bits."""
    from descent.compiler import replay_kernels

    forwards, backwards = [], []
    fwd0, bwd0 = replay_kernels.sdpa_forward, replay_kernels.sdpa_backward_into

    def spy_fwd(op, q, k, v, axes=None, pool=None):
        out = fwd0(op, q, k, v, axes, pool)
        forwards.append((axes, out.flags.c_contiguous))
        return out

    def spy_bwd(*args):
        buf = bwd0(*args)
        backwards.append(buf is not None)
        return buf

    monkeypatch.setattr(replay_kernels, "sdpa_forward", spy_fwd)
    monkeypatch.setattr(replay_kernels, "sdpa_backward_into", spy_bwd)
    eager, _ = _gpt_train(False)
    compiled, f = _gpt_train(True, exact=exact)
    _assert_bitwise(eager, compiled)
    (program,) = f.programs()
    assert len(program.sdpa_layouts) == 2  # one per layer
    # each replay, each layer: the transposed layout (not contiguous as (B, nh, T, hs)), and
    # the gradients written in place
    assert forwards and all(axes == (0, 2, 1, 3) and not c for axes, c in forwards)
    assert len(backwards) == len(forwards) and all(backwards)


def test_attention_inference_replay_writes_the_joined_layout():
    """Under no_grad too, P v goes straight into the (B, T, nh, hs) layout, so the join's
    reshape is a view (eager copies); the output is eager's bits."""
    import descent
    from descent import nn

    descent.manual_seed(0)
    attn = nn.CausalSelfAttention(16, 2, bias=False)
    f = descent.compile(lambda x: attn(x))
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = descent.tensor(rng.standard_normal((3, 8, 16)).astype(np.float32))
        with descent.no_grad():
            y = f(x)._data
            ref = attn(x)._data
        _assert_bitwise([ref], [y])
    (program,) = f.programs()
    assert list(program.sdpa_layouts.values()) == [(0, 2, 1, 3)]


def test_attention_with_dropout_takes_the_usual_backward(monkeypatch):
    """With dropout on the attention weights the backward writes nothing in place (the
    plan's check returns None each call) and the step is still eager's bits."""
    from descent.compiler import replay_kernels

    results = []
    bwd0 = replay_kernels.sdpa_backward_into

    def spy_bwd(*args):
        buf = bwd0(*args)
        results.append(buf)
        return buf

    monkeypatch.setattr(replay_kernels, "sdpa_backward_into", spy_bwd)
    eager, _ = _gpt_train(False, dropout=0.1)
    compiled, _ = _gpt_train(True, dropout=0.1)
    _assert_bitwise(eager, compiled)
    assert results and all(r is None for r in results)


@pytest.mark.parametrize("shape", [(12, 4, 64, 32), (2, 3, 5, 7), (1, 1, 1, 1), (3, 2, 33, 17)])
def test_matmul_into_strided_views_gives_the_contiguous_products_bits(shape):
    """The premise of the layouts: NumPy's matmul writes the same values into a view with a
    leading dimension (a column block of a wider array, a transposed buffer) as into a fresh
    contiguous array."""
    b, h, t, d = shape
    rng = np.random.default_rng(2)
    qkv = rng.standard_normal((b, t, 3 * h * d)).astype(np.float32)
    k = qkv[..., h * d : 2 * h * d].reshape(b, t, h, d).transpose(0, 2, 1, 3)
    gp = rng.standard_normal((b, h, t, t)).astype(np.float32)
    ref = gp @ k
    buf = np.full((b, t, 3 * h * d), np.nan, np.float32)
    dest = buf[..., : h * d].reshape(b, t, h, d).transpose(0, 2, 1, 3)
    assert np.shares_memory(dest, buf)
    np.matmul(gp, k, out=dest)
    np.testing.assert_array_equal(dest.view(np.int32), ref.view(np.int32))
    ref_t = np.swapaxes(gp, -1, -2) @ k
    np.matmul(np.swapaxes(gp, -1, -2), k, out=dest)
    np.testing.assert_array_equal(dest.view(np.int32), ref_t.view(np.int32))


def test_attention_output_read_elsewhere_keeps_its_layout():
    """When attention's output is read by something other than the head join (here also
    returned), it keeps eager's layout (no transposed buffer): the plan is empty, values are
    eager's."""
    import descent
    from descent.nn import functional as F

    def fn(q, k, v):
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        joined = y.transpose(1, 2).reshape(2, 8, 12)
        return joined * 2.0, y

    f = descent.compile(fn)
    rng = np.random.default_rng(3)
    for _ in range(4):
        q, k, v = (descent.tensor(rng.standard_normal((2, 3, 8, 4)).astype(np.float32))
                   for _ in range(3))  # fmt: skip
        with descent.no_grad():
            got = f(q, k, v)
            ref = fn(q, k, v)
        _assert_bitwise([r._data for r in ref], [g._data for g in got])
        assert got[1]._data.flags.c_contiguous
    (program,) = f.programs()
    assert program.sdpa_layouts == {}
