"""descent.compile and values computed from the data outside autograd Functions, part 2 (s18).

helper-127's third probe found ops whose indices, masks or weights were computed from the data
on arrays and frozen by a replay when the first two calls agreed. multi_margin_loss's and
multilabel_margin_loss's target index, mask and pair weights now go through
ops/untracked.py `computed` (they replay bitwise as eager); embedding with max_norm (it writes
the weight outside the ops) and ctc_loss (extended labels, lengths and masks from the values)
fall back with a warning naming the op. Same protocol as test_compile_s18_untracked.py: calls
0 and 1 see the same values, later calls others, and every call must equal eager bitwise.
"""

import warnings

import numpy as np
import pytest

import descent
import descent.nn.functional as F
from descent.compiler import CompileWarning

_RNG = np.random.default_rng(0)
_A0 = _RNG.standard_normal((4, 6)).astype(np.float32)
_XS = [_A0, _A0.copy()] + [_RNG.standard_normal((4, 6)).astype(np.float32) for _ in range(3)]

# name -> function: each must replay (bitwise as eager on every call)
REPLAY = {
    "multi_margin_loss": lambda x: F.multi_margin_loss(x, x.argmax(1)) * 2,
    "multi_margin_loss_weight_p2": lambda x: F.multi_margin_loss(
        x, x.argmin(1), p=2, weight=descent.arange(1.0, 7.0), reduction="none"
    ),
    "multilabel_margin_loss": lambda x: F.multilabel_margin_loss(
        x, x.argsort(1) - 1, reduction="none"
    ),
}

# name -> (function, words of the fallback warning)
FALLBACK = {
    "embedding_max_norm": (
        lambda x: F.embedding(x.argmax(1), x.detach().t() * 1, max_norm=1.0) * 2,
        "embedding with max_norm",
    ),
    "ctc_loss": (
        lambda x: F.ctc_loss(
            F.log_softmax(x.reshape(4, 1, 6), 2), x.argmax(1)[None, :2] % 5 + 1,
            descent.tensor([4]), descent.tensor([2]),
        ) * 2,
        "ctc_loss",
    ),
}


def _run(f):
    """Eager and compiled on every input: the compiled function and the warnings it gave."""
    c = descent.compile(f)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k, a in enumerate(_XS):
            want, got = f(descent.tensor(a)), c(descent.tensor(a))
            assert want.shape == got.shape, k
            assert want.dtype == got.dtype, k
            np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"call {k}")
    return c, [str(m.message) for m in caught if issubclass(m.category, CompileWarning)]


@pytest.mark.parametrize("name", sorted(REPLAY))
def test_replays_bitwise_on_new_data(name):
    c, warned = _run(REPLAY[name])
    assert c.stats["replays"] == 3 and c.stats["fallbacks"] == 0, (c.stats, warned)


@pytest.mark.parametrize("name", sorted(FALLBACK))
def test_values_outside_the_ops_fall_back(name):
    f, words = FALLBACK[name]
    c, warned = _run(f)
    assert c.stats["replays"] == 0 and c.stats["fallbacks"] == 1, c.stats
    assert any(words in w for w in warned), warned
