"""descent.compile on a GPU (CuPy): skipped without one. The fused chains become CuPy
ElementwiseKernels with round-to-nearest intrinsics (tests/test_compile_cuda_fusion.py checks
their expression on the CPU); here they run, and a compiled training step is compared with
eager on the device."""

from __future__ import annotations

import numpy as np
import pytest

import descent as ds
from descent import backend

cp = backend.cupy_module()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(cp is None, reason="no CUDA GPU / CuPy")]


def _fn(x, y):
    return (-(((x * 0.5 + y) * 3.0 - y) / (x + 2.0)) / 1.5 - x) * (1.0 - y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_chain_on_cupy_is_bitwise_eager(dtype):
    g = ds.compile(_fn)
    rng = np.random.default_rng(0)
    with ds.no_grad():
        for _ in range(4):
            x = ds.tensor(rng.standard_normal(1 << 16).astype(dtype), device="cuda")
            y = ds.tensor(rng.standard_normal(1 << 16).astype(dtype), device="cuda")
            out, ref = g(x, y), _fn(x, y)
            assert out.device.startswith("cuda")
            np.testing.assert_array_equal(out.numpy(), ref.numpy())
    (program,) = g.programs()
    assert program.fused and all(c.cuda_kernel is not None for c in program.fused)


def test_compiled_gpt_step_on_cupy_matches_eager():
    from descent.models import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32)
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, 40, (4, 16)), rng.integers(0, 40, (4, 16))) for _ in range(6)]

    def train(compiled):
        ds.manual_seed(0)
        m = GPT(cfg).to("cuda")
        opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.99))

        def step(x, y):
            opt.zero_grad(set_to_none=True)
            _, loss = m(x, y)
            loss.backward()
            ds.optim.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            return loss

        f = ds.compile(step) if compiled else step
        losses = [float(f(ds.tensor(x, device="cuda"), ds.tensor(y, device="cuda")).item())
                  for x, y in batches]  # fmt: skip
        return losses, [p.numpy() for p in m.parameters()], f

    le, pe, _ = train(False)
    lc, pc, f = train(True)
    assert f.stats["replays"] >= 3 and f.stats["fallbacks"] == 0, f.stats
    assert lc == le
    for a, b in zip(pe, pc):
        np.testing.assert_array_equal(a, b)
