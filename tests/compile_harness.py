"""descent.compile against eager over several calls: the loop the compile tests share.

`compare_calls(fn, args)` calls `fn` eagerly and compiled on call k's arguments for each k and
asserts that each call's results are the same (dtype, shape and every value, NaN equal to NaN),
and so are the gradients of the `leaves` and whatever `after()` returns (a generator's next
draws, a buffer). It returns the compiled function and the CompileWarning messages it gave.

The tests pick their data so that calls 0 and 1 see the same values and later calls others:
the recorder keeps a value as a constant when two recordings agree on it, so a value frozen by
mistake shows from call 2 on (the first replay).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

import descent
from descent.compiler import CompileWarning


def flat(out) -> list:
    """The tensors (and Nones) in a result of nested tuples and lists, in order."""
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in flat(o)]
    return [out]


def assert_same(want, got, where: str = "") -> None:
    """want and got (tensors, or nested tuples/lists of them) hold the same values: dtype,
    shape and every element (NaN equal to NaN)."""
    want, got = flat(want), flat(got)
    assert len(want) == len(got), f"{where}: {len(want)} results against {len(got)}"
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        if w is None or g is None:
            assert w is None and g is None, f"{where}, result {i}: {w!r} against {g!r}"
            continue
        w, g = _array(w), _array(g)
        assert w.dtype == g.dtype and w.shape == g.shape, (
            f"{where}, result {i}: {w.dtype}{w.shape} against {g.dtype}{g.shape}"
        )
        assert np.array_equal(w, g, equal_nan=True), f"{where}, result {i}"


def _array(t):
    """t's array (its raw one: .numpy() refuses bfloat16, as PyTorch's)."""
    return t.detach()._data if isinstance(t, descent.Tensor) else np.asarray(t)


def _snapshot(values: list) -> list:
    """Copies of the arrays, taken before the compiled call runs (it may write into memory
    that an eager result shares: a captured buffer, an argument)."""
    return [None if v is None else _array(v).copy() for v in values]


def _as_args(a) -> tuple:
    """A call's arguments: a NumPy array is the one argument, as a new tensor."""
    return (descent.tensor(a),) if isinstance(a, np.ndarray) else tuple(a)


def compare_calls(
    fn: Callable,
    args,
    calls: int | None = None,
    *,
    eager: Callable | None = None,
    leaves: Sequence = (),
    before: Callable | None = None,
    after: Callable | None = None,
):
    """Run `eager` (default `fn`) and `descent.compile(fn)` on each call's arguments and assert
    the same results. Returns (the compiled function, its CompileWarning messages).

    Args:
        fn: the function compiled.
        args: call k's arguments: a function of k giving a tuple of them or a NumPy array
            (the one argument, a new tensor for each side), called once for each side; or a
            list of such, one per call.
        calls: how many calls (default: len(args) for a list, else 6).
        eager: the function run eagerly, where fn works on state of its own (a twin with its
            own buffers or parameters); default fn itself.
        leaves: tensors whose .grad is reset to None before each side and compared after it.
        before: before(k), run before each side (seeding a generator, resetting state).
        after: after(), its tensors compared after each side as well (a generator's draws).
    """
    if callable(args):
        make, calls = args, 6 if calls is None else calls
    else:
        make, calls = args.__getitem__, len(args) if calls is None else calls
    eager = fn if eager is None else eager
    compiled = descent.compile(fn)

    def side(f, k) -> list:
        if before is not None:
            before(k)
        for leaf in leaves:
            leaf.grad = None
        out = flat(f(*_as_args(make(k))))
        if after is not None:
            out += flat(after())
        return _snapshot(out + [leaf.grad for leaf in leaves])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(calls):
            want = side(eager, k)
            got = side(compiled, k)
            assert_same(want, got, f"call {k}")
    warned = [
        str(w.message)
        for w in caught
        if issubclass(w.category, CompileWarning) or "runs eagerly" in str(w.message)
    ]
    return compiled, warned


def assert_replayed(compiled, warned, calls: int = 6) -> None:
    """No warning, no fallback, and every call after the two recordings replayed."""
    assert not warned, warned
    assert compiled.stats["fallbacks"] == 0, compiled.stats
    assert compiled.stats["replays"] == calls - 2, compiled.stats


def assert_fell_back(compiled, warned, words: str) -> None:
    """No replay, one fallback, and a warning whose reason holds `words`."""
    assert compiled.stats["replays"] == 0, (compiled.stats, warned)
    assert compiled.stats["fallbacks"] == 1, (compiled.stats, warned)
    assert any(words in w for w in warned), warned


def no_grad(body: Callable) -> Callable:
    """body run under descent.no_grad()."""

    def fn(*args):
        with descent.no_grad():
            return body(*args)

    return fn
