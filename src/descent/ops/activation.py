"""Activation functions: forward and derivative side by side."""

from __future__ import annotations

import math
import operator

import numpy as np

from .. import backend, halves
from ..array_backward import array_namespace
from ..autograd import Function, _backward_state
from ..errors import DescentError, DtypeError
from ..grad_mode import is_grad_enabled
from ..opmath import HALF, in_float32
from ..tensor import Tensor, get_default_dtype
from ._common import as_tensor, conj_if_complex, refuse_complex
from .elementwise import cast
from .nested_values import on_values
from .out_arg import write_out
from .untracked import computed

# Constants of the GELU and erf derivatives, as Python floats: multiplying a tensor by a
# Python float keeps its dtype (NEP 50: a NumPy float64 scalar would promote it to float64).
_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


# Activations compute in floating point: integer inputs take the default dtype (PyTorch's rule).
def float_kernel_input(x, op: str, empty_ok: bool = False) -> Tensor:
    """x as a Tensor for an activation that PyTorch has only floating kernels for (gelu, silu,
    elu, leaky_relu, hardswish, mish, softplus, ...): an integer or bool x raises a
    DtypeError, a NotImplementedError as PyTorch's ("GeluKernelImpl" not implemented for
    'Long'), where descent computed in float32; an empty one too (torch 2.13 dispatches on the
    dtype before it looks at the size: descent returned an empty float32 tensor), unless
    empty_ok is True."""
    x = as_tensor(x)
    if x._data.dtype.kind in "iub" and (x._data.size or not empty_ok):
        raise DtypeError(
            f"{op}: not implemented for {x._data.dtype} tensors (shape {tuple(x.shape)}), as in "
            f"PyTorch; convert first with .float()"
        )
    return x


def _float(x, allow_complex: bool = False) -> Tensor:
    x = as_tensor(x)
    if x._data.dtype.kind not in "fV":
        if allow_complex and x._data.dtype.kind == "c":
            return x
        refuse_complex(x)
        x = cast(x, get_default_dtype())
    return x


class Tanh(Function):
    """d/dx tanh(x) = 1 - tanh(x)^2 (reuses the output)."""

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, gy, ops):
        # Saving the output, not the input: 1 - y^2 needs no second tanh. PyTorch's form
        # gy * (1 - y^2): an inf gy gives inf (gy - gy y^2 was inf - inf = nan).
        y = conj_if_complex(ops, self.output(ops))  # complex: gy conj(1 - tanh(z)^2)
        if not ops.is_graph and y.dtype == HALF:
            # PyTorch's tanh_backward kernel: the float16 y and gy in float32, rounded once
            # (three float16 roundings were 1.15x further from float64 on average)
            return in_float32(_tanh_vjp, gy, y)
        return _tanh_vjp(gy, y)


def _tanh_vjp(gy, y):
    """Tanh's backward formula (arrays, or Tensors under create_graph)."""
    return gy * (1 - y * y)


class Sigmoid(Function):
    """d/dx sigmoid(x) = s (1 - s) (reuses the output; conjugated for complex x)."""

    save_output = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's opmath: in float32, rounded once (descent/opmath.py)
            return in_float32(self.forward, x)
        xp = backend.get_array_module(x)
        # Split by sign so exp never overflows.
        # exp of a non-positive number only: no overflow for large |x|, and both branches agree
        # (1/(1+e^-x) = e^x/(1+e^x)); the derivative s (1 - s) then reuses the output.
        if x.dtype.kind == "c":  # complex: the same split by the sign of the real part
            neg = x.real < 0
            e = xp.exp(xp.where(neg, x, -x))
            return xp.where(neg, e / (1 + e), 1 / (1 + e))
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))

    def backward(self, gy, ops):
        y = conj_if_complex(ops, self.output(ops))
        if not ops.is_graph and y.dtype == HALF:  # in float32, rounded once (opmath)
            return in_float32(_sigmoid_vjp, gy, y)
        if ops.is_graph and y.dtype.kind == "f":  # PyTorch's sigmoid_backward node
            return ActivationBackward.apply(gy, y, kind="sigmoid")
        return _sigmoid_vjp(gy, y)


def _sigmoid_vjp(gy, y):
    """Sigmoid's backward formula (arrays, or Tensors under create_graph)."""
    return gy * (y * (1 - y))


class Relu(Function):
    """d/dx relu(x) = 1 where x > 0, else 0 (reuses the output)."""

    save_output = True

    def forward(self, x):
        return backend.clamp_min_zero(x)  # PyTorch's clamp_min(x, 0): relu(-0.0) is -0.0

    def backward(self, gy, ops):
        # The output is positive exactly where x is: the mask needs no saved input (0 at x = 0, as
        # PyTorch's subgradient). PyTorch's threshold_backward zeroes where y <= 0, so a nan
        # input passes gy on.
        y = self.output(ops)
        if not ops.is_graph:
            k = backend.fused("relu_backward", y, gy)  # one pass, the same bits (numba)
            if k is not None:
                return k(y, gy)
        gx = ops.where(y <= 0, 0, gy)
        if ops.is_graph and y.requires_grad:
            # PyTorch's threshold_backward(gy, y) is connected to y too, with derivative 0: a
            # gradient through it requires grad even when gy does not, and a second backward
            # gives zeros where it reaches y alone (not None): -0.0 + gx is gx exactly
            from .gaps_math_inplace import ZeroGradient  # noqa: PLC0415 - it imports this one

            xp = backend.get_array_module(y._data)
            gx = ZeroGradient.apply(y, value=xp.full(gx.shape, -0.0, gx._data.dtype)) + gx
        return gx


class LeakyRelu(Function):
    """d/dx leaky_relu(x) = 1 where x > 0, else slope."""

    __slots__ = ("slope",)
    save_inputs = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's opmath: the slope kept in float32 (NumPy would round
            return in_float32(self.forward, x)  # 0.01 to float16 first: 2x PyTorch's error)
        return backend.get_array_module(x).where(x > 0, x, x * self.slope)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if not ops.is_graph and x.dtype == HALF:  # in float32, rounded once (as forward)
            return in_float32(self._vjp, gy, x, ops)
        return self._vjp(gy, x, ops)

    def _vjp(self, gy, x, ops):
        """The backward formula (arrays, or Tensors under create_graph)."""
        # The slope is a Python float: gy keeps its dtype.
        return ops.where(x > 0, gy, gy * self.slope)


class Elu(Function):
    """d/dx elu(x) = 1 where x > 0, else alpha exp(x)."""

    __slots__ = ("alpha",)
    save_inputs = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's opmath: alpha and expm1 in float32, rounded once
            return in_float32(self.forward, x)
        xp = backend.get_array_module(x)
        # expm1 of min(x, 0): accurate near 0 and never overflows on the positive side, which
        # where() computes too and then discards. (where, not minimum: NumPy's minimum(-0., 0)
        # is +0, and elu(-0.) is -0. in PyTorch, which log or 1/x downstream tell apart.)
        return xp.where(x > 0, x, self.alpha * xp.expm1(xp.where(x > 0, 0, x)))

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        # alpha * exp(x) for x <= 0 is the derivative of alpha * (exp(x) - 1); min(x, 0) keeps the
        # unused branch finite. A nan input gets nan, as in PyTorch's vectorized loop (its
        # scalar loop, for the last few elements of a tensor, passes gy: PyTorch disagrees
        # with itself there).
        if not ops.is_graph and x.dtype == HALF:
            # PyTorch's elu_backward kernel: float32, rounded once (NumPy rounded alpha and
            # each product to float16: 2x PyTorch's error from float64 with alpha = 0.7)
            return in_float32(self._vjp, gy, x, ops)
        return self._vjp(gy, x, ops)

    def _vjp(self, gy, x, ops):
        """The backward formula (arrays, or Tensors under create_graph)."""
        if ops.is_graph:  # PyTorch's elu_double_backward masks with x < 0: the second
            # derivative at x = 0 is 0 (minimum's tie rule gave alpha / 2); a nan x keeps its
            # nan, a constant 0 elsewhere (x * 0 was nan at x = inf, whose 0 * nan made the
            # second derivative nan there: grad2 fuzz 30532547, 30573014, 30558676, ...)
            neg = ops.where(x < 0, x, ops.where(x == x, 0.0, x))
        else:
            neg = ops.minimum(x, 0)
        return ops.where(x > 0, gy, gy * (ops.exp(neg) * self.alpha))


class Gelu(Function):
    """GELU (Hendrycks & Gimpel, 2016).

    exact: y = x Phi(x), dy/dx = Phi(x) + x phi(x), Phi the normal CDF, phi its density.
    tanh:  y = x/2 (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715 x^3),
           dy/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi)(1 + 3 * 0.044715 x^2).
    """

    __slots__ = ("approximate", "keep_d", "d")
    save_inputs = True
    saved_slots = ("d",)  # the exact form's derivative (float32 CPU kernel), freed by backward

    def forward(self, x):
        if x.dtype == HALF and type(x) is np.ndarray:  # float32, rounded once (opmath)
            y = in_float32(self.forward, x)
            self.d = None  # the float32 kernel's derivative: backward recomputes it in float32
            return y
        xp = backend.get_array_module(x)
        self.d = None
        if self.keep_d and self.approximate != "tanh" and type(x) is np.ndarray:
            # A node follows: the kernel also writes the derivative (no extra cost per element),
            # so backward is one multiply, the bits of the backward kernel (CPU float32 only).
            k = backend.fused("gelu_forward_d", x)
            if k is not None:
                # two halves at once at two BLAS threads (descent/halves.py; the same bits)
                yd = halves.gelu_forward_d(x) if x.size >= halves.MIN_VALUES else None
                y, self.d = yd if yd is not None else k(x)
                return y
        if self.approximate == "tanh":
            u = (x + 0.044715 * x * x * x) * _SQRT_2_OVER_PI
            return 0.5 * x * (1 + xp.tanh(u))
        # The exact (erf) form: PyTorch's default, and what GPT-2 checkpoints were trained with.
        k = backend.fused("gelu_forward", x)  # CuPy float32/float16: one kernel launch
        if k is not None:
            return k(x)
        return 0.5 * x * (1 + backend.erf(xp, x * (1 / _SQRT_2)))

    def backward(self, gy, ops):
        d = self.d
        if d is not None and not ops.is_graph:
            if (_backward_state.consume and self.hooks is None and gy.shape == d.shape
                    and gy.dtype == d.dtype):  # fmt: skip
                # d is freed as soon as this returns (no post-hook runs in between) and nothing
                # else holds it: the product goes into d (two memory streams, not three; the
                # same multiply, the same bits).
                # baby-gpt's 4 x 393k values: 0.72 -> 0.41 ms a step (docs/compile.md, s27)
                return np.multiply(gy, d, out=d)
            return np.multiply(gy, d, dtype=d.dtype)
        (x,) = self.inputs(ops)
        # The fused GPU kernel serves the plain backward only; under create_graph the formulas below
        # run on Tensors, so they are recorded.
        if self.approximate != "tanh" and not ops.is_graph:
            k = backend.fused("gelu_backward", x)
            if k is not None:
                return k(x, gy)
        if not ops.is_graph and x.dtype == HALF:
            # in float32, rounded once, as PyTorch's gelu_backward (opmath): 2.6x closer
            return in_float32(self._formula, gy, x, ops)
        if ops.is_graph:  # PyTorch's gelu_backward node
            kind = "gelu_tanh" if self.approximate == "tanh" else "gelu"
            return ActivationBackward.apply(gy, x, kind=kind)
        return self._formula(gy, x, ops)

    def _formula(self, gy, x, ops):
        """gy times the derivative at x (arrays, or Tensors under create_graph)."""
        return _gelu_vjp(gy, x, self.approximate == "tanh", ops)


def _gelu_vjp(gy, x, tanh_form: bool, ops):
    """gy times GELU's derivative at x (arrays, or Tensors)."""
    if tanh_form:
        x2 = x * x
        t = ops.tanh((x + x2 * x * 0.044715) * _SQRT_2_OVER_PI)
        du = (x2 * (3 * 0.044715) + 1) * _SQRT_2_OVER_PI  # d/dx of tanh's argument
        d = (t + 1) * 0.5 + x * 0.5 * (1 - t * t) * du
        return gy * d
    # d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi).
    cdf = (ops.erf(x * (1 / _SQRT_2)) + 1) * 0.5
    pdf = ops.exp(x * x * -0.5) * _INV_SQRT_2PI
    return gy * (cdf + x * pdf)


def _gelu_second(x, tanh_form: bool, ops):
    """GELU's second derivative at x, in PyTorch's gelu_double_backward terms: 2 phi - x^2 phi
    (exact form, phi the normal density); with f = x / 2, g = 1 - t^2, t = tanh(u), h = u'
    (u = sqrt(2/pi) (x + 0.044715 x^3)): g h + f h g' + f g h', g' = -2 sech(u)^2 t h (tanh
    form: at x = 20, g is 0 but sech(u)^2 = 1e-262 is not, so an infinite gy gives -inf)."""
    if tanh_form:
        u = (x + x * x * x * 0.044715) * _SQRT_2_OVER_PI
        t = ops.tanh(u)
        sech = 2 / (ops.exp(u) + ops.exp(-u))  # 1 / cosh(u), no cosh in both namespaces
        g = 1 - t * t
        h = (x * x * (3 * 0.044715) + 1) * _SQRT_2_OVER_PI
        g_prime = sech * 2 * (-sech * t) * h
        h_prime = x * (6 * 0.044715 * _SQRT_2_OVER_PI)
        f = x * 0.5
        return g * h * 0.5 * 2 + f * h * g_prime + f * g * h_prime
    x2 = x * x
    pdf = ops.exp(x2 * -0.5) * _INV_SQRT_2PI
    return pdf * 2 - x2 * pdf


class ActivationBackward(Function):
    """gy f'(z) as one node under create_graph, PyTorch's sigmoid_backward(gy, y) (kind
    "sigmoid", z the output y, f' = y (1 - y)) and gelu_backward(gy, x) ("gelu", "gelu_tanh"),
    so that its derivatives are PyTorch's double backward, one product each: d/dgy = gg f'(z),
    d/dz = (gg gy) f''(z) (sigmoid: 1 - 2 y). The product rule through the composite summed
    terms like gy (1 - y) - gy y, inf - inf = nan for an infinite gy where PyTorch's is +-inf
    (session 30's activation check, p_act2.py)."""

    __slots__ = ("kind",)
    save_inputs = True

    def forward(self, gy, z):
        return self._first(gy, z, array_namespace(backend.get_array_module(z)))

    def _first(self, gy, z, ops):
        if self.kind == "sigmoid":
            return _sigmoid_vjp(gy, z)
        return _gelu_vjp(gy, z, self.kind == "gelu_tanh", ops)

    def backward(self, gg, ops):
        gy, z = self.inputs(ops)
        d_gy = ActivationBackward.apply(gg, z, kind=self.kind) if ops.is_graph else \
            self._first(gg, z, ops)  # fmt: skip
        if self.kind == "sigmoid":
            return d_gy, (gg * gy) * (z * -2 + 1)
        return d_gy, (gg * gy) * _gelu_second(z, self.kind == "gelu_tanh", ops)


class Silu(Function):
    """d/dx x s(x) = s(x) (1 + x (1 - s(x))), s the sigmoid."""

    save_inputs = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's opmath: in float32, rounded once
            return in_float32(self.forward, x)
        xp = backend.get_array_module(x)
        e = xp.exp(-xp.abs(x))
        s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return x * s

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        # The sigmoid is recomputed from the saved input rather than saved itself: silu's forward
        # does not keep it, and one array per node is the memory budget.
        if not ops.is_graph and x.dtype == HALF:
            # in float32, rounded once, as PyTorch's silu_backward (opmath): the float16 steps
            # put the gradient 7x further from float64 than PyTorch's
            return in_float32(_silu_vjp, gy, x, ops)
        return _silu_vjp(gy, x, ops)


def _silu_vjp(gy, x, ops):
    """Silu's backward formula (arrays, or Tensors under create_graph)."""
    s = ops.sigmoid(x)
    return gy * (s * (x * (1 - s) + 1))


class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta (linear above threshold); dy/dx = sigmoid(beta x)."""

    __slots__ = ("beta", "threshold")
    save_inputs = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's opmath: in float32, rounded once
            return in_float32(self.forward, x)
        xp = backend.get_array_module(x)
        one = self.beta == 1  # (x * 1 and s / 1 change no bit: two passes skipped)
        bx = x if one else x * self.beta
        # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): stable for every z.
        soft = xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))
        if not one:
            soft = soft / self.beta
        return xp.where(bx > self.threshold, x, soft)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if not ops.is_graph and x.dtype == HALF:
            # float16 in float32, rounded once, as PyTorch's softplus_backward (opmath): the
            # float16 sigmoid and product were 2.6x further from the float64 gradient
            return in_float32(self._vjp, gy, x, ops)
        return self._vjp(gy, x, ops)

    def _vjp(self, gy, x, ops):
        """The backward formula (arrays, or Tensors under create_graph)."""
        # Above the threshold the op is the identity (PyTorch's linear region), so the gradient
        # is 1.
        bx = x if self.beta == 1 else x * self.beta
        s = ops.sigmoid(bx)
        if ops.is_graph and math.isfinite(self.threshold):  # PyTorch's softplus_double_backward
            # multiplies by the mask beta x < threshold: at beta x == threshold the first
            # derivative is sigmoid's, the second 0; a product, so a nan or infinite gy gives nan
            # at and above the threshold (0 * inf; a where gave 0 there). s m + s.detach() (1 -
            # m) is s exactly (m is 0 or 1), its derivative m. (An infinite threshold,
            # binary_cross_entropy_with_logits' composite: only beta x = inf meets it, where
            # sigmoid's derivative is 0 already; the mask would turn that 0's sign, and the fused
            # node's bits are the composite's.)
            m = bx.detach() < self.threshold  # bool: s * m keeps s's dtype
            s = s * m + s.detach() * ~m
        return ops.where(bx > self.threshold, gy, gy * s)


class LogSigmoid(Function):
    """y = log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|), PyTorch's log_sigmoid forward (so
    y(+inf) is +0.0, where -softplus(-x) gave -0.0); dy/dx = sigmoid(-x), written as PyTorch's
    log_sigmoid_backward: s = e^-|x| / (1 + e^-|x|), 1 - s where x < 0, else s."""

    save_inputs = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's opmath: in float32, rounded once
            return in_float32(self.forward, x)
        xp = backend.get_array_module(x)
        return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if not ops.is_graph and x.dtype == HALF:  # in float32, rounded once (opmath)
            return in_float32(_log_sigmoid_vjp, gy, x, ops)
        return _log_sigmoid_vjp(gy, x, ops)


def _log_sigmoid_vjp(gy, x, ops):
    """LogSigmoid's backward formula (arrays; under create_graph gy sigmoid(-x), the same
    values differentiable everywhere: -|x| has no second derivative at 0)."""
    if ops.is_graph:
        return gy * ops.sigmoid(-x)
    z = ops.exp(ops.minimum(x, -x))  # e^-|x| (-|x| as minimum: a name both namespaces have)
    s = z / (1 + z)
    return gy * ops.where(x < 0, 1 - s, s)


def log_sigmoid(x) -> Tensor:
    return LogSigmoid.apply(_float(float_kernel_input(x, "log_sigmoid")))


class Erf(Function):
    """d/dx erf(x) = 2/sqrt(pi) exp(-x^2)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's opmath: in float32, rounded once
            return in_float32(self.forward, x)
        xp = backend.get_array_module(x)
        y = backend.erf(xp, x)
        if x.dtype.itemsize < 8 and (xp is not np or backend.fused("erf_float64", x) is None):
            # Without the CPU kernels (and on CuPy) the float32 approximation has an absolute
            # error of 3e-7, so tiny inputs lose all their digits (erf(-1e-30) came out 0):
            # below |x| = 0.1 the Taylor series, whose first omitted term is under 1e-14
            # relative. The kernels' float64 erf needs no patch.
            small = xp.abs(x) < 0.1
            if small.any():
                x2 = x * x
                t = x * (1 + x2 * (-1 / 3 + x2 * (1 / 10 + x2 * (-1 / 42 + x2 / 216))))
                y = xp.where(small, t * _TWO_OVER_SQRT_PI, y)
        return y

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        # d/dx erf(x) = 2/sqrt(pi) exp(-x^2), the Gaussian density up to scaling.
        e = ops.exp(-(x * x))
        if not ops.is_graph and x.dtype == HALF:
            # PyTorch's formula runs as float16 ops, whose product with the constant keeps it
            # in float32 (opmath) where NumPy rounds it to float16 first (1.8x the error)
            return gy * in_float32(operator.mul, e, _TWO_OVER_SQRT_PI)
        return gy * (e * _TWO_OVER_SQRT_PI)


class Hardswish(Function):
    """x * clip(x + 3, 0, 6) / 6 (PyTorch's order: 3e38 overflows to inf there too); d/dx is 0
    for x <= -3, 1 for x >= 3, x / 3 + 1/2 between (PyTorch's hardswish_backward, whose
    vectorized loop gives nan at a nan input: so does this)."""

    save_inputs = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's float32 opmath: no overflow at 3e4
            return in_float32(self.forward, x)
        xp = backend.get_array_module(x)
        return x * xp.clip(x + 3, 0, 6) / 6

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if not ops.is_graph and x.dtype == HALF:
            # PyTorch's hardswish_backward kernel: float32, rounded once (the float16 steps
            # were 2x further from float64)
            return in_float32(_hardswish_vjp, gy, x, ops)
        return _hardswish_vjp(gy, x, ops)


def _hardswish_vjp(gy, x, ops):
    """Hardswish's backward formula (arrays, or Tensors under create_graph)."""
    # Selections, not products: an inf or nan in gy stays out of the flat pieces.
    mid = gy
    if ops.is_graph:
        # PyTorch's double backward, where(-3 < x < 3, grad * gy / 3, 0): gy enters the
        # middle piece's product only where it is selected, so its x-derivative is 0, not
        # 0 * nan, outside (a nan or inf gy from hypot(0, 0) after hardswish: grad2 fuzz
        # 28540288, 28543444)
        mid = ops.where((x > -3) & (x < 3), gy, 0)
    return ops.where(x <= -3, 0, ops.where(x >= 3, gy, mid * (x / 3 + 0.5)))


def hardswish(x) -> Tensor:
    return Hardswish.apply(_float(float_kernel_input(x, "hardswish")))


class Mish(Function):
    """x tanh(softplus(x)): d/dx = t + x sigmoid(x) (1 - t^2) with t = tanh(softplus(x)),
    PyTorch's mish_backward (one sum: an inf gy at x = 0 gives inf, where the product rule of
    the composite gave inf * 0 = nan)."""

    save_inputs = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's opmath: in float32, rounded once
            return in_float32(self.forward, x)
        xp = backend.get_array_module(x)
        sp = xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))  # softplus, stable
        return x * xp.tanh(sp)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if ops.is_graph:
            return _mish_vjp(gy, x, tanh(softplus(x)), ops)
        if x.dtype == HALF:  # in float32, rounded once (PyTorch's opmath)
            return in_float32(_mish_vjp, gy, x, None, ops)
        return _mish_vjp(gy, x, None, ops)


def _mish_vjp(gy, x, t, ops):
    """Mish's backward formula; t = tanh(softplus(x)), computed here from arrays if None."""
    if t is None:
        xp = backend.get_array_module(x)
        t = xp.tanh(xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x))))
    return gy * (t + x * ops.sigmoid(x) * (1 - t * t))


def mish(x) -> Tensor:
    return Mish.apply(_float(float_kernel_input(x, "mish")))


# The public functions: convert the operand, then record. tanh is the hottest (recurrent nets,
# GELU's tanh form) and skips the conversion call for a float Tensor.
def tanh(x, *, out=None) -> Tensor:
    if out is not None:  # PyTorch's out= (ops/out_arg.py)
        return write_out(tanh(x), out, "tanh")
    if not isinstance(x, Tensor) or x._data.dtype.kind not in "fcV":
        x = _float(x)
    return Tanh.apply(x)


# sigmoid takes no out= here: it is also graph_backward's twin of array_backward.sigmoid
# (same signature, tests/test_engine.py); descent.sigmoid gets out= from out_functions.py.
def sigmoid(x) -> Tensor:
    return Sigmoid.apply(_float(x, allow_complex=True))


def _relu_int(a):
    """max(a, 0) for an integer array (relu's kernel, untracked.computed)."""
    return backend.get_array_module(a).maximum(a, 0)


def relu(x) -> Tensor:
    x = as_tensor(x)
    if x._data.dtype.kind == "b":
        raise DescentError(
            f"relu: bool inputs are not supported (shape {tuple(x.shape)}), as in PyTorch; "
            "convert with .int() or .float() first"
        )
    if x._data.dtype.kind in "iu":  # an integer stays an integer (PyTorch): max(x, 0)
        # (through untracked.computed, so descent.compile replays it on each call's values:
        # computed on the arrays it was a constant the replay froze; session 19's fuzzer)
        return computed(_relu_int, (x,), ())
    return Relu.apply(_float(x))


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    return LeakyRelu.apply(_float(float_kernel_input(x, "leaky_relu")), slope=negative_slope)


def elu(x, alpha: float = 1.0) -> Tensor:
    return Elu.apply(_float(float_kernel_input(x, "elu")), alpha=alpha)


def gelu(x, approximate: str = "none") -> Tensor:
    """GELU; approximate='none' (exact erf form, PyTorch's default) or 'tanh'."""
    if approximate not in ("none", "tanh"):
        raise DescentError(
            f"gelu: approximate argument must be either 'none' or 'tanh', got {approximate!r}"
        )
    x = _float(float_kernel_input(x, "gelu"))
    return Gelu.apply(x, approximate=approximate, keep_d=x._rg and is_grad_enabled())


def silu(x) -> Tensor:
    return Silu.apply(_float(float_kernel_input(x, "silu")))


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return Softplus.apply(_float(float_kernel_input(x, "softplus")), beta=beta, threshold=threshold)


@on_values
def erf(x) -> Tensor:
    return Erf.apply(_float(x))
