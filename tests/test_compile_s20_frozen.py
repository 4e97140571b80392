"""descent.compile against eager where a value computed outside the recorded ops was frozen
into the replay, or where two recordings of the same step disagreed for a reason that was no
value of the data (session 20, helper-140: fuzz seeds 20140001-, and the audit of the
`Tensor._wrap(` sites outside ops/ and nn/).

Each case runs six calls (0 and 1 with the same data, 2-5 with new data) compiled and eagerly
and compares them bitwise; each failed before its fix (a wrong value from call 2, or a fallback
where the step now replays).
"""

import warnings

import numpy as np
import pytest

import descent
import descent.nn.functional as F
from compile_harness import assert_same, compare_calls

T = descent
_RNG = np.random.default_rng(20)
_A0 = _RNG.standard_normal((4, 6)).astype(np.float32)
_XS = [_A0, _A0.copy()] + [_RNG.standard_normal((4, 6)).astype(np.float32) * 3 for _ in range(4)]


# ---------------------------------------------------------------------------------------------
# An optimizer's first step lays the parameters out in flat buffers (re-pointing `p._data`), so
# the first call's recording held a returned parameter (W.contiguous() is W, B.flatten() a view
# of it) twice where the second held it once: "the recordings have 22 and 21 items", and the
# step ran eagerly for good (fuzz seeds 20141048, 20141193, 20141251: 13 of 35 such fallbacks).


def _train(opt_name, compiled, ret):
    T.manual_seed(0)
    W = T.nn.Parameter(T.randn(4, 6))
    B = T.nn.Parameter(T.randn(6))
    opt = getattr(T.optim, opt_name)([W, B], lr=0.01)

    def step(x):
        opt.zero_grad()
        v = ret(W, B)
        loss = (v * 1.5).sum() + ((x @ W.t()).tanh() * 0.5).sum() + (B * x[0]).sum()
        loss.backward()
        opt.step()
        return v, loss

    f = T.compile(step) if compiled else step
    got = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a in _XS:
            W.grad = None
            B.grad = None
            got.append([o.detach().clone() for o in f(T.tensor(a))] + [W.detach().clone(),
                                                                        B.detach().clone()])
    return got, (f.stats if compiled else None)


@pytest.mark.parametrize("opt_name", ["Lion", "Adam", "Adagrad"])
@pytest.mark.parametrize("ret", ["contiguous", "flatten", "renorm"])
def test_first_step_returning_a_parameter_replays(opt_name, ret):
    # (Adagrad makes its state in __init__: only its parameters' arrays change at the first
    # step; renorm returns a new tensor, but its recording held W's re-pointed array: seed
    # 20143024)
    pick = {"contiguous": lambda W, B: W.contiguous(),
            "flatten": lambda W, B: B.flatten(),
            "renorm": lambda W, B: W.renorm(2, 0, 1.0)}[ret]  # fmt: skip
    want, _ = _train(opt_name, False, pick)
    got, stats = _train(opt_name, True, pick)
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        assert_same(w, g, f"call {i}")
    assert stats["fallbacks"] == 0 and stats["replays"] >= 3, stats


# ---------------------------------------------------------------------------------------------
# copy_ into a graph tensor keeps its old value in the graph through ZeroGradient, whose
# `masks` parameter is a list of arrays: the signature compared lists with ==, which raised on
# the arrays, so two recordings never agreed (fuzz seeds 20141227, 20141296, 20141592).


def _copy_graph(x):
    v = x * 1
    v.copy_(x.flip(0).sort(1).values)
    return v * 2


def _fill_graph(x):
    v = x * 1
    v.fill_(0.5)
    return v * x


def _masked_copy(x):
    v = x * 1
    v[:, 1:3] = x[:, :2] * 3
    w = x * 1
    w.copy_(v.sort(0).values)
    return w + v


@pytest.mark.parametrize("f", [_copy_graph, _fill_graph, _masked_copy], ids=lambda f: f.__name__)
def test_copy_into_graph_tensor_replays(f):
    leaf_e = T.tensor(_XS[0], requires_grad=True)
    leaf_c = T.tensor(_XS[0], requires_grad=True)

    def run(leaf):
        out = f(leaf)
        (out * 0.25).sum().backward()
        return out

    c = T.compile(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, a in enumerate(_XS):
            for leaf in (leaf_e, leaf_c):
                leaf._data[...] = a
                leaf.grad = None
            want, got = run(leaf_e), c(leaf_c)
            assert_same([want, leaf_e.grad], [got, leaf_c.grad], f"call {i}")
    assert c.stats["fallbacks"] == 0 and c.stats["replays"] == 4, c.stats


# ---------------------------------------------------------------------------------------------
# Random numbers after a re-seed inside the function: manual_seed replaced the default
# generator's NumPy generator, so the recorder's watch on it saw no draw; the draws (poisson's
# and bernoulli's made from x's values too) were frozen, the replay did not re-seed (dropout's
# masks and the generator's state after the call differed from eager's), and the recording
# itself left the generator as the call found it. A generator made or re-seeded inside the
# function, or passed as `generator=`, was not watched at all.

_G = T.Generator().manual_seed(3)


def _seeded(fn):
    def f(x):
        T.manual_seed(0)
        return fn(x)

    return f


def _fresh_generator(x):
    g = T.Generator().manual_seed(0)
    return T.poisson(x.abs(), generator=g) * 2


def _reseed_captured(x):
    _G.manual_seed(0)
    return T.bernoulli(x.sigmoid(), generator=_G) * x


_RANDOM = {
    "poisson": _seeded(lambda x: T.poisson(x.abs()) * 2),
    "bernoulli": _seeded(lambda x: T.bernoulli(x.sigmoid()) * x),
    "multinomial": _seeded(lambda x: T.multinomial(x.softmax(-1), 2) * 2),
    "normal": _seeded(lambda x: T.normal(x, 1.0) * 2),
    "dropout": _seeded(lambda x: F.dropout(x, 0.5) * 2),
    "randn": _seeded(lambda x: T.randn(4, 6) * x),
    "seed_only": _seeded(lambda x: x * 2),
    "fresh_generator": _fresh_generator,
    "reseed_captured": _reseed_captured,
}


@pytest.mark.parametrize("name", sorted(_RANDOM))
def test_random_after_a_seed_inside_the_function(name):
    f = _RANDOM[name]
    # (after: the generator where the call left it)
    compare_calls(f, _XS, before=lambda k: T.manual_seed(100 + k), after=lambda: T.rand(3))


def test_manual_seed_in_place_draws_as_a_new_generator():
    g = T.Generator().manual_seed(5)
    rng = g._rng
    T.randn(3, generator=g)
    g.manual_seed(11)
    assert g._rng is rng
    want = np.random.Generator(np.random.PCG64(11)).standard_normal(4)
    assert np.array_equal(g._rng.standard_normal(4), want)
    assert g.initial_seed() == 11


# ---------------------------------------------------------------------------------------------
# A NumPy ufunc descent has no op for (`np.cbrt(t)`, `np.spacing(t)`) ran on the arrays in
# Tensor.__array_ufunc__ and wrapped the result: a constant of the recording, returned by the
# replay from the third call on. Now through untracked.computed. (np.frexp, np.nextafter run
# descent's ops and replayed already.)

_UFUNCS = {
    "cbrt": lambda x: np.cbrt(x) * 2,
    "spacing": lambda x: np.spacing(x) * x,
    "modf": lambda x: np.modf(x * 3)[0] * x,
    "ldexp_kw": lambda x: np.ldexp(x, 2, dtype=np.float64) * 2,
}


@pytest.mark.parametrize("name", sorted(_UFUNCS))
def test_numpy_ufunc_without_an_op_replays(name):
    f = _UFUNCS[name]
    c, _ = compare_calls(f, _XS)
    assert c.stats["replays"] == 4, c.stats


# ---------------------------------------------------------------------------------------------
# native_dropout's kept-positions mask was `mask != 0` on the arrays: a constant that two
# recordings never shared (each draws its own mask), so the step always ran eagerly.


def test_native_dropout_mask_replays():
    def f(x):
        y, keep = T.native_dropout(x, 0.5, True)
        return y * 2, keep.float() * x, keep

    c, _ = compare_calls(f, _XS, before=lambda k: T.manual_seed(10 + k))
    assert c.stats["replays"] == 4, c.stats


# ---------------------------------------------------------------------------------------------
# A sparse tensor's indices and values have nnz rows, and nnz depends on the values of the
# dense tensor it was made from. The accessors wrapped arrays inside the storage (constants of
# the recording: a replay returned the first call's indices) or replayed fixed shapes (a
# broadcast error once nnz changed). They now read nnz through a Tensor, so such a function
# runs eagerly; products and to_dense() still replay.

_SPARSE = {
    "coo_indices": lambda x: x.relu().to_sparse().indices() * 2,
    "coo_values": lambda x: x.relu().to_sparse().values() * 2,
    "coo__values": lambda x: x.relu().to_sparse()._values() * 2,
    "coo_nnz": lambda x: x.relu().to_sparse()._nnz() * x,
    "csr_values": lambda x: x.to_sparse_csr().values() * 2,
    "csr_crow": lambda x: x.relu().to_sparse_csr().crow_indices() * 2,
    "csc_values": lambda x: x.relu().to_sparse_csc().values() * 2,
    "bsr_values": lambda x: x[:, :4].relu().to_sparse_bsr((2, 2)).values() * 2,
}


@pytest.mark.parametrize("name", sorted(_SPARSE))
def test_sparse_accessors_do_not_freeze_nnz(name):
    f = _SPARSE[name]
    compare_calls(f, _XS)


@pytest.mark.parametrize("name", ["mm", "to_dense"])
def test_sparse_products_still_replay(name):
    f = {"mm": lambda x: (x.relu().to_sparse_csr() @ x.t()) * 2,
         "to_dense": lambda x: x.relu().to_sparse().to_dense() * 2}[name]  # fmt: skip
    c, _ = compare_calls(f, _XS)
    assert c.stats["replays"] == 4, c.stats


# ---------------------------------------------------------------------------------------------
# Arrays an autograd Function's forward computes from the values (Nextafter's `equal`,
# NanToZero's not-nan mask) were compared between the two recordings as the op's parameters:
# a training step whose data moved them (a new batch on every call; fuzz seed 20144438, where
# the optimizer moved W) ran eagerly for good. They are saved slots now (forward recomputes
# them on each replay).

_ROUNDED = [np.round(a * 2) / 2 for a in _XS[2:]]  # ties between x and other in nextafter
_ROUNDED = [_ROUNDED[0] * 1] + _ROUNDED  # five calls, each with its own data


@pytest.mark.parametrize("name", ["nextafter", "nansum", "nanmean"])
def test_forward_computed_masks_replay_on_new_data(name):
    fn = {"nextafter": lambda w, x: T.nextafter(w, x.flip(0)),
          "nansum": lambda w, x: T.nansum((w * x).log(), 1),
          "nanmean": lambda w, x: T.nanmean((w - x).sqrt(), 0)}[name]  # fmt: skip
    got = []
    for compiled in (False, True):
        w = T.tensor(_ROUNDED[0], requires_grad=True)

        def step(x, w=w):
            y = fn(w, x)
            (y * 0.5).sum().backward()
            return y * 1

        f = T.compile(step) if compiled else step
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, a in enumerate(_ROUNDED):
                w._data[...] = a
                w.grad = None
                out.append((f(T.tensor(_ROUNDED[(i + 2) % 5])), w.grad.clone()))
        got.append(out)
    for i, ((y0, g0), (y1, g1)) in enumerate(zip(*got, strict=True)):
        assert_same([y0, g0], [y1, g1], f"call {i}")
    assert f.stats["replays"] == 3 and f.stats["fallbacks"] == 0, f.stats


# ---------------------------------------------------------------------------------------------
# sort/argsort/topk of a 0-d tensor returned `Tensor._wrap(zeros((), int64))`: a constant which,
# returned by the function, the recorder kept as a captured tensor named by identity (a new one
# each call), so the two recordings never agreed (fuzz seed 20143063). Now untracked.computed.


@pytest.mark.parametrize("name", ["argsort", "sort", "topk"])
def test_zero_dim_sort_index_returned_replays(name):
    f = {"argsort": lambda x: (x.argmax().argsort(-1), x * 2),
         "sort": lambda x: x.sum().sort(),
         "topk": lambda x: x.sum().topk(1)}[name]  # fmt: skip
    c, _ = compare_calls(f, _XS)
    assert c.stats["replays"] == 4, c.stats
