"""descent.compile and values computed from the data outside autograd Functions (s18).

Indices and counts that ops compute on arrays (sort's order, topk, kthvalue, median, mode,
nanmedian, cummax, searchsorted, histc, one_hot, scatter's, put's and index_put's positions,
index_fill's mask, max pooling's winners, any/all, isin, signbit, nll_loss's index and
weights, count_nonzero) were constants to the recorder: when the first two calls saw the same
data, the replay froze them and later calls returned wrong values. They are now recorded
(ops/untracked.py `computed`) and replay bitwise as eager; results whose SHAPE depends on the
values (nonzero, unique, argwhere, where(cond), bincount, one_hot without num_classes,
repeat_interleave with a tensor of counts, index_put with a mask) fall back with a warning
naming the op. Each case: calls 0 and 1 see the same values, later calls others, and every
call must equal eager bitwise.
"""

import numpy as np
import pytest

import descent
import descent.nn.functional as F
from compile_harness import assert_fell_back, compare_calls

_RNG = np.random.default_rng(0)
_A0 = _RNG.standard_normal((4, 6)).astype(np.float32)
_XS = [_A0, _A0.copy()] + [_RNG.standard_normal((4, 6)).astype(np.float32) for _ in range(3)]


def _setadv(x):
    h = x * 1
    with descent.no_grad():
        h[descent.arange(4), x.argmax(1)] = 0.0
    return h


# name -> function: each must replay (bitwise as eager on every call)
REPLAY = {
    "setitem_adv": _setadv,  # (an advanced-index write under no_grad: recorder.Write)
    "sort_values": lambda x: x.sort(1).values * 2,
    "sort_indices": lambda x: x.sort(1).indices + 1,
    "sort_desc_stable": lambda x: x.sort(0, descending=True, stable=True).values,
    "argsort": lambda x: x.argsort(1) + 1,
    "gather_argsort": lambda x: x.gather(1, x.argsort(1)) * 2,
    "topk_values": lambda x: x.topk(2, 1).values * 2,
    "topk_indices": lambda x: x.topk(2, 1).indices + 1,
    "topk_unsorted": lambda x: x.topk(5, 1, largest=False, sorted=False).indices,
    "kthvalue": lambda x: x.kthvalue(2, 1).indices + 1,
    "kthvalue_dim0": lambda x: x.kthvalue(3, 0, keepdim=True).values,
    "mode": lambda x: (x * 2).round().mode(1).values + 1,
    "median_dim": lambda x: x.median(1).indices + 1,
    "median_all": lambda x: x.median() * 2,
    "nanmedian_dim": lambda x: x.masked_fill(x < -1, float("nan")).nanmedian(1).indices + 1,
    "nanmedian_all": lambda x: x.masked_fill(x < -1, float("nan")).nanmedian() * 2,
    "count_nonzero": lambda x: (x > 0).count_nonzero(1) + 1,
    "count_nonzero_all": lambda x: (x > 0).count_nonzero(),
    "any_dim": lambda x: (x > 1).any(1).int() + 1,
    "all_dim": lambda x: (x > -0.5).all(1),
    "searchsorted": lambda x: descent.searchsorted(descent.tensor([-1.0, 0.0, 1.0]), x) + 1,
    "searchsorted_sorter": lambda x: descent.searchsorted(x, x[:, :2], sorter=x.argsort(1)),
    "bucketize": lambda x: descent.bucketize(x, descent.tensor([-1.0, 0.0, 1.0])) + 1,
    "one_hot": lambda x: F.one_hot(x.argmax(1), 6).float() * 2,
    "index_select": lambda x: x.index_select(1, x[0].argsort()) * 2,
    "scatter_idx": lambda x: descent.zeros(4, 6).scatter(1, x.argmax(1, keepdim=True), 1.0) + x,
    "scatter_src": lambda x: x.scatter(1, x.argsort(1)[:, :3], x[:, 3:]),
    "scatter_add": lambda x: descent.zeros(4, 6).scatter_add(1, x.argsort(1), x),
    "index_add": lambda x: descent.zeros(6, 6).index_add(0, x[:, 0].argsort(), x),
    "histc": lambda x: descent.histc(x, 4, -2, 2) * 2,
    "histc_range": lambda x: descent.histc(x, 5),
    "cummax": lambda x: x.cummax(1).indices + 1,
    "cummin_bool": lambda x: (x > 0).cummin(1).indices,
    "index_put": lambda x: descent.zeros(6, 6).index_put((x.argmax(1),), x, accumulate=True),
    "nll_loss_ignore": lambda x: F.nll_loss(x, x.argmax(1), ignore_index=2) * 2,
    "nll_loss_weight": lambda x: F.nll_loss(x, x.argmin(1), weight=descent.arange(6.0)) * 2,
    "isin": lambda x: descent.isin(x.argmax(1), descent.tensor([1, 2])).int() + 1,
    "norm_p0": lambda x: (x > 0.5).float().norm(p=0) * 2,
    "signbit": lambda x: x.signbit().int() + 1,
    "index_fill": lambda x: x.index_fill(1, x[0].argsort()[:2], 0.0) * 2,
    "put": lambda x: descent.zeros(24).put(x.flatten().argsort(), x.flatten()) * 2,
    "put_accumulate": lambda x: descent.zeros(24).put(x.flatten().argsort() - 24, x.flatten(),
                                                      accumulate=True),
    "max_pool1d_indices": lambda x: F.max_pool1d(x[None], 2, return_indices=True)[1] + 1,
    "max_unpool1d": lambda x: F.max_unpool1d(*F.max_pool1d(x[None], 2, return_indices=True), 2),
    "max_pool3d": lambda x: F.max_pool3d(x.reshape(1, 1, 2, 2, 6), 2, return_indices=True)[0],
    "max_pool3d_indices": lambda x: F.max_pool3d(x.reshape(1, 2, 2, 6), 2,
                                                 return_indices=True)[1],
    "adaptive_max_pool1d": lambda x: F.adaptive_max_pool1d(x[None], 4) * 2,
    "adaptive_max_pool1d_indices": lambda x: F.adaptive_max_pool1d(x[None], 4,
                                                                   return_indices=True)[1],
    "histogram": lambda x: descent.histogram(x, 4)[0] * 2,
    "histogram_edges": lambda x: descent.histogram(x, 4)[1] * 2,
    "histogram_weight_density": lambda x: descent.histogram(
        x, descent.tensor([-1.0, 0.0, 0.5, 2.0]), weight=x.abs(), density=True
    )[0],
    "unfold": lambda x: x.unfold(1, 2, 2) * 2,
    "unfold_overlapping_amax": lambda x: x.unfold(1, 3, 1).amax(-1),
    "index_put_2": lambda x: descent.zeros(6, 6).index_put((x.argmax(1), x.argmin(1)), x[:, 0]),
    # (one kernel through untracked.computed when nothing requires grad: session 19)
    "masked_scatter": lambda x: descent.zeros(4, 6).masked_scatter(x > 0, x) * 2,
    # (likewise index_put with a mask: session 20)
    "index_put_mask": lambda x: descent.zeros(4, 6).index_put((x[:, 0] > 0,), x[0],
                                                              accumulate=True),
    "index_put_mask_set": lambda x: descent.zeros(4, 6).index_put((x[:, 0] > 0,), x[0] * 2),
}

# Since session 22 these are guarded ops (ops/untracked.guarded): a program per result shape,
# eager's values on every call, no warning (tests/test_compile_s22_fallbacks.py)
GUARDED = {
    "nonzero": lambda x: (x > 0).nonzero() + 1,
    "argwhere": lambda x: descent.argwhere(x > 0) + 1,
    "where1": lambda x: descent.where(x > 0)[1] + 1,
    "unique": lambda x: (x * 2).round().unique() + 1,
    "bincount": lambda x: descent.bincount(x.argmax(1), minlength=6) + 1,
    "unique_consecutive": lambda x: (x > 0).long().flatten().unique_consecutive() + 1,
    # (since session 23: tests/test_compile_s23_fallbacks.py)
    "one_hot_auto": lambda x: F.one_hot(x.argmax(1)),
    "repeat_interleave": lambda x: x.repeat_interleave((x[:, 0] > 0).long() + 1, dim=0).sum(0),
    "repeat_interleave_0d": lambda x: x.repeat_interleave(descent.tensor(2), dim=0),
}

# name -> (function, words of the fallback warning)
FALLBACK = {
    # (a mask of x's shape replays per count of Trues since session 21: a broadcast one is a
    # copy made outside the ops; tests/test_compile_s21_fallbacks.py)
    "masked_select": (lambda x: x.masked_select(x[:1] > 0) * 2, "boolean mask"),
}


@pytest.mark.parametrize("name", sorted(REPLAY))
def test_replays_bitwise_on_new_data(name):
    c, warned = compare_calls(REPLAY[name], _XS)
    assert c.stats["replays"] == 3 and c.stats["fallbacks"] == 0, (c.stats, warned)


@pytest.mark.parametrize("name", sorted(GUARDED))
def test_data_dependent_shape_is_guarded(name):
    c, warned = compare_calls(GUARDED[name], _XS)
    assert not warned and c.stats["fallbacks"] == 0, (c.stats, warned)


@pytest.mark.parametrize("name", sorted(FALLBACK))
def test_data_dependent_shape_falls_back(name):
    f, words = FALLBACK[name]
    assert_fell_back(*compare_calls(f, _XS), words)


def test_training_step_through_topk_and_sort_values_replays():
    """Gradients through sort/topk/median values follow the recorded indices at replay."""
    w = descent.tensor(np.linspace(-1, 1, 6, dtype=np.float32), requires_grad=True)

    def step(x):
        h = x * w
        loss = (h.topk(2, 1).values ** 2).sum() + h.sort(0).values[0].sum() + h.median()
        loss.backward()
        return loss

    c, _ = compare_calls(step, _XS, leaves=[w])
    assert c.stats["replays"] == 3


def test_nll_loss_with_a_new_target_each_call_replays():
    """nll_loss's index, mask and weights come from the target's values: with the target an
    argument, the recordings of two batches used to differ (the step ran eagerly), and with
    equal first batches the replay froze them. Now every call replays with eager's bits."""
    w = descent.tensor(np.linspace(-1, 1, 6, dtype=np.float32), requires_grad=True)
    targets = [np.array([1, 2, 0, 5]), np.array([1, 2, 0, 5]), np.array([3, -100, 4, 4]),
               np.array([0, 0, 1, 2]), np.array([-100, -100, -100, 1])]

    def step(x, y):
        loss = F.nll_loss(F.log_softmax(x * w, 1), y, weight=descent.arange(1.0, 7.0))
        loss.backward()
        return loss

    c, _ = compare_calls(step, lambda k: (descent.tensor(_XS[k]), descent.tensor(targets[k])),
                         calls=len(targets), leaves=[w])
    assert c.stats["replays"] == 3 and c.stats["fallbacks"] == 0
