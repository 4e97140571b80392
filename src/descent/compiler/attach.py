"""Where a recording attaches to the process: one recorder per thread.

The recorder (recorder.py) watches a call through process-wide hook points: the engine's op
and pass hooks, the write, derived-array and random-draw observers, and attributes it replaces
for the duration of the call (Tensor's value reads, the ops table's getitem, creation's factory
functions, the default generator's NumPy generator, the captured optimizers' `step` and
`zero_grad`, the clipping functions, `dropout_mask`). Every thread goes through them.

So they are installed while any thread records (a count under a lock), as dispatchers that
look up the recorder of the calling thread (`current()`, a `threading.local`) and pass
everything else through unchanged: ops, reads, writes and draws of other threads are neither
recorded nor counted against a recording, and two threads record at once (before session 22 a
training step recorded beside another thread's saw that thread's ops, parameter updates and
hooks, and ran eagerly with the wrong warnings). A replaced attribute is installed once and
put back by the last recording that uses it (each recording used to save and restore it
itself, so two interleaved recordings could leave one's wrapper behind for good).

A call site of a captured object (an optimizer's `step`, a clipping function reached through a
module or the function's globals) is recorded only by the recordings that captured it
(`recording(rec, sites)`), as when one thread records.
"""

from __future__ import annotations

import threading

from .. import creation, creation_random, hooks
from ..ops import untracked, view_write
from ..tensor import Tensor
from ..tensor_methods import _ops as _ops_table
from .mask_read import recorded_getitem

__all__ = ["current", "foreign_hooks", "recording", "unpatched"]

_local = threading.local()  # .rec: this thread's Recorder (or None); .sites: its call sites
_lock = threading.Lock()  # installing and removing
_users = [0]  # recordings running now, in all threads
_undo: list = []  # the process-wide patches: (object, name, own value or _MISSING)
_handles: list = []  # the hook handles of the process-wide dispatchers
_sites: dict = {}  # (id(object), name) -> [count, object, name, own value or _MISSING]
_MISSING = object()
# the value reads a recording refuses (recorder._READS: data-dependent control flow)
READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__",
         "__array__")  # fmt: skip


def current():
    """The Recorder recording in the calling thread, or None."""
    return getattr(_local, "rec", None)


def unpatched(fn):
    """`fn` itself, or the original of a dispatcher installed here (a module attribute read
    while a thread records, e.g. `optim.clip_grad_norm_`)."""
    return getattr(fn, "_descent_original", fn)


# -- the process-wide dispatchers ----------------------------------------------------------------
def _on_forward(op, inputs, out) -> None:
    rec = getattr(_local, "rec", None)
    if rec is not None:
        rec.on_forward(op, inputs, out)


def _on_backward(node, gy, gxs) -> None:
    rec = getattr(_local, "rec", None)
    if rec is not None:
        rec.on_backward(node, gy, gxs)


def _on_pass(event, a, b, c) -> None:
    rec = getattr(_local, "rec", None)
    if rec is not None:
        rec.on_pass(event, a, b, c)


_OURS = frozenset({_on_forward, _on_backward, _on_pass})


def foreign_hooks() -> bool:
    """Whether an op or pass hook other than the recordings' dispatchers is registered (anomaly
    mode, an explain tool, a profiler): compiled functions then run eagerly."""
    return any(h not in _OURS for h in (*hooks._forward_hooks, *hooks._backward_hooks,
                                        *hooks._pass_hooks))  # fmt: skip


def _view_written() -> None:
    rec = getattr(_local, "rec", None)
    if rec is not None:
        rec._view_written()


def _array_written(t, redo=None) -> None:
    rec = getattr(_local, "rec", None)
    if rec is not None:
        rec._array_written(t, redo)


def _derived(arrays, op=None) -> None:
    rec = getattr(_local, "rec", None)
    if rec is not None:
        rec._derived(arrays, op)


def _on_draw(draw, args, kwargs, frame):
    rec = getattr(_local, "rec", None)
    if rec is None:
        return draw(*args, **kwargs)
    return rec.on_draw(draw, args, kwargs, frame)


def _read(name: str, orig):
    def read(t, *args, **kwargs):
        rec = getattr(_local, "rec", None)
        if rec is not None:
            rec.on_read(name)
        return orig(t, *args, **kwargs)

    read._descent_original = orig
    return read


def _getitem(orig):
    recorded = recorded_getitem(orig)

    def getitem(x, index):
        if getattr(_local, "rec", None) is not None:
            return recorded(x, index)
        return orig(x, index)

    getitem._descent_original = orig
    return getitem


def _finish(orig):
    def finish(arr, *args, **kwargs):
        out = orig(arr, *args, **kwargs)
        rec = getattr(_local, "rec", None)
        if rec is not None:
            rec.on_made(out)
        return out

    finish._descent_original = orig
    return finish


def _data_made(orig):
    def noted(t, data):
        out = orig(t, data)
        rec = getattr(_local, "rec", None)
        if rec is not None:
            rec.on_data_made(out, data)
        return out

    noted._descent_original = orig
    return noted


class _RngWatch:
    """Stands in for the default generator's NumPy generator while any thread records: a draw
    of the recording thread outside `dropout_mask` and the recorded `Draw`s is counted (a
    replay could not make it); everything is forwarded."""

    __slots__ = ("_rng",)

    def __init__(self, rng) -> None:
        self._rng = rng

    def __getattr__(self, name):
        attr = getattr(self._rng, name)
        rec = getattr(_local, "rec", None)
        if rec is not None and callable(attr):
            rec.on_rng_use()
        return attr


def _install() -> None:
    """The process-wide dispatchers (under _lock, by the first recording)."""
    _handles.append(hooks.add_op_hook(forward=_on_forward, backward=_on_backward))
    _handles.append(hooks.add_pass_hook(_on_pass))
    for name in READS:
        _patch(Tensor, name, _read(name, getattr(Tensor, name)))
    _patch(_ops_table, "getitem", _getitem(_ops_table.getitem))
    _patch(creation, "_finish", _finish(creation._finish))
    _patch(creation, "_from_data_made", _data_made(creation._from_data_made))
    gen = creation.default_generator()
    _patch(gen, "_rng", _RngWatch(gen._rng))
    creation_random.draw_recorders.append(_on_draw)
    view_write.observers.append(_view_written)
    view_write.write_observers.append(_array_written)
    untracked.derived_observers.append(_derived)


def _patch(obj, name: str, new) -> None:
    _undo.append((obj, name, vars(obj).get(name, _MISSING)))
    setattr(obj, name, new)


def _uninstall() -> None:
    """Put everything back (under _lock, by the last recording)."""
    for lst, fn in ((untracked.derived_observers, _derived),
                    (view_write.write_observers, _array_written),
                    (view_write.observers, _view_written),
                    (creation_random.draw_recorders, _on_draw)):  # fmt: skip
        if fn in lst:
            lst.remove(fn)
    while _undo:
        obj, name, own = _undo.pop()
        if name == "_rng":  # (the generator's: only while it is still the watch)
            watch = vars(obj).get(name)
            if type(watch) is _RngWatch:
                setattr(obj, name, watch._rng)
        elif own is _MISSING:
            delattr(obj, name)
        else:
            setattr(obj, name, own)
    while _handles:
        _handles.pop().remove()


# -- call sites of captured objects --------------------------------------------------------------
def _site(key, kind: str, orig):
    def call(*args, **kwargs):
        rec = getattr(_local, "rec", None)
        if rec is None or key not in _local.sites:
            return orig(*args, **kwargs)
        return rec.on_call(kind, orig, args, kwargs)

    call._descent_original = orig
    call.__name__ = getattr(orig, "__name__", kind)
    call.__doc__ = getattr(orig, "__doc__", None)
    return call


def _get(obj, name: str):
    return obj[name] if type(obj) is dict else getattr(obj, name)


def _own(obj, name: str):
    return (obj if type(obj) is dict else vars(obj)).get(name, _MISSING)


def _add_site(obj, name: str) -> tuple:
    key = (id(obj), name)
    entry = _sites.get(key)
    if entry is None:
        own = _own(obj, name)
        fn = _site(key, name, _get(obj, name))
        if type(obj) is dict:
            obj[name] = fn
        else:
            setattr(obj, name, fn)
        entry = _sites[key] = [0, obj, name, own]
    entry[0] += 1
    return key


def _drop_site(key) -> None:
    entry = _sites[key]
    entry[0] -= 1
    if entry[0]:
        return
    del _sites[key]
    _, obj, name, own = entry
    if type(obj) is dict:
        obj[name] = own
    elif own is _MISSING:
        delattr(obj, name)
    else:
        setattr(obj, name, own)


class recording:  # noqa: N801 - a context manager, used as `with recording(rec, sites):`
    """Attach `rec` to the calling thread for the duration of the block: the dispatchers send
    this thread's events to it, and its `sites` ((object, attribute) pairs: an optimizer's
    "step", a module's or a globals dict's "clip_grad_norm_", a module's "dropout_mask") go
    to `rec.on_call(name, original, args, kwargs)` when this thread calls them."""

    def __init__(self, rec, sites) -> None:
        self.rec = rec
        self.sites = list(sites)
        self.keys: list = []
        self.prev = None

    def __enter__(self):
        with _lock:
            if not _users[0]:
                try:
                    _install()
                except BaseException:
                    _uninstall()
                    raise
            _users[0] += 1
            try:
                for obj, name in self.sites:
                    self.keys.append(_add_site(obj, name))
            except BaseException:
                self._leave()
                raise
        self.prev = (getattr(_local, "rec", None), getattr(_local, "sites", frozenset()))
        _local.rec, _local.sites = self.rec, frozenset(self.keys)
        return self

    def __exit__(self, *exc) -> None:
        _local.rec, _local.sites = self.prev
        with _lock:
            self._leave()

    def _leave(self) -> None:
        for key in reversed(self.keys):
            _drop_site(key)
        self.keys = []
        _users[0] -= 1
        if not _users[0]:
            _uninstall()
