"""The tensor-making names of docs/torch_gaps_tensor.md: `empty_strided`, `empty_permuted`,
the legacy `x.new(...)`, and the random fills `x.log_normal_()`, `x.cauchy_()`,
`x.geometric_()`.

They make tensors with `descent.creation`, a layer above the ops, so they live here rather than
in `descent.ops`; `register_ops` puts them in Tensor's ops table (the methods call
`_ops.<name>`), as torch_functions does for its names.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .creation import _fill_inplace, _rng, tensor, zeros
from .ops._common import as_tensor, shape_arg
from .ops.gaps_tensor_strided import as_strided_
from .tensor import Tensor
from .tensor_methods import _ops, register_ops

__all__ = ["empty_permuted", "empty_strided"]


def empty_strided(size, stride, *, dtype=None, layout=None, device=None,
                  requires_grad: bool = False, pin_memory: bool = False) -> Tensor:  # fmt: skip
    """A zero-filled tensor of shape `size` with PyTorch's element strides `stride`
    (torch.empty_strided, which leaves it uninitialised): a view of a fresh buffer just large
    enough for the strided positions, so `stride()` and `is_contiguous()` answer as PyTorch's
    (`empty_strided((2, 3), (1, 2))` is column-major)."""
    size = tuple(shape_arg(tuple(size)))
    stride = tuple(int(s) for s in stride)
    if len(stride) != len(size):
        raise RuntimeError(
            f"empty_strided: mismatch in length of strides and shape: {size} and {stride}"
        )
    if any(s < 0 for s in stride):
        raise RuntimeError(f"empty_strided: strides must be non-negative, got {stride}")
    # The storage PyTorch allocates: one past the furthest element (0 for an empty tensor).
    n = 0 if 0 in size else 1 + sum((d - 1) * s for d, s in zip(size, stride))
    out = zeros((n,), dtype=dtype, device=device)
    as_strided_(out, size, stride, 0)
    return out.requires_grad_() if requires_grad else out


def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None,
                   requires_grad: bool = False, pin_memory: bool = False) -> Tensor:  # fmt: skip
    """A zero-filled tensor of shape `size` whose memory is laid out in the dimension order
    `physical_layout` (torch.empty_permuted; PyTorch leaves it uninitialised)."""
    size = tuple(int(s) for s in size)
    order = tuple(int(p) for p in physical_layout)
    if sorted(order) != list(range(len(size))):
        raise RuntimeError(
            f"empty_permuted: physical_layout {order} is not a permutation of the {len(size)} dims"
        )
    phys = zeros(tuple(size[p] for p in order), dtype=dtype, device=device)
    out = _ops.permute(phys, tuple(int(i) for i in np.argsort(order)))
    return out.requires_grad_() if requires_grad else out


def tensor_new(x, *args, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The legacy x.new(...): x.new() is empty, x.new(2, 3) / x.new(size) a zero-filled tensor
    of that shape (PyTorch's is uninitialised), x.new(data) a tensor of data; all in x's dtype
    and device unless given."""
    x = as_tensor(x)
    dtype = x.dtype if dtype is None else dtype
    device = x.device if device is None else device
    if not args:
        shape, data = (0,), None
    elif all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
        shape, data = tuple(int(a) for a in args), None
    elif len(args) == 1 and type(args[0]).__name__ == "Size":
        shape, data = tuple(args[0]), None
    elif len(args) == 1:
        shape, data = None, args[0]
    else:
        raise TypeError(f"new(): cannot make a tensor from arguments {args!r}")
    if data is None:
        return zeros(shape, dtype=dtype, device=device, requires_grad=requires_grad)
    if isinstance(data, Tensor):
        data = data.detach()
    return tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def _fill_random(t: Tensor, op: str, sample, generator, kinds: str = "fV") -> Tensor:
    # kinds: NumPy dtype kinds the op fills ("V": ml_dtypes' bfloat16, which PyTorch fills too)
    if t._data.dtype.kind not in kinds:
        raise RuntimeError(f"{op}: expected a floating point tensor, got {t.dtype}")
    values = sample(_rng(generator, t.device), tuple(t.shape))
    return _fill_inplace(t, backend.to_device(values.astype(t.dtype), t.device), op)


def log_normal_(t: Tensor, mean: float = 1.0, std: float = 2.0, *, generator=None) -> Tensor:
    """x.log_normal_(mean=1, std=2): exp of normal samples N(mean, std^2), in place."""
    if std <= 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    if t._data.dtype.kind not in "fV":  # PyTorch's error class here (cauchy_ raises RuntimeError)
        raise NotImplementedError(f"log_normal_: not implemented for dtype {t.dtype}")
    return _fill_random(t, "log_normal_", lambda r, s: r.lognormal(mean, std, s), generator)


def cauchy_(t: Tensor, median: float = 0.0, sigma: float = 1.0, *, generator=None) -> Tensor:
    """x.cauchy_(median=0, sigma=1): median + sigma * tan(pi * (u - 1/2)), in place."""
    if sigma <= 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    return _fill_random(
        t, "cauchy_", lambda r, s: median + sigma * np.tan(np.pi * (r.random(s) - 0.5)), generator
    )


def geometric_(t: Tensor, p: float, *, generator=None) -> Tensor:
    """x.geometric_(p): the number of Bernoulli(p) trials up to the first success (1, 2, ...),
    in place."""
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    return _fill_random(t, "geometric_", lambda r, s: r.geometric(p, s), generator, "fiuV")


register_ops({name: globals()[name] for name in (
    "empty_strided", "empty_permuted", "tensor_new", "log_normal_", "cauchy_", "geometric_",
)})  # fmt: skip
