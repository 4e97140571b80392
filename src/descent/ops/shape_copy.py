"""Shape ops that copy values to new places: pad, flip, roll, tile and repeat, tril and triu.

Split out of ops/shape.py, which re-exports every name here (descent.ops.shape.pad and
`from .shape import tril` keep working). Unlike shape.py's reshape, transpose, expand or
squeeze, whose outputs may be recorded as views of their input, each op here makes a new tensor:
the input's elements padded, reversed, rolled, repeated or masked. Each backward moves the
gradient back the inverse way (cut off the padding, flip or roll back, sum the copies, mask).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DescentError
from ..grad_fn import show_as
from ..tensor import Tensor
from ._common import (
    _one_axis,
    as_tensor,
    c_ordered,
    input_ordered,
    normalize_axis,
    shape_arg,
)


class Pad(Function):
    """d pad(x) = the gradient with the padding cut off (constant mode); for reflect, replicate
    and circular modes each output element copies one input element, so the gradient is
    scatter-added back through that index map (`src`)."""

    __slots__ = ("pad_width", "mode", "value", "src")
    saved_slots = ("src",)  # the index map of the non-constant modes, read only by backward

    def forward(self, x):
        xp = backend.get_array_module(x)
        if self.mode == "constant":  # (C-ordered, as PyTorch's result: NumPy's pad keeps a
            # transposed x's order, whose view() then failed where PyTorch's works)
            return c_ordered(xp.pad(x, self.pad_width, mode="constant",
                                    constant_values=self.value))  # fmt: skip
        self.src = None
        if x.dtype not in _FOLD_DTYPES or not _foldable(self.mode, self.pad_width, x.shape):
            # Pad the flat positions of x the same way: src[i] is the input element output i
            # copies.
            self.src = _index_map(xp, x.shape, self.pad_width, self.mode)
        return xp.pad(x, self.pad_width, mode=self.mode)

    def backward(self, gy, ops):
        # Non-constant modes copy input elements (some several times): scatter-add gy back through
        # the index map `src`, so every copy's gradient reaches the element it copied.
        if self.mode == "constant":
            return ops.pad_grad(gy, self.pad_width)
        shape = self.in_shapes[0]
        if self.src is None:
            if not ops.is_graph:  # reflect / replicate: fold the border back, axis by axis
                return _fold_pad_grad(backend.get_array_module(gy), gy, self.pad_width,
                                      self.mode)  # fmt: skip
            self.src = _index_map(backend.get_array_module(gy._data), shape, self.pad_width,
                                  self.mode)  # fmt: skip
        size = 1
        for n in shape:
            size *= n
        g = ops.index_grad(gy.reshape((-1,)), (size,), (self.src.reshape(-1),), False)
        return g.reshape(shape)


class ConstantPad(Pad):
    """Pad in constant mode: saves nothing (its gradient is gy with the border cut off), so a
    second backward runs again, as PyTorch's ConstantPadNdBackward0."""

    __slots__ = ()
    saved_slots = ()


def _index_map(xp, shape, pad_width, mode):
    """The padded array of flat input positions: src[i] is the input element output i copies."""
    size = 1
    for n in shape:
        size *= n
    return xp.pad(xp.arange(size).reshape(shape), pad_width, mode=mode)


# The folded gradient rounds after each added border (at most two per axis): float32/64
# only; half types keep the scatter-add, accumulated in float32 and rounded once.
_FOLD_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _foldable(mode: str, pad_width, shape) -> bool:
    """reflect with every pad narrower than its axis (PyTorch's limit), or replicate ('edge'):
    their gradient folds the border back with slices (`_fold_pad_grad`)."""
    if mode == "edge":
        return all(n > 0 for n, (a, b) in zip(shape, pad_width) if a or b)
    if mode == "reflect":
        return all(a < n and b < n for n, (a, b) in zip(shape, pad_width) if a or b)
    return False


def _fold_pad_grad(xp, gy, pad_width, mode):
    """The gradient of reflect / replicate padding: per padded axis, the border's gradient
    is added back onto the elements it copied (reflect: mirrored, starting one in from the
    edge; replicate: summed onto the edge element) and the border cut off. A few slices per
    axis, where the flat scatter-add through an index map built at every forward cost 2x
    PyTorch's reflect pad (op_sweep)."""
    if mode == "reflect":
        gx = _reflect_fold_kernel(gy, pad_width)
        if gx is not None:
            return gx
    g = gy
    for axis, (lo, hi) in enumerate(pad_width):
        if not (lo or hi):
            continue
        n = g.shape[axis] - lo - hi

        def sl(a, b, step=1, axis=axis):
            return (slice(None),) * axis + (slice(a, b, step),)

        gx = g[sl(lo, lo + n)].copy()  # the gradient of the copied-through centre
        if mode == "reflect":
            if lo:  # output lo-1-k copies input k+1, k < lo: the border mirrored onto 1..lo
                gx[sl(1, lo + 1)] += xp.flip(g[sl(0, lo)], axis)
            if hi:  # output lo+n+k copies input n-2-k
                gx[sl(n - 1 - hi, n - 1)] += xp.flip(g[sl(lo + n, lo + n + hi)], axis)
        else:  # replicate: every border element copies the edge element
            if lo:
                gx[sl(0, 1)] += g[sl(0, lo)].sum(axis=axis, keepdims=True)
            if hi:
                gx[sl(n - 1, n)] += g[sl(lo + n, lo + n + hi)].sum(axis=axis, keepdims=True)
        g = gx
    return g


def _reflect_fold_kernel(g, pad_width):
    """`_fold_pad_grad` for reflect padding of the last one or two axes only, by one numba
    loop (kernels/_cpu_misc.reflect_fold_2d: the same additions in the same order), or None
    (the kernels off, not a NumPy float32/float64 array, other axes padded)."""
    if type(g) is not np.ndarray or g.dtype not in _FOLD_DTYPES or g.ndim < 2 or not g.size:
        return None
    if any(a or b for a, b in pad_width[:-2]):
        return None
    from ..kernels import cpu as _kcpu  # noqa: PLC0415 - numba only when a kernel runs

    if not _kcpu.enabled():
        return None
    from ..kernels import _cpu_misc  # noqa: PLC0415

    (lh, hh), (lw, hw) = pad_width[-2:]
    h, w = g.shape[-2] - lh - hh, g.shape[-1] - lw - hw
    g3 = np.ascontiguousarray(g).reshape(-1, g.shape[-2], g.shape[-1])
    out = np.empty((g3.shape[0], h, w), g.dtype)
    _cpu_misc.reflect_fold_2d(g3, lh, hh, lw, hw, out)
    return out.reshape(g.shape[:-2] + (h, w))


# PyTorch's mode names and NumPy's: both are accepted.
_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "edge": "edge",
              "circular": "wrap", "wrap": "wrap"}  # fmt: skip


def pad(x, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with PyTorch's convention: `pad` lists (left, right) pairs from the LAST dimension.

    Args:
        x: the tensor.
        pad: (left, right) for the last dimension, then the one before, ...
        mode: 'constant' (fill with `value`), 'reflect', 'replicate' (NumPy's 'edge') or
            'circular' (NumPy's 'wrap').
        value: the fill value of constant padding.
    """
    x = as_tensor(x)
    if mode not in _PAD_MODES:
        raise DescentError(f"pad: unknown mode {mode!r}; use one of {sorted(_PAD_MODES)}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise DescentError(
            f"pad: expected pairs (before, after) for at most {x.ndim} dimensions, got {pad}"
        )
    # PyTorch lists pads from the last dimension backwards; NumPy wants one pair per axis.
    width = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        width[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if any(a < 0 or b < 0 for a, b in width):
        raise DescentError("pad: negative padding is not supported; slice instead")
    mode = _PAD_MODES[mode]
    op = ConstantPad if mode == "constant" else Pad
    return op.apply(x, pad_width=tuple(width), mode=mode, value=value)


class Flip(Function):
    """d flip(x) = flip of the gradient."""

    __slots__ = ("axis",)

    def forward(self, x):
        # torch.flip copies (unlike NumPy's flip, a view): an in-place op on the result (timm's
        # mixup, x.flip(0).mul_(1 - lam)) must not write through into x.
        # In x's memory order, as PyTorch's (flip of a transposed x is transposed there).
        return input_ordered(backend.get_array_module(x).flip(x, self.axis), x, copy=True)

    def backward(self, gy, ops):
        # Flipping is its own inverse (and its own adjoint).
        return ops.flip(gy, self.axis)


def flip(x, axis=None, dims=None) -> Tensor:
    """torch.flip(input, dims): `dims` is PyTorch's keyword, `axis` NumPy's."""
    x = as_tensor(x)
    if dims is not None:
        axis = dims
    axes = normalize_axis(axis, x.ndim, "flip")
    if axes is not None and len(set(axes)) != len(axes):
        raise DescentError(f"flip: a dim appears more than once in dims {axis}")
    if x.ndim == 0:
        axes = ()  # dim 0 / -1 of a 0-d tensor (PyTorch): nothing to reverse
    return Flip.apply(x, axis=axes)


class Roll(Function):
    """d roll(x, s) = roll of the gradient by -s."""

    __slots__ = ("shift", "axis")

    def forward(self, x):
        # (C-ordered, as PyTorch's result: see Pad)
        return c_ordered(backend.get_array_module(x).roll(x, self.shift, self.axis))

    def backward(self, gy, ops):
        # Rolling back by the same shift undoes the roll: the adjoint of a permutation is its
        # inverse.
        neg = tuple(-s for s in self.shift) if isinstance(self.shift, tuple) else -self.shift
        return ops.roll(gy, neg, self.axis)


def roll(x, shifts, axis=None, dims=None) -> Tensor:
    """torch.roll(input, shifts, dims=None): `dims` is PyTorch's keyword, `axis` NumPy's."""
    x = as_tensor(x)
    if dims is not None:
        axis = dims
    if isinstance(shifts, list):
        shifts = tuple(shifts)
    if isinstance(axis, list):
        axis = tuple(axis)
    # PyTorch pairs shifts with dims one to one (one shift and no dims rolls the flattened
    # tensor); NumPy would broadcast a scalar shift over several axes, or add up several shifts
    # on one axis, and silently return something PyTorch refuses.
    n_shifts = len(shifts) if isinstance(shifts, tuple) else 1
    n_dims = 0 if axis is None else len(axis) if isinstance(axis, tuple) else 1
    if n_shifts == 0:
        raise DescentError("roll: `shifts` required")
    if n_shifts != max(n_dims, 1):
        raise DescentError(
            f"roll: shifts and dimensions must align. shifts: {n_shifts}, dims:{n_dims}"
        )
    if x._data.size == 0:  # nothing moves (PyTorch checks no dim for an empty tensor)
        from .shape import reshape  # noqa: PLC0415 - shape imports this module (a rare branch)

        return show_as(reshape(x, x.shape), "RollBackward0", (x,))
    if axis is not None:  # in range, or PyTorch's IndexError naming roll (NumPy's AxisError)
        for a in axis if isinstance(axis, tuple) else (axis,):
            _one_axis(a, x.ndim, "roll")
    return Roll.apply(x, shift=shifts, axis=axis)


class Tile(Function):
    """d tile(x) = the sum of the gradient's copies."""

    __slots__ = ("reps",)
    # moves values: bfloat16 stays bfloat16, so backward rounds where PyTorch's does (after
    # each leading axis's sum, see tile_grad), not once at the end
    native_bfloat16 = True

    def forward(self, x):
        return backend.get_array_module(x).tile(x, self.reps)

    def backward(self, gy, ops):
        # Each input element appears prod(reps) times: its gradient is the sum over the copies.
        return ops.tile_grad(gy, self.in_shapes[0], self.reps)


def tile(x, *reps, dims=None) -> Tensor:
    """torch.tile(input, dims): `dims` (the repetitions) may come as a keyword."""
    x = as_tensor(x)
    if dims is not None:
        reps = (tuple(dims),)
    reps = tuple(int(r) for r in shape_arg(reps))
    if any(r < 0 for r in reps):
        raise DescentError(
            f"tile: repetition counts must be >= 0, got {reps} for shape {tuple(x.shape)}"
        )
    return Tile.apply(x, reps=reps)


def repeat(x, *reps) -> Tensor:
    """PyTorch's Tensor.repeat (NumPy's tile): copies the whole tensor along each axis."""
    x = as_tensor(x)
    reps = shape_arg(reps)
    if len(reps) < x.ndim:
        raise DescentError(
            f"repeat: give at least {x.ndim} repetition counts for shape {tuple(x.shape)}, "
            f"got {reps}"
        )
    return tile(x, reps)


class Tri(Function):
    """d tril(x) = tril of the gradient (triu likewise)."""

    __slots__ = ("k", "upper")

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.triu(x, self.k) if self.upper else xp.tril(x, self.k)

    def backward(self, gy, ops):
        # Masking is linear and self-adjoint: the gradient is masked the same way.
        return ops.triu(gy, self.k) if self.upper else ops.tril(gy, self.k)


def tril(x, k: int = 0, *, diagonal=None) -> Tensor:
    if diagonal is not None:
        k = diagonal
    return Tri.apply(_matrices(x, "tril"), k=k, upper=False)


def triu(x, k: int = 0, *, diagonal=None) -> Tensor:
    if diagonal is not None:
        k = diagonal
    return Tri.apply(_matrices(x, "triu"), k=k, upper=True)


def _matrices(x, name: str) -> Tensor:
    x = as_tensor(x)
    if x.ndim < 2:  # NumPy would treat a vector as a row; PyTorch refuses
        raise DescentError(
            f"{name}: input tensor must have at least 2 dimensions, got shape {tuple(x.shape)} "
            "(as PyTorch); unsqueeze it or use diag_embed/outer to build a matrix first"
        )
    return x
