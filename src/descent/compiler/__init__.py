"""`descent.compile`: record a training (or inference) step once, replay it without a graph.

    step = descent.compile(step)          # or @descent.compile above `def step(...)`
    for x, y in batches:
        loss = step(x, y)                 # forward, backward, clipping, optimizer.step()

How it works (docs/compile.md has the whole story):

1. The first two calls with a new key (the input tensors' shapes, dtypes and requires_grad,
   the other arguments' values, grad mode, the captured modules' train/eval flags) run
   eagerly while `recorder.Recorder` writes down every op, the backward pass and the calls into
   optimizers, clipping and dropout as a flat program over array slots.
2. The two recordings must agree (same instructions, same constants): a constant that changed
   between them was computed from the data outside the ops, which a replay would freeze, so the
   function falls back to eager instead, with a one-time warning that says why. So does
   anything the recorder refuses (`.item()` inside the function, a random draw outside dropout,
   an in-place change to captured state, `create_graph`, tensor hooks), and anomaly mode or
   another op hook being active (the explain tools need eager ops: they run, and say so).
3. From the third call on, `program.Program` replays: the ops' own array code (bitwise eager's
   numbers), the backward pass without Tensors or a heap, the optimizer's real `step()`, with
   intermediates dropped at their last use and pooled output buffers reused across calls.

The cache holds `cache_size` programs (8 by default, least recently used evicted); a new
shape records again. Returned tensors carry no graph when the function ran its own backward.

Threads (docs/compile.md, "Threads"): recording is per thread (`attach.py`: another thread's
ops are not the call's), and calls of one compiled function run one at a time (its lock: a
replay reuses its program's buffers); different compiled functions run at once.
"""

from __future__ import annotations

import functools
import operator
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import autograd as _autograd
from .. import autograd_graph as _graph
from .. import backend, hooks
from .. import blas as _blas
from .. import creation_random as _random
from ..autograd import _bump_family
from ..autograd import _is_grad_enabled as is_grad_enabled
from ..nn.module import Module
from ..nn.module_hooks import VERSION as _HOOKS_VERSION
from ..nn.module_hooks import modules_hooked
from ..ops import out_arg as _out_arg
from ..optim import clip as _clip
from ..optim.lr_scheduler import LRScheduler
from ..optim.optimizer import Optimizer
from ..optim.optimizer_hooks import has_step_hooks
from ..tensor import Tensor
from . import attach as _attach
from . import closures as _closures
from . import dynamic_sizes as _dynamic_sizes
from . import signature as _sig
from .mask_read import GuardFailed
from .program import Program
from .recorder import Backward, Recorder, Unrecordable, _find_dropout_modules, _Out

__all__ = ["compile", "CompiledFunction", "CompileWarning", "Unrecordable"]

_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class CompileWarning(UserWarning):
    """A compiled function runs eagerly (the message says why); shown once per reason."""


class _Entry:
    """One cache entry: a first recording, a program, or a fallback reason."""

    __slots__ = ("first", "program", "reason", "warm", "bumps", "alts", "misses", "resized",
                 "free_ref", "dyn_ref", "dyn_why")  # fmt: skip

    def __init__(self) -> None:
        self.first = None  # (Recording, signature) of the first call
        # True while `first` is a recording whose optimizer step was a first one (see _record)
        self.warm = False
        self.program: Program | None = None
        self.reason: str | None = None
        # the argument positions whose versions a replay raises, one per write into the
        # caller's tensor (recorder.Recording.arg_bumps), as eager's writes did
        self.bumps: tuple = ()
        # (program, bumps) recorded for other counts of Trues of the call's x[mask] reads
        # (mask_read.py): tried in turn when `program`'s guard fails; `first` is then the
        # first recording of the counts being recorded
        self.alts: list = []
        self.misses = 0  # recordings of a count other than the previous recording's
        # (argument position, shape): out= arguments the call resizes (Recording.resized)
        self.resized: tuple = ()
        # the last recording with guards whose result only leaves the call, as (free
        # positions, their sizes, the other guards' sizes, signature without the free sizes)
        self.free_ref = None
        # the last recording with guards, for compiler/dynamic_sizes.py, and why the last
        # pair of them did not become a program for every size (in the fallback's warning)
        self.dyn_ref = None
        self.dyn_why: str | None = None


class CompiledFunction:
    """`fn` recorded and replayed (see the module docstring). Call it like `fn`.

    Attributes:
        fn: the original function.
        cache_size: how many programs (input signatures) are kept.
        stats: counters: calls, eager calls, recordings, replays, fallbacks.
    """

    def __init__(self, fn: Callable, *, cache_size: int = 8, fullgraph: bool = False,
                 pool: bool = True, fuse: bool = True, exact: bool = False) -> None:  # fmt: skip
        if cache_size < 1:
            raise ValueError(f"descent.compile: cache_size must be >= 1, got {cache_size}")
        self.fn = fn
        self.cache_size = int(cache_size)
        self.fullgraph = bool(fullgraph)
        self.pool = bool(pool)
        self.fuse = bool(fuse)
        self.exact = bool(exact)
        self._cache: OrderedDict[Any, _Entry] = OrderedDict()
        self._warned: set[str] = set()
        self._watched_cache: tuple | None = None  # (referents, watched): see _watched
        # (hook VERSION, watched) of the last hook scan that found none on watched["modules"]
        self._hooks_seen: tuple = (-1, None)
        self.stats = dict(calls=0, eager=0, recordings=0, replays=0, fallbacks=0)
        self._lock = threading.RLock()  # (re-entrant: a call from its own recording runs eagerly)
        functools.update_wrapper(self, fn)
        self.name = getattr(fn, "__qualname__", repr(fn))  # in warnings

    # -- the call --------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        # One call at a time per compiled function (docs/compile.md, "Threads"): a replay
        # writes into its program's pooled buffers and op objects, a recording into the cache.
        lock = self._lock
        lock.acquire()  # (not `with`: two method calls fewer per call)
        try:
            return self._call(args, kwargs)
        finally:
            lock.release()

    def _call(self, args, kwargs):
        self.stats["calls"] += 1
        if hooks._forward_hooks or hooks._backward_hooks or hooks._pass_hooks:
            if _attach.current() is not None:
                # called by a function that this thread is recording (a compiled model inside
                # a compiled step): its ops belong to that recording
                return self._eager(args, kwargs)
            if _attach.foreign_hooks():  # (not only other threads' recordings)
                self._warn(
                    "op hooks are active (anomaly mode, an explain tool or a profiler): running "
                    "eagerly so that they see every op"
                )
                return self._eager(args, kwargs)
        if _autograd._saved_hooks is not None and _graph._active_saved_hooks() is not None:
            self._warn(
                "saved_tensors_hooks are active (descent.autograd.graph): running eagerly so that "
                "they pack and unpack every saved tensor"
            )
            return self._eager(args, kwargs)
        tensors: list = []
        if kwargs:
            key_args = _key_of((args, kwargs), tensors)
        else:  # the common call, f(x, y): no nesting to walk
            key_args = ("args", *[_key_of(a, tensors) for a in args])
        watched = self._watched(args, kwargs)
        # The captured modules' hooks: scanned only when a hook registry changed since the
        # last scan found none (nn/module_hooks.VERSION) or the captured objects changed.
        hooks_seen = self._hooks_seen
        if hooks_seen[0] != _HOOKS_VERSION[0] or hooks_seen[1] is not watched:
            version = _HOOKS_VERSION[0]
            hooked = modules_hooked(watched["modules"])
            if hooked:
                self._warn(
                    "a captured module has forward hooks or backward hooks (register_forward_"
                    "hook / _pre_hook, register_full_backward_hook / _pre_hook): running "
                    "eagerly so that they run on every call"
                )
                return self._eager(args, kwargs)
            if hooked is False:  # (None: a registry that does not count its writes)
                self._hooks_seen = (version, watched)
        if any(has_step_hooks(o) for o in watched["optimizers"] if isinstance(o, Optimizer)):
            self._warn(
                "an optimizer step hook is registered (register_step_pre_hook / _post_hook or "
                "a global one): running eagerly so that it runs on every call"
            )
            return self._eager(args, kwargs)
        # Whether each captured leaf has a .grad decides whether backward stores or adds; its
        # requires_grad, whether it gets one at all (a layer frozen between calls: before
        # 2026-12-05 the replay kept computing and applying the frozen parameter's update).
        # (`_grad`, not the property: its non-leaf check costs ~0.5 us a leaf, and read on a
        # captured non-leaf it warned on every call that .grad of a non-leaf is not filled)
        grads = tuple((t._grad is None, t._rg) for t in watched["leaves"])
        # The BLAS too (descent.backends.set_blas): a switch records anew, so that the program's
        # layout probes (linear_t, nt_product) are made on the BLAS that runs it.
        key = (is_grad_enabled(), key_args, tuple(m.training for m in watched["modules"]), grads,
               _blas.blas())  # fmt: skip
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
            if entry.reason is not None:
                return self._eager(args, kwargs)
            if entry.program is not None:
                why = entry.program.guard_live()
                if why is None:
                    _closures.current.tensors = tensors  # (a closure over them: closures.py)
                    arrays = [t._data for t in tensors]
                    if entry.resized and not _resize_args(entry.resized, tensors, arrays):
                        return self._eager(args, kwargs)
                    try:
                        out = entry.program.run(arrays)
                    except GuardFailed:  # x[mask]'s count of Trues is not the recorded one
                        out = self._other_count(entry, tensors)
                        if out is _NONE:
                            if entry.reason is not None:
                                return self._eager(args, kwargs)
                            return self._record(entry, args, kwargs, tensors, watched)
                    self.stats["replays"] += 1
                    for i in entry.bumps:  # (a write into the caller's tensor: eager's version)
                        _bump_family(tensors[i])
                    return out
                self._cache.pop(key)  # a captured tensor changed shape: record again
                _release(entry)
                entry = None
        if entry is None:
            if self._cache and _error_on_recompile():
                from .._dynamo.exc import RecompileError  # noqa: PLC0415

                raise RecompileError(
                    f"descent.compile({self.name}): a new input "
                    f"signature would record again (shapes, dtypes, grad mode or train/eval "
                    f"changed) and descent._dynamo.config.error_on_recompile is set; unset it "
                    f"or keep the inputs' shapes and dtypes fixed"
                )
            entry = _Entry()
            self._cache[key] = entry
            while len(self._cache) > self.cache_size:
                _, old = self._cache.popitem(last=False)
                _release(old)
        return self._record(entry, args, kwargs, tensors, watched)

    def _other_count(self, entry: _Entry, tensors: list):
        """After entry.program's guard failed (x[mask] met another count of Trues, which no
        instruction before it can have acted on: recorder.py): the result of another program
        of the entry whose counts fit (it becomes the entry's program), or _NONE: this call is
        recorded for its counts, or, beyond `_MAX_COUNTS` programs, the entry runs eagerly."""
        arrays = [t._data for t in tensors]
        for k, (prog, bumps) in enumerate(entry.alts):
            if prog.guard_live() is not None:
                continue
            try:
                out = prog.run(arrays)
            except GuardFailed:
                continue
            entry.alts[k] = (entry.program, entry.bumps)
            entry.program, entry.bumps = prog, bumps
            return out
        if len(entry.alts) + 1 >= _MAX_COUNTS:
            entry.reason = _count_reason(entry)
            _release(entry)
            self._fallback(entry.reason)
        return _NONE

    def _record(self, entry: _Entry, args, kwargs, tensors, watched):
        self.stats["recordings"] += 1
        rec = Recorder(tensors, watched)
        sites = list(watched["clip_sites"]) + _find_dropout_modules(_dropout_mask())
        # The captured modules' state, to catch in-place changes no op or optimizer made
        # (a BatchNorm's running statistics are updated on raw arrays).
        state = [(t, t._data.copy()) for m in watched["modules"] for t in _state_of(m)]
        rec.snapshot = functools.partial(_python_state, watched)
        n_state = _n_state(watched)
        on_rng = functools.partial(_on_rng, rec)  # (rng_observers: every thread's)
        _random.rng_observers.append(on_rng)
        try:
            out = rec.run(self.fn, args, kwargs, watched["optimizers"], sites)
        finally:
            _random.rng_observers.remove(on_rng)
        # An optimizer's first step makes its state and lays its parameters out in flat
        # buffers (re-pointing each `p._data`), so that call's recording may hold a parameter
        # twice (a returned `W.flatten()`) where later calls hold it once.
        warm = _n_state(watched) != n_state
        touched = set(rec.written_ids)  # (tensors a recorded Write changed: recorder.py)
        for ins in rec.rec.program:
            opt = getattr(ins.fn, "__self__", None) if getattr(ins, "kind", "") == "step" else None
            if isinstance(opt, Optimizer):
                touched.update(id(p) for g in opt.param_groups for p in g["params"])
        for t, before in state:
            xp = backend.get_array_module(t._data)
            if id(t) not in touched and not xp.array_equal(t._data, before, equal_nan=True):
                rec.fail(
                    f"an in-place change to a captured tensor of shape {tuple(t.shape)} that is "
                    "not an optimizer's update (e.g. a BatchNorm running statistic)"
                )
        recording = rec.finish(touched)
        reason = rec.reason
        # A result that needs autograd's graph (a compiled model's forward in training) is no
        # graph break in PyTorch: its fullgraph=True compiles it. Here it runs eagerly, with a
        # warning but never Unrecordable, so that `torch.compile(model, fullgraph=True)` trains.
        graph_break = reason is not None
        if reason is None:
            reason = _check_result(recording)
        if (
            reason is None
            and recording.guards
            and (
                self._free_program(entry, rec, recording, warm)
                or _dynamic_sizes.dynamic_program(self, entry, rec, recording, warm)
            )
        ):
            entry.first = None
            return out
        if reason is None:
            sig = _sig.signature(recording)
            if entry.first is not None and entry.first[0].guards != recording.guards:
                entry.first = None  # (another count of Trues: compared with its own kind)
                entry.misses += 1
                if entry.misses > 2 * _MAX_COUNTS:
                    reason = _count_reason(entry)
        if reason is None:
            if entry.first is None:
                entry.first = (recording, sig)
                entry.warm = warm
                return out
            same = _sig.same(entry.first[1], sig)
            if not same and entry.warm:
                # The first recording ran an optimizer's first step (above): compare this one
                # with the next call's instead of falling back.
                entry.first = (recording, sig)
                entry.warm = warm
                return out
            if not same:
                graph_break = True
                reason = (
                    "two recordings of the same input shapes differ (a value computed from the "
                    "data outside descent's ops, or Python control flow that depends on it): "
                    + _sig.first_difference(entry.first[1], sig)
                )
        if reason is not None:
            entry.reason = reason
            entry.first = None
            _release(entry)
            self._fallback(reason, graph_break)
            return out
        entry.first = None
        if entry.program is not None:  # (a program for other counts of x[mask]'s Trues)
            entry.alts.insert(0, (entry.program, entry.bumps))
        entry.program = Program(
            recording, len(tensors), use_pool=self.pool, fuse=self.fuse, exact=self.exact
        )
        entry.bumps = tuple(recording.arg_bumps)
        entry.resized = tuple(recording.resized)
        return out

    def _free_program(self, entry: _Entry, rec: Recorder, recording, warm: bool) -> bool:
        """Whether `recording` became the entry's program with its free guards unchecked
        (compiler/free_guards.py): an earlier recording of the entry with other sizes of the
        same free guards (and the same sizes of the others) has its signature."""
        from . import free_guards as _free  # noqa: PLC0415

        free = _free.free_guards(rec, recording)
        if not free:
            return False
        fixed, loose = _free.guard_sizes(recording, free)
        ref = entry.free_ref
        entry.free_ref = None
        if warm:
            return False
        sig = _sig.signature(recording, free)
        if ref is None or ref[0] != free or ref[2] != fixed or ref[1] == loose or \
                not _sig.same(ref[3], sig):  # fmt: skip
            entry.free_ref = (free, loose, fixed, sig)
            return False
        _free.make_free(recording, free)
        if entry.program is not None:
            entry.alts.insert(0, (entry.program, entry.bumps))
        entry.program = Program(
            recording, len(rec.args), use_pool=self.pool, fuse=self.fuse, exact=self.exact
        )
        entry.bumps = tuple(recording.arg_bumps)
        entry.resized = tuple(recording.resized)
        return True

    def _watched(self, args, kwargs) -> dict:
        """`_watched(fn, ...)`, recomputed only when an object it starts from changed."""
        refs = _referents(self.fn, args, kwargs)
        cached = self._watched_cache
        if cached is not None and len(cached[0]) == len(refs):
            if all(map(operator.is_, cached[0], refs)):
                return cached[1]
        watched = _watched(self.fn, args, kwargs)
        self._watched_cache = (refs, watched)
        return watched

    def _eager(self, args, kwargs):
        self.stats["eager"] += 1
        return self.fn(*args, **kwargs)

    def _fallback(self, reason: str, graph_break: bool = True) -> None:
        self.stats["fallbacks"] += 1
        if self.fullgraph and graph_break:
            raise Unrecordable(f"descent.compile(fullgraph=True): {reason}")
        self._warn(reason)

    def _warn(self, reason: str) -> None:
        if reason in self._warned:
            return
        self._warned.add(reason)
        warnings.warn(f"descent.compile({self.name}) runs eagerly: {reason}", CompileWarning,
                      stacklevel=3)  # fmt: skip

    # -- introspection ---------------------------------------------------------------------
    def programs(self) -> list[Program]:
        """The recorded programs in the cache (least recently used first; an entry's programs
        for other counts of x[mask]'s Trues before its current one)."""
        return [p for e in self._cache.values() if e.program is not None
                for p in [*(a for a, _ in reversed(e.alts)), e.program]]  # fmt: skip

    def reset(self) -> None:
        """Forget every recording (the next calls record again)."""
        with self._lock:  # (not while another thread's call replays one)
            for e in self._cache.values():
                _release(e)
            self._cache.clear()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()  # (copy.deepcopy of a compiled function: a lock of its own)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __get__(self, obj, objtype=None):
        # @descent.compile on a method: bind per instance, keeping one cache per instance.
        if obj is None:
            return self
        bound = obj.__dict__.get("_descent_compiled", {}).get(id(self))
        if bound is None:
            bound = CompiledFunction(self.fn.__get__(obj, objtype), cache_size=self.cache_size,
                                     fullgraph=self.fullgraph, pool=self.pool,
                                     fuse=self.fuse)  # fmt: skip
            obj.__dict__.setdefault("_descent_compiled", {})[id(self)] = bound
        return bound


def compile(  # noqa: A001 - PyTorch's name: torch.compile
    model: Callable | None = None,
    *,
    fullgraph: bool = False,
    dynamic: bool | None = None,
    backend: str | Callable | None = None,
    mode: str | None = None,
    options: dict | None = None,
    name: str | None = None,
    disable: bool = False,
    recompile_limit: int | None = None,
    isolate_recompiles: bool = False,
    shapes_spec: Any = None,
    cache_size: int | None = None,
) -> Any:
    """Record `fn` on its first calls and replay the recording on later calls (see the module
    docstring). `torch.compile`'s signature; usable as `@compile` and `@compile(...)`.

    Args:
        model: the function (a training step: forward, loss, backward, clipping, optimizer step; or
            an inference function). A Module is compiled through its `forward`.
        fullgraph: raise `Unrecordable` instead of falling back to eager where PyTorch
            would see a graph break (`.item()`, data-dependent control flow, ...); a result
            that needs autograd's graph (a compiled model's forward in training) still runs
            eagerly with a warning, as PyTorch's fullgraph=True compiles it.
        dynamic: accepted (PyTorch's); shapes are always specialised: a new shape records again.
        backend: a name or a callable, as PyTorch's (None: `get_default_backend()`).
            descent has one compiler, its recorder; "eager" and "aot_eager" (PyTorch's
            backends that run the captured graph with the eager kernels) replay without the
            fused kernels (`options={"fuse": False}`), every other name or callable replays
            with them (a callable is not called: there is no FX graph to hand it).
        mode: accepted: None, "default", "reduce-overhead", "max-autotune"(-no-cudagraphs).
        options: {"pool": False} turns off the buffer pool, {"fuse": False} the fused
            kernels; {"exact": True} keeps only the kernels that give eager's bits (today
            every replay kernel does: `compiler/replay_kernels.py`); {"cache_size": n} as
            cache_size.
        name: accepted (PyTorch's name for the compiled region in its logs).
        disable: return `fn` itself (eager); so does `descent._dynamo.config.disable`.
        recompile_limit: PyTorch 2.13's per-function limit of recordings: programs kept per
            function (one per input signature), LRU; by default
            `descent._dynamo.config.recompile_limit` (8; PyTorch's `cache_size_limit`).
        isolate_recompiles, shapes_spec: accepted (descent's caches are per function and its
            shapes always specialised).
        cache_size: descent's older name for recompile_limit.

    Returns:
        A `CompiledFunction` (or a decorator when `fn` is None).
    """
    del dynamic, name, isolate_recompiles, shapes_spec
    fn = model
    if backend is None:
        backend = _default_backend[0]
    if not (isinstance(backend, str) or callable(backend)):
        raise TypeError(f"descent.compile: backend must be a string or callable, got "
                        f"{type(backend)}")  # fmt: skip
    if recompile_limit is not None:
        cache_size = recompile_limit
    if mode not in _MODES:
        raise ValueError(f"descent.compile: unknown mode {mode!r}; one of {_MODES}")
    opts = dict(options or {})
    unknown = set(opts) - {"pool", "fuse", "exact", "cache_size"}
    if unknown:
        raise ValueError(f"descent.compile: unknown options {sorted(unknown)}")

    from .._dynamo import config as dynamo_config  # noqa: PLC0415 - torch._dynamo.config

    if cache_size is None:
        cache_size = dynamo_config.recompile_limit
    disable = disable or dynamo_config.disable
    unfused = isinstance(backend, str) and backend in ("eager", "aot_eager")
    kw = dict(cache_size=opts.get("cache_size", cache_size), fullgraph=fullgraph,
              pool=opts.get("pool", True), fuse=opts.get("fuse", not unfused),
              exact=opts.get("exact", False))  # fmt: skip

    def wrap(f):
        if disable:
            return f
        if isinstance(f, Module):
            # PyTorch's OptimizedModule: the original stays eager, the wrapper's forward is
            # the compiled call of the original (its hooks included), its one child
            # `_orig_mod` (state_dict keys "_orig_mod.<name>"); Module.compile() is in place.
            from .optimized_module import OptimizedModule  # noqa: PLC0415

            compiled = CompiledFunction(f.__call__, **kw)
            compiled.name = f"{type(f).__name__}.forward"
            return OptimizedModule(f, compiled)
        return CompiledFunction(f, **kw)

    return wrap if fn is None else wrap(fn)


_default_backend: list = ["inductor"]  # PyTorch's default name (torch.compiler)


def set_default_backend(backend: str | Callable | None) -> None:
    """The backend `compile` uses when none is given (torch.compiler.set_default_backend);
    None resets it to "inductor". See `compile`'s `backend` for what a name changes here."""
    if backend is None:
        backend = "inductor"
    elif not (isinstance(backend, str) or callable(backend)):
        raise TypeError(f"backend must be a string or callable, got {type(backend)}")
    _default_backend[0] = backend


def get_default_backend() -> str | Callable:
    """The backend `compile` uses when none is given (torch.compiler.get_default_backend)."""
    return _default_backend[0]


def list_backends(exclude_tags=("debug", "experimental")) -> list[str]:
    """The backend names with a meaning of their own here (torch.compiler.list_backends):
    "inductor" (the replay with fused kernels) and, unless `exclude_tags` is given empty,
    "eager" and "aot_eager" (the replay with eager's kernels, which PyTorch tags debug).
    Any other name is accepted by `compile` and replays as "inductor"."""
    names = ["inductor"]
    if not exclude_tags or "debug" not in exclude_tags:
        names += ["aot_eager", "eager"]
    return sorted(names)


# -- helpers ---------------------------------------------------------------------------------


_NONE = object()
#: programs kept per input signature for the counts of Trues of its x[mask] reads
_MAX_COUNTS = 4


def _resize_args(resized: tuple, tensors: list, arrays: list) -> bool:
    """Before a replay: each out= argument the recorded call resized, resized as eager's out=
    does (out_arg.resize_out), its new array appended to `arrays` (the recorder's slot for
    it). False when a new array shares memory with an argument's (the caller's tensor had room
    in its storage: resized in place, which the recording did not see); the call then runs
    eagerly, with eager's warning for the resize it finds done."""
    done = []
    for pos, shape in resized:
        t = tensors[pos]
        done.append((t._data.shape, t._data.size, shape))
        _out_arg.resize_out(t, shape)
        arrays.append(t._data)
    n = len(tensors)
    if all(not np.may_share_memory(new, a) for new in arrays[n:] for a in arrays[:n]):
        return True
    for old_shape, size, shape in done:  # (eager's out= finds the new shape: its warning)
        if size:
            warnings.warn(_out_arg._resize_message(old_shape, shape), UserWarning, stacklevel=4)
    return False


def _count_reason(entry: _Entry) -> str:
    return (
        "x[mask]'s count of Trues keeps changing, or another shape that depends on the values "
        "(nonzero, where(condition), unique, unique_consecutive, bincount): a program is "
        f"recorded per count, its result's shape, up to {_MAX_COUNTS}; {entry.misses} "
        "recordings met a new count: running eagerly"
        + (f" (one program for every size: {entry.dyn_why})" if entry.dyn_why else "")
    )


def _release(entry: _Entry) -> None:
    """Release an entry's programs (their pool buffers)."""
    for prog in [entry.program, *(a for a, _ in entry.alts)]:
        if prog is not None:
            prog.release()
    entry.program, entry.alts = None, []


def _error_on_recompile() -> bool:
    from .._dynamo import config as dynamo_config  # noqa: PLC0415

    return bool(dynamo_config.error_on_recompile)


def _key_of(obj, tensors: list):
    """A hashable key for the arguments; appends their tensors to `tensors` in order. (List
    comprehensions, not generators, and the tensor case first: this runs on every call.)"""
    if type(obj) is Tensor or isinstance(obj, Tensor):
        tensors.append(obj)
        d = obj._data
        rg = obj._rg
        # Contiguity too: a view instruction rebuilds views on the argument's memory layout.
        # (the dtype object itself: hashable, and .str costs 0.4 us per tensor and call)
        return ("T", d.shape, d.dtype, rg, rg and obj._grad is None, type(d).__name__,
                d.flags.c_contiguous)  # fmt: skip
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, *[_key_of(o, tensors) for o in obj])
    if isinstance(obj, dict):
        return ("dict", *[(k, _key_of(v, tensors)) for k, v in obj.items()])
    if isinstance(obj, np.ndarray):
        return ("A", obj.shape, obj.dtype.str, id(obj))  # a NumPy argument: by identity
    try:
        hash(obj)
        return obj
    except TypeError:
        return ("id", id(obj))


def _referents(fn, args, kwargs) -> list:
    """The objects `_watched` starts from, one level deep: the non-tensor arguments, the bound
    object and its attributes, the closure's cells and the globals the code names. When all
    are the same objects as last call, the captured modules and optimizers are too."""
    inner = getattr(fn, "__func__", fn)
    refs: list = [a for a in args if not isinstance(a, Tensor)]
    refs += [v for v in kwargs.values() if not isinstance(v, Tensor)]
    self_obj = getattr(fn, "__self__", None)
    refs.append(self_obj)
    d = getattr(self_obj, "__dict__", None)
    if d is not None:
        refs += list(d.values())
    for cell in getattr(inner, "__closure__", None) or ():
        try:
            refs.append(cell.cell_contents)
        except ValueError:  # an empty cell
            refs.append(None)
    code = getattr(inner, "__code__", None)
    if code is not None:
        glob = inner.__globals__
        refs += [glob.get(n) for n in code.co_names]
    return refs


def _on_rng(rec: Recorder, gen, what: str) -> None:
    """A generator re-seeded, or one passed as `generator=` handed out to draw, while recording
    (creation_random.rng_observers): a replay would do neither, so the call runs eagerly.
    Draws from the default generator are counted by the recorder itself (`_RngWatch`)."""
    if _attach.current() is not rec:  # another thread's generator use, not the call's
        return
    if rec.in_call or rec.in_dropout or rec.in_pass:
        # a recorded call (dropout's mask, an optimizer's step) that replay runs again, or a
        # backward pass (checkpoint's recomputation sets the state and puts it back)
        return
    if what == "seed":
        rec.fail("a generator re-seeded inside the function (manual_seed, set_rng_state, "
                 "Generator.manual_seed / set_state): a replay would not re-seed it, and would "
                 "keep the recording's random numbers; seed outside the compiled function")
    elif gen is not _random._default_generator:
        rec.fail("random numbers drawn from a descent.Generator (generator=) inside the "
                 "function: replay could not draw them in eager's order")


def _n_state(watched) -> tuple:
    """How many parameters the captured optimizers hold state for (grows at a first step), and
    the parameters' arrays (a first step re-points them into flat buffers; Adagrad makes its
    state in __init__)."""
    opts = [o for o in watched["optimizers"] if isinstance(o, Optimizer)]
    return (sum(len(o.state) for o in opts),
            [id(p._data) for o in opts for g in o.param_groups for p in g["params"]])


def _watched(fn, args, kwargs) -> dict:
    """Optimizers, modules and clip-function bindings that `fn` can reach (one level deep):
    its arguments, closure, bound object and the globals its code names."""
    found: list = []
    seen: set[int] = set()

    def visit(obj, depth: int) -> None:
        if id(obj) in seen or depth > 2:
            return
        seen.add(id(obj))
        if isinstance(obj, (Optimizer, Module, LRScheduler)) or (
            isinstance(obj, Tensor) and obj._rg
        ):
            found.append(obj)
            if not isinstance(obj, Optimizer):
                return
        inner_opts = getattr(obj, "optimizers", None)  # a composite: optim.MuonWithAdamW
        if isinstance(inner_opts, list) and any(isinstance(o, Optimizer) for o in inner_opts):
            for o in inner_opts:
                visit(o, depth)
            return
        if isinstance(obj, (list, tuple)):
            for o in obj[:64]:
                visit(o, depth + 1)
        elif isinstance(obj, dict):
            for o in list(obj.values())[:64]:
                visit(o, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type) and depth < 2:
            if type(obj).__module__ not in ("builtins",) and not callable(obj):
                for o in list(vars(obj).values())[:64]:
                    visit(o, depth + 1)

    inner = getattr(fn, "__func__", fn)
    for a in list(args) + list(kwargs.values()):
        visit(a, 1)
    self_obj = getattr(fn, "__self__", None)
    if self_obj is not None:
        visit(self_obj, 0)
    code = getattr(inner, "__code__", None)
    for cell in getattr(inner, "__closure__", None) or ():
        try:
            visit(cell.cell_contents, 1)
        except ValueError:  # an empty cell
            pass
    glob = getattr(inner, "__globals__", {})
    if code is not None:
        for name in code.co_names:
            if name in glob:
                visit(glob[name], 1)
    modules: list = []
    leaves: list = [t for t in found if isinstance(t, Tensor)]
    for m in found:
        if isinstance(m, Module):
            modules.extend(mm for mm in m.modules() if mm not in modules)
    seen_leaves = {id(t) for t in leaves}
    for m in modules:
        for p in m.parameters(recurse=False):
            if id(p) not in seen_leaves:
                seen_leaves.add(id(p))
                leaves.append(p)
    clip_sites = [(_clip, "clip_grad_norm_"), (_clip, "clip_grad_value_")]
    from .. import optim as _optim  # noqa: PLC0415 - the package re-exports the clip functions
    from ..nn import utils as _nn_utils  # noqa: PLC0415

    # (unpatched: a recording in another thread may have put its dispatchers there)
    clip = {name: _attach.unpatched(getattr(_clip, name))
            for name in ("clip_grad_norm_", "clip_grad_value_")}  # fmt: skip
    for mod in (_optim, _nn_utils):
        for name in clip:
            if _attach.unpatched(getattr(mod, name, None)) is clip[name]:
                clip_sites.append((mod, name))
    for name in clip:  # (a name bound by `from ... import`: the globals dict is the site)
        if _attach.unpatched(glob.get(name)) is clip[name]:
            clip_sites.append((glob, name))
    return dict(
        # Objects whose methods become Call instructions: optimizers, schedulers.
        optimizers=[o for o in found if isinstance(o, (Optimizer, LRScheduler))],
        modules=modules,
        leaves=leaves,
        clip_sites=clip_sites,
    )


def _python_state(watched) -> list:
    """The plain (non-tensor) attributes of the captured modules and the optimizers'
    hyperparameters: replay repeats no Python assignment, so a change here cannot be
    replayed (the optimizer's and scheduler's own methods are Call instructions: they run)."""
    out = []
    for m in watched["modules"]:
        # None is left out: an attribute the call sets from None to tensors it computed (a
        # module noting its last auxiliary loss) is replayed (`Recording.attrs`); None to a
        # plain value still shows, as a new key.
        out.append({k: v for k, v in vars(m).items() if v is not None and _plain_value(v)})
    for o in watched["optimizers"]:
        if isinstance(o, Optimizer):
            out.append([{k: v for k, v in g.items() if k != "params"} for g in o.param_groups])
    return out


def _plain_value(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str, tuple))


def _state_of(module) -> list:
    """A module's own parameters and buffers (not its children's: they are visited too)."""
    found = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
    return [t for t in found if t is not None and hasattr(t._data, "dtype")]


def _dropout_mask():
    from ..nn.functional import _dropout  # noqa: PLC0415 - nn is above compile's imports

    return _attach.unpatched(_dropout.dropout_mask)


def _check_result(rec) -> str | None:
    """A returned tensor that needs a graph, from a function without its own backward."""
    has_backward = any(isinstance(ins, Backward) for ins in rec.program)

    def needs_graph(r) -> bool:
        if isinstance(r, _Out):
            return r.requires_grad
        if isinstance(r, (list, tuple)):
            return any(needs_graph(x) for x in r)
        if isinstance(r, dict):
            return any(needs_graph(x) for x in r.values())
        return False

    if not has_backward and needs_graph(rec.result):
        return (
            "it returns a tensor that requires grad and runs no backward itself: compile the "
            "whole step (forward, backward, optimizer), or run the function under no_grad()"
        )
    return None


# -- torch.compiler's helpers --------------------------------------------------------------------
def disable(fn: Callable | None = None, recursive: bool = True, *, reason: str | None = None):
    """torch.compiler.disable: mark fn to run eagerly. descent's compile replays the ops a
    function ran and has no graph breaks to place, so this returns fn unchanged (as a decorator
    with or without arguments: `@disable`, `@disable(recursive=False)`)."""
    if fn is None:
        return lambda f: f
    return fn


def is_compiling() -> bool:
    """torch.compiler.is_compiling: False (descent records by running the function eagerly)."""
    return False


is_dynamo_compiling = is_compiling


def is_exporting() -> bool:
    """torch.compiler.is_exporting: False (descent has no export)."""
    return False


def allow_in_graph(fn: Callable) -> Callable:
    """torch.compiler.allow_in_graph: fn unchanged (descent records whatever ops fn runs)."""
    return fn


def assume_constant_result(fn: Callable) -> Callable:
    """torch.compiler.assume_constant_result: fn unchanged. descent's compile already checks,
    by recording twice, that values computed outside the ops stay constant (module docstring)."""
    return fn


def reset() -> None:
    """torch.compiler.reset: nothing to clear globally; each compiled function holds its own
    programs (`CompiledFunction.reset()` drops them)."""


def cudagraph_mark_step_begin() -> None:
    """torch.compiler.cudagraph_mark_step_begin: a no-op (descent captures no CUDA graphs)."""
