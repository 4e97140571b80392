"""Tensor methods of `descent.ops.gaps_tensor` and `descent.ops.gaps_tensor_inplace`
(docs/torch_gaps_tensor.md), one line each through Tensor's ops table `_ops` (see
`tensor_methods.py`), and PyTorch's tensor-object properties (`layout`, `is_sparse`, `H`, ...).
A mixin of `Tensor`; no name here is defined by an earlier group."""

from __future__ import annotations

from .tensor_methods import _ops


class layout:
    """torch.layout: how a tensor's elements are stored. descent has one, `descent.strided`
    (dense arrays with strides); its repr is PyTorch's spelling."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return self.name  # pickles as the module-level singleton


strided = layout("strided")
# descent.sparse's layouts (docs/sparse.md): a sparse tensor's storage object names its layout.
sparse_coo = layout("sparse_coo")
sparse_csr = layout("sparse_csr")
# PyTorch's other sparse layouts: names to compare against (`x.layout in (...)`); no descent
# tensor has them, and the factories refuse them
sparse_csc = layout("sparse_csc")
sparse_bsr = layout("sparse_bsr")
sparse_bsc = layout("sparse_bsc")
# descent.nested's jagged nested tensors (docs/nested.md)
jagged = layout("jagged")


class TensorGapMethods2:
    """PyTorch's shape, indexing and object Tensor methods added 2026-12-04."""

    __slots__ = ()

    # -- selecting and scattering back ----------------------------------------------------------
    def select(self, dim, index):
        return _ops.select(self, dim, index)

    def select_scatter(self, src, dim, index):
        return _ops.select_scatter(self, src, dim, index)

    def slice_scatter(self, src, dim=0, start=None, end=None, step=1):
        return _ops.slice_scatter(self, src, dim, start, end, step)

    def diagonal_scatter(self, src, offset=0, dim1=0, dim2=1):
        return _ops.diagonal_scatter(self, src, offset, dim1, dim2)

    def diagflat(self, offset=0):
        return _ops.diagflat(self, offset)

    def as_strided(self, size, stride, storage_offset=None):
        return _ops.as_strided(self, size, stride, storage_offset)

    def as_strided_(self, size, stride, storage_offset=None):
        return _ops.as_strided_(self, size, stride, storage_offset)

    def index_copy(self, dim, index, source):
        return _ops.index_copy(self, dim, index, source)

    def index_reduce(self, dim, index, source, reduce, *, include_self=True):
        return _ops.index_reduce(self, dim, index, source, reduce, include_self=include_self)

    def masked_scatter(self, mask, source):
        return _ops.masked_scatter(self, mask, source)

    def put(self, index, source, accumulate=False):
        return _ops.put(self, index, source, accumulate)

    def take_along_dim(self, indices, dim=None):
        return _ops.take_along_dim(self, indices, dim)

    # -- shapes ------------------------------------------------------------------------------------
    def swapdims(self, dim0, dim1):
        return _ops.swapdims(self, dim0, dim1)

    def adjoint(self):
        return _ops.adjoint(self)

    @property
    def H(self):
        return _ops.matrix_h(self)

    @property
    def mH(self):
        return _ops.matrix_mh(self)

    def sum_to_size(self, *size):
        return _ops.sum_to_size(self, *size)

    def ravel(self):  # PyTorch's contiguous().view(-1): a copy unless contiguous
        return _ops.reshape(self.contiguous(), -1)

    def split_with_sizes(self, split_sizes, dim=0):
        return _ops.split_with_sizes(self, split_sizes, dim)

    def unsafe_split(self, split_size, dim=0):
        return _ops.unsafe_split(self, split_size, dim)

    def unsafe_split_with_sizes(self, split_sizes, dim=0):
        return _ops.unsafe_split_with_sizes(self, split_sizes, dim)

    def unsafe_chunk(self, chunks, dim=0):
        return _ops.unsafe_chunk(self, chunks, dim)

    def new_empty_strided(self, size, stride, *, dtype=None, device=None, requires_grad=False):
        dtype = self.dtype if dtype is None else dtype
        device = self.device if device is None else device
        return _ops.empty_strided(size, stride, dtype=dtype, device=device,
                                  requires_grad=requires_grad)  # fmt: skip

    # -- in-place shapes and indices (descent.ops.gaps_tensor_inplace) ---------------------------
    def squeeze_(self, dim=None):
        return _ops.squeeze_(self, dim)

    def unsqueeze_(self, dim):
        return _ops.unsqueeze_(self, dim)

    def t_(self):
        return _ops.t_(self)

    def transpose_(self, dim0, dim1):
        return _ops.transpose_(self, dim0, dim1)

    def swapaxes_(self, axis0, axis1):
        return _ops.swapaxes_(self, axis0, axis1)

    def swapdims_(self, dim0, dim1):
        return _ops.swapdims_(self, dim0, dim1)

    def tril_(self, diagonal=0):
        return _ops.tril_(self, diagonal)

    def triu_(self, diagonal=0):
        return _ops.triu_(self, diagonal)

    def resize_(self, *sizes, memory_format=None):
        return _ops.resize_(self, *sizes)

    def resize_as_(self, the_template, memory_format=None):
        return _ops.resize_as_(self, the_template)

    def index_add_(self, dim, index, source, *, alpha=1):
        return _ops.index_add_(self, dim, index, source, alpha=alpha)

    def index_copy_(self, dim, index, source):
        return _ops.index_copy_(self, dim, index, source)

    def index_fill_(self, dim, index, value):
        return _ops.index_fill_(self, dim, index, value)

    def index_reduce_(self, dim, index, source, reduce, *, include_self=True):
        return _ops.index_reduce_(self, dim, index, source, reduce, include_self=include_self)

    def masked_scatter_(self, mask, source):
        return _ops.masked_scatter_(self, mask, source)

    def put_(self, index, source, accumulate=False):
        return _ops.put_(self, index, source, accumulate)

    def scatter_add_(self, dim, index, src):
        return _ops.scatter_add_(self, dim, index, src)

    def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
        return _ops.scatter_reduce_(self, dim, index, src, reduce, include_self=include_self)

    def fill_diagonal_(self, fill_value, wrap=False):
        return _ops.fill_diagonal_(self, fill_value, wrap)

    def renorm_(self, p, dim, maxnorm):
        return _ops.renorm_(self, p, dim, maxnorm)

    def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
        return _ops.log_normal_(self, mean, std, generator=generator)

    def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
        return _ops.cauchy_(self, median, sigma, generator=generator)

    def geometric_(self, p, *, generator=None):
        return _ops.geometric_(self, p, generator=generator)

    # -- real tensors as complex ones ----------------------------------------------------------
    def conj(self):
        return _ops.conj(self)

    def conj_physical(self):
        return _ops.conj_physical(self)

    def conj_physical_(self):
        return _ops.conj_physical_(self)

    def resolve_conj(self):
        return _ops.resolve_conj(self)

    def resolve_neg(self):
        return _ops.resolve_neg(self)

    def is_conj(self):
        return _ops.is_conj(self)

    def is_neg(self):
        return _ops.is_neg(self)

    def is_complex(self):
        return _ops.is_complex(self)

    @property
    def real(self):
        return _ops.real(self)

    @real.setter
    def real(self, value):  # x.real = v writes the real parts in place (ops/complex.py)
        _ops.set_complex_part(self, value, "real")

    @property
    def imag(self):
        return _ops.imag(self)

    @imag.setter
    def imag(self, value):
        _ops.set_complex_part(self, value, "imag")

    def __complex__(self):  # complex(t) of a one-element tensor, as torch's
        return complex(self.item())

    def stft(self, *args, **kwargs):  # descent.spectral, loaded on first use
        return _ops.stft(self, *args, **kwargs)

    def istft(self, *args, **kwargs):
        return _ops.istft(self, *args, **kwargs)

    # -- tensor facts --------------------------------------------------------------------------
    def is_nonzero(self):
        return _ops.is_nonzero(self)

    def is_same_size(self, other):
        return _ops.is_same_size(self, other)

    def is_signed(self):
        return _ops.is_signed(self)

    def is_inference(self):
        return _ops.is_inference(self)

    def is_distributed(self):
        return _ops.is_distributed(self)

    def data_ptr(self):
        return _ops.data_ptr_of(self)

    def storage_offset(self):
        return _ops.storage_offset_of(self)

    def dim_order(self, *, ambiguity_check=False):
        # Dims from the largest stride to the smallest (ties keep their order), as PyTorch.
        st = self._data.strides
        return tuple(sorted(range(self.ndim), key=lambda d: -st[d]))

    @property
    def layout(self):
        return strided

    # PyTorch's flags for storage kinds and devices descent does not have: always False.
    @property
    def is_sparse(self):
        return False

    @property
    def is_sparse_csr(self):
        return False

    @property
    def is_quantized(self):
        return False

    @property
    def is_mkldnn(self):
        return False

    @property
    def is_nested(self):
        return False

    @property
    def is_mps(self):
        return False

    @property
    def is_xpu(self):
        return False

    @property
    def is_vulkan(self):
        return False

    @property
    def is_xla(self):
        return False

    @property
    def is_ipu(self):
        return False

    @property
    def is_maia(self):
        return False

    @property
    def is_mtia(self):
        return False

    # -- memory: pinning and sharing are no-ops for NumPy arrays --------------------------------
    def pin_memory(self, device=None):
        return self

    def is_pinned(self, device=None):
        return False

    def share_memory_(self):
        return self

    def is_shared(self):
        return False

    # -- autograd --------------------------------------------------------------------------------
    @property
    def retains_grad(self):
        """True for a non-leaf tensor that called retain_grad() (leaves: False, as PyTorch)."""
        node = self._node
        return node is not None and node.retained is not None and node.retained() is self

    def register_post_accumulate_grad_hook(self, hook):
        """Call `hook(self)` after backward has accumulated this leaf's `.grad` (PyTorch's
        hook for fusing an optimizer step into backward). Returns a handle with `.remove()`."""
        from .hooks import register_post_accumulate_grad_hook

        return register_post_accumulate_grad_hook(self, hook)

    # -- more legacy and memory names ------------------------------------------------------------
    def const_data_ptr(self):
        return _ops.data_ptr_of(self)

    def is_set_to(self, tensor):
        return _ops.is_set_to(self, tensor)

    # the memory under the tensor (descent/storage.py, loaded on first use: PyTorch's storage API)
    def untyped_storage(self):
        return _ops.untyped_storage(self)

    def storage(self):
        return _ops.typed_storage(self)

    def storage_type(self):
        return _ops.storage_type(self)

    def set_(self, source=None, *args, **kwargs):  # (source, storage_offset, size, stride)
        return _ops.storage_set_(self, source, *args, **kwargs)

    def new(self, *args, dtype=None, device=None, requires_grad=False):
        return _ops.tensor_new(self, *args, dtype=dtype, device=device,
                               requires_grad=requires_grad)  # fmt: skip

    def narrow_copy(self, dim, start, length):
        return _ops.narrow_copy(self, dim, start, length)

    def nonzero_static(self, *, size, fill_value=-1):
        return _ops.nonzero_static(self, size=size, fill_value=fill_value)

    def as_strided_scatter(self, src, size, stride, storage_offset=None):
        return _ops.as_strided_scatter(self, src, size, stride, storage_offset)

    def resize(self, *sizes):
        return _ops.resize(self, *sizes)

    def resize_as(self, tensor):
        return _ops.resize_as(self, tensor)

    def apply_(self, callable):
        return _ops.apply_(self, callable)

    def map_(self, tensor, callable):
        return _ops.map_(self, tensor, callable)

    def map2_(self, x, y, callable):
        return _ops.map2_(self, x, y, callable)
