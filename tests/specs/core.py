"""Specs of the engine's ops: elementwise, activations, reductions, shape, indexing, in-place,
linear algebra and einsum (see tests/specs/__init__.py for the format)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as TF

import descent as ds
from descent.ops.indexing import AlongAxisGrad, IndexGrad
from descent.ops.shape import ToDevice

from . import Spec

SPECS: list[Spec] = []


def add(**kw) -> None:
    SPECS.append(Spec(**kw))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_erf(x):
    return _erf(x).astype(x.dtype)


def away_from(points, lo=-2.0, hi=2.0, gap=0.15):
    """An input sampler that keeps values at least `gap` away from kinks at `points`."""

    def make(shape):
        def sampler(rng, dtype):
            x = rng.uniform(lo, hi, size=shape)
            for p in points:
                near = np.abs(x - p) < gap
                x = np.where(near, p + np.sign(x - p + 1e-12) * gap * 1.5, x)
            return [x]

        return sampler

    return make


def distinct(*shapes, scale=0.37):
    """Inputs with all-distinct values (no ties for max/min/maximum), shuffled."""

    def sampler(rng, dtype):
        out = []
        for shape in shapes:
            n = int(np.prod(shape))
            v = (rng.permutation(n) - n / 2) * scale + rng.uniform(-0.05, 0.05, n)
            out.append(v.reshape(shape))
        return out

    return sampler


# ---------------------------------------------------------------------------------------------
# Elementwise binary (broadcasting grid)

P = (-2.0, 2.0)
POS = (0.5, 2.0)

add(name="add", fn=lambda a, b: a + b, ref=np.add, torch_fn=lambda a, b: a + b,
    shapes=[(3, 4), (3, 4)], covers=("Add",), broadcast=True)  # fmt: skip
add(name="add_fn", fn=ds.add, ref=np.add, torch_fn=torch.add, shapes=[(3, 1), (4,)],
    covers=("Add",))  # fmt: skip
add(name="sub", fn=lambda a, b: a - b, ref=np.subtract, torch_fn=lambda a, b: a - b,
    shapes=[(3, 4), (3, 4)], covers=("Sub",), broadcast=True)  # fmt: skip
add(name="mul", fn=lambda a, b: a * b, ref=np.multiply, torch_fn=lambda a, b: a * b,
    shapes=[(3, 4), (3, 4)], covers=("Mul",), broadcast=True)  # fmt: skip
add(name="div", fn=lambda a, b: a / b, ref=np.divide, torch_fn=lambda a, b: a / b,
    shapes=[(3, 4), (3, 4)], domain=[P, POS], covers=("Div",), broadcast=True)  # fmt: skip
add(name="pow_tensor", fn=lambda a, b: a**b, ref=np.power, torch_fn=lambda a, b: a**b,
    shapes=[(3, 4), (3, 4)], domain=[POS, P], covers=("Pow",), broadcast=True)  # fmt: skip
add(name="maximum", fn=ds.maximum, ref=np.maximum, torch_fn=torch.maximum,
    shapes=[(3, 4), (3, 4)], covers=("Maximum",), broadcast=True)  # fmt: skip
add(name="minimum", fn=ds.minimum, ref=np.minimum, torch_fn=torch.minimum,
    shapes=[(3, 4), (3, 4)], covers=("Minimum",), broadcast=True)  # fmt: skip
add(name="where", fn=lambda a, b: ds.where(a > 0, a, b), ref=lambda a, b: np.where(a > 0, a, b),
    torch_fn=lambda a, b: torch.where(a > 0, a, b), shapes=[(3, 4), (3, 4)],
    inputs=lambda rng, dt: [rng.uniform(0.2, 2, (3, 4)) * rng.choice([-1, 1], (3, 4)),
                            rng.uniform(-2, 2, (3, 4))],
    covers=("Where",), broadcast=True)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Tensor-scalar (Python scalars never upcast)

for nm, f, r in [
    ("add_scalar", lambda x: x + 2.5, lambda x: x + 2.5),
    ("radd_scalar", lambda x: 2.5 + x, lambda x: 2.5 + x),
    ("sub_scalar", lambda x: x - 1.5, lambda x: x - 1.5),
    ("rsub_scalar", lambda x: 3.0 - x, lambda x: 3.0 - x),
    ("mul_scalar", lambda x: x * 1.7, lambda x: x * 1.7),
    ("rmul_scalar", lambda x: -0.5 * x, lambda x: -0.5 * x),
    ("div_scalar", lambda x: x / 3.0, lambda x: x / 3.0),
    ("div_scalar_pow2", lambda x: x / 4.0, lambda x: x / 4.0),
    ("pow_int3", lambda x: x**3, lambda x: x**3),
    ("pow_int2", lambda x: x**2, lambda x: x**2),
    ("pow_1", lambda x: x**1, lambda x: x**1),
    ("pow_0", lambda x: x**0, lambda x: x**0),
    ("pow_neg", lambda x: x**-1.5, lambda x: x**-1.5),
    ("rpow_scalar", lambda x: 2.0**x, lambda x: 2.0**x),
    ("neg", lambda x: -x, lambda x: -x),
    ("square", ds.square, np.square),
]:
    covers = {
        "add_scalar": "AddScalar", "radd_scalar": "AddScalar", "sub_scalar": "AddScalar",
        "rsub_scalar": "RSubScalar", "mul_scalar": "MulScalar", "rmul_scalar": "MulScalar",
        "div_scalar": "DivScalar", "div_scalar_pow2": "MulScalar", "rpow_scalar": "RPowScalar",
        "neg": "Neg",
    }.get(nm, "PowScalar")  # fmt: skip
    add(name=nm, fn=f, ref=r, torch_fn=f if nm != "square" else torch.square, shapes=[(2, 3)],
        domain=POS if nm.startswith("pow") else P, covers=(covers,))  # fmt: skip

add(name="rdiv_scalar", fn=lambda x: 2.0 / x, ref=lambda x: 2.0 / x,
    torch_fn=lambda x: 2.0 / x, shapes=[(2, 3)], domain=POS, covers=("RDivScalar",))  # fmt: skip
add(name="pow_sqrt", fn=lambda x: x**0.5, ref=np.sqrt, torch_fn=lambda x: x**0.5,
    shapes=[(5,)], domain=POS, covers=("PowScalar",))  # fmt: skip
add(name="remainder", fn=lambda a: a % 0.7, ref=lambda a: np.remainder(a, 0.7),
    torch_fn=lambda a: torch.remainder(a, 0.7), shapes=[(6,)],
    inputs=lambda rng, dt: [np.array([-1.9, -0.3, 0.2, 0.9, 1.3, 1.8])],
    covers=("Remainder",))  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Unary math

UNARY = [
    ("exp", ds.exp, np.exp, torch.exp, P, "Exp"),
    ("log", ds.log, np.log, torch.log, POS, "Log"),
    ("log1p", ds.log1p, np.log1p, torch.log1p, (-0.5, 2.0), "Log1p"),
    ("expm1", ds.expm1, np.expm1, torch.expm1, P, "Expm1"),
    ("sqrt", ds.sqrt, np.sqrt, torch.sqrt, POS, "Sqrt"),
    ("rsqrt", ds.rsqrt, lambda x: 1 / np.sqrt(x), torch.rsqrt, POS, "Rsqrt"),
    ("sin", ds.sin, np.sin, torch.sin, (-3.0, 3.0), "Sin"),
    ("cos", ds.cos, np.cos, torch.cos, (-3.0, 3.0), "Cos"),
    ("tan", ds.tan, np.tan, torch.tan, (-1.2, 1.2), "Tan"),
    ("tanh", ds.tanh, np.tanh, torch.tanh, (-3.0, 3.0), "Tanh"),
    ("sigmoid", ds.sigmoid, lambda x: 1 / (1 + np.exp(-x)), torch.sigmoid, (-5.0, 5.0), "Sigmoid"),
    ("erf", ds.erf, np_erf, torch.erf, P, "Erf"),
    ("gelu", ds.gelu, lambda x: 0.5 * x * (1 + np_erf(x / math.sqrt(2))), TF.gelu, (-3.0, 3.0),
     "Gelu"),
    ("gelu_tanh", lambda x: ds.gelu(x, approximate="tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
     lambda x: TF.gelu(x, approximate="tanh"), (-3.0, 3.0), "Gelu"),
    ("silu", ds.silu, lambda x: x / (1 + np.exp(-x)), TF.silu, (-4.0, 4.0), "Silu"),
    ("softplus", ds.softplus, lambda x: np.log1p(np.exp(x)), TF.softplus, (-4.0, 4.0), "Softplus"),
    ("softplus_beta", lambda x: ds.softplus(x, beta=2.0, threshold=3.0),
     lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2),
     lambda x: TF.softplus(x, beta=2.0, threshold=3.0), (-4.0, 4.0), "Softplus"),
    ("tensor_exp_method", lambda x: x.exp().log1p(), lambda x: np.log1p(np.exp(x)),
     lambda x: x.exp().log1p(), P, "Exp"),
]  # fmt: skip
for nm, f, r, tf, dom, cov in UNARY:
    inputs = None
    if nm == "softplus_beta":  # keep away from the threshold kink at x = 1.5
        inputs = away_from([1.5], -4, 4)((3, 4))
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[(3, 4)], domain=dom, covers=(cov,),
        inputs=inputs)  # fmt: skip

# Ops with a kink at 0: inputs kept away from it.
KINKED = [
    ("abs", ds.abs, np.abs, torch.abs, "Abs"),
    ("abs_operator", lambda x: abs(x), np.abs, lambda x: abs(x), "Abs"),
    ("sign", ds.sign, np.sign, torch.sign, "Sign"),
    ("relu", ds.relu, lambda x: np.maximum(x, 0), torch.relu, "Relu"),
    ("leaky_relu", lambda x: ds.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x),
     lambda x: TF.leaky_relu(x, 0.1), "LeakyRelu"),
    ("elu", lambda x: ds.elu(x, 1.3), lambda x: np.where(x > 0, x, 1.3 * np.expm1(x)),
     lambda x: TF.elu(x, 1.3), "Elu"),
]  # fmt: skip
for nm, f, r, tf, cov in KINKED:
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[(3, 4)], inputs=away_from([0.0])((3, 4)),
        covers=(cov,))  # fmt: skip

add(name="clamp", fn=lambda x: ds.clamp(x, -0.5, 0.8), ref=lambda x: np.clip(x, -0.5, 0.8),
    torch_fn=lambda x: torch.clamp(x, -0.5, 0.8), shapes=[(3, 4)],
    inputs=away_from([-0.5, 0.8])((3, 4)), covers=("Clamp",))  # fmt: skip
add(name="clamp_min_only", fn=lambda x: x.clamp(min=0.3), ref=lambda x: np.maximum(x, 0.3),
    torch_fn=lambda x: x.clamp(min=0.3), shapes=[(3, 4)], inputs=away_from([0.3])((3, 4)),
    covers=("Clamp",))  # fmt: skip
add(name="clip_max_only", fn=lambda x: ds.clip(x, max=0.3), ref=lambda x: np.minimum(x, 0.3),
    torch_fn=lambda x: torch.clamp(x, max=0.3), shapes=[(3, 4)],
    inputs=away_from([0.3])((3, 4)), covers=("Clamp",))  # fmt: skip
add(name="clamp_tensor_bounds", fn=lambda x, lo: ds.clamp(x, lo, lo + 1.0),
    ref=lambda x, lo: np.minimum(np.maximum(x, lo), lo + 1.0),
    torch_fn=lambda x, lo: torch.clamp(x, lo, lo + 1.0), shapes=[(3, 4), (4,)],
    inputs=distinct((3, 4), (4,), scale=0.21), covers=("ClampTensor",))  # fmt: skip

_MASK = np.array([[True, False, False, True], [False, True, False, False],
                  [False, False, False, True]])  # fmt: skip
add(name="masked_fill", fn=lambda x: x.masked_fill(ds.tensor(_MASK), -3.0),
    ref=lambda x: np.where(_MASK, -3.0, x),
    torch_fn=lambda x: x.masked_fill(torch.tensor(_MASK), -3.0), shapes=[(3, 4)],
    covers=("MaskedFill",))  # fmt: skip
add(name="masked_fill_broadcast_mask", fn=lambda x: ds.masked_fill(x, ds.tensor(_MASK[0]), 0.5),
    ref=lambda x: np.where(_MASK[0], 0.5, x),
    torch_fn=lambda x: x.masked_fill(torch.tensor(_MASK[0]), 0.5), shapes=[(3, 4)],
    covers=("MaskedFill",))  # fmt: skip
add(name="masked_fill_tensor_value", fn=lambda x, v: ds.masked_fill(x, ds.tensor(_MASK), v),
    ref=lambda x, v: np.where(_MASK, v, x),
    torch_fn=lambda x, v: torch.where(torch.tensor(_MASK), v, x), shapes=[(3, 4), ()],
    covers=("Where",))  # fmt: skip
# float64 -> float32 -> float64 in the float64 tests, float32 -> float64 -> float32 against torch.
add(name="cast_roundtrip",
    fn=lambda x: (x.float().double() if x.dtype == ds.float64 else x.double().float()) * 1.5,
    ref=lambda x: x.astype(np.float32).astype(np.float64) * 1.5,
    torch_fn=lambda x: x.double().float() * 1.5, shapes=[(3, 4)], covers=("Cast",), eps=1e-2,
    fwd_atol=1e-7)  # fmt: skip
add(name="cast_to", fn=lambda x: x.to(ds.float16).to(x.dtype) * 2.0,
    ref=lambda x: x.astype(np.float16).astype(x.dtype) * 2.0,
    torch_fn=lambda x: x.to(torch.float16).to(x.dtype) * 2.0, shapes=[(3, 4)],
    covers=("Cast",), eps=1e-1, fwd_atol=1e-7, grad_rtol=1e-2)  # fmt: skip
add(name="clone", fn=lambda x: x.clone() * 2.0, ref=lambda x: x * 2.0,
    torch_fn=lambda x: x.clone() * 2.0, shapes=[(3, 4)], covers=("Clone", "MulScalar"))  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Reductions

R3 = (2, 3, 4)
for nm, f, r, tf in [
    ("sum_all", lambda x: x.sum(), np.sum, torch.sum),
    ("sum_axis", lambda x: x.sum(1), lambda x: x.sum(1), lambda x: x.sum(1)),
    ("sum_dim_keep", lambda x: x.sum(dim=(0, 2), keepdim=True),
     lambda x: x.sum((0, 2), keepdims=True), lambda x: x.sum((0, 2), keepdim=True)),
    ("sum_fn_neg_axis", lambda x: ds.sum(x, -1), lambda x: x.sum(-1), lambda x: x.sum(-1)),
    ("mean_all", lambda x: x.mean(), np.mean, torch.mean),
    ("mean_axes_keep", lambda x: ds.mean(x, (0, 1), keepdims=True),
     lambda x: x.mean((0, 1), keepdims=True), lambda x: x.mean((0, 1), keepdim=True)),
    ("prod_all", lambda x: x.prod(), np.prod, torch.prod),
    ("prod_axis", lambda x: ds.prod(x, 1), lambda x: x.prod(1), lambda x: x.prod(1)),
    ("var_all", lambda x: x.var(), lambda x: x.var(ddof=1), torch.var),
    ("var_axis_c0", lambda x: ds.var(x, 2, correction=0, keepdims=True),
     lambda x: x.var(2, ddof=0, keepdims=True),
     lambda x: torch.var(x, 2, correction=0, keepdim=True)),
    ("var_unbiased_false", lambda x: x.var(dim=1, unbiased=False), lambda x: x.var(1),
     lambda x: torch.var(x, 1, unbiased=False)),
    ("var_c2", lambda x: x.var((0, 2), correction=2), lambda x: x.var((0, 2), ddof=2),
     lambda x: torch.var(x, (0, 2), correction=2)),
    ("std_all", lambda x: x.std(), lambda x: x.std(ddof=1), torch.std),
    ("std_axis_c0", lambda x: ds.std(x, -1, correction=0), lambda x: x.std(-1),
     lambda x: torch.std(x, -1, correction=0)),
    ("logsumexp_all", lambda x: ds.logsumexp(x), lambda x: np.log(np.exp(x).sum()),
     lambda x: torch.logsumexp(x, (0, 1, 2))),
    ("logsumexp_axis", lambda x: x.logsumexp(1, keepdims=True),
     lambda x: np.log(np.exp(x).sum(1, keepdims=True)),
     lambda x: torch.logsumexp(x, 1, keepdim=True)),
    ("norm2_all", lambda x: ds.norm(x), lambda x: np.sqrt((x * x).sum()),
     lambda x: torch.linalg.vector_norm(x)),
    ("norm2_axis", lambda x: x.norm(dim=1), lambda x: np.sqrt((x * x).sum(1)),
     lambda x: torch.linalg.vector_norm(x, dim=1)),
    ("norm3_axis", lambda x: ds.norm(x, 3, axis=-1), lambda x: (np.abs(x) ** 3).sum(-1) ** (1 / 3),
     lambda x: torch.linalg.vector_norm(x, 3, dim=-1)),
    ("softmax", lambda x: ds.softmax(x, -1),
     lambda x: np.exp(x - x.max(-1, keepdims=True))
     / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True),
     lambda x: torch.softmax(x, -1)),
    ("softmax_dim0", lambda x: x.softmax(dim=0),
     lambda x: np.exp(x) / np.exp(x).sum(0, keepdims=True), lambda x: torch.softmax(x, 0)),
    ("log_softmax", lambda x: ds.log_softmax(x, 1),
     lambda x: x - np.log(np.exp(x).sum(1, keepdims=True)), lambda x: torch.log_softmax(x, 1)),
    ("cumsum", lambda x: x.cumsum(1), lambda x: np.cumsum(x, 1), lambda x: torch.cumsum(x, 1)),
    ("cumsum_flat", lambda x: ds.cumsum(x), lambda x: np.cumsum(x),
     lambda x: torch.cumsum(x.reshape(-1), 0)),
]:  # fmt: skip
    cov = {"sum": "Sum", "mean": "Mean", "prod": "Prod", "var": "Var", "std": "Var",
           "logsumexp": "LogSumExp", "norm2": "Norm2", "norm3": "VectorNorm",
           "softmax": "Softmax", "log": "LogSoftmax",
           "cumsum": "CumSum"}[nm.split("_")[0]]  # fmt: skip
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[R3], covers=(cov,),
        domain=(0.3, 1.5) if nm.startswith("prod") else P)  # fmt: skip

add(name="max_all", fn=lambda x: x.max(), ref=np.max, torch_fn=torch.amax, shapes=[R3],
    inputs=distinct(R3), covers=("Max",))  # fmt: skip
add(name="max_axis", fn=lambda x: ds.amax(x, 1), ref=lambda x: x.max(1),
    torch_fn=lambda x: torch.amax(x, 1), shapes=[R3], inputs=distinct(R3),
    covers=("Max",))  # fmt: skip
add(name="max_dim_values", fn=lambda x: ds.max(x, 1).values, ref=lambda x: x.max(1),
    torch_fn=lambda x: torch.max(x, 1).values, shapes=[R3], inputs=distinct(R3),
    covers=("SelectedValues", "MaxDim"))  # fmt: skip
add(name="min_dim_values_keepdim", fn=lambda x: ds.min(x, -1, keepdim=True).values,
    ref=lambda x: x.min(-1, keepdims=True),
    torch_fn=lambda x: torch.min(x, -1, keepdim=True).values, shapes=[R3], inputs=distinct(R3),
    covers=("MinDim",))  # fmt: skip
add(name="min_axes_keep", fn=lambda x: x.amin(dim=(0, 2), keepdim=True),
    ref=lambda x: x.min((0, 2), keepdims=True),
    torch_fn=lambda x: torch.amin(x, (0, 2), keepdim=True), shapes=[R3], inputs=distinct(R3),
    covers=("Max",))  # fmt: skip
add(name="amax_fn", fn=lambda x: ds.amax(x, -1), ref=lambda x: x.max(-1),
    torch_fn=lambda x: torch.amax(x, -1), shapes=[(3, 5)], inputs=distinct((3, 5)),
    covers=("Max",))  # fmt: skip
add(name="norm1", fn=lambda x: ds.norm(x, 1, axis=0), ref=lambda x: np.abs(x).sum(0),
    torch_fn=lambda x: torch.linalg.vector_norm(x, 1, dim=0), shapes=[(3, 4)],
    inputs=away_from([0.0])((3, 4)), covers=("Abs", "Sum"))  # fmt: skip
add(name="norm_inf", fn=lambda x: ds.norm(x, float("inf")), ref=lambda x: np.abs(x).max(),
    torch_fn=lambda x: torch.linalg.vector_norm(x, float("inf")), shapes=[(3, 4)],
    inputs=distinct((3, 4)), covers=("Abs", "Max"))  # fmt: skip


def _with_zeros(n_zeros):
    def sampler(rng, dtype):
        x = rng.uniform(0.5, 1.5, R3) * rng.choice([-1, 1], R3)
        x[0, 1, 2] = 0.0
        if n_zeros > 1:
            x[0, 2, 2] = 0.0
            x[1, 0, 3] = 0.0
        return [x]

    return sampler


add(name="prod_one_zero", fn=lambda x: x.prod(1), ref=lambda x: x.prod(1),
    torch_fn=lambda x: x.prod(1), shapes=[R3], inputs=_with_zeros(1), covers=("Prod",))  # fmt: skip
add(name="prod_two_zeros_all", fn=lambda x: x.prod(axis=(1, 2)),
    ref=lambda x: x.prod((1, 2)), torch_fn=lambda x: x.reshape(2, -1).prod(1), shapes=[R3],
    inputs=_with_zeros(2), covers=("Prod",))  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Shape

for nm, f, r, tf, shape, cov in [
    ("reshape", lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6),
     lambda x: x.reshape(4, 6), R3, "Reshape"),
    ("view_neg1", lambda x: x.view(-1, 4), lambda x: x.reshape(-1, 4),
     lambda x: x.view(-1, 4), R3, "Reshape"),
    ("flatten", lambda x: x.flatten(1), lambda x: x.reshape(2, -1),
     lambda x: x.flatten(1), R3, "Reshape"),
    ("transpose_2d", lambda x: x.T, lambda x: x.T, lambda x: x.T, (3, 4), "Transpose"),
    ("transpose_pair", lambda x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2),
     lambda x: x.transpose(0, 2), R3, "Transpose"),
    ("transpose_fn_axes", lambda x: ds.transpose(x, (1, 2, 0)),
     lambda x: x.transpose(1, 2, 0), lambda x: x.permute(1, 2, 0), R3, "Transpose"),
    ("permute", lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1),
     lambda x: x.permute(2, 0, 1), R3, "Transpose"),
    ("swapaxes", lambda x: ds.swapaxes(x, -1, 0), lambda x: x.swapaxes(-1, 0),
     lambda x: x.swapaxes(-1, 0), R3, "Transpose"),
    ("mT", lambda x: x.mT, lambda x: x.swapaxes(-1, -2), lambda x: x.mT, R3, "Transpose"),
    ("expand", lambda x: x.expand(2, -1, 4), lambda x: np.broadcast_to(x, (2, 3, 4)),
     lambda x: x.expand(2, -1, 4), (3, 1), "BroadcastTo"),
    ("broadcast_to", lambda x: ds.broadcast_to(x, (2, 3, 4)),
     lambda x: np.broadcast_to(x, (2, 3, 4)), lambda x: x.broadcast_to((2, 3, 4)), (1, 4),
     "BroadcastTo"),
    ("squeeze", lambda x: x.squeeze(), lambda x: x.squeeze(), lambda x: x.squeeze(),
     (1, 3, 1, 2), "Reshape"),
    ("squeeze_axis", lambda x: x.squeeze(2), lambda x: x.squeeze(2), lambda x: x.squeeze(2),
     (1, 3, 1, 2), "Reshape"),
    ("unsqueeze", lambda x: x.unsqueeze(-1), lambda x: x[..., None],
     lambda x: x.unsqueeze(-1), (3, 4), "Reshape"),
    ("expand_dims", lambda x: ds.expand_dims(x, 0), lambda x: x[None],
     lambda x: x.unsqueeze(0), (3, 4), "Reshape"),
    ("pad", lambda x: ds.pad(x, (1, 2, 0, 1)), lambda x: np.pad(x, ((0, 0), (0, 1), (1, 2))),
     lambda x: TF.pad(x, (1, 2, 0, 1)), R3, "Pad"),
    ("pad_value", lambda x: ds.pad(x, (2, 1), value=0.5),
     lambda x: np.pad(x, ((0, 0), (2, 1)), constant_values=0.5),
     lambda x: TF.pad(x, (2, 1), value=0.5), (3, 4), "Pad"),
    ("pad_reflect", lambda x: ds.pad(x, (1, 2), mode="reflect"),
     lambda x: np.pad(x, ((0, 0), (0, 0), (1, 2)), mode="reflect"),
     lambda x: TF.pad(x, (1, 2), mode="reflect"), R3, "Pad"),
    ("pad_replicate_2d", lambda x: ds.pad(x, (2, 1, 1, 0), mode="replicate"),
     lambda x: np.pad(x, ((0, 0), (1, 0), (2, 1)), mode="edge"),
     lambda x: TF.pad(x, (2, 1, 1, 0), mode="replicate"), R3, "Pad"),
    ("pad_circular", lambda x: ds.pad(x, (1, 3), mode="circular"),
     lambda x: np.pad(x, ((0, 0), (0, 0), (1, 3)), mode="wrap"),
     lambda x: TF.pad(x, (1, 3), mode="circular"), R3, "Pad"),
    ("flip", lambda x: x.flip(1), lambda x: np.flip(x, 1), lambda x: x.flip(1), R3, "Flip"),
    ("flip_dims", lambda x: ds.flip(x, (0, 2)), lambda x: np.flip(x, (0, 2)),
     lambda x: torch.flip(x, (0, 2)), R3, "Flip"),
    ("roll", lambda x: x.roll(2, 2), lambda x: np.roll(x, 2, 2), lambda x: x.roll(2, 2), R3,
     "Roll"),
    ("roll_multi", lambda x: ds.roll(x, (1, -1), (0, 1)), lambda x: np.roll(x, (1, -1), (0, 1)),
     lambda x: torch.roll(x, (1, -1), (0, 1)), (3, 4), "Roll"),
    ("roll_flat", lambda x: ds.roll(x, 5), lambda x: np.roll(x, 5), lambda x: torch.roll(x, 5),
     (3, 4), "Roll"),
    ("repeat", lambda x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)),
     lambda x: x.repeat(2, 1, 3), (2, 3), "Tile"),
    ("tile", lambda x: ds.tile(x, (2, 2)), lambda x: np.tile(x, (2, 2)),
     lambda x: torch.tile(x, (2, 2)), (2, 3), "Tile"),
    ("tril", lambda x: ds.tril(x), np.tril, torch.tril, (4, 4), "Tri"),
    ("triu_k1", lambda x: x.triu(1), lambda x: np.triu(x, 1), lambda x: x.triu(1), (2, 3, 4),
     "Tri"),
    ("tril_neg", lambda x: x.tril(diagonal=-1), lambda x: np.tril(x, -1),
     lambda x: x.tril(-1), (3, 4), "Tri"),
    ("to_cpu", lambda x: ToDevice.apply(x * 1.0, device="cpu") * 2.0, lambda x: x * 2.0,
     lambda x: x.to("cpu") * 2.0, (3, 4), "ToDevice"),
]:  # fmt: skip
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[shape], covers=(cov,))

add(name="cat", fn=lambda a, b: ds.cat([a, b], 1), ref=lambda a, b: np.concatenate([a, b], 1),
    torch_fn=lambda a, b: torch.cat([a, b], 1), shapes=[(2, 3, 4), (2, 2, 4)],
    covers=("Concatenate",))  # fmt: skip
add(name="concatenate_neg", fn=lambda a, b, c: ds.concatenate([a, b, c], dim=-1),
    ref=lambda a, b, c: np.concatenate([a, b, c], -1),
    torch_fn=lambda a, b, c: torch.cat([a, b, c], -1), shapes=[(3, 1), (3, 2), (3, 3)],
    covers=("Concatenate",))  # fmt: skip
add(name="stack", fn=lambda a, b: ds.stack([a, b], 1), ref=lambda a, b: np.stack([a, b], 1),
    torch_fn=lambda a, b: torch.stack([a, b], 1), shapes=[(3, 4), (3, 4)],
    covers=("Stack",))  # fmt: skip
add(name="stack_last_dim", fn=lambda a, b, c: ds.stack([a, b, c], -1),
    ref=lambda a, b, c: np.stack([a, b, c], -1),
    torch_fn=lambda a, b, c: torch.stack([a, b, c], -1), shapes=[(2, 3), (2, 3), (2, 3)],
    covers=("Stack",))  # fmt: skip
add(name="split", fn=lambda x: ds.stack([p.sum() * (i + 1) for i, p in enumerate(x.split(2, 1))]),
    ref=lambda x: np.stack([x[:, 0:2].sum(), 2 * x[:, 2:4].sum(), 3 * x[:, 4:5].sum()]),
    torch_fn=lambda x: torch.stack([p.sum() * (i + 1) for i, p in enumerate(x.split(2, 1))]),
    shapes=[(3, 5)], covers=("GetItem",))  # fmt: skip
add(name="split_sections", fn=lambda x: ds.split(x, [1, 3], 0)[1] * 2.0,
    ref=lambda x: x[1:4] * 2.0, torch_fn=lambda x: torch.split(x, [1, 3], 0)[1] * 2.0,
    shapes=[(4, 3)], covers=("GetItem",))  # fmt: skip
add(name="chunk", fn=lambda x: x.chunk(3, 1)[2] - x.chunk(3, 1)[0][:, :1],
    ref=lambda x: x[:, 4:6] - x[:, 0:1],
    torch_fn=lambda x: x.chunk(3, 1)[2] - x.chunk(3, 1)[0][:, :1], shapes=[(2, 6)],
    covers=("GetItem",))  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Indexing

_I = np.array([0, 2, 2, 1])  # repeated index: gradients accumulate
_BM = np.array([[True, False, True, False], [False, False, True, True],
                [True, True, False, False]])  # fmt: skip
_G = np.array([[0, 3, 3], [1, 1, 0], [2, 0, 2]])
_T = np.array([[0, 2, 1, 1], [2, 2, 0, 1]])
for nm, f, r, tf, shape in [
    ("slice_basic", lambda x: x[1:, ::2], lambda x: x[1:, ::2], lambda x: x[1:, ::2], (3, 4)),
    ("slice_int", lambda x: x[1], lambda x: x[1], lambda x: x[1], (3, 4)),
    ("slice_ellipsis_none", lambda x: x[..., None, 1:3], lambda x: x[..., None, 1:3],
     lambda x: x[..., None, 1:3], (2, 3, 4)),
    ("slice_negative_step", lambda x: x[::-1, -2], lambda x: x[::-1, -2],
     lambda x: torch.flip(x, (0,))[:, -2], (3, 4)),
    ("index_int_array", lambda x: x[_I], lambda x: x[_I], lambda x: x[torch.tensor(_I)], (3, 4)),
    ("index_int_list", lambda x: x[[0, 0, 2]], lambda x: x[[0, 0, 2]], lambda x: x[[0, 0, 2]],
     (3, 4)),
    ("index_tensor", lambda x: x[:, ds.tensor(_I)], lambda x: x[:, _I],
     lambda x: x[:, torch.tensor(_I)], (3, 4)),
    ("index_pairs", lambda x: x[_I[:3], _I[1:]], lambda x: x[_I[:3], _I[1:]],
     lambda x: x[torch.tensor(_I[:3]), torch.tensor(_I[1:])], (3, 4)),
    ("index_bool_mask", lambda x: x[ds.tensor(_BM)], lambda x: x[_BM],
     lambda x: x[torch.tensor(_BM)], (3, 4)),
    ("index_bool_rows", lambda x: x[_BM[:, 0]], lambda x: x[_BM[:, 0]],
     lambda x: x[torch.tensor(_BM[:, 0])], (3, 4)),
    ("index_bool_by_compare", lambda x: x[x > 0.5], lambda x: x[x > 0.5],
     lambda x: x[x > 0.5], (3, 4)),
    ("gather", lambda x: x.gather(1, ds.tensor(_G)), lambda x: np.take_along_axis(x, _G, 1),
     lambda x: x.gather(1, torch.tensor(_G)), (3, 4)),
    ("take_along_axis", lambda x: ds.take_along_axis(x, _T, 0),
     lambda x: np.take_along_axis(x, _T, 0),
     lambda x: torch.take_along_dim(x, torch.tensor(_T), 0), (3, 4)),
    ("gather_smaller_index", lambda x: x.gather(0, ds.tensor(_T[:, :2])),
     lambda x: np.take_along_axis(x[:, :2], _T[:, :2], 0),
     lambda x: x.gather(0, torch.tensor(_T[:, :2])), (3, 4)),
    ("index_select", lambda x: ds.index_select(x, 1, _I), lambda x: x[:, _I],
     lambda x: torch.index_select(x, 1, torch.tensor(_I)), (3, 4)),
]:  # fmt: skip
    cov = "TakeAlongAxis" if nm.startswith(("gather", "take_along")) else "GetItem"
    dom = P
    inp = None
    if nm == "index_bool_by_compare":
        inp = away_from([0.5])((3, 4))
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[shape], covers=(cov,), domain=dom,
        inputs=inp)  # fmt: skip


def _np_scatter_add(x, axis, idx, src):
    out = x.copy()
    for pos in np.ndindex(idx.shape):
        tgt = list(pos)
        tgt[axis] = idx[pos]
        out[tuple(tgt)] += src[pos]
    return out


def _np_index_add(x, axis, idx, src, alpha):
    out = x.copy()
    for i, j in enumerate(idx):
        sl_o = (slice(None),) * axis + (j,)
        sl_s = (slice(None),) * axis + (i,)
        out[sl_o] += alpha * src[sl_s]
    return out


_S = np.array([[0, 1, 0], [2, 2, 2]])
add(name="scatter_add", fn=lambda x, s: x.scatter_add(1, ds.tensor(_S), s),
    ref=lambda x, s: _np_scatter_add(x, 1, _S, s),
    torch_fn=lambda x, s: x.scatter_add(1, torch.tensor(_S), s), shapes=[(2, 4), (2, 3)],
    covers=("ScatterAdd",))  # fmt: skip
add(name="scatter_add_dim0", fn=lambda x, s: ds.scatter_add(x, 0, _S.T % 2, s),
    ref=lambda x, s: _np_scatter_add(x, 0, _S.T % 2, s),
    torch_fn=lambda x, s: x.scatter_add(0, torch.tensor(_S.T % 2), s), shapes=[(2, 4), (3, 2)],
    covers=("ScatterAdd",))  # fmt: skip
add(name="index_add", fn=lambda x, s: x.index_add(0, ds.tensor(_I), s, alpha=0.5),
    ref=lambda x, s: _np_index_add(x, 0, _I, s, 0.5),
    torch_fn=lambda x, s: x.index_add(0, torch.tensor(_I), s, alpha=0.5),
    shapes=[(3, 2), (4, 2)], covers=("IndexAdd",))  # fmt: skip
add(name="index_add_dim1", fn=lambda x, s: ds.index_add(x, 1, _I[:2], s),
    ref=lambda x, s: _np_index_add(x, 1, _I[:2], s, 1),
    torch_fn=lambda x, s: x.index_add(1, torch.tensor(_I[:2]), s),
    shapes=[(2, 3), (2, 2)], covers=("IndexAdd",))  # fmt: skip

# The ops that differentiate the backward of indexing (reached at second order).
_IDX_ADV = (np.array([0, 2, 2]), np.array([1, 1, 3]))


def _np_index_grad(g):
    out = np.zeros((3, 4), g.dtype)
    np.add.at(out, _IDX_ADV, g)
    return out


def _torch_index_grad(g):
    return torch.zeros(3, 4, dtype=g.dtype).index_put(
        (torch.tensor(_IDX_ADV[0]), torch.tensor(_IDX_ADV[1])), g, accumulate=True
    )


add(name="index_grad_advanced",
    fn=lambda g: IndexGrad.apply(g, shape=(3, 4), idx=_IDX_ADV, basic=False) ** 2,
    ref=lambda g: _np_index_grad(g) ** 2, torch_fn=lambda g: _torch_index_grad(g) ** 2,
    shapes=[(3,)], covers=("IndexGrad",))  # fmt: skip
add(name="index_grad_basic",
    fn=lambda g: IndexGrad.apply(g, shape=(3, 4), idx=(slice(1, 3),), basic=True) * 3.0,
    ref=lambda g: np.concatenate([np.zeros((1, 4)), g]) * 3.0,
    torch_fn=lambda g: torch.cat([torch.zeros(1, 4, dtype=g.dtype), g]) * 3.0,
    shapes=[(2, 4)], covers=("IndexGrad",))  # fmt: skip
add(name="along_axis_grad",
    fn=lambda g: AlongAxisGrad.apply(g, shape=(3, 4), idx=_G, axis=1) ** 2,
    ref=lambda g: _np_scatter_add(np.zeros((3, 4)), 1, _G, g) ** 2,
    torch_fn=lambda g: torch.zeros(3, 4, dtype=g.dtype).scatter_add(1, torch.tensor(_G), g) ** 2,
    shapes=[(3, 3)], covers=("AlongAxisGrad",))  # fmt: skip

# ---------------------------------------------------------------------------------------------
# In-place updates recorded in the graph (on non-leaf tensors, as PyTorch allows)


def _setitem(idx, t_idx=None):
    def fn(x, v):
        z = x * 1.0
        z[idx] = v
        return z * z

    def ref(x, v):
        z = x.copy()
        z[idx] = v
        return z * z

    def tfn(x, v):
        z = x * 1.0
        z[idx if t_idx is None else t_idx] = v
        return z * z

    return fn, ref, tfn


for nm, idx, t_idx, vshape in [
    ("setitem_slice", (slice(1, 3), 0), None, (2,)),
    ("setitem_broadcast_row", 1, None, (1,)),
    ("setitem_int_array", (np.array([0, 2]),), (torch.tensor([0, 2]),), (2, 4)),
    ("setitem_bool_mask", _BM, torch.tensor(_BM), (6,)),
]:
    f, r, tf = _setitem(idx, t_idx)
    add(name=nm, fn=f, ref=r, torch_fn=tf, shapes=[(3, 4), vshape], covers=("SetItem",))


def _inplace(method, *args):
    def fn(x, y):
        z = x * 1.0
        getattr(z, method)(y, *args) if y is not None else getattr(z, method)(*args)
        return z * x

    return fn


def _t_inplace(method, *args):
    def fn(x, y):
        z = x * 1.0
        getattr(z, method)(y, *args)
        return z * x

    return fn


add(name="add_inplace", fn=_inplace("add_"), ref=lambda x, y: (x + y) * x,
    torch_fn=_t_inplace("add_"), shapes=[(3, 4), (4,)], covers=("Add",))  # fmt: skip
add(name="iadd_operator", fn=lambda x, y: x.__mul__(1.0).__iadd__(y) * x,
    ref=lambda x, y: (x + y) * x, torch_fn=lambda x, y: (x * 1.0).__iadd__(y) * x,
    shapes=[(3, 4), (3, 4)], covers=("Add",))  # fmt: skip
add(name="mul_inplace", fn=_inplace("mul_"), ref=lambda x, y: (x * y) * x,
    torch_fn=_t_inplace("mul_"), shapes=[(3, 4), (3, 4)], covers=("Mul",))  # fmt: skip
add(name="sub_div_inplace", fn=lambda x, y: (x * 1.0).sub_(y).div_(y) * x,
    ref=lambda x, y: (x - y) / y * x, torch_fn=lambda x, y: (x * 1.0).sub_(y).div_(y) * x,
    shapes=[(3, 4), (3, 4)], domain=[P, POS], covers=("Sub", "Div"))  # fmt: skip
add(name="copy_inplace", fn=_inplace("copy_"), ref=lambda x, y: np.broadcast_to(y, x.shape) * x,
    torch_fn=_t_inplace("copy_"), shapes=[(3, 4), (4,)],
    covers=("Clone", "BroadcastTo"))  # fmt: skip
add(name="fill_inplace", fn=lambda x: (x * 1.0).fill_(0.5) * x, ref=lambda x: 0.5 * x,
    torch_fn=lambda x: (x * 1.0).fill_(0.5) * x, shapes=[(3, 4)],
    covers=("MulScalar",))  # fmt: skip
add(name="zero_inplace", fn=lambda x: (x * 1.0).zero_() + x * x, ref=lambda x: x * x,
    torch_fn=lambda x: (x * 1.0).zero_() + x * x, shapes=[(3, 4)], covers=("Mul",))  # fmt: skip
add(name="clamp_inplace", fn=lambda x: (x * 1.0).clamp_(-0.5, 0.5) * x,
    ref=lambda x: np.clip(x, -0.5, 0.5) * x, torch_fn=lambda x: (x * 1.0).clamp_(-0.5, 0.5) * x,
    shapes=[(3, 4)], inputs=away_from([-0.5, 0.5])((3, 4)), covers=("Clamp",))  # fmt: skip
add(name="masked_fill_inplace", fn=lambda x: (x * 1.0).masked_fill_(ds.tensor(_MASK), 2.0) * x,
    ref=lambda x: np.where(_MASK, 2.0, x) * x,
    torch_fn=lambda x: (x * 1.0).masked_fill_(torch.tensor(_MASK), 2.0) * x, shapes=[(3, 4)],
    covers=("MaskedFill",))  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Linear algebra

for nm, sa, sb in [
    ("matmul_2d", (3, 4), (4, 5)),
    ("matmul_batched", (2, 3, 4), (2, 4, 5)),
    ("matmul_broadcast_weight", (2, 3, 4), (4, 5)),
    ("matmul_broadcast_left", (3, 4), (2, 4, 5)),
    ("matmul_broadcast_batch", (2, 1, 3, 4), (3, 4, 2)),
    ("matmul_1d_1d", (4,), (4,)),
    ("matmul_1d_2d", (4,), (4, 3)),
    ("matmul_2d_1d", (3, 4), (4,)),
    ("matmul_3d_1d", (2, 3, 4), (4,)),
    ("matmul_1d_3d", (4,), (2, 4, 3)),
]:
    add(name=nm, fn=lambda a, b: a @ b, ref=np.matmul, torch_fn=lambda a, b: a @ b,
        shapes=[sa, sb], covers=("MatMul",))  # fmt: skip
add(name="matmul_fn", fn=ds.matmul, ref=np.matmul, torch_fn=torch.matmul,
    shapes=[(2, 3), (3, 2)], covers=("MatMul",))  # fmt: skip
add(name="rmatmul_ndarray", fn=lambda b: np.ones((2, 3)) @ b, ref=lambda b: np.ones((2, 3)) @ b,
    torch_fn=lambda b: torch.ones(2, 3, dtype=b.dtype) @ b, shapes=[(3, 2)],
    covers=("MatMul",))  # fmt: skip
add(name="dot", fn=ds.dot, ref=np.dot, torch_fn=torch.dot, shapes=[(5,), (5,)],
    covers=("MatMul",))  # fmt: skip
add(name="outer", fn=ds.outer, ref=np.outer, torch_fn=torch.outer, shapes=[(3,), (4,)],
    covers=("Mul", "Reshape"))  # fmt: skip

for nm, spec, shapes in [
    ("einsum_matmul", "ij,jk->ik", [(3, 4), (4, 2)]),
    ("einsum_batched", "bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("einsum_transpose", "ij->ji", [(3, 4)]),
    ("einsum_sum_all", "ij->", [(3, 4)]),
    ("einsum_row_sum", "ijk->ik", [(2, 3, 4)]),
    ("einsum_inner", "i,i->", [(5,), (5,)]),
    ("einsum_outer", "i,j->ij", [(3,), (4,)]),
    ("einsum_matvec", "ij,j->i", [(3, 4), (4,)]),
    ("einsum_attention", "bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 2, 4)]),
    ("einsum_three", "ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("einsum_implicit", "ij,jk", [(2, 3), (3, 2)]),
    ("einsum_summed_only_left", "ij,k->ik", [(2, 3), (4,)]),
]:
    add(name=nm, fn=lambda *ops, _s=spec: ds.einsum(_s, *ops),
        ref=lambda *ops, _s=spec: np.einsum(_s, *ops),
        torch_fn=lambda *ops, _s=spec: torch.einsum(_s, *ops), shapes=shapes,
        covers=("Einsum",))  # fmt: skip
