"""torch.utils.swap_tensors: exchange two tensors' contents and metadata in place."""

from __future__ import annotations

import copyreg
import weakref

from ..autograd_views import ViewTag, has_live_views


def _user_weakrefs(t) -> list:
    """t's weak references but descent's own: the one its view base keeps in its registry
    (`_views`) and the ViewTags of tensors sharing its memory (`detach()`'s results)."""
    refs = [r for r in weakref.getweakrefs(t) if not isinstance(r, ViewTag)]
    base = getattr(t, "_view_base", None)
    registry = getattr(base, "_views", None) if base is not None else None
    if registry:
        own = registry.get(id(t))
        refs = [r for r in refs if r is not own]
    return refs


def swap_tensors(t1, t2) -> None:
    """Swap the contents of t1 and t2 (values, dtype, shape, requires_grad, grad, graph
    position, hooks, version, class and attributes), each object keeping its identity.

    As PyTorch's, it refuses tensors with weak references, with different slots, and (PyTorch's
    use-count check) a tensor whose memory a live view shares."""
    if _user_weakrefs(t1):
        raise RuntimeError("Cannot swap t1 because it has weakref associated with it")
    if _user_weakrefs(t2):
        raise RuntimeError("Cannot swap t2 because it has weakref associated with it")
    t1_slots = set(copyreg._slotnames(t1.__class__))  # type: ignore[attr-defined]
    t2_slots = set(copyreg._slotnames(t2.__class__))  # type: ignore[attr-defined]
    if t1_slots != t2_slots:
        raise RuntimeError("Cannot swap t1 and t2 if they have different slots")
    for t, name in ((t1, "t1"), (t2, "t2")):
        if has_live_views(t):
            raise RuntimeError(
                f"Expected use_count of {name} to be 1 or 2 with an AccumulateGrad node but got "
                "more: a view of it is alive; make sure you are not holding references to the "
                "tensor in other places."
            )
    if t1 is t2:
        return
    # the view registries of the two bases, re-pointed after the swap
    bases = [(getattr(t, "_view_base", None), t) for t in (t1, t2)]
    entries = []
    for base, t in bases:
        registry = getattr(base, "_views", None) if base is not None else None
        entries.append(registry.pop(id(t), None) if registry else None)

    def swap_attr(name):
        tmp = getattr(t1, name)
        setattr(t1, name, getattr(t2, name))
        setattr(t2, name, tmp)

    swap_attr("__class__")
    swap_attr("__dict__")
    for slot in t1_slots:
        if hasattr(t1, slot) and hasattr(t2, slot):
            swap_attr(slot)
        elif hasattr(t1, slot):
            setattr(t2, slot, getattr(t1, slot))
            delattr(t1, slot)
        elif hasattr(t2, slot):
            setattr(t1, slot, getattr(t2, slot))
            delattr(t2, slot)
    # t1's former contents (and view) now live in t2, and the other way round
    other = {id(t1): t2, id(t2): t1}
    for t in (t1, t2):
        tag = getattr(t, "_view_base", None)
        if isinstance(tag, ViewTag) and id(tag()) in other:
            t._view_base = type(tag)(other[id(tag())])
    for (base, _), entry, now in zip(bases, entries, (t2, t1), strict=True):
        if entry is not None:
            base._views[id(now)] = weakref.ref(now)
