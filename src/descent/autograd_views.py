"""View tracking for the engine: which tensor owns the memory a view shares, and the tags that
say how an in-place write into such a view must behave.

A recorded view op's output remembers the tensor owning its memory in `_view_base`
(`mark_view`), and that tensor keeps weak references to its live views in `_views`; a view that
must not write a graph value through (one made under no_grad, or `detach()`'s result) holds a
`ViewTag` instead. ops/view_write.py reads these when an in-place op changes a view or its base.

Split out of autograd.py (the engine), which calls `mark_view` / `mark_unrecorded_view` from
`Function.apply` and re-exports every name here (`autograd.mark_view`, `autograd.ViewTag`).
Same layer as the engine: it imports only grad mode.
"""

from __future__ import annotations

import sys
import weakref

import numpy as np

from .grad_mode import _state, check_inference_inplace


class ViewTag(weakref.ref):
    """What `_view_base` holds for a tensor sharing another's memory that must not write a graph
    value through to it: a weak reference (a strong one would keep that tensor's graph alive)
    to the tensor whose memory it shares. Its kind is its class: `NoGradView`, a view made
    under no_grad (a recorded in-place op on it raises, as PyTorch's "A view was created in
    no_grad mode ..."), or `DetachedView`, the result of `detach()` (a recorded in-place op
    writes its values into the shared memory, the graph stays the detached tensor's). An
    unrecorded write into the memory bumps the referent's version too (PyTorch's shared version
    counter), so a node that saved it raises at backward instead of using the new values
    (ops/inplace._written). A weakref subclass: made in C, ~0.07 us."""

    __slots__ = ()


class NoGradView(ViewTag):
    __slots__ = ()


def no_grad_view_message(shape) -> str:
    """PyTorch's error for a view made under no_grad of a tensor that requires grad whose
    memory was written in place since (handle_view_on_rebase), with the view's shape."""
    return (
        f"A view (shape {tuple(shape)}) was created in no_grad mode and its base or another "
        "view of its base has been modified inplace with grad mode enabled. Given that this use "
        "case is ambiguous and error-prone, it is forbidden (PyTorch's rule). Make the view and "
        "the in-place op both inside the no_grad block or both outside it"
    )


class DetachedView(ViewTag):
    __slots__ = ()


def view_source(t, detached: bool = True):
    """The tensor whose memory t shares and whose version an in-place write into t must bump
    (its view base, or a ViewTag's referent), or None. With `detached=False`, None for the
    result of `detach()` too: PyTorch's `Tensor._base` (tensor_torch_methods.py)."""
    vb = getattr(t, "_view_base", None)
    if vb is None or not isinstance(vb, ViewTag):
        return vb
    if not detached and type(vb) is DetachedView:
        return None
    return vb()


def _views_memory(a, b) -> bool:
    """Whether the array a (a view op's output) views b's memory: NumPy keeps the owner in
    `.base`, so a view of b has b or b's owner there; a reshape that had to copy has a fresh
    array there (it is no view), as_strided an adapter object (compared by memory)."""
    ab = a.base
    if ab is None:
        return False
    if ab is b or ab is b.base:
        return True
    if type(a) is not np.ndarray or not a.size:  # (CuPy, or an empty one: taken as a view)
        return True
    return np.may_share_memory(a, b)


def mark_unrecorded_view(t, x) -> None:
    """A view op's output that was not recorded (no input requires grad, or grad mode is off).
    With grad mode on it is marked as a recorded one is (`mark_view`): a later in-place op that
    writes a graph value into it (`buf.select(1, t).copy_(h)` on a plain buffer) writes through
    to the base, which joins the graph, as in PyTorch. Under no_grad it gets a NoGradView
    (a view of such a view shares it) and joins the base's family as an alias (`register`)."""
    if not _views_memory(t._data, x._data):
        return
    if t._inference is not x._inference:  # a view of an inference tensor is one, and a view
        t._inference = x._inference  # made under inference_mode of a normal tensor is normal
    if _state.enabled:
        mark_view(t, x)
        return
    t._version = x._version  # one version counter for a view and its base, as in PyTorch
    # PyTorch's view made under no_grad of a tensor that requires grad requires grad too (a leaf:
    # no grad_fn), and so do ops on it; an in-place op on it with grad mode on raises
    t._rg = x._rg
    if x._data.base is None:  # x owns its memory (or is a detach(), whose views see x too)
        t._view_base = tag = NoGradView(x)
    else:
        vb = getattr(x, "_view_base", None)
        if vb is None or type(vb) is DetachedView:
            t._view_base = tag = NoGradView(x)
        elif type(vb) is NoGradView:
            t._view_base = tag = vb
        else:
            t._view_base = tag = NoGradView(vb)
    src = tag()
    if src is not None:
        register(src, t, AliasRef)


def mark_view(t, x) -> None:
    """Remember the tensor owning the memory that `t` (a view op's output) views, when it is
    a view of x's memory: x itself, or the tensor x views. ops/view_write.py reads it when a
    recorded in-place op changes t."""
    a, b = t._data, x._data
    ab = a.base  # (_views_memory's common answers first: a NumPy view of b or of b's owner)
    if ab is None or (ab is not b and ab is not b.base and not _views_memory(a, b)):
        return  # a copy (an advanced index, a reshape that could not view)
    # PyTorch's views share their base's version counter: a view starts at the base's version
    # and every in-place write into the memory bumps all of them (bump_family)
    t._version = x._version
    root = getattr(x, "_view_base", None)
    if root is None:
        root = x
    elif type(root) is NoGradView:  # a view of a no_grad view is one too (PyTorch's rule)
        t._view_base = root
        src = root()
        if src is not None:
            register(src, t, AliasRef)  # (the family's version counter)
        return
    elif type(root) is DetachedView:
        root = x  # a view of a detached tensor: its base is the detached tensor
    if stale_view is not None and x._node is not None and type(x._node).__name__ == "StaleView":
        x._node.backward(None, None)  # PyTorch raises as the view is taken (its grad_fn read)
    t._view_base = root
    views = getattr(root, "_views", None)
    if views is not None and len(views) < 64:  # register's common case: no pruning due
        views[id(t)] = weakref.ref(t)
    else:
        register(root, t, weakref.ref)
    if x is not root and "_multi_output" in x.__dict__:  # a view of split's output is one too
        t._multi_output = x._multi_output


class AliasRef(weakref.ref):
    """What `_views` holds for a tensor sharing the memory without being a recorded view of it
    (a `detach()`, a view made under no_grad): it sees writes into the memory and shares the
    version counter, but is never made a graph read of the base (ops/view_write._refresh_views
    skips it)."""

    __slots__ = ()


class CastRef(AliasRef):
    """What `_views` holds for a copy of the tensor in another dtype that an op's type promotion
    made (`x32 * y64` computes on x32.to(float64); ops/_common.promote): PyTorch's op promotes
    inside its kernel and saves the uncast tensor, so the copy shares the version counter (a
    later in-place write into the tensor makes backward raise, as there), but it shares no
    memory: it is no live view (`has_live_views`) and never a graph read of the tensor."""

    __slots__ = ()


def link_cast(cast, src) -> None:
    """Give `cast` (src promoted to another dtype by an op) src's version counter."""
    cast._version = src._version
    register(src, cast, CastRef)


def register(root, t, ref=weakref.ref) -> None:
    """Add t to root's `_views`: id -> weak reference (a WeakSet would compare tensors with ==,
    which is elementwise); `ref` is weakref.ref for a recorded view, AliasRef for an alias."""
    views = getattr(root, "_views", None)
    if views is None:
        views = root._views = {}
    elif len(views) >= 64 and not len(views) & (len(views) - 1):
        # drop the dead ones now and then: at 64, 128, 256, ... entries (a scan at every
        # register past 64 made 128 live views of one tensor, split(x, 4) of 512 columns or a
        # loop over x[:, t], quadratic: 7 us per view)
        for k in [k for k, r in views.items() if r() is None]:
            del views[k]
    views[id(t)] = ref(t)


_getrefcount = sys.getrefcount


def shared_view_base(t):
    """The tensor whose memory the recorded view t views, when someone else holds it too; else
    None. A base that only t's slot holds is a temporary
    (`proj(x).view(B, T, H, D).mul_(s)`): nothing could see a write into it, so an in-place op
    on t rebinds t alone, the same values and gradients, and keeps such code replayable by
    descent.compile (ops/view_write.py)."""
    base = getattr(t, "_view_base", None)
    if base is None or isinstance(base, ViewTag):
        return None
    if _getrefcount(base) <= 3:  # t's slot, `base` here and getrefcount's argument
        return None
    return base


#: Called by bump_family with each no_grad or multi-output view whose memory was written (set by
#: ops/view_write.py, a layer above): PyTorch refuses to use such a view in the graph afterwards.
stale_view = None
#: Called by bump_family with the tensor owning the written memory (set by ops/view_write.py):
#: outputs that ops saved for backward and that live in that memory are now overwritten.
family_written = None


def bump_family(t) -> None:
    """Bump the version of t and of every tensor sharing its version counter in PyTorch: the
    tensor owning the memory (up the `_view_base` links, through ViewTags too) and, down from it,
    every live view and alias (`_views`, and theirs). PyTorch keeps one counter object per
    memory; descent keeps an int per tensor and bumps the family, so a node that saved any of
    them sees the write (autograd_backward's version check). The common case, a tensor with no
    views, costs three attribute reads."""
    if t._inference:  # PyTorch's version bump of an inference tensor outside inference_mode
        check_inference_inplace(t)  # raises, after the write (grad_mode.py)
    vb = getattr(t, "_view_base", None)
    if vb is None and not getattr(t, "_views", None):
        t._version += 1
        return
    top = t
    while vb is not None:  # up to the tensor owning the memory
        up = vb() if isinstance(vb, ViewTag) else vb
        if up is None or up is top:
            break
        top = up
        vb = getattr(top, "_view_base", None)
    seen = set()
    stack = [top]
    while stack:  # down: an explicit stack (no recursion), each member once
        u = stack.pop()
        if id(u) in seen:
            continue
        seen.add(id(u))
        u._version += 1
        if stale_view is not None and (type(getattr(u, "_view_base", None)) is NoGradView
                                       or getattr(u, "_multi_output", None) is not None):
            stale_view(u)  # fmt: skip
        views = getattr(u, "_views", None)
        if views:
            for k, r in list(views.items()):
                w = r()
                if w is None:
                    del views[k]  # (dead views go here: a loop of x[i] leaves many)
                else:
                    stack.append(w)
    if id(t) not in seen:  # (t's link up was cut: its base was rebound since)
        t._version += 1
    if family_written is not None:
        family_written(top)


def has_live_views(t) -> bool:
    """Whether a recorded view of t is alive: a recorded in-place op on t then writes into t's
    memory (ops/view_write.write_base), so the views see it."""
    views = getattr(t, "_views", None)
    if not views:
        return False
    return any(r() is not None and type(r) is not CastRef for r in views.values())
