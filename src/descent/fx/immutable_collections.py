"""torch.fx.immutable_collections: the list and dict types a Node keeps its arguments in.

A node's `args` / `kwargs` must not change behind the graph's back (the users map would go
stale), so the tracer stores them as these read-only containers; `Node.args = ...` (which
updates the users) is the way to edit them.
"""

from __future__ import annotations

__all__ = ["immutable_dict", "immutable_list"]


def _no_mutation(self, *args, **kwargs):
    raise NotImplementedError(
        f"{type(self).__name__!r} object does not support mutation. Assign a new value to "
        "node.args / node.kwargs instead (that keeps the graph's users up to date)"
    )


class immutable_list(list):  # noqa: N801  (torch's name)
    """A list that refuses in-place changes; hashable, so it can key a dict."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _no_mutation
    append = extend = insert = pop = remove = clear = sort = reverse = _no_mutation

    def __hash__(self):  # type: ignore[override]
        return hash(tuple(self))

    def __reduce__(self):
        return (immutable_list, (tuple(iter(self)),))


class immutable_dict(dict):  # noqa: N801  (torch's name)
    """A dict that refuses in-place changes; hashable."""

    __setitem__ = __delitem__ = __ior__ = _no_mutation
    clear = pop = popitem = setdefault = update = _no_mutation

    def __hash__(self):  # type: ignore[override]
        return hash(tuple(self.items()))

    def __reduce__(self):
        return (immutable_dict, (tuple(self.items()),))
