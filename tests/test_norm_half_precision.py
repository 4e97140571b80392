"""group_norm / instance_norm / rms_norm in float16 and bfloat16 against PyTorch (values, input
and parameter gradients). PyTorch computes these in float32 and casts back; descent computed in
half precision: nan input gradients for near-constant groups (d/dvar (var + eps)^-1/2 overflowed)
and, for rms_norm with the default eps, half's epsilon (1e-3) swamping mean(x^2) of small inputs
(outputs 60x too small). Found by a layer sweep run next to a peer project's nn suite."""

import numpy as np
import pytest
import torch

import descent

HALF = ["float16", "bfloat16"]
RNG = np.random.default_rng(7)


def _pair(x, dt):
    """The same half-precision leaf in torch and in descent."""
    t = torch.tensor(x, dtype=torch.float32).to(getattr(torch, dt)).requires_grad_()
    d = descent.tensor(x, dtype=descent.float32).to(getattr(descent, dt)).requires_grad_()
    return t, d


def _f32(t):
    return t.detach().float().numpy()


def _close(d, t, scale=1.0):
    a, b = _f32(d), _f32(t)
    assert np.all(np.isfinite(a)) == np.all(np.isfinite(b))
    np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-2 * max(scale, float(np.abs(b).max())))


def _run(fn_t, fn_d, x, dt, with_w=True, wshape=(6,)):
    xt, xd = _pair(x, dt)
    w = np.linspace(0.5, 1.5, int(np.prod(wshape))).reshape(wshape).astype(np.float32)
    wt, wd = _pair(w, dt)
    g = RNG.standard_normal(x.shape).astype(np.float32)
    ot = fn_t(xt, wt if with_w else None)
    od = fn_d(xd, wd if with_w else None)
    assert str(od.dtype).split(".")[-1] == str(ot.dtype).split(".")[-1] == dt
    _close(od, ot)
    (ot * torch.tensor(g).to(ot.dtype)).sum().backward()
    (od * descent.tensor(g).to(od.dtype)).sum().backward()
    assert np.all(np.isfinite(_f32(xd.grad)))
    _close(xd.grad, xt.grad)
    if with_w:
        _close(wd.grad, wt.grad)


INPUTS = {
    "constant": np.full((3, 6, 4), 0.7, np.float32),
    "tiny": RNG.standard_normal((3, 6, 4)).astype(np.float32) * 1e-3,
    "unit": RNG.standard_normal((3, 6, 4)).astype(np.float32),
}


@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("groups", [1, 3, 6])
def test_group_norm_half_matches_torch(dt, kind, groups):
    _run(
        lambda x, w: torch.nn.functional.group_norm(x, groups, w, w * 0.5),
        lambda x, w: descent.nn.functional.group_norm(x, groups, w, w * 0.5),
        INPUTS[kind],
        dt,
    )


@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("kind", list(INPUTS))
def test_instance_norm_half_matches_torch(dt, kind):
    _run(
        lambda x, w: torch.nn.functional.instance_norm(x, weight=w, bias=w),
        lambda x, w: descent.nn.functional.instance_norm(x, weight=w, bias=w),
        INPUTS[kind],
        dt,
    )


@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("eps", [None, 1e-6])
@pytest.mark.parametrize("with_w", [False, True])
def test_rms_norm_half_matches_torch(dt, kind, eps, with_w):
    _run(
        lambda x, w: torch.nn.functional.rms_norm(x, (4,), w, eps),
        lambda x, w: descent.nn.functional.rms_norm(x, (4,), w, eps),
        INPUTS[kind],
        dt,
        with_w=with_w,
        wshape=(4,),
    )


@pytest.mark.parametrize("dt", HALF)
def test_half_norm_modules_and_empty_batch(dt):
    x = INPUTS["tiny"]
    for tm, dm in [
        (torch.nn.GroupNorm(3, 6), descent.nn.GroupNorm(3, 6)),
        (torch.nn.RMSNorm(4), descent.nn.RMSNorm(4)),
        (torch.nn.InstanceNorm1d(6, affine=True), descent.nn.InstanceNorm1d(6, affine=True)),
    ]:
        tm, dm = tm.to(getattr(torch, dt)), dm.to(getattr(descent, dt))
        xt, xd = _pair(x, dt)
        _close(dm(xd), tm(xt))
    e = descent.zeros(0, 6, 4, dtype=getattr(descent, dt))
    y = descent.nn.functional.group_norm(e, 3)
    assert tuple(y.shape) == (0, 6, 4) and y.dtype == e.dtype


def test_float32_paths_unchanged():
    x = INPUTS["tiny"]
    for ft, fd in [
        (
            lambda x: torch.nn.functional.group_norm(x, 3),
            lambda x: descent.nn.functional.group_norm(x, 3),
        ),
        (
            lambda x: torch.nn.functional.rms_norm(x, (4,)),
            lambda x: descent.nn.functional.rms_norm(x, (4,)),
        ),
    ]:
        xt = torch.tensor(x, requires_grad=True)
        xd = descent.tensor(x, requires_grad=True)
        ot, od = ft(xt), fd(xd)
        assert od.dtype == descent.float32
        np.testing.assert_allclose(od.detach().numpy(), ot.detach().numpy(), rtol=1e-4, atol=1e-5)
        ot.sum().backward()
        od.sum().backward()
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-2)
