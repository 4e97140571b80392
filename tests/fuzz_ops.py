"""The differential fuzz's generating half (tests/test_fuzz_differential.py): random cases,
the op pool, running a case in descent and in PyTorch, printing a reproducer (comparing,
shrinking and classifying are in tests/fuzz_check.py).

A case is a few input arrays (x, and sometimes y) and a chain of 1-4 steps of Python source, each
`vK = <expression over m, F and earlier names>`. The same source runs with `m` bound to `descent`
(F to `descent.nn.functional`) and to `torch` (F to `torch.nn.functional`), so a reproducer is the
case's source itself. Chains are generated step by step against PyTorch's intermediate results
(their shapes choose dims and indices); a step where PyTorch raises ends the chain.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

import descent as ds

# ---------------------------------------------------------------------------------------------
# Inputs

FLOAT_EDGES = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e30, -1e30, 3e38, -3e38, 1e-30,
               -1e-30, 1e-45, -1e-45, 1.0, -1.0, 0.5]  # fmt: skip
INT_EDGES = {"int32": [0, -1, 1, 2**31 - 1, -(2**31)], "int64": [0, -1, 1, 2**63 - 1, -(2**63)]}
DTYPES = ["float32", "float64", "int32", "int64", "bool"]
DTYPE_P = [0.45, 0.17, 0.1, 0.15, 0.13]


@dataclass
class Input:
    name: str
    array: np.ndarray
    requires_grad: bool

    def source(self) -> str:
        vals = repr(self.array.tolist()).replace("nan", "nan_").replace("inf", "inf_")
        vals = vals.replace("nan_", "math.nan").replace("inf_", "math.inf")
        rg = ", requires_grad=True" if self.requires_grad else ""
        shape = f".reshape{self.array.shape}" if self.array.size == 0 else ""
        return f"{self.name} = m.tensor({vals}, dtype=m.{self.array.dtype}{rg}){shape}"


def _shape(rng) -> tuple:
    nd = int(rng.choice([0, 1, 2, 3], p=[0.15, 0.35, 0.35, 0.15]))
    return tuple(int(rng.choice([0, 1, 2, 3, 4], p=[0.06, 0.2, 0.3, 0.24, 0.2])) for _ in range(nd))


def _broadcast_partner(rng, shape) -> tuple:
    """A shape that broadcasts with `shape` (mostly), or an arbitrary one."""
    if rng.random() < 0.12:
        return _shape(rng)
    out = [1 if rng.random() < 0.3 else s for s in shape]
    if out and rng.random() < 0.3:
        out = out[int(rng.integers(0, len(out) + 1)):]
    if rng.random() < 0.2:
        out = [int(rng.integers(1, 3))] + out
    return tuple(out)


def _values(rng, shape, dtype) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == "bool":
        return (rng.random(n) < 0.5).reshape(shape)
    if dtype.startswith("int"):
        v = rng.integers(-5, 6, n).astype(dtype)
        if rng.random() < 0.15:
            edges = INT_EDGES[dtype]
            pick = rng.random(n) < 0.2
            v[pick] = rng.choice(np.array(edges, dtype=dtype), int(pick.sum()))
        return v.reshape(shape)
    style = rng.random()
    if style < 0.3:  # positive, for log/sqrt/pow
        v = rng.uniform(0.1, 3.0, n)
    elif style < 0.5:  # small integers (ties, exact zeros, exact halves)
        v = rng.integers(-3, 4, n) / rng.choice([1.0, 2.0])
    else:
        v = rng.standard_normal(n) * rng.choice([1.0, 1.0, 3.0])
    if rng.random() < 0.35:  # edge values
        pick = rng.random(n) < 0.3
        v[pick] = rng.choice(FLOAT_EDGES, int(pick.sum()))
    with np.errstate(over="ignore"):
        return v.astype(dtype).reshape(shape)


def make_inputs(rng) -> list[Input]:
    dt = str(rng.choice(DTYPES, p=DTYPE_P))
    shape = _shape(rng)
    xs = [Input("x", _values(rng, shape, dt), dt.startswith("float") and rng.random() < 0.75)]
    if rng.random() < 0.55:
        dt2 = dt if rng.random() < 0.6 else str(rng.choice(DTYPES, p=DTYPE_P))
        shape2 = _broadcast_partner(rng, shape)
        xs.append(Input("y", _values(rng, shape2, dt2), dt2.startswith("float")
                        and rng.random() < 0.6))  # fmt: skip
    return xs


# ---------------------------------------------------------------------------------------------
# The op pool. Each op: name, the descent names it needs ("x": descent.x, ".x": Tensor.x,
# "F.x": descent.nn.functional.x), whether it accumulates (rounding grows with the number of
# terms and their magnitude: the comparison allows for it), and a generator
# gen(rng, a, t, others) -> source or None, where a is the operand's name, t its PyTorch value,
# others the names of the other available operands.


@dataclass
class Op:
    name: str
    needs: tuple
    gen: object
    accumulates: bool = False
    weight: float = 1.0


def _dim(rng, t, allow_bad=True):
    nd = max(t.dim(), 1)
    if allow_bad and rng.random() < 0.04:
        return int(rng.choice([nd, -nd - 1]))
    return int(rng.integers(-nd, nd))


def _kd(rng):
    return bool(rng.random() < 0.4)


SCALARS = ["0", "1", "-1", "2", "3", "0.5", "-2.5", "0.0", "-0.0", "True", "math.inf", "-math.inf",
           "math.nan", "1e30", "1e-45", "3e38"]  # fmt: skip
SCALAR_P = np.array([2, 3, 2, 4, 1, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1], float)
SCALAR_P /= SCALAR_P.sum()


def _scalar(rng):
    return str(rng.choice(SCALARS, p=SCALAR_P))


def _other(rng, a, others):
    """The second operand: another input, the operand itself, or a Python scalar."""
    r = rng.random()
    if others and r < 0.55:
        return str(rng.choice(others))
    if r < 0.75:
        return a
    return None


UNARY = ["abs", "neg", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt",
         "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "asinh", "acosh",
         "atanh", "sigmoid", "erf", "floor", "ceil", "round", "trunc", "frac", "sign", "square",
         "isnan", "isinf", "isfinite", "isposinf", "isneginf", "logical_not", "bitwise_not",
         "relu", "nan_to_num", "erfc", "erfinv", "lgamma", "digamma", "sinc", "logit", "signbit",
         "deg2rad", "rad2deg", "positive", "fix", "i0", "sgn"]  # fmt: skip
UNARY_METHOD_ONLY = ["reciprocal"]
ACTIVATIONS = ["gelu", "silu", "softplus", "elu", "leaky_relu", "relu6", "hardtanh", "mish",
               "selu", "celu", "softsign", "tanhshrink", "hardswish", "hardsigmoid",
               "logsigmoid", "softshrink", "hardshrink"]  # fmt: skip
BINARY_FN = ["add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod",
             "pow", "maximum", "minimum", "atan2", "hypot", "copysign", "logaddexp", "logaddexp2",
             "xlogy", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
             "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
             "bitwise_right_shift", "fmax", "fmin", "nextafter", "ldexp", "float_power",
             "heaviside", "isclose"]  # fmt: skip
# torch accepts a Python scalar as the second argument of these functions
SCALAR_OK = {"add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow",
             "eq", "ne", "lt", "le", "gt", "ge", "xlogy", "bitwise_and", "bitwise_or",
             "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift", "float_power"}
OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "&", "|",
             "^", "<<", ">>"]  # fmt: skip


def _unary(fn):
    def gen(rng, a, t, others):
        if rng.random() < 0.5:
            return f"{a}.{fn}()"
        return f"m.{fn}({a})"

    return gen


def _unary_m(fn):
    return lambda rng, a, t, others: f"{a}.{fn}()"


def _activation(fn):
    return lambda rng, a, t, others: f"F.{fn}({a})"


def _binary(fn):
    def gen(rng, a, t, others):
        b = _other(rng, a, others)
        if b is None:
            if fn not in SCALAR_OK:
                return None
            b = _scalar(rng)
        if b in others and rng.random() < 0.25:
            return f"m.{fn}({b}, {a})"
        return f"m.{fn}({a}, {b})" if rng.random() < 0.5 else f"{a}.{fn}({b})"

    return gen


def _operator(op):
    def gen(rng, a, t, others):
        b = _other(rng, a, others) or _scalar(rng)
        return f"({b} {op} {a})" if rng.random() < 0.3 else f"({a} {op} {b})"

    return gen


def _reduce(fn, dims=True, multi=True, keepdim=True, required_dim=False):
    multi = multi and fn != "prod"  # torch.prod takes one dim
    def gen(rng, a, t, others):
        r = rng.random()
        if not required_dim and (r < 0.3 or not dims):
            return f"{a}.{fn}()" if rng.random() < 0.5 else f"m.{fn}({a})"
        if multi and r < 0.45 and t.dim() >= 2:
            d = tuple(int(i) for i in rng.choice(t.dim(), 2, replace=False))
        else:
            d = _dim(rng, t)
        kd = f", keepdim={_kd(rng)}" if keepdim else ""
        return f"{a}.{fn}(dim={d}{kd})" if rng.random() < 0.5 else f"m.{fn}({a}, {d}{kd})"

    return gen


def _values_of(fn):
    """max/min/median/mode/kthvalue/sort/... with dim: a named tuple; pick values or indices."""

    def gen(rng, a, t, others):
        if fn in ("max", "min", "median", "nanmedian") and rng.random() < 0.3:
            return f"{a}.{fn}()"
        d = _dim(rng, t)
        field_ = "values" if rng.random() < 0.6 else "indices"
        if fn == "sort":
            return f"m.sort({a}, dim={d}, descending={_kd(rng)}).{field_}"
        if fn in ("cummax", "cummin"):
            return f"m.{fn}({a}, {d}).{field_}"
        if fn == "topk":
            n = t.shape[d] if -t.dim() <= d < max(t.dim(), 1) and t.dim() else 1
            k = int(rng.integers(0, n + 2)) if rng.random() < 0.1 else int(rng.integers(0, n + 1))
            return f"m.topk({a}, {k}, dim={d}, largest={not _kd(rng)}).{field_}"
        if fn == "kthvalue":
            n = t.shape[d] if -t.dim() <= d < max(t.dim(), 1) and t.dim() else 1
            n = max(n, 1)
            return f"m.kthvalue({a}, {int(rng.integers(1, n + 1))}, {d}, {_kd(rng)}).{field_}"
        return f"{a}.{fn}(dim={d}, keepdim={_kd(rng)}).{field_}"

    return gen


def _var(fn):
    def gen(rng, a, t, others):
        r = rng.random()
        if r < 0.3:
            return f"m.{fn}({a})"
        corr = int(rng.choice([0, 1, 2]))
        return f"m.{fn}({a}, dim={_dim(rng, t)}, correction={corr}, keepdim={_kd(rng)})"

    return gen


def _scan(fn):
    return lambda rng, a, t, others: f"m.{fn}({a}, {_dim(rng, t)})"


def _softmax(fn):
    def gen(rng, a, t, others):
        d = _dim(rng, t)
        return f"m.{fn}({a}, {d})" if rng.random() < 0.5 else f"F.{fn}({a}, dim={d})"

    return gen


def _norm(rng, a, t, others):
    p = str(rng.choice(["2", "1", "math.inf", "3", "0"]))
    if rng.random() < 0.4:
        return f"m.norm({a})"
    return f"m.norm({a}, p={p}, dim={_dim(rng, t)}, keepdim={_kd(rng)})"


def _logsumexp(rng, a, t, others):
    return f"m.logsumexp({a}, {_dim(rng, t)}, keepdim={_kd(rng)})"


def _count_nonzero(rng, a, t, others):
    if rng.random() < 0.4:
        return f"m.count_nonzero({a})"
    return f"m.count_nonzero({a}, {_dim(rng, t)})"


def _matmul(rng, a, t, others):
    r = rng.random()
    if others and r < 0.5:
        return f"m.matmul({a}, {rng.choice(others)})"
    if t.dim() >= 2 and r < 0.8:
        return f"({a} @ {a}.mT)"
    return f"({a} @ {a})"


def _reshape(rng, a, t, others):
    r = rng.random()
    if r < 0.3:
        return f"{a}.reshape(-1)"
    shape = list(t.shape)
    rng.shuffle(shape)
    if r < 0.5 and shape:
        shape[int(rng.integers(0, len(shape)))] = -1
    if r > 0.95:
        shape = shape + [2]  # usually wrong: both must raise
    return f"m.reshape({a}, {tuple(shape)})"


def _flatten(rng, a, t, others):
    if rng.random() < 0.5 or t.dim() < 2:
        return f"m.flatten({a})"
    return f"{a}.flatten({_dim(rng, t)}, -1)"


def _transpose(rng, a, t, others):
    return f"m.transpose({a}, {_dim(rng, t)}, {_dim(rng, t)})"


def _permute(rng, a, t, others):
    if t.dim() == 0:
        return None
    return f"{a}.permute{tuple(int(i) for i in rng.permutation(t.dim()))}"


def _unsqueeze(rng, a, t, others):
    return f"m.unsqueeze({a}, {int(rng.integers(-t.dim() - 1, t.dim() + 1))})"


def _squeeze(rng, a, t, others):
    return f"m.squeeze({a})" if rng.random() < 0.4 else f"{a}.squeeze({_dim(rng, t)})"


def _flip(rng, a, t, others):
    return f"m.flip({a}, ({_dim(rng, t)},))"


def _expand(rng, a, t, others):
    return f"{a}.expand({(2,) + tuple(t.shape)})" if rng.random() < 0.5 else \
        f"m.broadcast_to({a}, {(int(rng.integers(0, 3)),) + tuple(t.shape)})"  # fmt: skip


def _roll(rng, a, t, others):
    if rng.random() < 0.3:
        return f"m.roll({a}, {int(rng.integers(-3, 4))})"
    return f"m.roll({a}, {int(rng.integers(-3, 4))}, {_dim(rng, t)})"


def _repeat(rng, a, t, others):
    reps = tuple(int(rng.integers(0, 3)) for _ in range(max(t.dim(), 1)))
    return f"{a}.repeat{reps}" if rng.random() < 0.5 else f"m.tile({a}, {reps})"


def _narrow(rng, a, t, others):
    if t.dim() == 0:
        return None
    d = _dim(rng, t, allow_bad=False)
    n = t.shape[d]
    start = int(rng.integers(0, n + 1))
    return f"m.narrow({a}, {d}, {start}, {int(rng.integers(0, n - start + 1))})"


def _movedim(rng, a, t, others):
    return f"m.movedim({a}, {_dim(rng, t)}, {_dim(rng, t)})"


def _diagonal(rng, a, t, others):
    return f"m.diagonal({a}, {int(rng.integers(-2, 3))})"


def _tri(fn):
    return lambda rng, a, t, others: f"m.{fn}({a}, {int(rng.integers(-2, 3))})"


def _chunk(rng, a, t, others):
    if rng.random() < 0.5:
        return f"m.chunk({a}, {int(rng.integers(1, 4))}, {_dim(rng, t)})[0]"
    return f"m.split({a}, {int(rng.integers(1, 3))}, {_dim(rng, t)})[-1]"


def _cat(rng, a, t, others):
    b = str(rng.choice(others)) if others and rng.random() < 0.5 else a
    d = _dim(rng, t)
    return f"m.cat([{a}, {b}], {d})" if rng.random() < 0.6 else f"m.stack([{a}, {b}], {d})"


def _index(rng, a, t, others):
    r = rng.random()
    if t.dim() == 0:
        return f"{a}[None]" if r < 0.5 else f"{a}[...]"
    n = t.shape[0]
    if r < 0.25:
        if rng.random() < 0.1:
            i = int(rng.integers(-n - 1, n + 1))
        else:
            i = int(rng.integers(-n, max(n, 1)))
        return f"{a}[{i}]"
    if r < 0.4:
        return f"{a}[..., {int(rng.integers(-2, 2))}:]"
    if r < 0.5:
        return f"{a}[::{int(rng.integers(1, 3))}]"
    if r < 0.55:
        return f"{a}[:, None]" if t.dim() >= 1 else f"{a}[None]"
    if r < 0.75:
        idx = [int(i) for i in rng.integers(-n, max(n, 1), int(rng.integers(0, 4)))]
        return f"{a}[m.tensor({idx}, dtype=m.int64)]"
    if r < 0.9:
        return f"{a}[{a} > 0]" if t.dtype != torch.bool else f"{a}[{a}]"
    return f"m.masked_select({a}, {a} != 0)"


def _gather(rng, a, t, others):
    d = _dim(rng, t, allow_bad=False)
    r = rng.random()
    if r < 0.4:
        return f"m.gather({a}, {d}, m.argsort({a}, dim={d}))"
    if r < 0.6 and t.dim():
        n = t.shape[d]
        idx = [int(i) for i in rng.integers(-n, max(n, 1), int(rng.integers(0, 4)))]
        return f"m.index_select({a}, {d}, m.tensor({[abs(i) for i in idx]}, dtype=m.int64))"
    if r < 0.8:
        n = max(t.numel(), 1)
        idx = [int(i) for i in rng.integers(-n, n, int(rng.integers(0, 4)))]
        return f"m.take({a}, m.tensor({idx}, dtype=m.int64))"
    return f"m.masked_fill({a}, {a} < 0, {_scalar(rng)})"


def _where(rng, a, t, others):
    b = _other(rng, a, others) or _scalar(rng)
    cond = f"({a} > 0)" if t.dtype != torch.bool else a
    return f"m.where({cond}, {a}, {b})" if rng.random() < 0.6 else f"m.where({cond}, {b}, {a})"


def _clamp(rng, a, t, others):
    r = rng.random()
    if r < 0.4:
        return f"m.clamp({a}, min={_scalar(rng)})"
    if r < 0.6:
        return f"m.clamp({a}, max={_scalar(rng)})"
    return f"m.clamp({a}, {_scalar(rng)}, {_scalar(rng)})"


def _lerp(rng, a, t, others):
    b = _other(rng, a, others) or a
    return f"m.lerp({a}, {b}, {float(rng.choice([0.0, 0.3, 1.0, 2.0]))})"


def _to(rng, a, t, others):
    dt = str(rng.choice(DTYPES))
    return f"{a}.to(m.{dt})" if rng.random() < 0.7 else f"{a}.{dt.replace('int32', 'int')}()"


OPS: list[Op] = (
    [Op(f, (f, "." + f), _unary(f)) for f in UNARY]
    + [Op(f, ("." + f,), _unary_m(f)) for f in UNARY_METHOD_ONLY]
    + [Op("F." + f, ("F." + f,), _activation(f), weight=0.4) for f in ACTIVATIONS]
    + [Op(f, (f, "." + f), _binary(f)) for f in BINARY_FN]
    + [Op(o, (), _operator(o), weight=1.5) for o in OPERATORS]
    + [Op(f, (f, "." + f), _reduce(f), accumulates=True, weight=1.5)
       for f in ["sum", "mean", "prod", "amax", "amin", "nansum", "nanmean"]]
    + [Op(f, (f, "." + f), _reduce(f, multi=False), weight=1.0)
       for f in ["argmax", "argmin", "all", "any"]]
    + [Op(f, (f, "." + f), _values_of(f), weight=1.0)
       for f in ["max", "min", "median", "mode", "nanmedian"]]
    + [Op(f, (f,), _values_of(f)) for f in ["sort", "topk", "kthvalue", "cummax", "cummin"]]
    + [Op("argsort", ("argsort",), lambda r, a, t, o: f"m.argsort({a}, dim={_dim(r, t)})")]
    + [Op(f, (f,), _var(f), accumulates=True) for f in ["var", "std"]]
    + [Op("norm", ("norm",), _norm, accumulates=True)]
    + [Op("logsumexp", ("logsumexp",), _logsumexp, accumulates=True)]
    + [Op("count_nonzero", ("count_nonzero",), _count_nonzero)]
    + [Op(f, (f,), _scan(f), accumulates=True, weight=1.2)
       for f in ["cumsum", "cumprod", "logcumsumexp"]]
    + [Op(f, (f, "F." + f), _softmax(f), accumulates=True, weight=1.5)
       for f in ["softmax", "log_softmax"]]
    + [Op("matmul", ("matmul",), _matmul, accumulates=True, weight=1.5)]
    + [Op("reshape", ("reshape", ".reshape"), _reshape), Op("flatten", ("flatten",), _flatten),
       Op("transpose", ("transpose",), _transpose), Op("permute", (".permute",), _permute),
       Op("unsqueeze", ("unsqueeze",), _unsqueeze), Op("squeeze", ("squeeze",), _squeeze),
       Op("flip", ("flip",), _flip), Op("expand", (".expand", "broadcast_to"), _expand),
       Op("roll", ("roll",), _roll), Op("repeat", (".repeat", "tile"), _repeat),
       Op("narrow", ("narrow",), _narrow), Op("movedim", ("movedim",), _movedim),
       Op("diagonal", ("diagonal",), _diagonal), Op("tril", ("tril",), _tri("tril")),
       Op("triu", ("triu",), _tri("triu")), Op("chunk", ("chunk", "split"), _chunk),
       Op("cat", ("cat", "stack"), _cat),
       Op("index", ("masked_select",), _index, weight=3.0),
       Op("gather", ("gather", "argsort", "index_select", "take", "masked_fill"), _gather,
          weight=1.5),
       Op("where", ("where",), _where, weight=1.5), Op("clamp", ("clamp",), _clamp),
       Op("lerp", ("lerp",), _lerp, weight=0.5), Op("to", (".to",), _to, weight=1.5)]
)  # fmt: skip


def _has(name: str) -> bool:
    if name.startswith("F."):
        return hasattr(ds.nn.functional, name[2:])
    if name.startswith("."):
        return hasattr(ds.Tensor, name[1:])
    return hasattr(ds, name)


def pool() -> tuple[list[Op], list[str]]:
    """The ops descent has now, and the names of those left out (descent lacks a name)."""
    have, missing = [], []
    for op in OPS:
        (have if all(_has(n) for n in op.needs) else missing).append(op)
    return have, sorted({op.name for op in missing})


# ---------------------------------------------------------------------------------------------
# Running a case


@dataclass
class Case:
    inputs: list
    steps: list  # source expressions; step k defines v{k+1}; x is v0
    ops: list  # the op name of each step
    cotangent_seed: int = 0
    ones_cotangent: bool = False
    meta: dict = field(default_factory=dict)

    def source(self) -> str:
        lines = ["import math", "# m = torch or descent; F = m.nn.functional"]
        lines += [i.source() for i in self.inputs]
        lines.append(f"v0 = {self.inputs[0].name}")
        lines += [f"v{k + 1} = {s}" for k, s in enumerate(self.steps)]
        n = len(self.steps)
        ct = "m.ones_like(out)" if self.ones_cotangent else f"<normal(seed={self.cotangent_seed})>"
        lines.append(f"out = v{n}; (out * {ct}).sum().backward()  # float outputs with grad")
        return "\n".join(lines)


class _NS(dict):
    pass


def _lib_env(lib):
    if lib == "torch":
        return {"m": torch, "F": torch.nn.functional, "math": math}
    return {"m": ds, "F": ds.nn.functional, "math": math}


def make_tensor(lib, inp: Input):
    if lib == "torch":
        return torch.tensor(inp.array, requires_grad=inp.requires_grad)
    return ds.tensor(inp.array, dtype=inp.array.dtype, requires_grad=inp.requires_grad)


@dataclass
class Run:
    values: list  # v0..vk (library objects) computed before an error
    error: BaseException | None
    error_step: int | None  # index of the step that raised (None: no error)
    leaves: dict


def run_chain(lib, case: Case, upto: int | None = None) -> Run:
    env = _lib_env(lib)
    leaves = {}
    for inp in case.inputs:
        env[inp.name] = leaves[inp.name] = make_tensor(lib, inp)
    first = case.inputs[0].name
    env["v0"] = env[first]
    values = [env[first]]
    steps = case.steps if upto is None else case.steps[:upto]
    for k, s in enumerate(steps):
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                v = eval(s, env)  # noqa: S307 - the fuzz's own generated source
        except Exception as e:  # noqa: BLE001 - which exceptions are raised is what we compare
            return Run(values, e, k, leaves)
        env[f"v{k + 1}"] = v
        values.append(v)
    return Run(values, None, None, leaves)


def generate(rng, ops: list[Op], weights: np.ndarray) -> Case:
    """One case: inputs and 1-4 steps, each generated against PyTorch's current value."""
    inputs = make_inputs(rng)
    others = [i.name for i in inputs if i.name != "x"]
    case = Case(inputs, [], [], cotangent_seed=int(rng.integers(0, 2**31)),
                ones_cotangent=bool(rng.random() < 0.3))  # fmt: skip
    env = _lib_env("torch")
    for inp in inputs:
        env[inp.name] = make_tensor("torch", inp)
    env["v0"] = env["x"]
    n_steps = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.3, 0.25, 0.15]))
    cur = "v0"
    for k in range(n_steps):
        t = env[cur]
        for _ in range(20):
            op = ops[int(rng.choice(len(ops), p=weights))]
            src = op.gen(rng, cur, t, others + ([f"v{j}" for j in range(1, k)] if k > 1 else []))
            if src is not None:
                break
        else:
            break
        case.steps.append(src)
        case.ops.append(op.name)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                v = eval(src, env)  # noqa: S307
        except Exception:  # noqa: BLE001 - PyTorch raised: the chain ends with this step
            break
        if not isinstance(v, torch.Tensor) or v.numel() > 4096:
            break
        cur = f"v{k + 1}"
        env[cur] = v
    return case
