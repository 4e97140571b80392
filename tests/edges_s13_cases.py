"""The edge sweep of tests/test_edges_s13.py: the cases (one line of source each, run with `m`
bound to torch and to descent), the inputs they name, and the comparison.

An input is written `X('int8', (2, 3))` (the first operand's values) or `Y('float16', ())` (the
second's, different values): every dtype holds its edges (0, -1, the extremes; for floats -0.0,
nan, +-inf, huge and tiny values), shaped as asked (0-d takes the first value; empty shapes
hold none). A case passes when both libraries raise (descent's error a subclass of torch's),
or both return the same structure with equal dtype, shape and values (nan equal to nan; the
sign of a float zero compared too).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

NAN, INF = math.nan, math.inf

# first and second operands' values: 6 each, so that (6,), (2, 3) and (3, 2) use them all
VALUES = {
    "bool": ([True, False, True, True, False, False], [False, True, True, False, True, False]),
    "uint8": ([0, 1, 255, 128, 7, 3], [3, 0, 2, 255, 1, 200]),
    "int8": ([0, -1, 127, -128, 5, -7], [-3, 0, 2, -1, 127, 3]),
    "int16": ([0, -1, 32767, -32768, 5, -7], [-3, 0, 2, -1, 300, 3]),
    "int32": ([0, -1, 2**31 - 1, -(2**31), 5, -7], [-3, 0, 2, -1, 70000, 3]),
    "int64": ([0, -1, 2**63 - 1, -(2**63), 5, -7], [-3, 0, 2, -1, 2**40, 3]),
    # the tiny values are the smallest normal numbers' neighbours, not subnormals: results at
    # subnormals depend on the CPU's flush-to-zero state in torch's vectorized kernels
    "float16": ([-0.0, NAN, INF, -2.5, 65504.0, 6.2e-5], [0.0, -1.5, 2.0, -INF, NAN, 0.5]),
    "bfloat16": ([-0.0, NAN, INF, -2.5, 3e38, 2e-38], [0.0, -1.5, 2.0, -INF, NAN, 0.5]),
    "float32": ([-0.0, NAN, INF, -2.5, 3e38, 2e-38], [0.0, -1.5, 2.0, -INF, NAN, 0.5]),
    "float64": ([-0.0, NAN, INF, -2.5, 1e308, 3e-308], [0.0, -1.5, 2.0, -INF, NAN, 0.5]),
    # finite: PyTorch's complex kernels at inf and nan follow C's complex arithmetic (a + 1e39
    # is inf+nanj), NumPy's do not; that is not the point of the sweep
    "complex64": ([-0.0 + 0j, 0.5 + 1j, -1j, -2.5 + 1j, 3e30j, 1 - 1j],
                  [0j, -1.5 + 0.5j, 2 + 0j, -1j, 1j, 0.5 - 2j]),
}  # fmt: skip
# finite, moderate values (reductions and sorts whose edge behaviour is not the point)
PLAIN = {
    "bool": [True, False, True, True, False, True],
    "uint8": [3, 1, 200, 3, 0, 7],
    "int8": [3, -1, 100, 3, -128, 7],
    "int16": [3, -1, 300, 3, -300, 7],
    "int32": [3, -1, 300, 3, -300, 7],
    "int64": [3, -1, 300, 3, -300, 7],
    "float16": [0.5, -1.5, 2.25, 0.5, -0.0, 7.0],
    "bfloat16": [0.5, -1.5, 2.25, 0.5, -0.0, 7.0],
    "float32": [0.5, -1.5, 2.25, 0.5, -0.0, 7.0],
    "float64": [0.5, -1.5, 2.25, 0.5, -0.0, 7.0],
    "complex64": [0.5 + 1j, -1.5, 2.25j, 0.5 + 1j, -0.0, 7 - 1j],
}

INTS = ["uint8", "int8", "int16", "int32", "int64"]
FLOATS = ["float16", "bfloat16", "float32", "float64"]
ALL = ["bool", *INTS, *FLOATS, "complex64"]
EMPTY = [(0,), (3, 0), (0, 4, 2)]


def _build(m, values, dt, shape):
    n = int(np.prod(shape)) if shape else 1
    vals = values[:n] if shape else values[0]
    t = m.tensor(vals, dtype=getattr(m, dt))
    return t.reshape(shape)


def env(m) -> dict:
    """The names a case's source uses, bound to library `m`."""
    return {
        "m": m, "nan": NAN, "inf": INF,
        "X": lambda dt, shape=(6,): _build(m, VALUES[dt][0], dt, shape),
        "Y": lambda dt, shape=(6,): _build(m, VALUES[dt][1], dt, shape),
        "P": lambda dt, shape=(6,): _build(m, PLAIN[dt], dt, shape),
        "E": lambda dt, shape=(0,): m.ones(shape, dtype=getattr(m, dt)),
        # X's values without the tiniest (products of it underflow to subnormals)
        "V": lambda dt: _build(m, VALUES[dt][0][:5] + [1.5 if dt in FLOATS else
                                                        VALUES[dt][0][5]], dt, (6,)),
    }  # fmt: skip


_ENVS = {}  # library -> its names; each run gets a fresh copy (a case's statements bind names)


def _compiled(src):
    """The case's code: statements (the last one binds `out`) or one expression."""
    if "out = " in src:
        return compile(src.replace("; ", "\n"), "<string>", "exec")
    return compile(src, "<string>", "eval")


def run(m, src, code=None):
    """(result, None) or (None, the exception) of the case ``src`` with `m` bound to library m;
    ``code``: the case compiled (``check`` compiles it once for both libraries)."""
    if m not in _ENVS:
        _ENVS[m] = env(m)
    g = dict(_ENVS[m])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if code is None:
                code = _compiled(src)
            if "out = " in src:
                exec(code, g)  # noqa: S102 - the sweep's own source
                return g["out"], None
            return eval(code, g), None  # noqa: S307 - the sweep's own source
    except Exception as e:  # noqa: BLE001 - which error is raised is compared
        return None, e


def _torch_base(e):
    # torch's NotImplementedError ("not implemented for 'Bool'") is a RuntimeError subclass,
    # and so are its IndexError-like c10 errors; descent raises RuntimeError or a subclass
    if isinstance(e, (NotImplementedError, RuntimeError)):
        return RuntimeError
    return type(e)


RTOL = {"float16": 2e-3, "bfloat16": 1e-2, "float32": 2e-6, "float64": 1e-12, "complex64": 2e-6}


def _values(x):
    return np.asarray(x.tolist())


# ops whose result at a tie of +0.0 and -0.0 is either zero in PyTorch, by whether its
# vectorized or its scalar loop ran (max(-0.0, 0.0)): the sign of a zero is not compared
ZERO_SIGN_FREE = ("maximum", "minimum", "max", "min", "relu", "clamp", "clip", "fmax", "fmin",
                  "amax", "amin", "where(x > 0")  # fmt: skip


def compare(t, d, path="", signed_zero=True) -> str | None:
    """None when descent's result `d` matches torch's `t`, else what differs."""
    import torch

    if isinstance(t, torch.Tensor):
        if not hasattr(d, "dtype") or not hasattr(d, "shape"):
            return f"{path}: torch gives a tensor, descent {type(d).__name__}"
        tdt, ddt = str(t.dtype).replace("torch.", ""), str(d.dtype).replace("descent.", "")
        if tdt != ddt:
            return f"{path}: dtype torch {tdt} descent {ddt}"
        if tuple(t.shape) != tuple(d.shape):
            return f"{path}: shape torch {tuple(t.shape)} descent {tuple(d.shape)}"
        tv, dv = _values(t.detach()), _values(d.detach())
        if t.dtype.is_floating_point or t.dtype.is_complex:
            ok = _close(tv, dv, RTOL.get(tdt, 1e-6), signed_zero)
        else:
            ok = np.array_equal(tv, dv)
        if not ok:
            return f"{path}: values torch {tv.tolist()} descent {dv.tolist()}"
        return None
    if isinstance(t, (tuple, list)):
        if not isinstance(d, (tuple, list)) or len(t) != len(d):
            return f"{path}: torch gives {type(t).__name__} of {len(t)}, descent {d!r:.80}"
        for i, (a, b) in enumerate(zip(t, d, strict=True)):
            r = compare(a, b, f"{path}[{i}]", signed_zero)
            if r:
                return r
        return None
    if isinstance(t, (bool, int, float, complex)):
        if type(t) is not type(d):
            return f"{path}: torch gives {type(t).__name__} {t!r}, descent {type(d).__name__} {d!r}"
        if not _close(np.asarray(t), np.asarray(d), 1e-12):
            return f"{path}: torch {t!r} descent {d!r}"
        return None
    if str(t).replace("torch.", "") != str(d).replace("descent.", ""):
        return f"{path}: torch {t!r} descent {d!r}"
    return None


def _close(a, b, rtol, signed_zero=True):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "c" or b.dtype.kind == "c":
        a, b = a.astype(complex), b.astype(complex)
        # a complex value with an inf or nan part: PyTorch follows C's complex arithmetic
        # (1 / 0j is nan+nanj, a + nan is nan+nanj), NumPy does not; only "not finite" compared
        bad_a, bad_b = ~np.isfinite(a), ~np.isfinite(b)
        if (bad_a != bad_b).any():
            return False
        a, b = np.where(bad_a, 0, a), np.where(bad_b, 0, b)
        return _close(a.real, b.real, rtol, signed_zero) and _close(a.imag, b.imag, rtol,
                                                                     signed_zero)
    a, b = a.astype(float), b.astype(float)
    same_nan = np.isnan(a) == np.isnan(b)
    fin = np.isfinite(a) & np.isfinite(b)
    exact = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore", over="ignore"):
        tol = np.abs(a - b, where=fin, out=np.zeros_like(a)) <= rtol * np.abs(a) + 1e-300
    ok = same_nan & (exact | (fin & tol))
    if signed_zero:  # the sign of a zero is compared
        ok &= ~((a == 0) & (b == 0)) | (np.signbit(a) == np.signbit(b))
    return bool(ok.all())


def check(src) -> str | None:
    """None when torch and descent agree on the case, else the difference."""
    import torch

    import descent

    try:
        code = _compiled(src)
    except SyntaxError:
        code = None  # (each run raises it)
    t, te = run(torch, src, code)
    d, de = run(descent, src, code)
    if te is not None or de is not None:
        if te is None:
            return f"descent raises {type(de).__name__}: {str(de)[:150]}"
        if de is None:
            return f"torch raises {type(te).__name__}: {str(te)[:150]}; descent returns {d!r:.120}"
        if not isinstance(de, _torch_base(te)):
            return f"torch raises {type(te).__name__}, descent {type(de).__name__}: {str(de)[:120]}"
        return None
    return compare(t, d, signed_zero=not any(w in src for w in ZERO_SIGN_FREE))


# ---------------------------------------------------------------------------------------------
# The cases, by group

UNARY = ["abs", "neg", "sign", "sgn", "sqrt", "exp", "log", "log2", "log1p", "expm1", "floor",
         "ceil", "round", "trunc", "frac", "reciprocal", "sigmoid", "tanh", "sin", "square",
         "bitwise_not", "logical_not", "isnan", "isinf", "isfinite", "isposinf", "isneginf",
         "signbit", "nan_to_num", "positive", "relu", "exp2", "rsqrt", "erf", "angle", "conj",
         "deg2rad", "isreal", "lgamma", "sinc", "logit", "i0", "asin", "atanh"]  # fmt: skip
UNARY_SRC = ["m.round(x, decimals=1)", "m.round(x, decimals=-1)", "m.nan_to_num(x, nan=1.5)",
             "m.nan_to_num(x, posinf=7, neginf=-7)", "x.float()", "x.double()", "x.half()",
             "x.bool()", "x.to(m.int8)", "x.to(m.uint8)", "x.to(m.complex64)", "x.bfloat16()",
             "m.clamp(x, min=-1)", "m.clamp(x, max=2.5)", "m.clamp(x, -1, 1)",
             "m.clamp(x, 2, 1)", "m.clamp(x, min=m.tensor(0.5))",
             "m.clamp(x, min=m.tensor(1), max=m.tensor(1.5))", "m.clamp(x, nan, 1)",
             "m.clamp(x, min=m.tensor(0.5, dtype=m.float64))", "m.clip(x, -2, 3)",
             "m.clamp_min(x, 1)", "m.clamp_max(x, 1.5)", "m.where(x > 0, x, 0)",
             "m.where(x > 0, x, 2.5)", "m.where(x > 0, 1, 0.5)", "m.where(x > 0, 1, 0)",
             "m.where(x > 0, x, -1)", "m.where(x > 0, -1, x)", "m.where(x > 0, x, True)",
             "m.where(x > 0, m.tensor(1.5, dtype=m.float64), x)",
             "m.where(x > 0, x, m.tensor(2, dtype=m.int64))", "m.where(x.bool())",
             "m.heaviside(x, m.tensor(0.5))", "m.float_power(x, 2)", "m.pow(x, 0)",
             "m.pow(x, 2)", "m.pow(x, -1)", "m.pow(x, 0.5)", "m.pow(2, x)", "m.pow(-1.5, x)",
             "m.xlogy(x, 2)", "m.fmod(x, 0)", "m.remainder(x, 0)", "x // 0", "x % 0",
             "x / 0", "m.div(x, 0, rounding_mode='floor')", "m.div(x, 0, rounding_mode='trunc')",
             "m.div(x, -3, rounding_mode='floor')", "m.div(x, -3, rounding_mode='trunc')",
             "x // -3", "x % -3", "m.fmod(x, -3)", "m.remainder(x, -3)", "x // -2.5",
             "x % -2.5", "m.fmod(x, 2.5)", "x << 2", "x >> 1", "x << 70", "x >> 70", "x << -1",
             "x & 6", "x | True", "x ^ -1", "~x", "-x", "abs(x)", "x == nan", "x != nan",
             "x < nan", "x >= inf", "x == 0", "x == -0.0", "x > 2**40", "x < 1e39",
             "x + 1e39", "x * 2**70", "x - True", "x + (1 + 1j)", "x * 0.5", "x + 2**40",
             "x - 300", "x + (-0.0)", "0.0 - x", "1 / x", "2 ** x", "x ** 3", "-3 // x",
             "-3 % x", "m.copysign(x, -1)", "m.nextafter(x, m.tensor(inf, dtype=x.dtype))",
             "m.logical_and(x, 2.5)", "m.logical_xor(x, 0)", "m.maximum(x, m.tensor(0))",
             "m.fmax(x, m.tensor(nan))", "m.minimum(x, m.tensor(nan))",
             "m.bitwise_left_shift(x, 3)", "m.bitwise_right_shift(x, 100)",
             "m.trunc(x / 2)", "m.frexp(x)", "m.ldexp(x, m.tensor(3))", "m.hypot(x, x)",
             "m.atan2(x, m.tensor(-0.0))", "m.lerp(x, x, 0.5)", "m.addcmul(x, x, x, value=2)",
             "m.sign(x) * x", "m.isclose(x, x)", "m.isclose(x, x, equal_nan=True)",
             "m.eq(x, x)", "m.equal(x, x)", "m.allclose(x, x)"]  # fmt: skip
UNARY_SHAPES = [(6,), (), (0,), (3, 0)]


def unary_cases():
    out = []
    for dt in ALL:
        for shape in UNARY_SHAPES:
            x = f"X({dt!r}, {shape!r})"
            out += [f"m.{op}({x})" for op in UNARY]
            out += [s.replace("x", x) if s.count("x") == 1 else f"x = {x}; out = {s}"
                    for s in UNARY_SRC]  # fmt: skip
    return out


BINARY = ["add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "pow", "atan2",
          "maximum", "minimum", "fmax", "fmin", "eq", "lt", "ge", "bitwise_and", "bitwise_or",
          "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift", "logical_and",
          "logical_or", "hypot", "copysign", "xlogy", "true_divide"]  # fmt: skip
BINARY_SRC = ["m.div(x, y, rounding_mode='floor')", "m.div(x, y, rounding_mode='trunc')",
              "m.where(y > 0, x, y)", "m.clamp(x, y, y)", "m.clamp(x, min=y)", "x @ y"]


def binary_cases():
    """Every pair of dtypes, 1-d with 1-d, 0-d with 1-d and 1-d with 0-d."""
    out = []
    for da in ALL:
        for db in ALL:
            for sa, sb in [((6,), (6,)), ((), (6,)), ((6,), ())]:
                if da == db and (sa, sb) != ((6,), (6,)):
                    continue
                x, y = f"X({da!r}, {sa!r})", f"Y({db!r}, {sb!r})"
                out += [f"m.{op}({x}, {y})" for op in BINARY]
                out += [f"x = {x}; y = {y}; out = {s}" for s in BINARY_SRC]
    return out


SCALARS = ["0", "-3", "255", "2.5", "-0.0", "nan", "True", "2**40", "1j"]


def scalar_cases():
    """A tensor of every dtype (1-d, and 0-d) with Python scalars, on either side."""
    out = []
    for dt in ALL:
        for shape in [(6,), ()]:
            x = f"X({dt!r}, {shape!r})"
            for s in SCALARS:
                for op in ["+", "-", "*", "/", "//", "%", "**", "<", "==", "&", "<<"]:
                    out += [f"{x} {op} {s}", f"{s} {op} {x}"]
                out += [f"m.maximum({x}, m.tensor({s}))", f"m.fmod({x}, {s})",
                        f"m.remainder({s}, {x})", f"m.clamp({x}, {s})",
                        f"m.where({x}.bool(), {x}, {s})", f"m.where({x}.bool(), {s}, 7)",
                        f"m.full_like({x}, {s})", f"m.add({x}, {s}, alpha=2)"]  # fmt: skip
    return out


INPLACE = ["add_", "sub_", "mul_", "div_", "floor_divide_", "remainder_", "pow_",
           "bitwise_and_", "clamp_", "copy_", "fmod_", "maximum", "lerp_"]  # fmt: skip


def inplace_cases():
    """In-place ops of every dtype with every other dtype's tensor and with Python scalars
    (torch refuses results it cannot cast back: float into int, int into bool)."""
    out = []
    for da in ALL:
        for db in ALL:
            x, y = f"P({da!r})", f"Y({db!r})"
            out += [f"x = {x}; x.add_({y}); out = x", f"x = {x}; x.mul_({y}); out = x",
                    f"x = {x}; x.div_({y}); out = x", f"x = {x}; x.copy_({y}); out = x",
                    f"x = {x}; x.sub_(Y({db!r}, ())); out = x",
                    f"x = {x}; x.floor_divide_(Y({db!r}, ())); out = x",
                    f"x = {x}; x.clamp_({y}, {y}); out = x",
                    f"x = {x}; x.bitwise_or_({y}); out = x",
                    f"x = {x}; x.pow_(Y({db!r}, ())); out = x",
                    f"x = {x}; x.masked_fill_({y}.bool(), Y({db!r}, ())); out = x",
                    f"x = {x}; x.index_put_((m.tensor([0, 2]),), Y({db!r}, (2,))); out = x",
                    f"x = {x}; x[1:3] = Y({db!r}, (2,)); out = x"]  # fmt: skip
        for s in ["1", "2.5", "True", "-1", "300", "1j", "nan"]:
            x = f"P({da!r})"
            out += [f"x = {x}; x.add_({s}); out = x", f"x = {x}; x *= {s}; out = x",
                    f"x = {x}; x.clamp_(max={s}); out = x", f"x = {x}; x.fill_({s}); out = x",
                    f"x = {x}; x[0] = {s}; out = x", f"x = {x}; x.div_({s}); out = x"]
    return out


def out_cases():
    """out= of every dtype: torch casts the result into it when the result's category is no
    higher than out's, and raises otherwise; an out of the wrong shape is resized."""
    out = []
    for dt in ALL:
        for src in ["m.add(P('int64'), P('float32'), out=o)", "m.add(P('int32'), 1, out=o)",
                    "m.mul(P('float32'), 2.5, out=o)", "m.sum(P('int64'), 0, out=o)",
                    "m.eq(P('float32'), 0.5, out=o)", "m.abs(P('float64'), out=o)",
                    "m.div(P('int64'), 2, out=o)", "m.floor_divide(P('int64'), 2, out=o)",
                    "m.clamp(P('float32'), 0, 1, out=o)", "m.where(P('bool'), 1.5, 2, out=o)",
                    "m.cumsum(P('int8'), 0, out=o)", "m.sqrt(P('int64'), out=o)",
                    "m.maximum(P('int8'), P('uint8'), out=o)",
                    "m.bitwise_and(P('int64'), 3, out=o)",
                    "m.mean(P('float32'), 0, out=o)", "m.argmax(P('float32'), 0, out=o)"]:
            for oshape in ["(6,)", "(0,)", "()"]:
                out.append(f"o = m.empty({oshape}, dtype=m.{dt}); r = {src}; "
                           "out = (o, r is o)")
    return out


REDUCE = ["sum", "prod", "mean", "nansum", "nanmean", "amax", "amin", "argmax", "argmin", "std",
          "var", "logsumexp", "min", "max", "median", "nanmedian", "all", "any",
          "count_nonzero", "mode"]  # fmt: skip
REDUCE_DTYPES = ["bool", "uint8", "int8", "int64", "float16", "bfloat16", "float32",
                 "float64", "complex64"]  # fmt: skip


def reduce_cases():
    """Full and per-dim reductions (keepdim both ways) over edge values and empty tensors:
    torch raises for amax/argmax/min/max/median/mode over an empty dim, and returns the
    identity (sum 0, prod 1) or nan (mean, std) otherwise."""
    out = []
    for dt in REDUCE_DTYPES:
        for make, shape in [("X", (6,)), ("X", ()), ("P", (2, 3)), ("E", (0,)), ("E", (3, 0)),
                            ("E", (0, 4, 2))]:  # fmt: skip
            x = f"{make}({dt!r}, {shape!r})"
            for op in REDUCE:
                if op != "logsumexp":  # (torch's logsumexp needs dim)
                    out.append(f"m.{op}({x})")
                for dim in [0, -1]:
                    if dim == 0 or len(shape) > 1:
                        out.append(f"m.{op}({x}, {dim})")
                        out.append(f"m.{op}({x}, {dim}, keepdim=True)")
            out += [f"m.std({x}, 0, correction=0)", f"m.var({x}, unbiased=False)",
                    f"m.sum({x}, (0, -1))", f"m.amax({x}, ())", f"m.sum({x}, ())",
                    f"m.sum({x}, dtype=m.float64)", f"m.mean({x}, dtype=m.float64)",
                    f"m.norm({x})", f"m.var_mean({x}, 0)", f"m.aminmax({x})",
                    f"m.logsumexp({x}, (0,))"]  # fmt: skip
    return out


SCAN = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]


def scan_cases():
    out = []
    for dt in REDUCE_DTYPES:
        for make, shape in [("X", (6,)), ("X", ()), ("P", (2, 3)), ("E", (0,)), ("E", (3, 0)),
                            ("E", (0, 4, 2))]:  # fmt: skip
            x = f"{make}({dt!r}, {shape!r})"
            for op in SCAN:
                out += [f"m.{op}({x}, 0)", f"m.{op}({x}, -1)"]
            out += [f"m.cumsum({x}, 0, dtype=m.float64)", f"m.diff({x})" if shape else "0"]
    return [s for s in out if s != "0"]


def order_cases():
    """sort (stable, both directions), argsort, topk, kthvalue, unique and friends with nan,
    duplicates, -0.0 and empty inputs."""
    out = []
    for dt in REDUCE_DTYPES:
        for make, shape in [("X", (6,)), ("P", (6,)), ("X", ()), ("P", (2, 3)), ("E", (0,)),
                            ("E", (3, 0))]:  # fmt: skip
            x = f"{make}({dt!r}, {shape!r})"
            out += [f"m.sort({x}, stable=True)", f"m.sort({x}, descending=True, stable=True)",
                    f"m.sort({x}, dim=0, stable=True)", f"m.argsort({x}, stable=True)",
                    f"m.argsort({x}, descending=True, stable=True)", f"m.msort({x})",
                    f"m.topk({x}, 1).values", f"m.topk({x}, 0)", f"m.topk({x}, 7)",
                    f"m.topk({x}, 2, largest=False).values", f"m.kthvalue({x}, 1).values",
                    f"m.unique({x})", f"m.unique({x}, return_counts=True)",
                    f"m.unique({x}, sorted=True, return_inverse=True)",
                    f"m.unique_consecutive({x})", f"m.searchsorted(m.sort({x}.flatten())[0], {x})",
                    f"m.bincount({x}.flatten())" if dt in ("uint8", "int8", "int64", "bool")
                    else f"m.histc({x})", f"m.nonzero({x})", f"m.flip({x}, (0,))" if shape
                    else f"m.flip({x}, ())", f"m.isin({x}, P({dt!r}, (2,)))"]  # fmt: skip
    return out


def extra_cases():
    """Hand-written edges: integer overflow and wrap, shifts past the width, division of the
    most negative integer by -1, nan in reductions, sorts and scans, half-precision sums."""
    t = "m.tensor"
    out = [
        f"{t}([-128, 127, 0], dtype=m.int8).abs()", f"-{t}([-128, 1], dtype=m.int8)",
        f"-{t}([0, 1, 255], dtype=m.uint8)", f"{t}([-2**63], dtype=m.int64).abs()",
        f"{t}([-128], dtype=m.int8) // -1", f"{t}([-2**31], dtype=m.int32) // -1",
        f"m.div({t}([-128], dtype=m.int8), -1, rounding_mode='trunc')",
        f"m.remainder({t}([-128], dtype=m.int8), -1)", f"m.fmod({t}([-7, 7, -8]), -3)",
        f"{t}([-7, 7, -8]) % -3", f"{t}([-7, 7, -8]) // -3", f"{t}([-7.5, 7.5, -0.0]) // -3",
        f"{t}([-7.5, 7.5, -0.0]) % -3", f"{t}([-7.5, 7.5, 0.0]) % 0.0",
        f"{t}([1, -1, 5], dtype=m.int8) << 7", f"{t}([1, -1, 5], dtype=m.int8) << 8",
        f"{t}([1, -1, 5]) << 63", f"{t}([1, -1, 5]) << 64", f"{t}([-8, 8]) >> 100",
        f"{t}([-8, 8], dtype=m.int8) >> {t}([1, 9], dtype=m.int8)",
        f"{t}([200], dtype=m.uint8) << 1", f"{t}([200], dtype=m.uint8) >> -1",
        f"m.gcd({t}([0, -12, 7]), {t}([0, 18, -14]))", f"m.lcm({t}([0, -4, 6]), {t}([5, 6, -4]))",
        f"m.gcd({t}([-128], dtype=m.int8), {t}([0], dtype=m.int8))",
        f"{t}([100, 100], dtype=m.int8).sum()", f"{t}([100, 100], dtype=m.int8).prod()",
        f"{t}([100, 100], dtype=m.int8).cumsum(0)", f"{t}([100, 100], dtype=m.int8).cumprod(0)",
        f"{t}([2**62, 2**62]).sum()", f"{t}([2**62, 4]).prod()",
        f"{t}([60000.0, 60000.0], dtype=m.float16).sum()",
        f"{t}([60000.0, 60000.0], dtype=m.float16).mean()",
        f"{t}([60000.0, 60000.0], dtype=m.float16).cumsum(0)",
        f"{t}([3e38, 3e38]).sum()", f"{t}([3e38, 3e38]).mean()", f"{t}([2e-38, -2e-38]).sum()",
        f"{t}([1, 2, 3]).mean()", f"{t}([1, 2, 3]).var()", f"{t}([True, False]).std()",
        f"{t}([1.0]).var()", f"{t}([1.0]).std(correction=0)", f"{t}([1.0, 2.0]).var(correction=2)",
        f"{t}([nan, 1.0, 2.0]).max()", f"{t}([nan, 1.0, 2.0]).min(0)", f"{t}([1.0, nan]).amax()",
        f"{t}([1.0, nan, 3.0]).argmax()", f"{t}([1.0, nan, 3.0]).argmin()",
        f"{t}([1.0, nan, nan, 3.0]).argmax()", f"{t}([inf, nan, -inf]).argmin()",
        f"{t}([nan, 1.0, nan, 0.5]).sort(stable=True)",
        f"{t}([nan, 1.0, nan, 0.5]).sort(descending=True, stable=True)",
        f"{t}([nan, 1.0, -0.0, 0.0, 0.5]).argsort(stable=True)",
        f"{t}([nan, 1.0, nan, 0.5]).topk(2).values", f"{t}([nan, 1.0, nan, 0.5]).topk(2, "
        "largest=False)", f"m.unique({t}([nan, 1.0, nan, 1.0]))",
        f"m.unique({t}([nan, 1.0, nan, 1.0]), return_counts=True)",
        f"{t}([nan, 1.0, 2.0]).median()", f"{t}([nan, 1.0, 2.0]).nanmedian()",
        f"{t}([nan, nan]).nanmedian()", f"{t}([1.0, nan, 2.0]).kthvalue(2)",
        f"{t}([1.0, nan, 0.5, nan]).cummax(0)", f"{t}([1.0, nan, 0.5, nan]).cummin(0)",
        f"{t}([1.0, nan, 0.5]).cumsum(0)", f"{t}([inf, -inf, 1.0]).cumsum(0)",
        f"{t}([inf, -inf, 1.0]).logcumsumexp(0)", f"{t}([-inf, -inf]).logsumexp(0)",
        f"{t}([inf, inf]).logsumexp(0)", f"{t}([nan, 1.0]).logsumexp(0)",
        f"m.isin({t}([nan, 1.0]), {t}([nan]))",
        f"m.searchsorted({t}([1.0, 2.0, nan]), {t}([nan, 1.5]))",
        f"m.diff({t}([0, 255, 1], dtype=m.uint8))", f"m.diff({t}([1.0, inf, inf]))",
        f"m.clamp({t}([1.0, 2.0, nan]), min=nan)", f"m.clamp({t}([1.0, 2.0, nan]), max={t}(nan))",
        f"m.clamp({t}([1.0, 5.0]), {t}([3.0, 3.0]), {t}([2.0, 2.0]))",
        f"m.clamp({t}([1, 5]), {t}(2.5), 4)",
        f"m.clamp({t}([1, 5]), min={t}([2, 2], dtype=m.uint8))",
        f"m.round({t}([0.5, 1.5, 2.5, -0.5, -2.5]))", f"m.round({t}([0.125, 0.375]), decimals=2)",
        f"m.round({t}([15.0, 25.0, 1e30]), decimals=-1)",
        f"m.round({t}([1.5], dtype=m.float64), decimals=400)",
        f"m.where({t}([True, False]), 1.5, {t}([1, 2], dtype=m.int8))",
        f"m.where({t}([True, False]), {t}(1.5, dtype=m.float64), {t}([1, 2], dtype=m.float16))",
        f"m.where({t}([True, False]), True, 2)", f"m.where({t}([True, False]), {t}([1, 2]), True)",
        f"m.where({t}([True, False]), 2**40, {t}([1, 2], dtype=m.int32))",
        f"{t}([1.0, nan]) == {t}([1.0, nan])", f"{t}([nan]) != {t}([nan])",
        f"{t}([nan]) <= {t}([inf])", f"m.maximum({t}([nan, 1.0]), {t}([0.0, nan]))",
        f"m.fmax({t}([nan, 1.0, nan]), {t}([0.0, nan, nan]))",
        f"m.sign({t}([-0.0, nan, -inf]))", f"m.sgn({t}([-0.0, nan, -inf]))",
        f"m.copysign({t}([1, 2]), -0.0)", f"m.copysign({t}([1.0, nan]), {t}([-0.0, -nan]))",
        f"m.signbit({t}([-0.0, 0.0, -nan]))", f"m.heaviside({t}([-0.0, 0.0, nan]), {t}([0.5]))",
        f"m.floor_divide({t}([5, -5]), {t}([0.0, -0.0]))", f"{t}([0, 1]) / 0",
        f"{t}([0, 1]) / {t}(0)", f"m.true_divide({t}([1], dtype=m.uint8), {t}([0], dtype=m.uint8))",
        f"m.pow({t}([0, 2, -2]), {t}([0, -1, 2]))", f"m.pow({t}([0.0, -0.0]), -1)",
        f"m.pow({t}([2], dtype=m.int8), 7)", f"m.pow({t}([-1.0, -8.0]), 1/3)",
        f"m.float_power({t}([2], dtype=m.int8), 7)", f"m.float_power({t}([-1.0]), 0.5)",
        f"m.ldexp({t}([1.0]), {t}([1024]))", f"m.ldexp({t}([1.0], dtype=m.float16), {t}([16]))",
        f"m.nan_to_num({t}([nan, inf, -inf], dtype=m.float16))",
        f"m.nan_to_num({t}([nan, inf, -inf]), nan=1e39)",
        f"m.exp({t}([89.0, 710.0], dtype=m.float64))",
        f"m.exp({t}([89.0, 11.1], dtype=m.float16))", f"m.log({t}([-0.0, 0.0, -1.0]))",
        f"m.sqrt({t}([-0.0, -1.0]))", f"m.rsqrt({t}([-0.0, 0.0]))", f"m.reciprocal({t}([-0.0]))",
        f"m.reciprocal({t}([0, 2]))", f"m.atan2({t}([-0.0, 0.0]), {t}([-0.0, -0.0]))",
        f"m.hypot({t}([inf, nan]), {t}([nan, inf]))",
        f"m.logaddexp({t}([-inf, inf]), {t}([-inf, inf]))",
        f"m.sum({t}([], dtype=m.int8))", f"m.prod({t}([], dtype=m.uint8))",
        f"m.mean({t}([]))", f"m.std({t}([]))", f"m.amax({t}([]))",
        f"m.max({t}([[]]), 1)", f"m.max({t}([[]]).T, 1)", f"m.argmax({t}([[]]), 0)",
        f"m.logsumexp({t}([[]]), 1)", f"m.cumsum({t}([], dtype=m.bool), 0)",
        f"m.cumprod({t}([], dtype=m.int8), 0)", f"m.var_mean({t}([[]]), 1)",
        f"m.all({t}([]))", f"m.any({t}([]))", f"m.all({t}([[]]), 1)", f"m.count_nonzero({t}([]))",
        f"m.unique({t}([]))", f"m.sort({t}([]))", f"m.topk({t}([]), 0)", f"m.median({t}([]))",
        f"m.nanmedian({t}([]))", f"m.mode({t}([]))", f"m.kthvalue({t}([]), 1)",
    ]  # fmt: skip
    ints = ["x = m.tensor([1, 2]); x.add_(1.5); out = x",
            "x = m.tensor([1, 2]); x.mul_(m.tensor(0.5)); out = x",
            "x = m.tensor([1, 2]); x.div_(2); out = x",
            "x = m.tensor([1, 2]); x.sub_(m.tensor([True, True])); out = x",
            "x = m.tensor([True, False]); x.add_(m.tensor([True, True])); out = x",
            "x = m.tensor([True, False]); x.mul_(2); out = x",
            "x = m.tensor([1, 2], dtype=m.uint8); x.add_(-1); out = x",
            "x = m.tensor([1, 2], dtype=m.int8); x.add_(m.tensor(200, dtype=m.int64)); out = x",
            "x = m.tensor([1.0, 2.0], dtype=m.float16); x.add_(70000); out = x",
            "x = m.tensor([1.0, 2.0], dtype=m.float16); x.add_(m.tensor(1e6)); out = x",
            "x = m.tensor([1.0, 2.0]); x.add_(m.tensor([1 + 1j])); out = x",
            "x = m.tensor([1, 2]); x.floor_divide_(0); out = x",
            "x = m.tensor([1, 2]); x.remainder_(m.tensor([0, 1])); out = x",
            "x = m.tensor([1, 2]); x.pow_(-1); out = x",
            "x = m.tensor([1, 2]); x.pow_(0.5); out = x",
            "x = m.tensor([1, 2]); x.lerp_(m.tensor([3, 4]), 0.5); out = x",
            "x = m.tensor([5, 6]); x.bitwise_left_shift_(70); out = x",
            "x = m.tensor([5.0]); x.bitwise_and_(1); out = x",
            "x = m.tensor([1, 2]); x.sqrt_(); out = x",
            "x = m.tensor([1, 2]); x.neg_(); out = x",
            "x = m.tensor([True]); x.neg_(); out = x",
            "x = m.tensor([1, 2]); x.abs_(); out = x",
            "x = m.tensor([1, 2]); x.clamp_(max=1.5); out = x",
            "x = m.tensor([1.5, 2.5]); x.round_(); out = x",
            "x = m.tensor([1, 2]); x.copy_(m.tensor([1.7, -1.7])); out = x",
            "x = m.tensor([1, 2], dtype=m.uint8); x.copy_(m.tensor([-1.7, 300.0])); out = x",
            "x = m.tensor([1, 2]); x.fill_(2.9); out = x",
            "x = m.tensor([1, 2]); x.fill_(m.tensor(2.9)); out = x",
            "x = m.tensor([1, 2]); x.masked_fill_(m.tensor([True, False]), 2.9); out = x",
            "x = m.tensor([1, 2]); x[0] = 2.9; out = x",
            "x = m.tensor([1, 2]); x[0] = -2.9; out = x",
            "x = m.tensor([1, 2], dtype=m.uint8); x[0] = -2.9; out = x",
            "x = m.tensor([1, 2]); x[m.tensor([0])] = m.tensor([2.9]); out = x",
            "x = m.tensor([1, 2]); x.index_fill_(0, m.tensor([0]), 2.9); out = x",
            "x = m.tensor([1, 2]); x.scatter_(0, m.tensor([0]), 2.9); out = x",
            "x = m.tensor([1, 2]); x.index_add_(0, m.tensor([0]), m.tensor([2.9])); out = x",
            "x = m.tensor([1, 2]); x.scatter_add_(0, m.tensor([0]), m.tensor([2.9])); out = x",
            "x = m.tensor([1.0, 2.0]); x.index_add_(0, m.tensor([0]), m.tensor([3])); out = x",
            "o = m.empty(2, dtype=m.int64); out = m.add(m.tensor([1, 2]), 1.5, out=o)",
            "o = m.empty(2, dtype=m.float16); out = m.add(m.tensor([1.0, 2.0]), 1e5, out=o)",
            "o = m.empty(2, dtype=m.int32); out = m.sum(m.tensor([[1, 2]]), 0, out=o)",
            "o = m.empty(0); out = m.sort(m.tensor([2.0, 1.0]), out=(o, m.empty(0, dtype=m.long)))",
            "o = m.empty(2, dtype=m.bool); out = m.gt(m.tensor([1, 2]), 1, out=o)",
            "o = m.empty(2, dtype=m.int64); out = m.gt(m.tensor([1, 2]), 1, out=o)",
            "o = m.empty(2, dtype=m.float32); out = m.gt(m.tensor([1, 2]), 1, out=o)",
            "o = m.empty(2, dtype=m.int64); out = m.argmax(m.tensor([[1, 2]]), 1, out=o)",
            "o = m.empty(1, dtype=m.int32); out = m.argmax(m.tensor([[1, 2]]), 1, out=o)",
            "o = m.empty(3); out = m.cumsum(m.tensor([1, 2, 3]), 0, out=o)",
            "o = m.empty(3, dtype=m.int8); out = m.cumsum(m.tensor([1.0, 2.0, 3.0]), 0, out=o)"]
    sets = [f"x = m.tensor([1, 2]); x[{i}] = {v}; out = x"
            for i in ["m.tensor([0])", "[0]", "m.tensor([True, False])", "(slice(None),)", "0",
                      "(m.tensor([0]),)", "m.tensor(0)", "[True, False]", "slice(0, 1)"]
            for v in ["m.tensor([2.9])", "m.tensor(2.9)", "m.tensor([2], dtype=m.int32)", "1j",
                      "m.tensor(1+0j)", "m.tensor([[5]])", "m.tensor([[5, 6]])",
                      "m.tensor([5, 6])"]]  # fmt: skip
    return out + ints + sets


COMBINE = ["m.cat([x, y])", "m.stack([x, y])", "m.hstack([x, y])", "m.lerp(x, y, 0.5)",
           "m.addcmul(x, x, y)", "m.addcdiv(x, y, y)", "m.isclose(x, y)", "m.dist(x, y)",
           "m.dot(x, y)", "m.cross(x.reshape(2, 3), y.reshape(2, 3), dim=1)",
           "m.take_along_dim(x, y.long().abs() % 6)", "m.index_select(x, 0, m.tensor([0, 5]))",
           "m.masked_select(x, y.bool())", "m.ne(x, y).sum()", "m.bucketize(x, m.sort(y)[0])",
           "m.copysign(x, y)", "m.nextafter(x, y)", "m.ldexp(x, y)", "m.logaddexp(x, y)",
           "m.fmod(x, y)", "m.heaviside(x, y)", "m.xlogy(x, y)", "m.gcd(x, y)",
           "m.bitwise_xor(x, y)"]  # fmt: skip


def combine_cases():
    """More ops over every pair of dtypes (1-d operands): concatenation's promotion, lerp /
    addcmul / addcdiv (torch needs one dtype or a floating result), distance and products."""
    return [f"x = V({da!r}); y = Y({db!r}); out = {s}" for da in ALL for db in ALL
            for s in COMBINE]
