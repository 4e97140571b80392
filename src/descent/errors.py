"""descent's exception classes: PyTorch's exception types, without breaking older code.

PyTorch raises `RuntimeError` for shape, dtype and size mismatches and `IndexError` for a
dimension out of range, where descent raised `ValueError`. The classes below derive from both,
so `except RuntimeError` (ported PyTorch code) and `except ValueError` (descent's own earlier
contract) both catch them.
"""

from __future__ import annotations

__all__ = [
    "CheckError",
    "DescentError",
    "DimensionError",
    "DtypeError",
    "RangeError",
    "UnsupportedError",
]


class DescentError(RuntimeError, ValueError):
    """A tensor operation cannot run on these inputs (shapes, sizes, dtypes): PyTorch's
    RuntimeError, still a ValueError for code written against earlier descent versions."""


class DimensionError(IndexError, ValueError):
    """A dimension (axis) index is out of range: PyTorch's IndexError, still a ValueError."""


class DtypeError(TypeError, NotImplementedError):
    """An op has no kernel for the input's dtype (bitwise ops on floats, mean of integers):
    PyTorch's NotImplementedError ("not implemented for 'Float'", a RuntimeError), still the
    TypeError descent raised before."""


class RangeError(DescentError, IndexError):
    """A start, length or k outside a dimension's size (narrow, kthvalue): PyTorch's
    RuntimeError, still the IndexError descent raised before."""


class UnsupportedError(NotImplementedError, ValueError):
    """An argument names a mode or variant that has no implementation (interpolate's mode):
    PyTorch's NotImplementedError (a RuntimeError), still the ValueError descent raised before."""


class CheckError(AssertionError, ValueError):
    """A module's argument check that PyTorch writes as an `assert` (MultiheadAttention's
    embed_dim and shapes): PyTorch's AssertionError, still the ValueError descent raised
    before. Unlike an assert it is raised under `python -O` too."""
