"""Complex tensors: building them (complex, polar, view_as_complex), taking them apart (real,
imag, view_as_real, abs, angle) and conjugation, with PyTorch's gradient convention.

The convention (PyTorch's, docs/complex.md): for a real loss L of a complex tensor z = x + iy,
the gradient stored in `z.grad` and passed between ops is dL/dx + i dL/dy (the conjugate
Wirtinger derivative times two). With it:

* a holomorphic op y = f(z) gets gz = gy * conj(f'(z)) (mul: ga = gy * conj(b));
* a complex output y of a real input t gets gt = Re(conj(gy) * dy/dt), the real part of the
  chain rule, which is what `Cast` (real -> complex) and the engine's leaf store do;
* a real output r of a complex input z gets gz = gr * (dr/dx + i dr/dy) (abs: gr * z/|z|).

The arrays behind complex tensors are NumPy's complex64 / complex128; their real and imaginary
parts are NumPy views (`arr.real`), so `x.real` and `view_as_real(x)` share memory with x as
in PyTorch wherever NumPy can view (a contiguous array).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..dtypes import complex_of, scalar_type
from ..errors import DtypeError
from ..tensor import Tensor
from ._common import as_tensor

__all__ = [
    "angle_complex", "complex", "conj", "imag", "polar", "real", "set_complex_part",
    "view_as_complex", "view_as_real",
]  # fmt: skip


def _scalar_type(dt) -> str:
    """PyTorch's ScalarType name of a NumPy dtype (Float, Double, Long, ...) for messages: the
    one table, dtypes.SCALAR_TYPES."""
    return scalar_type(dt)


def _real_dtype(dt) -> np.dtype:
    """float32 for complex64, float64 for complex128."""
    return np.dtype(np.float32) if dt == np.complex64 else np.dtype(np.float64)


def _as_real_array(xp, z):
    """(..., 2) real array over the complex array z: always a view of z's memory, whatever
    its strides (PyTorch's view_as_real is one); the new last axis, of size 1 before the
    dtype change, is contiguous by definition, which is all NumPy's view needs."""
    return z[..., None].view(_real_dtype(z.dtype))


def _as_complex_array(xp, r):
    """The complex array over the (..., 2) real array r: a view where r's last dimension is
    contiguous (view_as_complex checks PyTorch's conditions first), else over a copy (a
    gradient may come in any layout)."""
    try:
        return r.view(complex_of(r.dtype))[..., 0]
    except ValueError:  # the last axis not contiguous: NumPy cannot pair the values up
        return xp.ascontiguousarray(r).view(complex_of(r.dtype))[..., 0]


# ---------------------------------------------------------------------------------------------
# Views between (..., 2) real tensors and complex ones


class ViewAsComplex(Function):
    """(..., 2) real -> (...) complex; d/dx: the gradient seen as real pairs (view_as_real)."""

    makes_view = True  # (autograd.mark_view)

    def forward(self, x):
        return _as_complex_array(backend.get_array_module(x), x)

    def backward(self, gy, ops):
        if ops.is_graph:
            return view_as_real(gy)
        return _as_real_array(backend.get_array_module(gy), gy)


class ViewAsReal(Function):
    """(...) complex -> (..., 2) real; d/dz: the real pairs seen as complex (view_as_complex)."""

    makes_view = True  # a view of the memory (autograd.mark_view): one version counter

    def forward(self, z):
        return _as_real_array(backend.get_array_module(z), z)

    def backward(self, gy, ops):
        if ops.is_graph:  # (PyTorch's view_as_complex(grad.contiguous()): a gradient may
            return view_as_complex(gy.contiguous())  # come in any layout, a transpose's)
        return _as_complex_array(backend.get_array_module(gy), gy)


def view_as_complex(input) -> Tensor:
    """A (..., 2) float32/float64 tensor seen as complex64/complex128 of shape (...), as
    torch.view_as_complex (the pairs are (real, imaginary)); shares memory where the input is
    contiguous in its last dimension.

    Raises:
        RuntimeError: PyTorch's errors: a 0-d input, a last dimension that is not 2 or not
            contiguous, strides that do not pair up, a non-floating dtype.
    """
    x = as_tensor(input)
    a = x._data
    if a.dtype == np.float16:
        raise RuntimeError(
            "view_as_complex: descent has no complex32, so a half tensor cannot be viewed as "
            "complex; convert it with .float() first"
        )
    if a.dtype.kind not in "fV":
        raise RuntimeError(
            "view_as_complex is only supported for half, float and double tensors, but got a "
            f"tensor of scalar type: {_scalar_type(a.dtype)}"
        )
    if a.ndim == 0:
        raise RuntimeError("Input tensor must have one or more dimensions")
    if a.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    item = a.dtype.itemsize
    if a.size and a.strides[-1] != item:
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if a.size and any(s % (2 * item) for s, n in zip(a.strides[:-1], a.shape[:-1]) if n > 1):
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last dimension")
    return ViewAsComplex.apply(x)


def view_as_real(input) -> Tensor:
    """A complex tensor of shape (...) seen as a real one of shape (..., 2) holding (real,
    imaginary) pairs (torch.view_as_real); shares memory where the input is contiguous.

    Raises:
        RuntimeError: the input is not complex (PyTorch's message).
    """
    x = as_tensor(input)
    if x._data.dtype.kind != "c":
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return ViewAsReal.apply(x)


# ---------------------------------------------------------------------------------------------
# Parts and conjugation


class Real(Function):
    """Re(z); d/dz: gy + 0i (the real gradient as a complex one)."""

    makes_view = True  # (autograd.mark_view)

    __slots__ = ("in_dtype",)

    def forward(self, z):
        self.in_dtype = z.dtype
        return z.real  # NumPy's view of the real parts

    def backward(self, gy, ops):
        return ops.cast(gy, self.in_dtype)


class Imag(Function):
    """Im(z); d/dz: 0 + i gy, its real part exactly 0 (as PyTorch's) also where gy is nan or
    inf: a product gy * 1j would give (nan + 0i) * i = nan + nan i."""

    makes_view = True  # (autograd.mark_view)

    __slots__ = ("in_dtype",)

    def forward(self, z):
        self.in_dtype = z.dtype
        return z.imag  # NumPy's view of the imaginary parts

    def backward(self, gy, ops):
        part = np.empty(0, self.in_dtype).real.dtype
        if ops.is_graph:
            g = ops.cast(gy, part)
            zero = Tensor._wrap(backend.get_array_module(g._data).zeros(g.shape, part))
            return Complex.apply(zero, g)
        out = backend.get_array_module(gy).zeros(gy.shape, self.in_dtype)
        out.imag = gy
        return out


class ComplexSgn(Function):
    """sgn(z) = z / |z| (0 at 0; nan + nan i where z is not finite, PyTorch's vectorized
    division). Not holomorphic: PyTorch's sgn_backward gz = (gy - s^2 conj(gy)) / (2 |z|),
    0 where z = 0."""

    save_inputs = True
    save_output = True

    def forward(self, z):
        xp = backend.get_array_module(z)
        s = xp.sign(z)  # NumPy >= 2: z / |z|, 0 at 0
        return xp.where(xp.isfinite(z), s, xp.asarray(complex(np.nan, np.nan), z.dtype))

    def backward(self, gy, ops):
        (z,) = self.inputs(ops)
        s = self.output(ops)
        if ops.is_graph:  # Tensors: differentiable again
            a, gy_conj = z.abs(), conj(gy)
        else:
            xp = backend.get_array_module(z)
            a, gy_conj = xp.abs(z), xp.conj(gy)
        zero = a == 0
        return ops.where(zero, 0, (gy - s * s * gy_conj) / (ops.where(zero, 1, a) * 2))


class Conj(Function):
    """conj(z); d/dz: conj(gy) (conjugation is its own adjoint)."""

    def forward(self, z):
        return backend.get_array_module(z).conj(z)

    def backward(self, gy, ops):
        return conj(gy) if ops.is_graph else backend.get_array_module(gy).conj(gy)


def real(input) -> Tensor:
    """The real parts of a complex tensor (a view of its memory); a real tensor itself (as
    torch.real)."""
    x = as_tensor(input)
    return Real.apply(x) if x._data.dtype.kind == "c" else x


def imag(input) -> Tensor:
    """The imaginary parts of a complex tensor (a view of its memory), as torch.imag.

    Raises:
        RuntimeError: the tensor is real (PyTorch's message).
    """
    x = as_tensor(input)
    if x._data.dtype.kind != "c":
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return Imag.apply(x)


def conj(input) -> Tensor:
    """The complex conjugate (a new array: descent has no lazy conjugate bit); a real tensor
    is returned as it is (torch.conj)."""
    x = as_tensor(input)
    return Conj.apply(x) if x._data.dtype.kind == "c" else x


def set_complex_part(x: Tensor, value, part: str) -> None:
    """`x.real = value` / `x.imag = value`: the parts written in place (broadcast), as
    PyTorch's copy_ into the view. Not recorded for autograd, so a tensor that requires grad
    is refused (PyTorch records it; write `x = descent.complex(new_real, x.imag)` instead).

    Raises:
        RuntimeError: x is real (it has no imaginary part; `.real = ` of a real tensor is a
            plain copy_ in PyTorch: use x.copy_(value)), or x requires grad.
    """
    if x._data.dtype.kind != "c":
        raise RuntimeError(f"{part} of a real tensor cannot be assigned: use x.copy_(value)")
    if x._rg:
        raise RuntimeError(
            f"x.{part} = ... on a tensor that requires grad is not recorded by descent's "
            f"autograd; build the new tensor instead (descent.complex(re, im))"
        )
    v = value._data if isinstance(value, Tensor) else value
    getattr(x._data, part)[...] = v
    x._version += 1


class Angle(Function):
    """arg(z) = atan2(y, x); d/dz = gy * i z / |z|^2 (0 at z = 0, PyTorch's angle_backward)."""

    save_inputs = True

    def forward(self, z):
        return backend.get_array_module(z).angle(z).astype(_real_dtype(z.dtype), copy=False)

    def backward(self, gy, ops):
        (z,) = self.inputs(ops)
        # d(atan2(y, x))/dx = -y/|z|^2, /dy = x/|z|^2: together (-y + ix)/|z|^2 = iz/|z|^2.
        r2 = z.real * z.real + z.imag * z.imag
        safe = ops.where(r2 == 0, 1, r2)
        return ops.where(r2 == 0, 0, gy * (z * 1j) / safe)


def angle_complex(z: Tensor) -> Tensor:
    """arg(z) of a complex tensor (descent.angle's complex case; real dtype out)."""
    return Angle.apply(z)


# ---------------------------------------------------------------------------------------------
# Building complex tensors from real ones


def _check_pair(op: str, a: Tensor, b: Tensor, names: tuple) -> None:
    da, db = a._data.dtype, b._data.dtype
    if da not in _HALF_FLOAT_DOUBLE or db not in _HALF_FLOAT_DOUBLE:  # (bfloat16 too, as there)
        raise RuntimeError(
            f"Expected both inputs to be Half, Float or Double tensors but got "
            f"{_scalar_type(da)} and {_scalar_type(db)} ({op})"
        )
    if da != db:
        raise RuntimeError(
            f"Expected object of scalar type {_scalar_type(da)} but got scalar type "
            f"{_scalar_type(db)} for second argument ({op}: {names[0]} and {names[1]} must "
            "have one dtype)"
        )
    if da == np.float16:
        if op == "polar":  # PyTorch has no half polar kernel either: its NotImplementedError
            raise DtypeError(f'"polar_cpu" not implemented for \'Half\' (polar of float16 '
                             f"inputs of shapes {tuple(a.shape)} and {tuple(b.shape)}); convert "
                             "them with .float() first")  # fmt: skip
        raise RuntimeError(f"{op}: descent has no complex32; convert the half inputs with "
                           ".float() first")  # fmt: skip


_HALF_FLOAT_DOUBLE = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


class Complex(Function):
    """real + i imag; d/dreal = Re(gy), d/dimag = Im(gy)."""

    zero_passes = True  # PyTorch's real(grad) and imag(grad) keep its zero tensor
    broadcasts = True
    saves_params = True  # PyTorch's ComplexBackward0 saves real and imag: a 2nd backward raises

    def forward(self, re, im):
        xp = backend.get_array_module(re, im)
        shape = np.broadcast_shapes(re.shape, im.shape)
        out = xp.empty(shape, complex_of(re.dtype))
        out.real = re
        out.imag = im
        return out

    def backward(self, gy, ops):
        if ops.is_graph:
            return real(gy), imag(gy)
        return gy.real, gy.imag


class Polar(Function):
    """z = abs * (cos(angle) + i sin(angle)); d/dabs = Re(conj(gy) sgn(z)), d/dangle =
    Re(conj(gy) i z) (PyTorch's polar_backward: sgn(z) = z/|z| is e^(i angle) for abs > 0, and
    its sign flips for a negative abs and gives 0 at abs = 0, as there)."""

    save_output = True

    def forward(self, r, theta):
        xp = backend.get_array_module(r, theta)
        shape = np.broadcast_shapes(r.shape, theta.shape)
        out = xp.empty(shape, complex_of(r.dtype))
        out.real = r * xp.cos(theta)
        out.imag = r * xp.sin(theta)
        return out

    def backward(self, gy, ops):
        z = self.output(ops)
        gr = gt = None
        if ops.is_graph:
            gyc = conj(gy)
            if self.parents[0] is not None:
                a = z.abs()  # sgn(z) written out: sign's own derivative is 0
                gr = real(gyc * (z / ops.where(a == 0, 1, a)))
            if self.parents[1] is not None:
                gt = real(gyc * z * 1j)
            return gr, gt
        gx, gv = gy.real, gy.imag  # dL/dRe, dL/dIm
        if self.parents[0] is not None:
            s = backend.get_array_module(z).sign(z)  # z/|z| (NumPy 2's complex sign), 0 at 0
            gr = gx * s.real + gv * s.imag
        if self.parents[1] is not None:
            # d z/d angle = i z = (-Im z, Re z)
            gt = gv * z.real - gx * z.imag
        return gr, gt


def complex(real, imag) -> Tensor:  # noqa: A001 - PyTorch's name (torch.complex)
    """real + i imag, broadcast, as torch.complex: float32 parts give complex64, float64
    parts complex128.

    Raises:
        RuntimeError: the parts are not floating or differ in dtype (PyTorch's rule).
    """
    re, im = as_tensor(real), as_tensor(imag)
    _check_pair("complex", re, im, ("real", "imag"))
    return Complex.apply(re, im)


def polar(abs, angle) -> Tensor:  # noqa: A002 - PyTorch's parameter names
    """abs * (cos(angle) + i sin(angle)), broadcast, as torch.polar (complex64 from float32).

    Raises:
        RuntimeError: the inputs are not floating or differ in dtype (PyTorch's rule).
    """
    r, theta = as_tensor(abs), as_tensor(angle)
    _check_pair("polar", r, theta, ("abs", "angle"))
    return Polar.apply(r, theta)
