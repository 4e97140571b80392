"""torch.utils.swap_tensors: exchange two tensors' contents and metadata in place."""

from __future__ import annotations

import copyreg
import weakref

from .. import autograd as _autograd
from ..autograd_views import DetachedView, ViewTag


def _registry_holder(t):
    """The tensor whose `_views` registry lists t: its recorded view base, or the tensor its
    ViewTag (a no_grad view's, a detach()'s) refers to; None if t shares no memory."""
    base = getattr(t, "_view_base", None)
    return base() if isinstance(base, ViewTag) else base


def _user_weakrefs(t) -> list:
    """t's weak references but descent's own: the one its view base keeps in its registry
    (`_views`) and the ViewTags of tensors sharing its memory (`detach()`'s results)."""
    refs = [r for r in weakref.getweakrefs(t) if not isinstance(r, ViewTag)]
    holder = _registry_holder(t)
    registry = getattr(holder, "_views", None) if holder is not None else None
    if registry:
        own = registry.get(id(t))
        refs = [r for r in refs if r is not own]
    return refs


def _has_live_views(t) -> bool:
    """Whether a live view of t (recorded, or made under no_grad) holds t, as PyTorch's view
    holds its base's TensorImpl. A `detach()` shares t's memory but not t (PyTorch: a new
    TensorImpl on the same storage), so it does not count."""
    for ref in (getattr(t, "_views", None) or {}).values():
        v = ref()
        if v is not None and not isinstance(getattr(v, "_view_base", None), DetachedView):
            return True
    return False


def _saving_node(t1, t2) -> tuple:
    """(tensor, node) where a live graph node saved t1 or t2 for its backward, else ().

    PyTorch counts the references to a TensorImpl (a SavedVariable holds one); descent's nodes
    hold their saved inputs as a tuple of Tensors in `node.saved` (until backward frees it).
    record_node keeps weak references to the nodes that save (autograd._live_saving_nodes), so
    this walks the live saving nodes only, not the garbage collector's heap.
    """
    for node in _autograd._live_saving_nodes():
        saved = node.saved
        for t in (t1, t2):
            if any(s is t and _torch_saves(node, i) for i, s in enumerate(saved)):
                return t, node
    return ()


# Ops linear in each of their (partner) inputs: PyTorch saves an input only when the gradient of
# another one needs it (mm saves mat2 only if mat1 requires grad), where descent saves them all.
_PRODUCTS = ("Mul", "MatMul", "Einsum")


def _torch_saves(node, i: int) -> bool:
    """Whether PyTorch's node would hold the input at position i (so refuse to swap it)."""
    name = node.op_class.__name__
    parents = node.parents
    if name in _PRODUCTS or name == "Linear":
        # Linear (addmm): (input, weight, bias), the bias needs neither. (A convolution's
        # node holds input and weight whatever requires grad, as descent's.)
        partners = range(len(parents)) if name in _PRODUCTS else (0, 1)
        return any(parents[j] is not None for j in partners if j != i)
    if name == "Div" and i == 0:  # d/d(other) of self / other reads self
        return parents[1] is not None
    return True


def swap_tensors(t1, t2) -> None:
    """Swap the contents of t1 and t2 (values, dtype, shape, requires_grad, grad, graph
    position, hooks, version, class and attributes), each object keeping its identity.

    As PyTorch's, it refuses tensors with weak references, with different slots, and (PyTorch's
    use-count check) a tensor whose memory a live view shares or that a live autograd graph
    saved for its backward (RuntimeError). Unlike PyTorch, backward through a graph that used a
    swapped leaf (not saving it) is not refused: its gradient goes to the object's new
    contents.

    Raises:
        RuntimeError: as above; the message names the tensor, the node and the fix.
    """
    if _user_weakrefs(t1):
        raise RuntimeError("Cannot swap t1 because it has weakref associated with it")
    if _user_weakrefs(t2):
        raise RuntimeError("Cannot swap t2 because it has weakref associated with it")
    t1_slots = set(copyreg._slotnames(t1.__class__))  # type: ignore[attr-defined]
    t2_slots = set(copyreg._slotnames(t2.__class__))  # type: ignore[attr-defined]
    if t1_slots != t2_slots:
        raise RuntimeError("Cannot swap t1 and t2 if they have different slots")
    for t, name in ((t1, "t1"), (t2, "t2")):
        if _has_live_views(t):
            raise RuntimeError(
                f"Expected use_count of {name} to be 1 or 2 with an AccumulateGrad node but got "
                "more: a view of it is alive; make sure you are not holding references to the "
                "tensor in other places."
            )
    saving = _saving_node(t1, t2)
    if saving:
        t, node = saving
        name = "t1" if t is t1 else "t2"
        raise RuntimeError(
            f"swap_tensors: {name} (shape {tuple(t.shape)}) is saved for backward by "
            f"{node.name()} of a live autograd graph (PyTorch: 'Expected use_count of {name} to "
            "be 1 or 2 with an AccumulateGrad node'); run backward first (it frees the saved "
            "tensors), delete the graph's outputs, or swap before the forward pass"
        )
    if t1 is t2:
        return
    # the view registries of the two bases, re-pointed after the swap
    bases = [(_registry_holder(t), t) for t in (t1, t2)]
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
        if entry is None:
            continue
        holder = other.get(id(base), base)  # (t2 = t1.detach(): t1's registry moved to t2)
        registry = getattr(holder, "_views", None)
        if registry is None:
            registry = holder._views = {}
        registry[id(now)] = type(entry)(now)  # weakref.ref, or an AliasRef
    # the detach()es of t1's memory (its `_views` registry moved to t2 with the slots) now
    # share t2's memory and version counter, and the other way round
    for holder in (t1, t2):
        for ref in list((getattr(holder, "_views", None) or {}).values()):
            alias = ref()
            tag = getattr(alias, "_view_base", None) if alias is not None else None
            if isinstance(tag, ViewTag) and id(tag()) in other and tag() is not holder:
                alias._view_base = type(tag)(holder)
