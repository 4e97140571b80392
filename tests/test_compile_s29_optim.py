"""descent.compile's clipping folded into the AdamW step, session 29 (helper-214).

A replayed clip_grad_norm_ right before an Adam/AdamW step that runs `fusion.AdamFastStep`
computes the norm and the coefficient only (`optim.clip._norm_and_coef`); the step's kernels
then scale each gradient as they read it (`_cpu_optim.adam_grads_scaled`: g * coef stored back,
then the update), one pass over the gradients instead of two. The same float32 products, so the
gradients, parameters and state are eager's bits; wherever the step cannot fold (other
gradients, a gradient listed twice, a hook, a declined fast path) the scaling runs first.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import descent
from descent.compiler import fusion
from descent.compiler import program as program_mod
from descent.optim import clip as clip_mod

pytest.importorskip("numba")


def _bits(a):
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _assert_bitwise(ref, got):
    assert len(ref) == len(got)
    for a, b in zip(ref, got, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(_bits(a), _bits(b))


def _train(mode, steps=8, max_norm=0.05, clip=None, hook=None, norm_type=2.0, adam=False,
           maximize=False):  # fmt: skip
    """Losses, clipping's norms, every gradient after each step and the parameters at the end
    of a small GPT trained with AdamW (two groups) or Adam and clip_grad_norm_ (eager, or
    compiled). `clip(params)`: the list clipped (default: every parameter)."""
    from descent.models import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.0,
                    bias=False)  # fmt: skip
    descent.manual_seed(0)
    m = GPT(cfg)
    params = list(m.parameters())
    if adam:
        opt = descent.optim.Adam(params, lr=1e-3, weight_decay=0.01, maximize=maximize)
    else:
        opt = m.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    clipped = clip(params) if clip is not None else params

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        _, loss = m(x, y)
        loss.backward()
        norm = descent.optim.clip_grad_norm_(clipped, max_norm, norm_type)
        opt.step()
        return loss, norm

    f = descent.compile(step) if mode != "eager" else step
    rng = np.random.default_rng(0)
    out = []
    for i in range(steps):
        if hook is not None and i == steps // 2:
            opt.register_step_pre_hook(hook)
        x, y = (descent.tensor(rng.integers(0, 40, (4, 16))) for _ in range(2))
        loss, norm = f(x, y)
        out += [loss._data.copy(), norm._data.copy()]
        out += [p.grad._data.copy() for p in params]
    return out + [p._data.copy() for p in params], f


def _fast(f):
    (prog,) = f.programs()
    (step,) = [ins for ins, _, _ in prog.steps if getattr(ins, "kind", None) == "step"]
    return step.fused.fast


@pytest.mark.parametrize("fold", [True, False])
def test_clipping_folded_into_adamw_is_bitwise_eager(fold, monkeypatch):
    """Eight steps, every one clipped (max_norm 0.05): once the fast step's plan is learned
    (at the second replay) the scaling runs in AdamW's kernels; losses, norms, the clipped
    gradients and the parameters are eager's bits, and with the fold off as well."""
    monkeypatch.setattr(program_mod, "FOLD_CLIP", [fold])
    eager, _ = _train("eager")
    got, f = _train("compiled")
    _assert_bitwise(eager, got)
    fast = _fast(f)
    assert fast.hits >= 3
    assert fast.folds == (fast.hits if fold else 0)


@pytest.mark.parametrize("plan", [0, 1, 2])
def test_fold_on_every_thread_plan(plan, monkeypatch):
    """The folded kernel on one thread, on every core (numba's parallel twin) and split in two
    runs of parameters (the halves plan, forced here): eager's bits."""
    from descent.compiler import threads

    monkeypatch.setattr(threads, "_two_blas_threads", lambda: True)
    monkeypatch.setattr(fusion, "SPLIT_MIN", 1)  # the small model's buffer split in two runs
    monkeypatch.setattr(fusion, "PARALLEL_MIN", 1)  # and its every-core twin made
    init0 = threads.ThreadPlan.__init__

    def init(self):
        init0(self)
        self.fix(plan)

    monkeypatch.setattr(threads.ThreadPlan, "__init__", init)
    eager, _ = _train("eager")
    got, f = _train("compiled")
    _assert_bitwise(eager, got)
    assert _fast(f).folds >= 3


@pytest.mark.parametrize("norm_type", [1.0, 3.0, math.inf, "inf"])
def test_fold_with_other_norms(norm_type):
    eager, _ = _train("eager", norm_type=norm_type, max_norm=0.01)
    got, f = _train("compiled", norm_type=norm_type, max_norm=0.01)
    _assert_bitwise(eager, got)
    assert _fast(f).folds >= 3


def test_no_scaling_to_fold_when_the_norm_is_below_max_norm():
    """max_norm inf (and any norm under max_norm): coef >= 1, nothing scaled, nothing folded."""
    eager, _ = _train("eager", max_norm=math.inf)
    got, f = _train("compiled", max_norm=math.inf)
    _assert_bitwise(eager, got)
    fast = _fast(f)
    assert fast.hits >= 3 and fast.folds == 0


@pytest.mark.parametrize("adam", [False, True])
def test_fold_into_adam_with_maximize(adam):
    """Adam (coupled decay) with maximize: the kernel negates the scaled gradient, as eager's
    rule negates the clipped one."""
    eager, _ = _train("eager", adam=True, maximize=adam)
    got, f = _train("compiled", adam=True, maximize=adam)
    _assert_bitwise(eager, got)
    assert _fast(f).folds >= 3


@pytest.mark.parametrize(
    "clip",
    [
        lambda ps: ps[:-2],  # some gradients the step reads are not clipped
        lambda ps: ps + ps[:1],  # one clipped twice (eager scales it twice)
    ],
    ids=["subset", "listed-twice"],
)
def test_no_fold_when_clipping_other_gradients(clip):
    """Clipping a list that is not exactly the step's gradients: the scaling runs first (as
    eager's), then the plain kernels; eager's bits."""
    eager, _ = _train("eager", clip=clip)
    got, f = _train("compiled", clip=clip)
    _assert_bitwise(eager, got)
    fast = _fast(f)
    assert fast.hits >= 3 and fast.folds == 0


def test_a_step_hook_sees_the_clipped_gradients():
    """A step pre-hook registered after four steps (from then on the optimizer's own step runs)
    reads the gradients already clipped, as in eager."""
    seen = {"eager": [], "compiled": []}

    def hook_for(mode):
        def hook(opt, args, kwargs):
            g = opt.param_groups[0]["params"][0].grad
            seen[mode].append(g._data.copy())

        return hook

    eager, _ = _train("eager", hook=hook_for("eager"))
    got, f = _train("compiled", hook=hook_for("compiled"))
    _assert_bitwise(eager, got)
    _assert_bitwise(seen["eager"], seen["compiled"])
    assert len(seen["compiled"]) == 4


@pytest.mark.parametrize("fold", [True, False])
def test_nonfinite_gradients_scale_to_nan_and_error_if_nonfinite_raises(fold, monkeypatch):
    """An inf in a gradient: the norm is inf, the coefficient 0, every gradient inf * 0 = nan
    or 0 (eager's and PyTorch's result, folded); with error_if_nonfinite the compiled step
    raises as eager does, before any scaling, and the next calls replay normally."""
    monkeypatch.setattr(program_mod, "FOLD_CLIP", [fold])
    w = descent.nn.Parameter(descent.tensor(np.linspace(-1, 1, 64, dtype=np.float32)))
    v = descent.nn.Parameter(descent.tensor(np.ones(16, np.float32)))

    def run(compiled, strict=False):
        w.data = descent.tensor(np.linspace(-1, 1, 64, dtype=np.float32))
        v.data = descent.tensor(np.ones(16, np.float32))
        opt = descent.optim.AdamW([w, v], lr=1e-2)

        def step(scale):
            opt.zero_grad(set_to_none=True)
            ((w * scale).sum() + (v * v).sum()).backward()
            n = descent.optim.clip_grad_norm_([w, v], 0.5, error_if_nonfinite=strict)
            opt.step()
            return n

        f = descent.compile(step) if compiled else step
        out = []
        for s in [1.0, 2.0, 3.0, 4.0, math.inf, 5.0, 6.0]:
            try:
                out.append(f(descent.tensor(np.float32(s)))._data.copy())
            except RuntimeError as e:
                assert "error_if_nonfinite" in str(e)
                out.append(np.float32(-1))
            out += [w.grad._data.copy(), v.grad._data.copy(), w._data.copy(), v._data.copy()]
        return out

    def same(ref, got):
        # the values (a nan's sign may differ after the nan step: the replay's loss sum over
        # nan parameters, with the fold off too), bitwise up to the inf step
        assert len(ref) == len(got)
        for i, (a, b) in enumerate(zip(ref, got, strict=True)):
            np.testing.assert_array_equal(a, b)
            if i < 5 * 5:
                np.testing.assert_array_equal(_bits(a), _bits(b))

    eager = run(False)
    assert np.isnan(eager[4 * 5 + 1]).all()  # the inf step: w's gradient inf * 0
    same(eager, run(True))
    strict_eager = run(False, strict=True)
    assert strict_eager[4 * 5] == -1
    assert np.isfinite(strict_eager[-1]).all()  # (the step after the error stepped normally)
    _assert_bitwise(strict_eager, run(True, strict=True))


def test_folds_requires_each_owned_gradient_once():
    a, b = np.ones(4, np.float32), np.ones(6, np.float32)
    runs = [(None, [a, b])]
    assert fusion._folds([a, b], runs)
    assert fusion._folds([b, a], runs)
    assert not fusion._folds([a], runs)
    assert not fusion._folds([a, b, a], runs)
    view = np.ones(8, np.float32)[2:]
    assert not fusion._folds([a, view], [(None, [a, view])])


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("coef", [0.3, 0.0, np.nan])
def test_adam_grads_scaled_kernel_is_scale_then_adam_grads(parallel, coef):
    """The folded kernel against clipping's `g *= coef` then `adam_grads`: gradients,
    parameters and state bitwise (edges: zeros, tiny and huge values, inf)."""
    from descent.kernels import _cpu_optim

    rng = np.random.default_rng(7)
    sizes = [37, 1, 300, 16, 5]
    n = sum(sizes)
    p0 = rng.standard_normal(n).astype(np.float32)
    g0 = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    g0[0][:5] = [0.0, 1e-30, 3e30, -0.0, np.inf]
    lo = np.cumsum([0] + sizes[:-1]).astype(np.int64)
    f = np.float32
    plain = _cpu_optim.adam_grads_kernel(parallel)
    scaled = _cpu_optim.adam_grads_kernel(parallel, scaled=True)
    pa, ma, va = p0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    pb, mb, vb = p0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    for step in (1, 2, 3):
        ga = [g.copy() for g in g0]
        gb = [g.copy() for g in g0]
        args = (step == 2, 1, f(1 - 1e-3), f(0.01), False, True, f(0.1), f(0.999), f(0.001),
                f((1 - 0.999**step) ** 0.5), f(1e-8), f(-1e-3 / (1 - 0.9**step)),
                False)  # fmt: skip
        clip_mod.scale(ga, f(coef))
        plain(pa, tuple(ga), lo, ma, va, *args)
        with np.errstate(invalid="ignore"):
            scaled(pb, tuple(gb), lo, mb, vb, f(coef), *args)
        _assert_bitwise([pa, ma, va, *ga], [pb, mb, vb, *gb])
