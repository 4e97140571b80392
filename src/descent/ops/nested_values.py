"""Elementwise ops whose kernels take dense arrays (np.asarray, ravel, the element count), on a
jagged nested tensor: `@on_values` runs them on its packed values (docs/nested.md).

A jagged nested tensor's `_data` is a storage that answers NumPy's ufuncs (descent/nested/
storage.py), so most elementwise ops need nothing here; the special functions' float64 kernels
(erfc, lgamma, the Bessel functions, the polynomials, ...) do. PyTorch's jagged layout has them
as pointwise ops. The result has the input's structure; gradients pass through the values
(NestedGetValues / NestedViewFromJagged). Dense arrays never take the detour: one attribute test
per argument.
"""

from __future__ import annotations

import functools


def on_values(fn):
    """fn, or, when an argument is a jagged nested tensor, fn over its packed values."""

    @functools.wraps(fn)
    def op(*args, **kwargs):
        for a in args:
            if getattr(a, "_nested_layout", False):
                return a._values_call(fn, args, kwargs)
        return fn(*args, **kwargs)

    # torch_keywords.torch_names renames the parameters of the function inside (x -> input)
    # and wraps again. `__values_self__` is op itself: an outer wrapper (out=) copies op's
    # __dict__, and the copy must not pass for this layer. (Not `__wrapped_for_out__`: that
    # name tells out_functions the function takes out= already.)
    op.__values_self__ = op
    op.__values_rewrap__ = on_values
    return op
