"""descent.compile and in-place writes autograd does not record (under no_grad, or on tensors
that do not require grad). Before session 17 the replay skipped such a write and returned wrong
values from the third call on. Since session 18 a write whose eager path describes itself
(view_write.written's `redo`) is recorded and replayed (tests/test_compile_s18_inplace.py);
the others fall back to eager with a warning naming the reason. Every call returns eager's
values either way."""

import warnings

import numpy as np
import pytest

import descent
import descent.nn as nn


def _inplace_add(x):
    h = x * 2.0
    h.add_(1.0)
    return h * 3.0


def _nograd_add(x):
    with descent.no_grad():
        h = x * 2.0
        h.add_(1.0)
        return h * 3.0


def _clamp(x):
    h = x * 2.0
    h.clamp_(min=0.0)
    return h + 1


def _setitem(x):
    h = x.relu()
    h[0] = 5.0
    return h + 1


def _fill(x):
    h = x + 0
    h.fill_(2.0)
    return h * x


def _out_arg(x):
    h = descent.empty_like(x)
    descent.mul(x, 3.0, out=h)
    return h - 1


_OUT_BUFFER = descent.zeros(3, 4)


def _out_captured(x):
    descent.mul(x, 3.0, out=_OUT_BUFFER)  # a captured tensor: the caller's state
    return _OUT_BUFFER - 1


def _masked_fill(x):
    s = x * 1.0
    s.masked_fill_(x < 0, -1.0)
    return s.exp()


def _inplace_relu_model():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True), nn.Linear(4, 2))

    def infer(x):
        with descent.no_grad():
            return model(x)

    return infer


# (out= into a tensor made by empty_like inside the call replays since session 19, out= into
# a captured tensor since session 20: the replay writes into its memory, as eager does)
REPLAYED = [_inplace_add, _nograd_add, _clamp, _setitem, _fill, _masked_fill, _out_arg,
            _out_captured]  # fmt: skip
# (what still falls back, and why: tests/test_compile_s20_writes.py)


def _run(make):
    fn = make()
    compiled = descent.compile(fn)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            x = descent.tensor(rng.standard_normal((3, 4)).astype(np.float32))
            want, got = fn(x), compiled(x)
            assert np.array_equal(got.numpy(), want.numpy())
    return compiled, caught


@pytest.mark.parametrize("make", [*(lambda f=f: f for f in REPLAYED), _inplace_relu_model],
                         ids=[*(f.__name__ for f in REPLAYED), "inplace_relu_model"])  # fmt: skip
def test_unrecorded_inplace_replays_and_matches_eager(make):
    compiled, caught = _run(make)
    assert compiled.stats["replays"] == 3 and compiled.stats["fallbacks"] == 0
    assert not [w for w in caught if "runs eagerly" in str(w.message)]


def test_recorded_inplace_still_replays():
    """An in-place op autograd records (its tensor requires grad) replays as before."""
    w = descent.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)

    def step(x):
        h = x * w
        h.add_(1.0)
        h.relu_()
        loss = (h * h).sum()
        loss.backward()
        return loss

    compiled = descent.compile(step)
    rng = np.random.default_rng(1)
    xs = [descent.tensor(rng.standard_normal((3, 4)).astype(np.float32)) for _ in range(5)]
    want = []
    for x in xs:
        w.grad = None
        want.append((step(x).numpy(), w.grad.numpy().copy()))
    for x, (loss, grad) in zip(xs, want, strict=True):
        w.grad = None
        got = compiled(x)
        assert np.array_equal(got.numpy(), loss) and np.array_equal(w.grad.numpy(), grad)
    assert compiled.stats["replays"] >= 3 and compiled.stats["fallbacks"] == 0
