"""Grad mode: whether the operations that run now are recorded for backward.

`no_grad`, `enable_grad` and `set_grad_enabled` are PyTorch's names and work as context managers
and as decorators. The mode is per thread (a `threading.local`), so a data-loading thread under
`no_grad` does not switch recording off for the training thread. The engine reads
`_state.enabled` directly on its hot path (one attribute read per op); everything else should
call `is_grad_enabled()`. Re-exported by `descent.autograd` and `descent`.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading


class _GradState(threading.local):
    def __init__(self) -> None:
        self.enabled = True  # each new thread starts recording, as in PyTorch
        self.inference = False  # inference_mode (autograd.init_tensor reads it in every thread)


_state = _GradState()

# Inference tensors (PyTorch's: made under inference_mode). `_inference_live[0]` counts the
# inference_mode(True) contexts open in any thread, so that making a tensor outside them costs
# one read (autograd.init_tensor then reads the thread's flag); `_inference_seen[0]` turns True
# at the first one, so that a program that never enters inference_mode pays one read per recorded
# op that saves inputs, not a look at each input (autograd.record_node). An inference tensor has
# `_inference` True (a class attribute False on other tensors: tensor.py); its detach() and
# `.data` have INFERENCE_DETACHED (is_inference() True, in-place changes allowed, as PyTorch's,
# whose version counter they do not share).
_inference_live = [0]
_inference_seen = [False]
INFERENCE_DETACHED = 2

INFERENCE_SAVED_MESSAGE = (
    "Inference tensors cannot be saved for backward. Please do not use Tensors created in "
    "inference mode in computation tracked by autograd. To work around this, you can make a "
    "clone to get a normal tensor and use it in autograd, or use `torch.no_grad()` instead of "
    "`torch.inference_mode()`."
)
INFERENCE_INPLACE_MESSAGE = (
    "Inplace update to inference tensor outside InferenceMode is not allowed.You can make a "
    "clone to get a normal tensor before doing inplace update.See "
    "https://github.com/pytorch/rfcs/pull/17 for more details."
)


def _sync_inference() -> None:
    """Copy the count into descent.autograd's global `_inference_on`, which init_tensor reads
    (a global bool: the cheapest test on the path of every tensor made)."""
    ag = sys.modules.get("descent.autograd")
    if ag is not None:
        ag._inference_on = _inference_live[0] > 0


def check_inference_saved(t, by) -> None:
    """PyTorch's error for an inference tensor t that an op differentiable through `by` saves
    as a parameter, which autograd.record_node does not see (embedding's indices, nll_loss's
    and cross_entropy's class targets)."""
    if getattr(t, "_inference", False) and getattr(by, "_rg", False) and _state.enabled:
        raise RuntimeError(INFERENCE_SAVED_MESSAGE)


def check_inference_inplace(t) -> None:
    """PyTorch's error for an in-place change to an inference tensor (or a view of one) outside
    inference_mode (inside it, or through its detach() / .data, the change is allowed)."""
    if t._inference is True and not getattr(_state, "inference", False):
        raise RuntimeError(INFERENCE_INPLACE_MESSAGE)


def is_grad_enabled() -> bool:
    """True when operations are being recorded for backward."""
    return _state.enabled


# Contexts restore the previous mode rather than setting the opposite one, so no_grad inside
# no_grad, or enable_grad inside no_grad inside enable_grad, all unwind correctly.
class _GradModeContext:
    """Base of no_grad / enable_grad / set_grad_enabled: a context manager and a decorator."""

    _mode = True

    def __enter__(self):
        self._prev = _state.enabled  # restored on exit, so the contexts nest
        _state.enabled = self._mode
        return self

    def __exit__(self, *exc) -> None:
        _state.enabled = self._prev

    def _fresh(self) -> _GradModeContext:
        return type(self)()

    def __call__(self, func):
        if inspect.isgeneratorfunction(func):
            return _wrap_generator(self._fresh, func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self._fresh():  # a fresh context per call: decorated functions may recurse
                return func(*args, **kwargs)

        return wrapper


def _wrap_generator(make_context, func):
    """A decorated generator function runs its body under the mode at every resumption (as
    PyTorch's decorators do), and the caller's code between two `next()`s under the caller's
    mode: calling a generator function runs none of its body, so a plain wrapper would leave
    the body outside the mode."""

    @functools.wraps(func)
    def generator(*args, **kwargs):
        gen = func(*args, **kwargs)
        try:
            with make_context():
                item = gen.send(None)
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    with make_context():
                        gen.close()
                    raise
                except BaseException as exc:  # thrown in by the caller: pass it on
                    with make_context():
                        item = gen.throw(exc)
                else:
                    with make_context():
                        item = gen.send(sent)
        except StopIteration as stop:
            return stop.value

    return generator


class _NoParamContext(_GradModeContext):
    """A context that is also a bare decorator, as PyTorch's no_grad/enable_grad: `@no_grad`
    as well as `@no_grad()` (the bare form raised TypeError at import)."""

    def __new__(cls, orig_func=None):
        if orig_func is not None:  # @no_grad without parentheses: decorate at once
            return cls()(orig_func)
        return super().__new__(cls)

    def __init__(self, orig_func=None) -> None:
        pass


class no_grad(_NoParamContext):
    """Disable graph recording: `with descent.no_grad(): ...`, `@descent.no_grad()` or
    `@descent.no_grad`."""

    _mode = False


class enable_grad(_NoParamContext):
    """Re-enable graph recording inside a `no_grad` block (context manager or decorator, with
    or without parentheses)."""

    _mode = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to `mode`: as a plain call (`descent.set_grad_enabled(False)`, for the rest
    of the program), for a block (context manager) or a function (decorator), as PyTorch's."""

    # PyTorch's set_grad_enabled takes effect at construction, so a plain call switches the
    # mode; `with` restores the previous mode on exit, and a decorator undoes the construction's
    # effect at once (each call of the function sets the mode again).
    def __init__(self, mode: bool) -> None:
        self._mode = bool(mode)
        self._prev = _state.enabled
        _state.enabled = self._mode

    def __enter__(self):
        return self  # already set by the constructor; __exit__ restores the mode before it

    def __call__(self, func):
        _state.enabled = self._prev
        return super().__call__(func)

    def _fresh(self) -> _GradModeContext:
        return set_grad_enabled(self._mode)


class set_multithreading_enabled(_GradModeContext):
    """torch.autograd.set_multithreading_enabled(mode): PyTorch runs backward passes on
    several devices in threads; descent's backward pass is one loop in the calling thread, so
    the switch is accepted (a context manager or a decorator, as PyTorch's) and changes
    nothing."""

    def __init__(self, mode: bool) -> None:
        self._mode_flag = bool(mode)

    def __enter__(self):
        return self  # grad mode stays as it is

    def __exit__(self, *exc) -> None:
        pass

    def _fresh(self) -> _GradModeContext:
        return set_multithreading_enabled(self._mode_flag)


class inference_mode(_GradModeContext):
    """torch.inference_mode: like `no_grad` (nothing is recorded) for inference; a context
    manager or a decorator (`@inference_mode()` or bare `@inference_mode`).
    `inference_mode(False)` leaves grad mode as it is."""

    def __new__(cls, mode=True):
        if callable(mode):  # bare decorator: @inference_mode
            return cls(True)(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self._enabled = bool(mode)
        self._mode = False if mode else _state.enabled
        self._prev = _state.enabled

    def __enter__(self):
        if not self._enabled:
            self._mode = _state.enabled  # inference_mode(False): no change
        # torch.is_inference_mode_enabled() reads this flag (restored on exit, so contexts nest)
        self._prev_inference = getattr(_state, "inference", False)
        _state.inference = self._enabled
        if self._enabled:
            _inference_live[0] += 1
            _inference_seen[0] = True
            _sync_inference()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        _state.inference = self._prev_inference
        if self._enabled:
            _inference_live[0] -= 1
            _sync_inference()
        super().__exit__(*exc)

    def _fresh(self) -> _GradModeContext:
        return inference_mode(self._enabled)
