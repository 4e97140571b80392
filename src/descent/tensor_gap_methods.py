"""PyTorch's Tensor methods for the functions of `descent.ops.torch_gaps`: `x.quantile(q)`,
`x.tensor_split(3)`, `x.cov()`, `x.histogram(bins)`, ... (one line each, through Tensor's ops
table `_ops`; see `tensor_methods.py`).

`GapMethods` is one more mixin of `Tensor`, last in its bases; no name here is defined by an
earlier group.
"""

from __future__ import annotations

from .tensor_methods import _ops


class GapMethods:
    """Tensor methods of torch.argwhere, bincount, diag_embed, quantile, nanquantile,
    tensor_split, hsplit, vsplit, dsplit, cov, corrcoef and histogram."""

    __slots__ = ()

    def argwhere(self):
        return _ops.argwhere(self)

    def bincount(self, weights=None, minlength=0):
        return _ops.bincount(self, weights, minlength)

    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        return _ops.diag_embed(self, offset, dim1, dim2)

    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        return _ops.quantile(self, q, dim, keepdim, interpolation=interpolation)

    def nanquantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        return _ops.nanquantile(self, q, dim, keepdim, interpolation=interpolation)

    def tensor_split(self, indices_or_sections=None, dim=0, **sections):
        return _ops.tensor_split(self, indices_or_sections, dim, **sections)  # sections=, ...

    def hsplit(self, indices_or_sections=None, **sections):
        return _ops.hsplit(self, indices_or_sections, **sections)  # sections= or indices=

    def vsplit(self, indices_or_sections=None, **sections):
        return _ops.vsplit(self, indices_or_sections, **sections)

    def dsplit(self, indices_or_sections=None, **sections):
        return _ops.dsplit(self, indices_or_sections, **sections)

    def cov(self, *, correction=1, fweights=None, aweights=None):
        return _ops.cov(self, correction=correction, fweights=fweights, aweights=aweights)

    def corrcoef(self):
        return _ops.corrcoef(self)

    def histogram(self, bins=100, *, range=None, weight=None, density=False):
        return _ops.histogram(self, bins, range=range, weight=weight, density=density)
