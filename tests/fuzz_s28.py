"""Differential fuzz against PyTorch 2.13 of the areas tests/test_fuzz_differential.py and the view
fuzz do not reach (session 28): four modes, each a generator of small Python programs that run
unchanged with `m` bound to torch or to descent (`F` to its nn.functional).

* `grad2`: second-order gradients. A chain of 1-3 differentiable ops over one or two float64
  (sometimes float32) leaves, then `autograd.grad(..., create_graph=True)` and the gradient of a
  random projection of that gradient (sometimes by `backward(create_graph=True)` and `.grad`,
  sometimes a third order); values with ties, zeros, poles and, rarely, inf/nan.
* `complex`: complex64/complex128 inputs through elementwise ops (abs, angle, sgn, polar,
  view_as_real, ...), reductions, matmul and the fft family (random n / s, dims and norms),
  with the gradient of a real projection of the result (PyTorch's conjugate Wirtinger rule).
* `nn`: nn.functional with random configurations: convolutions (1-3 d, transposed, stride,
  padding incl. 'same' / 'valid', dilation, groups, output_padding), pools (max / avg / lp /
  adaptive; ceil_mode, count_include_pad, divisor_override, return_indices), batch / layer /
  group / instance / local-response norms, interpolate, pad, unfold / fold, pixel (un)shuffle,
  scaled_dot_product_attention; edge sizes (kernel = input, one element) and, sometimes, a
  configuration both libraries must refuse. Values and the input / weight gradients.
* `func`: torch.func transforms (grad with argnums and has_aux, vmap with in_dims / out_dims,
  jacrev, jacfwd, hessian, jvp, vjp, and nestings: vmap(grad), grad(grad), jacrev(jacrev)).
* `index` (session 29): int8 / uint8 / int16 / int32 / int64 / bool / float tensors (0-d,
  empty, dtype extremes) through scatter (value, reduce), scatter_add, scatter_reduce, gather,
  index_select / add / copy / fill / put, take, take_along_dim, masked_scatter / select,
  bincount, searchsorted, bucketize, unique (_consecutive), getitem / setitem and 26 reductions
  and scans with dim / keepdim / dtype=; negative and (8%) out-of-range indices; gradients of
  the float operands.

Compared: the statement at which each library raises (descent's exception must be the class of
PyTorch's or a subclass; where only PyTorch raises NotImplementedError, descent computing is a
superset), then every result's type, shape, dtype and values (NaN-aware; rtol / atol scaled by
the dtype's epsilon and the result's magnitude). A mismatching program is shrunk (statements
that the outcome does not need are dropped) and printed. Not a test itself:

    python tests/fuzz_s28.py MODE SECONDS SEED       # e.g. grad2 120 28500001

tests/test_fuzz_s28.py runs a few programs of each mode from a fixed seed and the KNOWN ones.
"""

from __future__ import annotations

import math
import re
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

import descent

# ---------------------------------------------------------------------------------------------
# Programs: a list of statements; `out` (a list) holds what is compared


@dataclass
class Program:
    mode: str
    seed: int
    lines: list

    def source(self) -> str:
        head = ["import math", "# m = torch or descent; F = m.nn.functional"]
        return "\n".join(head + self.lines)


def _env(lib):
    m = torch if lib == "torch" else descent
    return {"m": m, "F": m.nn.functional, "math": math, "out": []}


@dataclass
class Outcome:
    error_line: int | None
    error: BaseException | None
    out: list


def run(lib: str, lines: list) -> Outcome:
    env = _env(lib)
    for k, line in enumerate(lines):
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                exec(line, env)  # noqa: S102 - the fuzz's own generated source
        except Exception as e:  # noqa: BLE001 - which statement raises is compared
            return Outcome(k, e, env["out"])
    return Outcome(None, None, env["out"])


def _lit(v) -> str:
    """Source of a number or nested list (nan / inf as math.nan / math.inf)."""
    if isinstance(v, list):
        return "[" + ", ".join(_lit(u) for u in v) + "]"
    if isinstance(v, complex):
        return f"complex({_lit(v.real)}, {_lit(v.imag)})"
    if isinstance(v, float):
        if math.isnan(v):
            return "math.nan"
        if math.isinf(v):
            return "math.inf" if v > 0 else "-math.inf"
        return repr(v)
    return repr(v)


def tensor_src(a: np.ndarray, requires_grad: bool = False) -> str:
    rg = ", requires_grad=True" if requires_grad else ""
    shape = f".reshape{a.shape}" if a.size == 0 else ""
    return f"m.tensor({_lit(a.tolist())}, dtype=m.{a.dtype}{rg}){shape}"


# ---------------------------------------------------------------------------------------------
# Comparing

EPS = {"float32": 1.2e-7, "float64": 2.3e-16, "complex64": 1.2e-7, "complex128": 2.3e-16,
       "float16": 1e-3, "bfloat16": 8e-3}  # fmt: skip
RTOL, ATOL = 2e4, 1e4  # in units of eps: chains of transcendental ops and second-order terms


def _to_np(v):
    if isinstance(v, torch.Tensor):
        if v.layout != torch.strided:
            v = v.to_dense()
        if torch._is_zerotensor(v):  # its numpy() raises (force=True can crash: session 26)
            return np.zeros(tuple(v.shape), str(v.dtype)[6:]), str(v.dtype)[6:]
        return v.detach().resolve_conj().resolve_neg().cpu().numpy(), str(v.dtype)[6:]
    if isinstance(v, descent.Tensor):
        return np.asarray(v.detach().numpy()), str(v.dtype).split(".")[-1]
    return v, None


# the epsilon of the least precise float dtype the program meets (a float32 step's last bit
# carries into a later float64 or complex128 result), set by compare
_EPS_FLOOR = [0.0]


def _close(d: np.ndarray, t: np.ndarray, dtype: str) -> str | None:
    if d.shape != t.shape:
        return f"shape {d.shape} vs {t.shape}"
    if d.size == 0 or dtype not in EPS:
        if not np.array_equal(d, t):
            return f"values {d.ravel()[:4]} vs {t.ravel()[:4]}"
        return None
    eps = max(EPS[dtype], _EPS_FLOOR[0])
    parts = [(d.real, t.real), (d.imag, t.imag)] if np.iscomplexobj(t) else [(d, t)]
    # a complex result's parts share one scale, its modulus (a rounding residue of a large
    # imaginary part may land in a real part near 0)
    with np.errstate(all="ignore"):
        mag = np.abs(t.astype(np.complex128) if np.iscomplexobj(t) else t.astype(np.float64))
    finite_mag = mag[np.isfinite(mag)]
    for dd, tt in parts:
        dd, tt = dd.astype(np.float64), tt.astype(np.float64)
        nan_d, nan_t = np.isnan(dd), np.isnan(tt)
        if (nan_d != nan_t).any():
            i = np.argwhere(nan_d != nan_t)[0]
            return f"nan at {tuple(i)}: {dd[tuple(i)]} vs {tt[tuple(i)]}"
        inf_t = np.isinf(tt)
        if (np.isinf(dd) != inf_t).any() or (dd[inf_t] != tt[inf_t]).any():
            i = np.argwhere((np.isinf(dd) != inf_t) | (np.isinf(tt) & (dd != tt)))[0]
            return f"inf at {tuple(i)}: {dd[tuple(i)]} vs {tt[tuple(i)]}"
        fin = ~(nan_t | inf_t)
        if not fin.any():
            continue
        scale = float(finite_mag.max()) if finite_mag.size else 0.0
        err = np.abs(dd[fin] - tt[fin])
        bad = err > RTOL * eps * mag[fin] + ATOL * eps * max(scale, 1.0)
        if bad.any():
            j = int(np.argmax(bad))
            return (f"values differ ({int(bad.sum())} of {bad.size}): {dd[fin][j]!r} vs "
                    f"{tt[fin][j]!r}")  # fmt: skip
    return None


def _compare_value(d, t, where: str) -> str | None:
    if isinstance(t, (tuple, list)):
        if not isinstance(d, (tuple, list)) or len(d) != len(t):
            return f"{where}: {type(d).__name__} vs {type(t).__name__} of {len(t)}"
        for k, (a, b) in enumerate(zip(d, t)):
            r = _compare_value(a, b, f"{where}[{k}]")
            if r:
                return r
        return None
    if t is None or d is None:
        return None if d is None and t is None else f"{where}: {d is None} None vs {t is None}"
    dn, ddt = _to_np(d)
    tn, tdt = _to_np(t)
    if isinstance(t, torch.Tensor):
        if not isinstance(d, descent.Tensor):
            return f"{where}: {type(d).__name__} vs Tensor"
        if ddt != tdt:
            return f"{where}: dtype {ddt} vs {tdt}"
        r = _close(dn, tn, tdt)
        return f"{where}: {r}" if r else None
    if isinstance(t, (bool, int, float, complex)):
        if isinstance(d, descent.Tensor):
            return f"{where}: Tensor vs {type(t).__name__}"
        if isinstance(t, float) and isinstance(d, float) and math.isnan(t) and math.isnan(d):
            return None
        if t != d and not (isinstance(t, float) and abs(t - d) <= 1e-12 * max(abs(t), 1.0)):
            return f"{where}: {d!r} vs {t!r}"
        return None
    if type(t).__name__ == "Size" or isinstance(t, str):
        return None if tuple(d) == tuple(t) or d == t else f"{where}: {d!r} vs {t!r}"
    return None


def compare(prog: Program) -> str | None:
    t = run("torch", prog.lines)
    d = run("descent", prog.lines)
    if t.error_line != d.error_line:
        if t.error_line is not None and d.error_line is None and (
                isinstance(t.error, NotImplementedError)
                or re.search(r"derivative for .* is not implemented", str(t.error))):  # fmt: skip
            return None  # PyTorch lacks it (a kernel, a double backward), descent computes
        te = f"{type(t.error).__name__}: {str(t.error)[:160]}" if t.error else "-"
        de = f"{type(d.error).__name__}: {str(d.error)[:160]}" if d.error else "-"
        return f"raises at line {d.error_line} vs {t.error_line} (descent {de} | torch {te})"
    if t.error is not None:
        tt, dt = type(t.error), type(d.error)
        if not issubclass(dt, tt) and dt.__name__.lstrip("_") != tt.__name__.lstrip("_"):
            return (f"exception class {dt.__name__} vs {tt.__name__} at line {t.error_line}: "
                    f"{str(d.error)[:120]} | {str(t.error)[:120]}")  # fmt: skip
    src = "\n".join(prog.lines)
    _EPS_FLOOR[0] = EPS["float32"] if ("float32" in src or "complex64" in src) else 0.0
    return _compare_value(d.out, t.out, "out")


def _signature(msg: str) -> str:
    """A mismatch's kind without its numbers (shrinking must keep it)."""
    return re.sub(r"[-+]?\d[\d.e+-]*|np\.\w+\(|\)", "", msg)[:80]


def shrink(prog: Program, msg: str, budget: int = 60) -> tuple[Program, str]:
    """Drop statements (from the end first) while the same kind of mismatch remains."""
    sig = _signature(msg)
    k = len(prog.lines) - 1
    while k >= 0 and budget > 0:
        trial = Program(prog.mode, prog.seed, prog.lines[:k] + prog.lines[k + 1 :])
        budget -= 1
        try:
            m = compare(trial)
        except Exception:  # noqa: BLE001 - a broken trial is not a reproducer
            m = None
        if m is not None and _signature(m) == sig:
            prog, msg = trial, m
        k -= 1
    return prog, msg


# ---------------------------------------------------------------------------------------------
# Values

EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-8, -1e-8, 30.0, -30.0, 1e3]
RARE_EDGES = [math.inf, -math.inf, math.nan, 1e300, 1e-300]


def _vals(rng, shape, dtype="float64", edges=0.3, positive=False) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    r = rng.random()
    if r < 0.25:
        v = rng.uniform(0.1, 2.0, n)
    elif r < 0.4:
        v = rng.integers(-2, 3, n) / rng.choice([1.0, 2.0])
    else:
        v = rng.standard_normal(n) * rng.choice([1.0, 0.5, 3.0])
    if rng.random() < edges:
        pick = rng.random(n) < 0.3
        pool = EDGES + (RARE_EDGES if rng.random() < 0.25 else [])
        v[pick] = rng.choice(pool, int(pick.sum()))
    if positive:
        v = np.abs(v) + 0.1
    if dtype.startswith("complex"):
        w = _vals(rng, shape, "float64", edges, positive).ravel()
        v = v + 1j * w
    with np.errstate(over="ignore"):
        return v.astype(dtype).reshape(shape)


def _shape(rng, max_nd=3, max_n=3, p0=0.05) -> tuple:
    nd = int(rng.integers(0, max_nd + 1))
    return tuple(int(rng.integers(0, max_n + 1)) if rng.random() < p0 else
                 int(rng.integers(1, max_n + 1)) for _ in range(nd))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# grad2: second-order gradients

# Not lgamma / digamma: PyTorch's trigamma is ~1e-10 relative off (the differential fuzz's known
# digamma-grad class), so every second derivative through them differs
U2 = ["sin", "cos", "tan", "tanh", "sigmoid", "exp", "expm1", "log", "log1p", "log2", "sqrt",
      "rsqrt", "abs", "neg", "square", "reciprocal", "sinh", "cosh", "asinh", "atan", "erf",
      "erfc", "erfinv", "asin", "acos", "atanh", "acosh", "sinc", "logit", "exp2", "log10", "i0",
      "relu", "trunc", "sgn", "deg2rad", "frac"]  # fmt: skip
A2 = ["softplus", "gelu", "silu", "mish", "elu", "celu", "selu", "logsigmoid", "softsign",
      "tanhshrink", "hardswish", "hardsigmoid", "leaky_relu", "relu6", "hardtanh", "softshrink",
      "hardshrink"]  # fmt: skip
B2 = ["mul", "div", "add", "sub", "pow", "atan2", "hypot", "maximum", "minimum", "xlogy",
      "logaddexp", "logaddexp2", "fmax", "fmin", "copysign", "lerp", "float_power"]  # fmt: skip


def _g2_step(rng, cur: str, t: torch.Tensor, other: str | None) -> str:
    r = rng.random()
    d = int(rng.integers(-t.dim(), t.dim())) if t.dim() else 0
    if r < 0.35:
        f = str(rng.choice(U2))
        return f"m.{f}({cur})" if f not in ("logit",) or rng.random() < 0.5 else \
            f"m.logit({cur}, eps=1e-6)"  # fmt: skip
    if r < 0.5:
        f = str(rng.choice(A2))
        if f == "gelu" and rng.random() < 0.5:
            return f"F.gelu({cur}, approximate='tanh')"
        if f == "softplus" and rng.random() < 0.5:
            return f"F.softplus({cur}, beta=2.0, threshold=1.0)"
        return f"F.{f}({cur})"
    if r < 0.72:
        f = str(rng.choice(B2))
        b = other if other and rng.random() < 0.6 else \
            str(rng.choice(["2.0", "0.5", "-1.0", "3", "0.0", cur]))  # fmt: skip
        if f == "pow" and rng.random() < 0.4:
            return f"({cur} ** {rng.choice(['2', '3', '0.5', '-1', '2.5', '0', '-2'])})"
        if f == "lerp":
            w = str(rng.choice(["0.3", b])) if b != cur else "0.3"
            return f"m.lerp({cur}, {b if b.startswith(('x', 'y', 'v')) else cur}, {w})"
        if f in (
            "atan2",
            "hypot",
            "maximum",
            "minimum",
            "logaddexp",
            "logaddexp2",
            "fmax",
            "fmin",
            "copysign",
        ) and not b.startswith(("x", "y", "v")):
            b = cur
        return f"m.{f}({cur}, {b})" if rng.random() < 0.7 else f"m.{f}({b}, {cur})" \
            if b.startswith(("x", "y", "v")) else f"m.{f}({cur}, {b})"  # fmt: skip
    if r < 0.9:
        opts = [f"{cur}.sum()", f"{cur}.mean({d})", f"{cur}.prod()", f"m.prod({cur}, {d})",
                f"m.logsumexp({cur}, {d})", f"m.softmax({cur}, {d})", f"m.log_softmax({cur}, {d})",
                f"m.cumsum({cur}, {d})", f"m.cumprod({cur}, {d})", f"m.logcumsumexp({cur}, {d})",
                f"m.norm({cur})", f"m.norm({cur}, p={rng.choice(['1', '3', 'math.inf', '0.5'])})",
                f"m.var({cur}, {d})", f"m.std({cur})", f"{cur}.amax({d})", f"{cur}.max()",
                f"m.clamp({cur}, -0.5, 1.0)", f"m.where({cur} > 0, {cur}, {cur} * {cur})",
                f"F.normalize({cur}, dim={d})", f"m.cummax({cur}, {d}).values",
                f"m.sort({cur}, {d}).values", f"F.layer_norm({cur}, {list(t.shape[-1:])})",
                f"{cur}.flip({d})", f"m.trace({cur})", f"m.diff({cur}, dim={d})"]  # fmt: skip
        return str(rng.choice(opts))
    if t.dim() == 2 and t.shape[0] == t.shape[1]:
        opts = [f"m.linalg.det({cur})", f"m.linalg.inv({cur})", f"({cur} @ {cur})",
                f"m.linalg.slogdet({cur}).logabsdet", f"m.linalg.matrix_norm({cur})",
                f"m.linalg.solve({cur}, {cur}.mT)", f"m.matrix_exp({cur})",
                f"m.linalg.cholesky({cur} @ {cur}.mT + m.eye({t.shape[0]}, dtype={cur}.dtype))",
                f"m.linalg.eigvalsh({cur} + {cur}.mT)", f"m.linalg.svdvals({cur})",
                f"m.linalg.pinv({cur})", f"m.linalg.qr({cur}).R"]  # fmt: skip
        return str(rng.choice(opts))
    if t.dim() >= 1:
        return f"({cur} @ {cur}.mT)" if t.dim() >= 2 else f"m.dot({cur}, {cur})"
    return f"({cur} * {cur})"


def gen_grad2(rng, seed) -> Program:
    dt = "float64" if rng.random() < 0.8 else "float32"
    shape = _shape(rng)
    if rng.random() < 0.2:
        n = int(rng.integers(1, 4))
        shape = (n, n)
    lines = [f"x = {tensor_src(_vals(rng, shape, dt), True)}"]
    leaves = ["x"]
    if rng.random() < 0.45:
        shp = shape if rng.random() < 0.6 else tuple(s if rng.random() < 0.6 else 1 for s in shape)
        lines.append(f"y = {tensor_src(_vals(rng, shp, dt), rng.random() < 0.8)}")
        leaves.append("y")
    env = _env("torch")
    for line in lines:
        exec(line, env)  # noqa: S102
    cur, n_steps = "x", int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    for k in range(n_steps):
        other = "y" if "y" in leaves and rng.random() < 0.5 else None
        src = _g2_step(rng, cur, env[cur], other)
        line = f"v{k + 1} = {src}"
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                exec(line, env)  # noqa: S102
        except Exception:  # noqa: BLE001 - PyTorch refuses: the program ends with it
            lines.append(line)
            return Program("grad2", seed, lines)
        lines.append(line)
        cur = f"v{k + 1}"
        if not isinstance(env[cur], torch.Tensor) or not env[cur].requires_grad:
            lines.append(f"out.append({cur})")
            return Program("grad2", seed, lines)
    t = env[cur]
    ins = "[" + ", ".join(v for v in leaves if env[v].requires_grad) + "]"
    ct = tensor_src(_vals(rng, tuple(t.shape), dt, edges=0.0))
    lines.append(f"out.append({cur})")
    r = rng.random()
    if r < 0.25:  # backward(create_graph=True) then the gradient of x.grad
        lines += [f"({cur} * {ct}).sum().backward(create_graph=True)",
                  "g = [x.grad]", "out.append(x.grad)"]  # fmt: skip
        ins2 = ins
    else:
        lines += [f"g = m.autograd.grad(({cur} * {ct}).sum(), {ins}, create_graph=True, "
                  "allow_unused=True)", "out.append(g)"]  # fmt: skip
        ins2 = ins
    w = [tensor_src(_vals(rng, tuple(env[v].shape), dt, edges=0.0)) for v in leaves
         if env[v].requires_grad]  # fmt: skip
    terms = " + ".join(f"(g[{i}] * {w[i]}).sum()" for i in range(len(w)) if i == 0 or r >= 0.25)
    # (v * 0): whether a first-order gradient that does not depend on x requires grad is
    # PyTorch's implementation detail (x ** 2's second derivative does, its sum's gradient not)
    lines.append(f"s = {terms} + ({cur} * 0).sum()")
    lines.append(f"h = m.autograd.grad(s, {ins2}, allow_unused=True, "
                 f"create_graph={bool(rng.random() < 0.2)})")  # fmt: skip
    lines.append("out.append(h)")
    if "create_graph=True)" in lines[-2]:
        lines.append(f"out.append(m.autograd.grad(h[0].sum() + ({cur} * 0).sum(), {ins2}, "
                     "allow_unused=True))")  # fmt: skip
    return Program("grad2", seed, lines)


# ---------------------------------------------------------------------------------------------
# complex

UC = ["abs", "angle", "exp", "log", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin",
      "acos", "atan", "asinh", "acosh", "atanh", "reciprocal", "rsqrt", "sigmoid", "conj",
      "conj_physical", "real", "imag", "sgn", "square", "log10", "log2", "expm1", "log1p", "neg",
      "exp2", "isnan", "isinf", "isfinite", "resolve_conj", "positive"]  # fmt: skip


def _fft_step(rng, cur, t) -> str:
    cplx = t.is_complex()
    nd = t.dim()
    if nd == 0:
        return f"m.view_as_real({cur})" if cplx else f"m.fft.fft({cur}[None])"
    d = int(rng.integers(-nd, nd))
    n = t.shape[d]
    nn_ = str(int(rng.choice([max(n, 1), max(n - 1, 1), n + 1, n + 2, 1])))
    nrm = str(rng.choice(["None", "'forward'", "'backward'", "'ortho'"]))
    f = str(rng.choice(["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2",
                        "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn", "fftshift",
                        "ifftshift", "hfft2", "ihfft2"]))  # fmt: skip
    if f in ("rfft", "ihfft", "rfft2", "rfftn", "ihfft2") and cplx:
        cur = f"{cur}.real" if rng.random() < 0.5 else f"{cur}.abs()"
    if f in ("fftshift", "ifftshift"):
        return f"m.fft.{f}({cur}, dim={d})" if rng.random() < 0.5 else f"m.fft.{f}({cur})"
    if f in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft"):
        nn_ = nn_ if rng.random() < 0.6 else "None"
        return f"m.fft.{f}({cur}, n={nn_}, dim={d}, norm={nrm})"
    if nd < 2 and f.endswith("2"):
        f = f[:-1] + "n"
    if f.endswith("2"):
        s = f"({int(rng.integers(1, 5))}, {int(rng.integers(1, 5))})" if rng.random() < 0.4 \
            else "None"  # fmt: skip
        return f"m.fft.{f}({cur}, s={s}, norm={nrm})"
    k = int(rng.integers(1, nd + 1))
    dims = tuple(int(i) for i in rng.choice(nd, k, replace=False))
    s = tuple(int(rng.integers(1, 5)) for _ in dims)
    r = rng.random()
    if r < 0.3:
        return f"m.fft.{f}({cur}, s={s}, dim={dims}, norm={nrm})"
    if r < 0.6:
        return f"m.fft.{f}({cur}, dim={dims}, norm={nrm})"
    return f"m.fft.{f}({cur})"


def _complex_step(rng, cur, t, other) -> str:
    r = rng.random()
    if r < 0.35:
        f = str(rng.choice(UC))
        if f in ("real", "imag") and not t.is_complex():
            f = "abs"
        return f"m.{f}({cur})" if rng.random() < 0.6 else f"{cur}.{f}()"
    if r < 0.55:
        b = other if other and rng.random() < 0.6 else str(rng.choice(
            ["2", "0.5", "1j", "complex(0.5, -2.0)", "-1", cur, "0"]))  # fmt: skip
        op = str(rng.choice(["*", "/", "+", "-", "**"]))
        if op == "**" and rng.random() < 0.6:
            b = str(rng.choice(["2", "0.5", "-1", "3", "1j", "0", "complex(0.5, 1.0)"]))
        return f"({cur} {op} {b})" if rng.random() < 0.7 else f"({b} {op} {cur})"
    if r < 0.75:
        return _fft_step(rng, cur, t)
    nd = t.dim()
    d = int(rng.integers(-nd, nd)) if nd else 0
    opts = [f"{cur}.sum()", f"{cur}.mean({d})", f"m.prod({cur}, {d})", f"m.cumsum({cur}, {d})",
            f"m.view_as_real({cur})" if t.is_complex() else f"m.polar({cur}.abs(), {cur})",
            f"m.linalg.vector_norm({cur})", f"m.linalg.vector_norm({cur}, ord=1, dim={d})",
            f"m.cumprod({cur}, {d})", f"{cur}.flip({d})", f"m.complex({cur}.real, {cur}.imag * 2)"
            if t.is_complex() else f"m.complex({cur}, -{cur})",
            f"m.where({cur}.abs() > 1, {cur}, 0.5 * {cur})", f"{cur}.mT" if nd >= 2 else cur,
            f"({cur} @ {cur}.mT)" if nd >= 2 else f"m.vdot({cur}, {cur})" if nd == 1
            else f"({cur} * {cur})", f"{cur}.to(m.complex128)", f"{cur}.to(m.complex64)",
            f"m.linalg.norm({cur})", f"m.sum({cur}, {d})", f"{cur}.conj().mul(2)"]  # fmt: skip
    return str(rng.choice(opts))


def gen_complex(rng, seed) -> Program:
    dt = "complex128" if rng.random() < 0.6 else "complex64"
    shape = _shape(rng, max_nd=3, max_n=4)
    lines = [f"x = {tensor_src(_vals(rng, shape, dt, edges=0.2), rng.random() < 0.85)}"]
    if rng.random() < 0.4:
        dt2 = dt if rng.random() < 0.6 else str(rng.choice(
            ["float32", "float64", "complex64", "complex128"]))  # fmt: skip
        shp = shape if rng.random() < 0.7 else tuple(s if rng.random() < 0.6 else 1 for s in shape)
        lines.append(f"y = {tensor_src(_vals(rng, shp, dt2, edges=0.2), rng.random() < 0.6)}")
    env = _env("torch")
    for line in lines:
        exec(line, env)  # noqa: S102
    cur = "x"
    for k in range(int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25]))):
        other = "y" if "y" in env and rng.random() < 0.5 else None
        line = f"v{k + 1} = {_complex_step(rng, cur, env[cur], other)}"
        lines.append(line)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                exec(line, env)  # noqa: S102
        except Exception:  # noqa: BLE001
            return Program("complex", seed, lines)
        cur = f"v{k + 1}"
        if not isinstance(env[cur], torch.Tensor) or env[cur].numel() > 2000:
            break
    t = env[cur]
    lines.append(f"out.append({cur})")
    if isinstance(t, torch.Tensor) and t.requires_grad:
        a = tensor_src(_vals(rng, tuple(t.shape), "float64", edges=0.0))
        b = tensor_src(_vals(rng, tuple(t.shape), "float64", edges=0.0))
        loss = f"(({cur}.real * {a}).sum() + ({cur}.imag * {b}).sum())" if t.is_complex() \
            else f"({cur} * {a}).sum()"  # fmt: skip
        ins = [v for v in ("x", "y") if v in env and env[v].requires_grad]
        lines.append(f"out.append(m.autograd.grad({loss}, [{', '.join(ins)}], "
                     "allow_unused=True))")  # fmt: skip
    return Program("complex", seed, lines)


# ---------------------------------------------------------------------------------------------
# nn: functional layers with random configurations


def _nn_program(rng) -> tuple[str, list]:
    """(dtype, lines defining x and the layer call `y = ...`); leaves named x, w, b."""
    dt = "float64" if rng.random() < 0.7 else "float32"
    kind = str(rng.choice(["conv", "convt", "maxpool", "avgpool", "lppool", "adaptive", "bn",
                           "ln", "gn", "in", "lrn", "interp", "pad", "fold", "pixel", "sdpa",
                           "embedding"],
                          p=[0.16, 0.09, 0.09, 0.08, 0.03, 0.06, 0.06, 0.04, 0.04, 0.04, 0.02,
                             0.08, 0.07, 0.04, 0.02, 0.05, 0.03]))  # fmt: skip
    bad = rng.random() < 0.08  # sometimes a configuration out of range
    nd = int(rng.choice([1, 2, 3], p=[0.35, 0.5, 0.15]))
    N = int(rng.choice([1, 2, 0], p=[0.6, 0.35, 0.05]))
    lines = []

    def leaf(name, shape, rg=True, positive=False):
        lines.append(f"{name} = {tensor_src(_vals(rng, shape, dt, 0.1, positive), rg)}")

    def sp():
        return [int(rng.integers(1, 6)) for _ in range(nd)]

    def tup(vals):
        return str(vals[0]) if len(set(vals)) == 1 and rng.random() < 0.5 else str(tuple(vals))

    batched = rng.random() < 0.85
    if kind in ("conv", "convt"):
        g = int(rng.choice([1, 1, 2, 3]))
        cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        size = sp()
        k = [int(rng.integers(1, s + 2)) if bad else int(rng.integers(1, s + 1)) for s in size]
        st = [int(rng.integers(1, 4)) for _ in size]
        dil = [int(rng.choice([1, 1, 2])) for _ in size]
        pad = [int(rng.integers(0, (kk * dd) // 2 + 1 + bad)) for kk, dd in zip(k, dil)]
        leaf("x", ([N] if batched else []) + [cin] + size)
        if kind == "conv":
            leaf("w", [cout, cin // g] + k)
            bias = rng.random() < 0.6
            if bias:
                leaf("b", [cout])
            p = tup(pad)
            if rng.random() < 0.15:
                p = "'same'" if rng.random() < 0.5 else "'valid'"
                st = [1] * nd if p == "'same'" and not bad else st
            lines.append(f"y = F.conv{nd}d(x, w, {'b' if bias else 'None'}, stride={tup(st)}, "
                         f"padding={p}, dilation={tup(dil)}, groups={g})")  # fmt: skip
        else:
            leaf("w", [cin, cout // g] + k)
            bias = rng.random() < 0.5
            if bias:
                leaf("b", [cout])
            op = [int(rng.integers(0, max(s, dd) + bad)) for s, dd in zip(st, dil)]
            if nd == 3:
                op = [0] * nd
            lines.append(f"y = F.conv_transpose{nd}d(x, w, {'b' if bias else 'None'}, "
                         f"stride={tup(st)}, padding={tup(pad)}, output_padding={tup(op)}, "
                         f"groups={g}, dilation={tup(dil)})")  # fmt: skip
    elif kind in ("maxpool", "avgpool", "lppool"):
        c = int(rng.integers(1, 3))
        size = sp()
        k = [int(rng.integers(1, s + 1 + bad)) for s in size]
        st = [int(rng.integers(1, 4)) for _ in size]
        pad = [int(rng.integers(0, kk // 2 + 1 + bad)) for kk in k]
        ceil = bool(rng.random() < 0.4)
        if kind == "lppool":
            nd = min(nd, 2)
            size, k, st = size[:nd], k[:nd], st[:nd]
        leaf("x", ([N] if batched else []) + [c] + size, positive=kind == "lppool")
        if kind == "maxpool":
            dil = [int(rng.choice([1, 1, 2])) for _ in size]
            pad = [min(p, (kk * dd) // 2 + bad) for p, kk, dd in zip(pad, k, dil)]
            ri = bool(rng.random() < 0.3)
            lines.append(
                f"y = F.max_pool{nd}d(x, {tup(k)}, stride={tup(st)}, padding={tup(pad)}, "
                f"dilation={tup(dil)}, ceil_mode={ceil}, return_indices={ri})"
            )
            if ri:
                lines.append("out.append(y[1])")
                lines.append("y = y[0]")
        elif kind == "avgpool":
            cip = bool(rng.random() < 0.6)
            dv = int(rng.integers(1, 4)) if rng.random() < 0.2 and nd > 1 else None
            extra = f", divisor_override={dv}" if dv else ""
            lines.append(
                f"y = F.avg_pool{nd}d(x, {tup(k)}, stride={tup(st)}, padding={tup(pad)}, "
                f"ceil_mode={ceil}, count_include_pad={cip}{extra})"
            )
        else:
            p = str(rng.choice(["1", "2", "3", "1.5"]))
            # (an int kernel in 1-d: PyTorch's lp_pool1d multiplies by kernel_size, a tuple
            # raises there: its bug, descent takes both)
            kk = str(k[0]) if nd == 1 else tup(k)
            lines.append(f"y = F.lp_pool{nd}d(x, {p}, {kk}, stride={tup(st)}, "
                         f"ceil_mode={ceil})")  # fmt: skip
    elif kind == "adaptive":
        nd = min(nd, 3)
        size = sp()
        outs = [int(rng.integers(1, s + 3)) for s in size]
        if rng.random() < 0.2:
            outs[0] = "None"
        f = str(rng.choice(["avg", "max"]))
        leaf("x", ([N] if batched else []) + [int(rng.integers(1, 3))] + size)
        ri = f == "max" and rng.random() < 0.3
        o = str(tuple(outs)).replace("'", "") if len(outs) > 1 else str(outs[0])
        lines.append(f"y = F.adaptive_{f}_pool{nd}d(x, {o}" + (", return_indices=True)" if ri
                                                               else ")"))  # fmt: skip
        if ri:
            lines += ["out.append(y[1])", "y = y[0]"]
    elif kind in ("bn", "in"):
        c = int(rng.integers(1, 4))
        # (N >= 1: PyTorch's instance_norm of an empty batch raises an IndexError from inside)
        shape = [max(N, 1), c] + sp()[: int(rng.integers(0, nd + 1))]
        if kind == "in" and len(shape) < 3:
            shape.append(int(rng.integers(1, 4)))
        leaf("x", shape)
        aff = rng.random() < 0.6
        if aff:
            leaf("w", [c])
            leaf("b", [c])
        training = bool(rng.random() < 0.6)
        stats = rng.random() < 0.7 or not training
        if stats:
            leaf("rm", [c], rg=False)
            leaf("rv", [c], rg=False, positive=True)
        mom = float(rng.choice([0.1, 0.0, 1.0, 0.5]))
        eps = float(rng.choice([1e-5, 1e-3, 0.0]))
        wa, ba = ("w", "b") if aff else ("None", "None")
        rs = ("rm", "rv") if stats else ("None", "None")
        if kind == "bn":
            lines.append(
                f"y = F.batch_norm(x, {rs[0]}, {rs[1]}, {wa}, {ba}, training={training}, "
                f"momentum={mom}, eps={eps})"
            )
        else:
            lines.append(
                f"y = F.instance_norm(x, {rs[0]}, {rs[1]}, {wa}, {ba}, "
                f"use_input_stats={training or not stats}, momentum={mom}, eps={eps})"
            )
        if stats:
            lines.append("out.append([rm, rv])")
    elif kind == "ln":
        shape = [int(rng.integers(1, 4)) for _ in range(int(rng.integers(1, 4)))]
        k = int(rng.integers(1, len(shape) + 1))
        leaf("x", shape)
        norm = shape[-k:]
        aff = rng.random() < 0.6
        if aff:
            leaf("w", norm)
            if rng.random() < 0.7:
                leaf("b", norm)
        wa = "w" if aff else "None"
        ba = "b" if aff and any(s.startswith("b = ") for s in lines) else "None"
        f = "layer_norm" if rng.random() < 0.7 else "rms_norm"
        eps = float(rng.choice([1e-5, 1e-2]))
        if f == "layer_norm":
            lines.append(f"y = F.layer_norm(x, {norm}, {wa}, {ba}, eps={eps})")
        else:
            lines.append(f"y = F.rms_norm(x, {norm}, {wa}, eps={eps})")
    elif kind == "gn":
        g = int(rng.integers(1, 4))
        c = g * int(rng.integers(1, 3)) + (1 if bad else 0)
        leaf("x", [max(N, 1), c] + sp()[: int(rng.integers(0, nd + 1))])
        aff = rng.random() < 0.6
        if aff:
            leaf("w", [c])
            leaf("b", [c])
        lines.append(
            f"y = F.group_norm(x, {g}, {'w' if aff else 'None'}, "
            f"{'b' if aff else 'None'}, eps={float(rng.choice([1e-5, 1e-2]))})"
        )
    elif kind == "lrn":
        leaf("x", [max(N, 1), int(rng.integers(1, 6))] + sp()[: int(rng.integers(0, 3))])
        lines.append(f"y = F.local_response_norm(x, {int(rng.integers(1, 5))}, "
                     f"alpha={float(rng.choice([1e-4, 0.5]))}, beta={rng.choice([0.75, 1.0])}, "
                     f"k={float(rng.choice([1.0, 2.0]))})")  # fmt: skip
    elif kind == "interp":
        size = sp()
        leaf("x", [max(N, 1), int(rng.integers(1, 3))] + size)
        modes = {1: ["nearest", "linear", "area", "nearest-exact"],
                 2: ["nearest", "bilinear", "bicubic", "area", "nearest-exact"],
                 3: ["nearest", "trilinear", "area", "nearest-exact"]}[nd]  # fmt: skip
        mode = str(rng.choice(modes))
        ac = "" if mode in ("nearest", "area", "nearest-exact") else \
            f", align_corners={bool(rng.random() < 0.5)}"  # fmt: skip
        if rng.random() < 0.5:
            s = [int(rng.integers(1, 8)) for _ in size]
            lines.append(f"y = F.interpolate(x, size={tup(s)}, mode='{mode}'{ac})")
        else:
            sf = [float(rng.choice([0.5, 1.5, 2.0, 0.7, 3.0])) for _ in size]
            rs = f", recompute_scale_factor={bool(rng.random() < 0.5)}" \
                if rng.random() < 0.3 else ""  # fmt: skip
            lines.append(f"y = F.interpolate(x, scale_factor={tup(sf)}, mode='{mode}'{ac}{rs})")
    elif kind == "pad":
        size = sp()
        leaf("x", [max(N, 1), int(rng.integers(1, 3))] + size)
        mode = str(rng.choice(["constant", "reflect", "replicate", "circular"]))
        k = int(rng.integers(1, nd + 1))
        pads = []
        for s in size[::-1][:k]:
            lim = s - 1 if mode == "reflect" else s
            lo = -s + 1 if mode == "constant" else 0
            pads += [int(rng.integers(min(lo, 0), lim + 1 + bad)) for _ in range(2)]
        val = f", value={float(rng.choice([0.0, 1.5, -2.0]))}" if mode == "constant" else ""
        lines.append(f"y = F.pad(x, {tuple(pads)}, mode='{mode}'{val})")
    elif kind == "fold":
        size = [int(rng.integers(1, 6)) for _ in range(2)]
        k = [int(rng.integers(1, s + 1)) for s in size]
        st = [int(rng.integers(1, 3)) for _ in size]
        dil = [int(rng.choice([1, 1, 2])) for _ in size]
        pad = [int(rng.integers(0, 2)) for _ in size]
        c = int(rng.integers(1, 3))
        leaf("x", [max(N, 1), c] + size)
        lines.append(f"y = F.unfold(x, {tup(k)}, dilation={tup(dil)}, padding={tup(pad)}, "
                     f"stride={tup(st)})")  # fmt: skip
        if rng.random() < 0.5:
            lines.append(f"y = F.fold(y, {tuple(size)}, {tup(k)}, dilation={tup(dil)}, "
                         f"padding={tup(pad)}, stride={tup(st)})")  # fmt: skip
    elif kind == "pixel":
        r = int(rng.integers(1, 4))
        if rng.random() < 0.5:
            leaf("x", [max(N, 1), r * r * int(rng.integers(1, 3)) + bad] + sp()[:1] * 2)
            lines.append(f"y = F.pixel_shuffle(x, {r})")
        else:
            h = r * int(rng.integers(1, 3))
            leaf("x", [max(N, 1), int(rng.integers(1, 3)), h, h + bad])
            lines.append(f"y = F.pixel_unshuffle(x, {r})")
    elif kind == "sdpa":
        L, S, E = (int(rng.integers(1, 5)) for _ in range(3))
        Ev = int(rng.integers(1, 4))
        b = [max(N, 1)] + ([int(rng.integers(1, 3))] if rng.random() < 0.5 else [])
        leaf("x", b + [L, E])
        leaf("w", b + [S, E])
        leaf("b", b + [S, Ev])
        r = rng.random()
        extra = ""
        if r < 0.3:
            extra = ", is_causal=True"
        elif r < 0.5:
            leaf("mask", [L, S], rg=False)
            lines[-1] = lines[-1].replace("mask = m.tensor(", "mask = 0 < m.tensor(", 1)
            extra = ", attn_mask=mask"
        elif r < 0.65:
            leaf("mask", [L, S], rg=False)
            extra = ", attn_mask=mask"
        if rng.random() < 0.3:
            extra += f", scale={float(rng.choice([0.1, 1.0, 2.0]))}"
        lines.append(f"y = F.scaled_dot_product_attention(x, w, b{extra})")
    else:  # embedding
        n, d = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        leaf("w", [n, d])
        idx = rng.integers(0, n + bad, size=tuple(int(rng.integers(0, 4)) for _ in
                                                  range(int(rng.integers(1, 3)))))  # fmt: skip
        pi = f", padding_idx={int(rng.integers(-n, n))}" if rng.random() < 0.4 else ""
        mn = f", max_norm={float(rng.choice([0.5, 1.0]))}" if rng.random() < 0.2 else ""
        lines.append(f"x = m.tensor({idx.tolist()}, dtype=m.int64)")
        lines.append(f"y = F.embedding(x, w{pi}{mn})")
        if mn:
            lines.append("out.append(w.detach().clone())")
    return dt, lines


def gen_nn(rng, seed) -> Program:
    dt, lines = _nn_program(rng)
    env = _env("torch")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for line in lines:
                exec(line, env)  # noqa: S102
    except Exception:  # noqa: BLE001 - a configuration PyTorch refuses: compared as is
        return Program("nn", seed, lines)
    y = env["y"]
    lines.append("out.append(y)")
    if isinstance(y, torch.Tensor) and y.requires_grad and y.is_floating_point():
        ct = tensor_src(_vals(rng, tuple(y.shape), dt, edges=0.0))
        leaves = [n for n in ("x", "w", "b") if n in env and isinstance(env[n], torch.Tensor)
                  and env[n].requires_grad]  # fmt: skip
        cg = rng.random() < 0.15
        lines.append(f"g = m.autograd.grad((y * {ct}).sum(), [{', '.join(leaves)}], "
                     f"allow_unused=True, create_graph={cg})")  # fmt: skip
        lines.append("out.append(g)")
        if cg:
            # (y * 0) keeps s in the graph: PyTorch's first-order gradient of a linear op
            # (avg_pool, interpolate) requires grad (its backward kernel takes x), descent's not
            lines.append("s = sum((gi.square().sum() for gi in g if gi is not None and "
                         "gi.requires_grad), (y * 0).sum())")  # fmt: skip
            lines.append(f"out.append(m.autograd.grad(s, [{', '.join(leaves)}], "
                         "allow_unused=True))")  # fmt: skip
    return Program("nn", seed, lines)


# ---------------------------------------------------------------------------------------------
# func: torch.func transforms

FU = ["m.sin({})", "m.exp({})", "m.tanh({})", "({} * {})", "({} ** 3)", "m.log1p({}.abs())",
      "F.softplus({})", "m.sigmoid({})", "({}.cos() * 2.0)", "m.clamp({}, -1.0, 1.0)",
      "m.where({} > 0, {}, -{})", "F.gelu({})", "m.sqrt({}.abs() + 1.0)", "m.atan({})"]  # fmt: skip


def _expr(rng, a: str, b: str | None, depth: int) -> str:
    e = a
    for _ in range(depth):
        t = str(rng.choice(FU))
        e = t.format(*([e] * t.count("{}")))
        if b is not None and rng.random() < 0.4:
            e = f"({e} {rng.choice(['*', '+', '-'])} {b})"
    return e


def gen_func(rng, seed) -> Program:
    dt = "float64" if rng.random() < 0.85 else "float32"
    n = int(rng.integers(1, 4))
    B = int(rng.integers(1, 4))
    two = rng.random() < 0.5
    body = _expr(rng, "a", "b" if two else None, int(rng.integers(1, 4)))
    red = str(rng.choice([".sum()", ".mean()", ".square().sum()", ".prod()", ".amax()"]))
    args = "a, b" if two else "a"
    lines = ["tf = m.func"]
    lines.append(f"def f(a{', b' if two else ''}): return {body}")
    lines.append(f"def fs({args}): return ({body}){red}")
    lines.append(f"def fa({args}): return ({body}){red}, ({body}).detach()")
    xs = _vals(rng, (n,), dt, edges=0.15)
    xb = _vals(rng, (B, n), dt, edges=0.15)
    lines.append(f"x = {tensor_src(xs)}")
    lines.append(f"xb = {tensor_src(xb)}")
    lines.append(f"v = {tensor_src(_vals(rng, (n,), dt, edges=0.0))}")
    if two:
        lines.append(f"y = {tensor_src(_vals(rng, (n,), dt, edges=0.15))}")
        lines.append(f"yb = {tensor_src(_vals(rng, (B, n), dt, edges=0.15))}")
    call = "x, y" if two else "x"
    r = str(rng.choice(["grad", "grad_argnums", "grad_aux", "grad_and_value", "vmap", "vmap_dims",
                        "jacrev", "jacfwd", "hessian", "jvp", "vjp", "vmap_grad", "grad_grad",
                        "jacrev_jacrev", "vmap_vmap", "vmap_jacrev", "linearize"]))  # fmt: skip
    if r == "grad":
        lines.append(f"out.append(tf.grad(fs)({call}))")
    elif r == "grad_argnums":
        an = "(0, 1)" if two and rng.random() < 0.6 else str(int(rng.integers(0, 2 if two else 1)))
        lines.append(f"out.append(tf.grad(fs, argnums={an})({call}))")
    elif r == "grad_aux":
        lines.append(f"out.append(tf.grad(fa, has_aux=True)({call}))")
    elif r == "grad_and_value":
        lines.append(f"out.append(tf.grad_and_value(fs)({call}))")
    elif r == "vmap":
        lines.append(f"out.append(tf.vmap(f)({'xb, yb' if two else 'xb'}))")
    elif r == "vmap_dims":
        od = int(rng.integers(0, 2))
        if two:
            ind, a = [("(0, None)", "xb, y"), ("(None, 0)", "x, yb"), ("(1, 0)", "xb.mT, yb"),
                      ("(0, 1)", "xb, yb.mT")][int(rng.integers(0, 4))]  # fmt: skip
            lines.append(f"out.append(tf.vmap(f, in_dims={ind}, out_dims={od})({a}))")
        else:
            lines.append(f"out.append(tf.vmap(f, in_dims=1, out_dims={od})(xb.mT))")
    elif r == "jacrev":
        lines.append(f"out.append(tf.jacrev(f)({call}))")
    elif r == "jacfwd":
        lines.append(f"out.append(tf.jacfwd(f)({call}))")
    elif r == "hessian":
        lines.append(f"out.append(tf.hessian(fs)({call}))")
    elif r == "jvp":
        tang = "(v, v)" if two else "(v,)"
        lines.append(f"out.append(tf.jvp(f, ({call},), {tang}))")
    elif r == "vjp":
        lines.append(f"o, fn = tf.vjp(f, {call})")
        lines.append("out.append([o, fn(v)])")
    elif r == "vmap_grad":
        lines.append(f"out.append(tf.vmap(tf.grad(fs))({'xb, yb' if two else 'xb'}))")
    elif r == "grad_grad":
        lines.append("def g0(s): return fs(s * x" + (", y)" if two else ")"))
        lines.append("out.append(tf.grad(tf.grad(g0))(m.tensor(1.0, dtype=x.dtype)))")
    elif r == "jacrev_jacrev":
        lines.append(f"out.append(tf.jacrev(tf.jacrev(fs))({call}))")
    elif r == "vmap_vmap":
        a = "xb[None], yb[None]" if two else "xb[None]"
        lines.append(f"out.append(tf.vmap(tf.vmap(f))({a}))")
    elif r == "vmap_jacrev":
        lines.append(f"out.append(tf.vmap(tf.jacrev(f))({'xb, yb' if two else 'xb'}))")
    else:
        lines.append(f"o, jf = tf.linearize(f, {call})")
        lines.append(f"out.append([o, jf({'v, v' if two else 'v'})])")
    return Program("func", seed, lines)


# ---------------------------------------------------------------------------------------------
# index: integer, bool and float tensors through scatter / gather / index_* / take / masked_* /
# bincount / searchsorted / bucketize / unique and the reductions, with negative, out-of-range
# and empty indices, 0-d and empty tensors, and gradients of the float operands (session 29)

INT_DTYPES = ["int8", "uint8", "int16", "int32", "int64", "bool"]


def _ivals(rng, shape, dtype) -> np.ndarray:
    """Values of an integer / bool / float dtype, with the dtype's extremes now and then."""
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == "bool":
        return (rng.random(n) < 0.5).reshape(shape)
    if dtype.startswith("float"):
        return _vals(rng, shape, dtype, edges=0.2)
    info = np.iinfo(dtype)
    v = rng.integers(max(info.min, -5), min(info.max, 6), n)
    if rng.random() < 0.2:
        pick = rng.random(n) < 0.3
        v[pick] = rng.choice([info.min, info.max, 0, 1], int(pick.sum()))
    return v.astype(dtype).reshape(shape)


def _idx(rng, size: int, k: int, unique=False, negative=True, bad=0.08) -> list:
    """k indices into a dimension of `size`: negative ones (where the op wraps them) and, with
    probability `bad`, one out of range (both libraries must refuse)."""
    if size == 0:
        return [0] * k if rng.random() < bad else []
    if unique:
        v = list(rng.permutation(size)[: min(k, size)])
    else:
        v = list(rng.integers(0, size, k))
    if negative:
        v = [int(i) - size if rng.random() < 0.3 else int(i) for i in v]
    if v and rng.random() < bad:
        v[int(rng.integers(0, len(v)))] = int(rng.choice([size, -size - 1, 2 * size + 1]))
    return [int(i) for i in v]


def _idx_tensor(rng, shape, size, **kw) -> str:
    n = int(np.prod(shape, dtype=np.int64))
    a = np.array(_idx(rng, size, n, **kw), dtype=np.int64)
    if a.size != n:  # (unique picks fewer than asked): pad with repeats of the first
        a = np.resize(a, n) if a.size else np.zeros(n, np.int64)
    return tensor_src(a.reshape(shape))


def _index_program(rng) -> list:
    dt = str(rng.choice(INT_DTYPES + ["float32", "float64", "float64"]))
    fl = dt.startswith("float")
    rg = fl and rng.random() < 0.6
    shape = _shape(rng, max_nd=3, max_n=4, p0=0.08)
    if not shape and rng.random() < 0.7:
        shape = (int(rng.integers(1, 5)),)
    x = _ivals(rng, shape, dt)
    lines = [f"x = {tensor_src(x, rg)}"]
    nd = len(shape)
    d = int(rng.integers(-nd, nd)) if nd else 0
    size = shape[d] if nd else 1
    op = str(rng.choice([
        "scatter", "scatter_value", "scatter_add", "scatter_reduce", "gather", "index_select",
        "index_add", "index_copy", "index_fill", "index_put", "take", "take_along_dim",
        "masked_scatter", "masked_select", "bincount", "searchsorted", "bucketize", "unique",
        "unique_consecutive", "reduce", "reduce", "getitem", "setitem"]))  # fmt: skip
    src_needed = op in ("scatter", "scatter_add", "scatter_reduce", "index_add", "index_copy",
                        "index_put", "masked_scatter")  # fmt: skip
    if src_needed:
        lines.append(f"s = {tensor_src(_ivals(rng, shape, dt), rg and rng.random() < 0.5)}")
    out = None
    if op in ("scatter", "scatter_value", "scatter_add", "scatter_reduce", "gather"):
        # index no larger than x along every dim (and than s), its values along d
        ishape = tuple(int(rng.integers(0, n + 1)) if rng.random() < 0.7 else n for n in shape)
        uniq = op in ("scatter", "scatter_value")  # (duplicates: PyTorch's order is undefined)
        if uniq and nd:
            k = ishape[d] if ishape else 1
            perm = [np.array(_idx(rng, size, k, unique=True, negative=False))
                    for _ in range(int(np.prod(ishape, dtype=np.int64)) // max(k, 1))]  # fmt: skip
            a = (np.concatenate(perm) if perm else np.zeros(0, np.int64)).astype(np.int64)
            if a.size != int(np.prod(ishape, dtype=np.int64)):
                a = np.zeros(ishape, np.int64)
            a = np.moveaxis(a.reshape(ishape[:d % nd] + ishape[d % nd + 1:] + (k,)), -1, d)
            if a.size and rng.random() < 0.08:
                a.flat[0] = size
            idx = tensor_src(np.ascontiguousarray(a))
        else:
            idx = _idx_tensor(rng, ishape, size, negative=False)
        lines.append(f"i = {idx}")
        if op == "scatter":
            red = str(rng.choice(["", "", ", reduce='add'", ", reduce='multiply'"]))
            out = f"m.scatter(x, {d}, i, s{red})"
        elif op == "scatter_value":
            v = str(rng.choice(["2", "-1", "0", "1.5", "True"])) if not fl else "2.5"
            out = f"x.scatter({d}, i, {v})"
        elif op == "scatter_add":
            out = f"m.scatter_add(x, {d}, i, s)"
        elif op == "scatter_reduce":
            red = str(rng.choice(["sum", "prod", "mean", "amax", "amin"]))
            inc = bool(rng.random() < 0.5)
            out = f"m.scatter_reduce(x, {d}, i, s, '{red}', include_self={inc})"
        else:
            out = f"m.gather(x, {d}, i)"
    elif op in ("index_select", "index_add", "index_copy", "index_fill"):
        k = int(rng.integers(0, 4))
        uniq = op == "index_copy"
        lines.append(f"i = {tensor_src(np.array(_idx(rng, size, k, unique=uniq), np.int64))}")
        if op == "index_select":
            out = f"m.index_select(x, {d}, i)"
        elif op == "index_fill":
            out = f"x.index_fill({d}, i, {'-2' if not fl else '0.5'})"
        else:
            # the source: x's shape with i's length along d
            lines.append(f"s = s.narrow({d}, 0, min(i.numel(), s.shape[{d}]))" if nd else
                         "s = s")  # fmt: skip
            if op == "index_add":
                alpha = str(rng.choice(["1", "2", "-1"])) if not fl else "0.5"
                out = f"x.index_add({d}, i, s, alpha={alpha})"
            else:
                out = f"x.index_copy({d}, i, s)"
    elif op == "index_put":
        acc = bool(rng.random() < 0.5)
        k = int(rng.integers(0, 4))
        lines.append(f"i = {tensor_src(np.array(_idx(rng, size, k, unique=not acc), np.int64))}")
        lines.append("v = s.flatten()[:1].reshape(()) if s.numel() else s.sum()")
        out = f"x.index_put((i,), v, accumulate={acc})" if d in (0, -nd) or nd == 1 else \
            f"x.index_put((i,), v, accumulate={acc})"  # fmt: skip
    elif op == "take":
        n = int(np.prod(shape, dtype=np.int64))
        ishape = _shape(rng, max_nd=2, max_n=3)
        lines.append(f"i = {_idx_tensor(rng, ishape, n)}")
        out = "m.take(x, i)"
    elif op == "take_along_dim":
        ishape = tuple(1 if rng.random() < 0.3 else n for n in shape)
        lines.append(f"i = {_idx_tensor(rng, ishape, size)}")
        out = f"m.take_along_dim(x, i, dim={d})" if nd else "m.take_along_dim(x, i)"
    elif op in ("masked_scatter", "masked_select"):
        mask = rng.random(shape) < 0.5
        lines.append(f"k = {tensor_src(np.asarray(mask))}")
        out = "x.masked_scatter(k, s)" if op == "masked_scatter" else "m.masked_select(x, k)"
    elif op == "bincount":
        n = int(rng.integers(0, 7))
        a = rng.integers(0, 6, n)
        if n and rng.random() < 0.08:
            a[0] = -1
        it = str(rng.choice(["int64", "int32", "uint8", "int16"]))
        lines.append(f"b = {tensor_src(a.astype(it))}")
        w = ""
        if rng.random() < 0.4:
            wdt = str(rng.choice(["float32", "float64"]))
            lines.append(f"w = {tensor_src(_vals(rng, (n,), wdt))}")
            w = ", weights=w"
        out = f"m.bincount(b{w}, minlength={int(rng.integers(0, 8))})"
    elif op in ("searchsorted", "bucketize"):
        bdt = dt if dt != "bool" else "int64"
        bnd = np.sort(_ivals(rng, (int(rng.integers(0, 6)),), bdt))
        lines.append(f"bd = {tensor_src(bnd)}")
        right = bool(rng.random() < 0.5)
        o32 = bool(rng.random() < 0.3)
        if op == "searchsorted":
            out = f"m.searchsorted(bd, x, right={right}, out_int32={o32})" if nd <= 1 else \
                f"m.searchsorted(bd, x.flatten(), right={right}, out_int32={o32})"  # fmt: skip
        else:
            out = f"m.bucketize(x, bd, right={right}, out_int32={o32})"
    elif op in ("unique", "unique_consecutive"):
        inv = bool(rng.random() < 0.5)
        cnt = bool(rng.random() < 0.5)
        dim = f", dim={d}" if nd and rng.random() < 0.3 else ""
        if op == "unique":
            out = f"m.unique(x, sorted=True, return_inverse={inv}, return_counts={cnt}{dim})"
        else:
            out = f"m.unique_consecutive(x, return_inverse={inv}, return_counts={cnt}{dim})"
    elif op == "getitem":
        k = int(rng.integers(0, 4))
        lines.append(f"i = {tensor_src(np.array(_idx(rng, size, k), np.int64))}")
        out = str(rng.choice(["x[i]" if d in (0, -nd) else "x[..., i]" if d == -1 else "x[i]",
                              "x[x > 0]" if dt != "bool" else "x[x]", "x[None, ..., 0]"
                              if nd else "x[None]"]))  # fmt: skip
    elif op == "setitem":
        k = int(rng.integers(0, 4))
        lines.append(f"i = {tensor_src(np.array(_idx(rng, size, k, unique=True), np.int64))}")
        v = str(rng.choice(["1", "-3", "0", "True", "2.5", "300"]))
        lines.append("y = x.detach().clone()")
        lines.append(f"y[i] = {v}" if d in (0, -nd) or nd <= 1 else f"y[..., i] = {v}")
        lines.append("out.append(y)")
        return lines
    else:  # reductions and scans of every dtype, with dim / keepdim / dtype=
        f = str(rng.choice(["sum", "prod", "cumsum", "cumprod", "amax", "amin", "argmax",
                            "argmin", "max", "min", "all", "any", "count_nonzero", "mean",
                            "nansum", "logsumexp", "std", "median", "mode", "cummax",
                            "cummin", "sort", "argsort", "topk", "kthvalue", "msort"]))  # fmt: skip
        kd = bool(rng.random() < 0.3)
        has_dim = nd and rng.random() < 0.7
        if f in ("cumsum", "cumprod", "cummax", "cummin", "logsumexp") and not has_dim:
            has_dim = True
        dim = f"{d}" if nd else "0"
        if f in ("sum", "prod", "cumsum", "cumprod", "nansum") and rng.random() < 0.3:
            ddt = str(rng.choice(["int64", "float64", "int32", "float32", "bool", "uint8"]))
            extra = f", dtype=m.{ddt}"
        else:
            extra = ""
        if f in ("sum", "amax", "amin", "mean", "nansum", "count_nonzero", "all", "any",
                 "logsumexp", "std"):  # fmt: skip
            kw = f"{dim}, keepdim={kd}" if has_dim and f != "count_nonzero" else \
                (f"{dim}" if has_dim else "")  # fmt: skip
            if f == "count_nonzero":
                kw = dim if has_dim else ""
            out = f"m.{f}(x{', ' if kw else ''}{kw}{extra})"
        elif f in ("prod", "argmax", "argmin", "max", "min", "median", "mode", "kthvalue"):
            if f == "kthvalue":
                out = f"m.kthvalue(x, 1, {dim}, keepdim={kd})"
            elif has_dim:
                out = f"m.{f}(x, {dim}, keepdim={kd}{extra})"
            else:
                out = f"m.{f}(x{extra})"
        elif f in ("cumsum", "cumprod", "cummax", "cummin"):
            out = f"m.{f}(x, {dim}{extra})"
        elif f == "topk":
            out = f"m.topk(x, {int(rng.integers(0, 3))}, {dim}, largest={bool(rng.random() < 0.5)})"
        elif f in ("sort", "argsort"):
            out = f"m.{f}(x, dim={dim}, descending={bool(rng.random() < 0.5)}, stable=True)"
        else:
            out = "m.msort(x)"
    lines.append(f"r = {out}")
    lines.append("out.append(r)")
    if rg:
        leaves = "[x, s]" if src_needed and "requires_grad=True" in lines[1] else "[x]"
        lines.append("rr = r[0] if isinstance(r, tuple) else r")
        lines.append(
            "out.append(m.autograd.grad((rr * m.arange(rr.numel(), dtype=rr.dtype)"
            f".reshape(rr.shape)).sum(), {leaves}, allow_unused=True) if rr.requires_grad "
            "else None)"
        )
    return lines


def gen_index(rng, seed) -> Program:
    return Program("index", seed, _index_program(rng))


MODES = {"grad2": gen_grad2, "complex": gen_complex, "nn": gen_nn, "func": gen_func,
         "index": gen_index}  # fmt: skip

# Known mismatches: (mode, program seed) -> reason (tests/test_fuzz_s28.py runs each as an
# xfail, strict unless the outcome depends on the CPU's kernels: NOT_STRICT)
KNOWN: dict[tuple, str] = {
    ("complex", 197): "PyTorch's side, a signed zero on sqrt's branch cut: neg(x).conj().mul(2) "
    "of x = 1 + 0j is -2 + 0j in descent and -2 - 0j in PyTorch, whose lazy conjugate computes "
    "conj(neg(x) * conj(2)), so sqrt gives +1.414j and -1.414j",
    ("func", 663): "float32 cos((exp(a) ** 3) * 2) at a = 4.6 (an argument near 1e6): the "
    "last bits of float32 exp and pow, amplified by cos",
    ("complex", 29666584): "float32 where(|exp2(iy)| > 1, ...) at y = 0.224: |exp2(iy)| is 1 "
    "exactly, the computed modulus is 1 + 1 ulp in descent and 1 in PyTorch (the last bit of "
    "float32 exp / cos / sin), so the `> 1` test picks the other branch (session 30, "
    "helper-229)",
    ("complex", 30636219): "float32 reciprocal of rfft2 bins that are 0 exactly (the real "
    "part of an fft along the other dim): the rounding residues differ (descent 9.5e-7, "
    "PyTorch 1.9e-6: pocketfft vs MKL's order of sums) and 1 / residue doubles (session 30, "
    "helper-229)",
}
NOT_STRICT = {("func", 663), ("complex", 29666584), ("complex", 30636219)}


# Classes of mismatch with a known cause, matched on the message and the program's source:
# (mode, message regex, source regex, reason). Counted apart by the runs, not reported as new.
KNOWN_CLASSES: list[tuple[str, str, str, str]] = [
    (
        "nn",
        r"torch RuntimeError: adaptive_avg_pool[23]d_backward\(\): Expected grad_output to "
        r"have non-zero size",
        "",
        "PyTorch's area interpolation / adaptive average pooling to an empty output returns an "
        "empty tensor but its backward refuses the empty gradient; descent gives zeros",
    ),
    (
        "nn",
        r"raises at line \d+ vs (?:None|\d+) \(descent DescentError: conv_transpose[123]d: "
        r"input .* gives an empty output",
        "",
        "PyTorch's grouped transposed convolution returns an empty tensor where the output size "
        "is 0, its ungrouped one raises 'Output size is too small'; descent raises for both "
        "(PyTorch's own second order then refuses the empty gradient: 'Only zero batch or zero "
        "channel inputs are supported', session 30)",
    ),
    (
        "nn",
        r"nan at",
        r"math\.(?:inf|nan)(?:.*\n)*y = F\.(?:conv|interpolate)",
        "an input or weight with inf / nan: descent's im2col products multiply the padding's "
        "zeros by it, in the forward and in the gradients; which PyTorch kernel runs decides "
        "whether its padding taps are formed (its conv1d with padding gives 0 * inf = nan as "
        "descent, its grouped / dilated / 3-d ones skip them), so matching means modelling "
        "its kernel choice and reading per-output taps on the fast path: KNOWN (session 28, "
        "helper-212, who fixed the two descent-made cases: stride-1 conv_transpose's padded "
        "convolution, and interpolate's dimensions of unchanged size; float32 interpolate "
        "still differs where PyTorch's float32 source index rounds off 0 (3.5 / 7 - 0.5 = "
        "6e-8, a weight of 6e-8 not 0 on an inf), descent's is computed in float64)",
    ),
    (
        "nn",
        r"raises at line \d+ vs None \(descent DescentError: conv_transpose[123]d: "
        r"output_padding",
        r"reshape\(0,",
        "PyTorch's transposed convolution of an empty batch returns before checking "
        "output_padding against stride and dilation; descent checks first",
    ),
    (
        "nn",
        r"vs nan",
        r"(?=(?:.*\n)*.*math\.(?:inf|nan))(?=(?:.*\n)*.*float32)(?:.*\n)*"
        r"y = F\.scaled_dot_product_attention\(.*is_causal=True",
        "descent-side, KNOWN (session 28, helper-212): float32 causal attention's fused softmax "
        "(kernels/_cpu_jit.softmax_fwd32, CuPy's softmax kernel) never reads the scores above "
        "the diagonal, so an infinite / nan score there leaves its row finite; PyTorch adds "
        "the -inf bias (inf + -inf = nan). Reading the masked half of every score matrix to "
        "find one would cost the training path; float64 (the bias added) matches",
    ),
    (
        "complex",
        r"torch RuntimeError: (?:view_as_real doesn't work on unresolved conjugated|MKL FFT "
        r"error: Intel oneMKL DFTI ERROR: Inconsistent configuration)",
        "",
        "only PyTorch raises: view_as_real of its lazy conjugate (descent has no conjugate bit: "
        "a superset), and MKL's DFTI refusing a configuration of an n-d fft with s (its bug)",
    ),
    (
        "complex",
        r"nan at|inf at|values differ|values \[",
        r"math\.(?:inf|nan)|e\+300|1000\.0(?=[\s\S]*\b(?:sinh|cosh|exp|cos|sin|tan|tanh|sigmoid)\()",
        "non-finite complex values (inf / nan parts, 1e300 cast to complex64, sinh / cosh / exp "
        "/ cos / sigmoid ... of 1000 (i) overflowing) through an fft or "
        "complex arithmetic: which outputs and gradients come out nan, inf or a number depends "
        "on the FFT algorithm (PyTorch's MKL / pocketfft vs NumPy's pocketfft) and on C99's "
        "complex rules; classified, not triaged one by one (session 28)",
    ),
    (
        "complex",
        r"nan at|inf at|values differ",
        r"\b(?:acos|asin|acosh|asinh|atanh|atan|rsqrt|sqrt|log|log2|log10|log1p|angle|sgn)\(|"
        r"\*\* (?:-?\d+\.\d+|-?\d*\.?\d*j|complex\()",
        "a complex function with a branch cut or branch point (sqrt, log, pow to a fractional "
        "or complex exponent, the inverse "
        "trigonometric and hyperbolic functions, angle, sgn at 0): a signed zero picks the side "
        "of the cut (PyTorch's lazy conjugate and neg keep -0.0 where NumPy's arithmetic gives "
        "+0.0), and near a branch point (asin(x / x) at 1) the last bit is amplified; spot-"
        "checked, not triaged one by one (session 28)",
    ),
    (
        "complex",
        r"raises at line None vs \d+ \(descent - \| torch RuntimeError: Tensor must have a last "
        r"dimension with stride 1\)",
        r"reshape\((?:\d+, )*0[,)](?:.*\n)*.*view_as_real",
        "a PyTorch bug: view_as_real's backward calls view_as_complex on the gradient, whose "
        "stride check refuses an empty gradient's layout (nothing to view); descent gives the "
        "empty gradient (session 29)",
    ),
    (
        "complex",
        r"nan at \(.*\): -?0\.0 vs nan$",
        r"\(0 \*\* ",
        "PyTorch's pow_backward_exponent for a zero base masks only the exponents that are real "
        "and >= 0 (where(imag(z) == 0 & real(z) >= 0, 0, result * log(0))), so its gradient of "
        "0 ** z for a complex z is 0 * (-inf) = nan; for Re z > 0, 0 ** z is 0 and the limit of "
        "its derivative c ** z log(c) as c -> 0 is 0, descent's (session 29)",
    ),
    (
        "complex",
        r"nan at \(.*\): (?:-?inf vs nan|nan vs -?inf)$",
        r" / ",
        "complex division by zero is a complex infinity (C99 Annex G: a part infinite), its "
        "other part inf or nan by formula: NumPy's and PyTorch's scalar c10::complex divide each "
        "part by 0, PyTorch's vectorized AVX division scales by 1 / max(|c|, |d|) = inf (nan + nan "
        "i), its Scalar / Tensor multiplies by a reciprocal, its sub is add with alpha = -1 + 0i "
        "(-1 * inf + 0 * inf = nan); a later complex product (no C99 recovery in NumPy or "
        "PyTorch's vector loops) turns parts inf or nan by the order of its terms (session 29)",
    ),
    (
        "complex",
        r"nan at \(.*\): \S+ vs nan$|^out\[\d+\]: values \[False\] vs \[ True\]$",
        r"\((?:complex\([^()]*\)|-?\d+(?:\.\d+)?j?) - v\d\)",
        "PyTorch's sub and rsub are add with alpha, computed as a complex product: c - r for a "
        "real r with a nan or inf promoted to complex is c + (-1 + 0i)(r + 0i), whose imaginary "
        "part is nan (0 * nan); descent's c - r keeps Im(c) (session 29)",
    ),
    (
        "complex",
        r"nan at \(.*\): -?0\.0 vs nan$",
        r"\bsigmoid\(",
        "PyTorch's complex sigmoid is 1 / (1 + exp(-z)) as written: for Re z below about -709 "
        "(float64; -88 float32) exp(-z) overflows to an infinity with a signed part and the "
        "division gives nan + nan i, where the value is e^z ~ 0 (sigmoid(-1000 + 1000j): "
        "PyTorch nan, also its scalar path and NumPy's naive formula); descent splits by the "
        "sign of Re z as for real inputs (e / (1 + e), e = exp(z)) and gives the 0, also for "
        "the complex infinities of x / 0 (C99: 1 / (inf + nan i) is 0) (session 30, helper-229)",
    ),
    (
        "complex",
        r"nan at \(.*\): (?:\S+ vs nan|nan vs -?inf)$",
        r"\(0 \*\* (?:[\s\S]*\bm\.fft\.|[\s\S]*\(y \+ v\d\))|\.(?:real|imag)\b[\s\S]*/ 0\)",
        "PyTorch's complex add is a + alpha * b with alpha = 1 + 0i as a complex product, so an "
        "infinite part of the second operand makes the other part 0 * inf = nan "
        "(tensor([1j]) + tensor([inf + 0j]) is inf + nan i, the other order inf + 1i): real y "
        "+ 0 ** z (inf + nan i for Re z < 0) and its engine's sum of x.real's and x.imag's "
        "gradients (x.real * inf + x.imag: d/dx inf + nan i, descent inf + 1i); and the "
        "complex infinities of 0 ** z through an fft, whose twiddles by exact zeros (sin(pi k) "
        "in an irfft of even length) MKL skips and NumPy's pocketfft multiplies, so an output "
        "that depends only on the real parts is -inf in PyTorch, nan in descent (session 30, "
        "helper-229)",
    ),
    (
        "complex",
        r"nan at \(.*\): (?:-?inf vs nan|nan vs -?inf)$",
        r"dtype=m\.complex64[\s\S]*\b(?:sinh|cosh|exp|expm1)\(|1000\.0[\s\S]*\b\d \*\* x\)",
        "complex64 sinh / cosh / exp / expm1 chains (and c ** z at Re z = 1000 in complex128) "
        "whose value or gradient overflows in a complex product (cos(sinh(z)) at z = -6.6 - "
        "0.24j: -sin(w) ~ 3e37 times cosh(z) ~ 360; expm1(vdot(x, x)) ~ e^101; (2 ** z) ** 2 ~ "
        "1e600): ac - bd of two overflowing terms is inf or inf - inf = nan by the kernel's "
        "order of terms and fused multiply-adds (NumPy's complex multiply, PyTorch's "
        "vectorized one) (session 30, helper-229)",
    ),
    (
        "complex",
        r"inf at \(.*\): -?inf vs -?inf$",
        r"\b(?:sinh|cosh|exp|expm1)\(",
        "sinh / cosh / exp / expm1 overflowing at a complex argument whose imaginary part is "
        "huge (exp of prod(x) = 1.6e76 - 3.3e76i, sinh of cosh(..) ~ 1e24): the infinite parts "
        "take the signs of cos / sin of that part, which its last bit decides (the two "
        "libraries' prod / cosh round it apart) (session 30, helper-229)",
    ),
    (
        "complex",
        r"values differ",
        r"dtype=m\.complex64[\s\S]*m\.polar\((v\d)\.abs\(\), \1\)",
        "float32 polar(|v|, v) with |v| in the 1e6 - 1e9 range (vdot of an entry 1000j, 0.5 ** "
        "(-30 - 0.5j)): the angle is the modulus, one float32 ulp of it (64 at 1e9) turns the "
        "point anywhere on the circle, and the two libraries' complex pow / vdot round it an "
        "ulp apart (0.5 ** (-30 - 0.52j): 1073740800 in descent, 1073740864 in PyTorch, both "
        "16 ulp from 2 ** 30) (session 30, helper-229)",
    ),
    (
        "complex",
        r"inf at \(.*\): -?inf vs -?inf$",
        r"\d+j? / v\d\)|/ 0\)",
        "complex division by a signed zero (1j / (x * 0) with x's part -30: 1j / (-0.0 + 0i)): "
        "the result is a complex infinity whose parts' signs come from the formula (PyTorch's "
        "Scalar / Tensor multiplies by reciprocal(-0.0 + 0i), NumPy's Smith division divides "
        "by the parts), not from the value (session 30, helper-229)",
    ),
    (
        "complex",
        r"raises at line None vs \d+ \(descent - \| torch RuntimeError: Subtraction, the `-` "
        r"operator, with a bool tensor is not supported",
        "",
        "a PyTorch bug (INTENDED in the differential fuzz): pow's backward with a bool exponent "
        "forms exponent - 1 and trips its own bool-subtraction check; descent differentiates "
        "the base (session 30, helper-229)",
    ),
    (
        "func",
        r"The expanded size of the tensor|values differ",
        r"def f\(a, b\): return (?![^\n]*\bb\b)[^\n]*\n(?:.*\n)*.*in_dims=\(None, 0\), "
        r"out_dims=1",
        "a PyTorch bug: vmap with out_dims=1 of an output that does not depend on the mapped "
        "input expands the unbatched (n,) result to (n, B) without unsqueezing it first, so it "
        "raises where B != n and returns the transpose where B == n; descent gives out[:, b] = "
        "f(x) for every b",
    ),
    (
        "func",
        r"nan at",
        r"(?:math\.(?:inf|nan)|e\+300|\b1000\.0)(?:.*\n)*.*tf\.(?:hessian|jacrev|jacfwd|grad)",
        "an infinite (or overflowing: 1e300, exp(1000)) input through a derivative transform: "
        "PyTorch's "
        "masked or overflowing backward formulas leak nan where descent's give 0, or the "
        "reverse where inf * 0 meets (the grad2 class)",
    ),
    (
        "func",
        r"values differ",
        r"\(a \*\* 3\) \*\* 3\)\.cos\(\)|\(m\.exp\(a\) \*\* 3\)\.cos\(\)|"
        r"\(m\.exp\(\(a \*\* 3\)\) \+ b\)\.cos\(\)",
        "cos of a large argument ((a^3)^3, exp(a)^3 near 1e5, exp(a^3) near 1e42): the last "
        "bit of the power or exp, "
        "amplified by cos (float64: 2e-10 relative)",
    ),
    (
        "grad2",
        r"values differ|nan at",
        r"^(?=[\s\S]*F\.(?:hardtanh|relu6|hardswish|elu|celu|selu|softshrink|hardshrink|"
        r"leaky_relu)\()(?=[\s\S]*(?:m\.(?:log|log1p|sqrt|rsqrt|acos|asin|atanh|acosh|log2|log10|"
        r"logit|xlogy)\(|m\.div\(\w+, 0\.0\)|math\.nan))",
        "a nan reaching an activation with branches (hardtanh, relu6, elu, shrink, ...): PyTorch "
        "passes or masks its gradient depending on its vectorized loop or scalar tail (it "
        "disagrees with itself; the differential fuzz does not compare these, NAN_GRAD_OPS), "
        "and the nan comes from log / sqrt / acos ... of an out-of-domain value or the input "
        "(session 31 added log1p of x < -1, xlogy of a negative y and 0 / 0: 17 programs of "
        "grad2 30510001, e.g. 30518637: elu(log1p(-1.04)) whose gradient is PyTorch's gy where "
        "its scalar tail passes it, descent's nan)",
    ),
    (
        "grad2",
        r"values differ|nan at",
        r"logaddexp2?\((\w+), \1\)",
        "logaddexp(x, x) / logaddexp2(x, x): PyTorch's is an ulp off the exact value (its "
        "logaddexp2(-1, -1) is -1.06e-8, descent's 0), which a later sign / |v| decides on "
        "(the KNOWN logaddexp2 classes of the differential fuzz)",
    ),
    (
        "grad2",
        r"values differ|nan at|inf at",
        r"F\.softshrink\(",
        "softshrink's dead zone: PyTorch gives +0.0 in its vectorized loop and -0.0 (x * 0) in "
        "its scalar tail for a negative x (it disagrees with itself), descent +0.0; a later "
        "atan2 / 1/x tells the signs apart",
    ),
    (
        "grad2",
        r"values differ|nan at|inf at",
        r"^(?=[\s\S]*(?:layer_norm|softmax|log_softmax|normalize)\()(?=[\s\S]*m\.linalg\."
        r"(?:inv|solve|det|slogdet|pinv|cholesky)\()",
        "a (nearly) singular matrix: layer_norm / softmax / normalize rows (summing to 0 or 1) "
        "make a rank-deficient square matrix, whose inverse, solve or log-determinant is "
        "rounding noise in both libraries",
    ),
    (
        "grad2",
        r"ZeroTensors are immutable",
        "",
        "a PyTorch bug (INTENDED in the differential fuzz): sgn's zero-tensor gradient reaching a "
        "backward that writes into it in place",
    ),
    (
        "grad2",
        r"values differ",
        r"hardsigmoid",
        "PyTorch's float64 hardsigmoid backward multiplies by a float32 1/6 (INTENDED in the "
        "differential fuzz)",
    ),
    (
        "grad2",
        r"vs nan",
        r"copysign",
        "PyTorch's copysign backward is (result / self) masked where self == 0: its derivative "
        "0 / 0 is nan there in the second order; descent's masked value has derivative 0",
    ),
    (
        "grad2",
        r"vs nan",
        r"logcumsumexp",
        "PyTorch's logcumsumexp backward takes the log of the positive and negative parts of the "
        "gradient: log(0) makes its higher orders nan where central differences give ~0",
    ),
    (
        "grad2",
        r"vs nan",
        r"sinc",
        "PyTorch's sinc double backward at x = 0 is nan (its where-masked quotient); descent "
        "gives -pi^2 / 3, the second derivative",
    ),
    (
        "grad2",
        r"values differ",
        r"layer_norm.*\n(?:.*\n)*.*h\[0\]\.sum",
        "PyTorch's third-order gradient of layer_norm: not the derivative of its own second-order "
        "one (central differences give ~1e-10 where its triple backward gives -1.77; descent 0)",
    ),
    (
        "grad2",
        r"^out\S*: nan at \(.*\): [^n]\S* vs nan$",
        r"create_graph=True|backward\(create",
        "a second (or third) order where PyTorch's formula is masked at a singular point (atan2 "
        "at (0, 0), logit beyond eps, normalize / norm at 0, sinc at 0) or overflows (mish at "
        "1000): its masked branch's nan leaks through where (0 * inf), descent's masked value "
        "has the derivative 0 (spot-checked on eight programs, session 28)",
    ),
    (
        "grad2",
        r"values differ",
        r"sinc\(x\)(?:.*\n)*.*float32|float32(?:.*\n)*.*sinc\(x\)",
        "float32 sinc near 0 (x = 1e-8): its derivative's formula (pi x cos(pi x) - sin(pi x)) "
        "/ (pi x^2) cancels to noise in both libraries (KNOWN sinc-grad-float32 of the "
        "differential fuzz), and the second order differentiates the noise",
    ),
    (
        "grad2",
        r"^out\S*: (?:nan at \(.*\): [^n]\S* vs nan|values differ \(.*\): np\.float64\([^)]*\) vs "
        r"np\.float64\(0\.0\))$",
        r"m\.linalg\.det\(",
        "PyTorch's det double backward at a singular matrix (det = 0): it differentiates its SVD "
        "form of the cofactor matrix, whose backward divides by s_j^2 - s_i^2 = 0 where singular "
        "values repeat (nan: the zero matrix, where the true second derivative is 0; descent's "
        "SVD backward skips the division where U's and Vh's gradients are 0), and it drops the "
        "term through the incoming gradient when that is 0 (cos(det(A)) at det = 0: 0 where "
        "central differences give descent's 3.28, fuzz 28528275). Descent's second order there "
        "is new in session 29 (it raised)",
    ),
    (
        "index",
        r"raises at line None vs \d+ \(descent - \| torch RuntimeError: (?:Function "
        r"Scatter(?:Add|Reduce)?Backward0 returned an invalid gradient at index 1|The size of "
        r"tensor a \(\d+\) must match the size of tensor b \(\d+\))",
        r"r = m\.scatter(?:_add|_reduce)?\(",
        "a PyTorch bug: scatter / scatter_add / scatter_reduce with an index smaller than the "
        "source (empty, or shorter along a dim; allowed by its forward) gathers the source's "
        "gradient at the index's shape, which its engine refuses (invalid gradient, or a size "
        "mismatch in scatter_reduce's formula); descent's source gradient has the source's "
        "shape, zeros where the index does not reach (session 29)",
    ),
    (
        "index",
        r"raises at line (?:\d+ vs None \(descent IndexError: index -?\d+ is out of bounds|None "
        r"vs \d+ \(descent - \| torch RuntimeError: index -\d+ is out of bounds)|exception "
        r"class IndexError vs RuntimeError at line \d+: index -?\d+ is out of bounds",
        r"r = m\.take_along_dim\(",
        "PyTorch's take_along_dim with an index outside [-size, size): it wraps it "
        "(take_along_dim(x of 2, [-3]) reads x[1], [9] of 4 reads x[1]) where its gather and "
        "index_select refuse, and refuses -1 on a 0-d x; descent refuses an index outside "
        "[-size, size) and takes -1 on 0-d as x[-1] of its one element (session 29)",
    ),
    (
        "index",
        r"^out\S*: dtype float(?:32|64) vs int64$",
        r"b = m\.tensor\(\[\], dtype=m\.\w+\)\.reshape\(0,\)(?:.*\n)*r = m\.bincount\(b, "
        r"weights=w",
        "PyTorch's bincount of an empty input returns zeros(minlength) as int64 before it looks "
        "at the weights (its _bincount_cpu early return); with any element it is the weights' "
        "dtype, descent's always (session 29)",
    ),
    (
        "index",
        r"raises at line None vs \d+ \(descent - \| torch RuntimeError: Autograd not support "
        r"dtype: \w+\)",
        r"dtype=m\.(?:float32|float64), requires_grad=True\)(?:\.reshape\([\d, ]*\))?\n"
        r"(?:.*\n)*r = m\.\w+\(x.*"
        r"dtype=m\.(?:int\d+|uint8|bool)\)",
        "only PyTorch raises: a reduction / scan of a float tensor that requires grad with an "
        "integer or bool dtype= (its autograd refuses the integer result); descent computes "
        "it, without a gradient (a superset)",
    ),
    (
        "index",
        r"^out\[\d+\]\[1\]: values differ",
        r"r = m\.scatter_reduce\(x, -?\d+, i, s, 'prod'",
        "a PyTorch bug: scatter_reduce 'prod' with an index shorter than the source divides the "
        "gathered gradient by the whole source, not the part the index covers, so unused source "
        "entries get (grad * result).gather(index) / src; descent's are 0 (session 29)",
    ),
    (
        "index",
        r"exception class IndexError vs RuntimeError at line \d+: .*\| setStorage: sizes \[",
        r"r = x\.index_(?:fill|copy)\(",
        "PyTorch's index_fill / index_copy along a dimension of size 0 with a nonempty index "
        "(every index out of range) restride the empty x to the index's length with stride 0 "
        "and its setStorage check refuses the view (a RuntimeError from inside); descent's "
        "bounds check raises IndexError, PyTorch's class for an index out of range (session "
        "29, helper-224)",
    ),
    (
        "index",
        r"raises at line None vs \d+ \(descent - \| torch RuntimeError: INDICES element is out "
        r"of DATA bounds",
        r"r = x\.index_(?:copy|add)\(",
        "PyTorch's index_copy / index_add of an x with no element do not check the index (its "
        "kernel has no slice to visit; descent matches), but their backward gathers the "
        "source's gradient at those indices (index_select) and refuses them; descent's "
        "gradient is the empty one (session 29, helper-224)",
    ),
    (
        "index",
        r"^out\[\d+\]\[0\]: nan at .*: \S+ vs nan$",
        r"x = m\.tensor\(.*math\.(?:nan|inf)(?:.*\n)*r = m\.scatter_reduce\(x, -?\d+, i, s, "
        r"'(?:prod|amax|amin)'",
        "PyTorch's scatter_reduce backward gives every entry of self grad * result / self "
        "('prod', masked where self is 0) or (self == result) * grad / N ('amax' / 'amin', N "
        "the ties): an entry the index does not reach, nan or inf, gets 0 * nan / nan or "
        "0 * grad / 0 = nan where its gradient is grad (descent's); session 29, helper-224",
    ),
    (
        "index",
        r"^out\[\d+\]\[1\]: values differ \(\d+ of \d+\): np\.float(?:32|64)\(0\.0\) vs",
        r"r = m\.scatter_reduce\(x, -?\d+, i, s, 'am(?:ax|in)'",
        "a PyTorch bug: scatter_reduce 'amax' / 'amin' with an index smaller than the source "
        "compares the whole source with result.gather(index) (broadcast), so source entries "
        "the index never reads get a share of the gradient where they equal the gathered "
        "value (zeros(2, 2) with [[1, 1], [1, 5], [1, 1]] at [[0, 1]]: 5 shares of a "
        "gradient of 2); descent's are 0 (session 29, helper-224)",
    ),
    (
        "nn",
        r"^out\[\d+\]\[0\]: values differ \(\d+ of \d+\): np\.float(?:32|64)\(0\.0\) vs",
        r"y = F\.max_pool[123]d\(.*dilation=\((?!1(?:, 1)*\))",
        "a PyTorch bug: its CPU max-pool kernel starts a window wholly in the padding (possible "
        "with dilation: the taps step over the input) at index ih0 * W + iw0 after stepping "
        "past the padding, an element of the next row or past the plane, so the -inf output's "
        "gradient lands there (an arange(4) column pooled with kernel (1, 2), padding (0, 1), "
        "dilation (1, 2) gives indices 1, 2, 3, 4: the last one is the next sample's); "
        "descent's window has no tap and no gradient (session 29, helper-224)",
    ),
    (
        "nn",
        r"nan at .*: -?inf vs nan",
        r"math\.inf(?:.*\n)*y = F\.(?:instance|batch|group)_norm\(",
        "PyTorch's batch-norm CPU kernel (instance_norm runs it) folds the affine into "
        "x * a + (b - mean * a) with a = weight * invstd: an infinite weight makes both terms "
        "infinite and their sum nan where the signs differ; descent's (x - mean) * invstd * "
        "weight + bias is the infinity (layer_norm's kernel gives it too) (session 29, "
        "helper-224; group_norm's kernel folds it the same way, scale = rstd * gamma and "
        "bias = beta - scale * mean: session 30)",
    ),
    (
        "nn",
        r"^out\[\d+\]\[0\]: nan at .*: -?inf vs nan$",
        r"math\.inf(?:.*\n)*y = F\.layer_norm\(",
        "layer_norm's input gradient with an infinite weight: PyTorch's backward kernel folds it "
        "into a * dy * gamma + b * x + c with b, c from the sums of dy * gamma and dy * gamma * "
        "x, where the infinities meet as inf - inf = nan in every element; descent's rstd * "
        "(g - mean(g) - xhat * mean(g xhat)), g = dy * gamma, keeps an element whose terms "
        "are infinite of one sign at that infinity (session 30, helper-229)",
    ),
    (
        "nn",
        r"nan at .*: \S+ vs nan$",
        r"1e\+300(?:.*\n)*y = F\.(?:group|layer)_norm\(",
        "a group whose variance overflows (1e300 among small values: 1e600 / n): PyTorch's "
        "RowwiseMoments gives var inf for a short row (4 float64 values: rstd 0, the output "
        "is the bias, descent's) and nan for a longer one (8 values, its vectorized cascade "
        "merges partial moments as inf - inf), so every output of the group is nan there "
        "(session 30, helper-229)",
    ),
    # Session 31 (helper-234): classes from the triage of grad2 campaign 30510001
    (
        "grad2",
        r"raises at line (?:None|\d+) vs \d+ \(descent (?:-|TypeError: cannot make a tensor from "
        r"data of dtype object) \| torch _LinAlgError: torch\.linalg\.solve: The solver failed "
        r"because the input matrix is singular",
        r"slogdet\(",
        "PyTorch's slogdet backward under create_graph solves A^H X = I with linalg.solve, "
        "which refuses a singular matrix (log|det| = -inf there: its gradient A^{-T} does not "
        "exist; PyTorch's backward without a graph gives +-inf from its LU); descent's gives nan "
        "(a superset: it computes where PyTorch raises; descent's TypeError is the program's "
        "next line multiplying the None gradient of an unused leaf). 16 programs of 30510001",
    ),
    (
        "grad2",
        r"values differ",
        r"^(?=[\s\S]*sinc\()(?=[\s\S]*1e-08)",
        "sinc near 0 (x = +-1e-8) in float64 too: its derivative's formula (pi x cos(pi x) - "
        "sin(pi x)) / (pi x^2), PyTorch's and descent's (the same order of operations), cancels "
        "to a few correct digits and the second order differentiates the noise: 30516803, x = "
        "-1e-8, PyTorch 2.7076, descent 2.6920, central differences 1.5656 (= the cotangent times "
        "sinc''(0) = -pi^2 / 3); neither is right (15 programs of 30510001)",
    ),
    (
        "grad2",
        r"values differ",
        r"^(?=[\s\S]*(?:\.prod\(|m\.prod\())(?=[\s\S]*1e-08)",
        "the higher orders of prod with a 1e-8 entry: both libraries form P / x_i terms that "
        "cancel; in exact rational arithmetic 30542350's third order is -0.348189073593 and "
        "-0.75266 where descent gives -0.3481890735904 and -0.7424, PyTorch -0.3481890737943 "
        "and -0.6886 (descent the nearer; neither exact)",
    ),
    (
        "grad2",
        r"^out\S*: inf at \(.*\): -?inf vs -?\d",
        r"m\.logit\(",
        "logit of a value within an ulp of 1 (or 0): solve(x, x.mT) of a 1 x 1 x is 1 exactly in "
        "descent (NumPy's LAPACK) and 1 - 1 ulp in PyTorch's (MKL's reciprocal-multiply), and "
        "log(z / (1 - z)) turns that ulp into inf vs 36.7 (30520901); i0 of a tiny value likewise "
        "(30535148)",
    ),
    (
        "grad2",
        r"raises at line \d+ vs (?:None|\d+) \(descent LinAlgError: linalg\.inv: Singular matrix",
        r"@ \w+\.mT\)|cummax\(",
        "inv of an exactly rank-deficient matrix (x @ x.mT of a column, cummax's repeated "
        "columns): OpenBLAS's getrf meets an exact 0 pivot (descent raises, as PyTorch does for "
        "one), MKL's a rounding residue of 1e-17 (PyTorch returns an inverse of 1e16-sized "
        "entries): which one is the rounding's choice (30535450, 30534655)",
    ),
    (
        "grad2",
        r"values differ|nan at|inf at",
        r"(?m)^x = m\.tensor\(\[(?:\[[^\[\],]+\](?:, \[[^\[\],]+\])+"  # n x 1
        r"|\[[^\[\],]+, [^\[\],]+\](?:, \[[^\[\],]+, [^\[\],]+\]){2,})\]"  # n x 2, n >= 3
        r"[\s\S]*\((\w+) @ \1\.mT\)\n[\s\S]*m\.linalg\.(?:solve|inv|qr|det|slogdet|pinv|cholesky|"
        r"svdvals|eigvalsh)\(",
        "a square x @ x.mT of a tall x (n x 1, 3 x 2): rank-deficient, so its solve / inverse / "
        "log-determinant is rounding noise in both libraries, and QR's R has a 0 pivot whose "
        "Householder reflection (sign, next column) is the rounding's choice (31531580: float32 "
        "solve(A, A.mT), PyTorch [[1.12, 0, 0.006], ...], descent ~I; 31537742: R[1, 2] 0.533 vs "
        "1.193)",
    ),
    (
        "grad2",
        r"values differ",
        r"^(?=[\s\S]*logcumsumexp\()(?=[\s\S]*1e\+300)",
        "logcumsumexp's gradient beside a 1e300 entry: PyTorch's log-space backward adds "
        "log|gy_j| (~1) to -y_j = -1e300, which rounds it away, so every weight e^(x_i - y_j) "
        "= 1 multiplies |gy| = 1 (its gradient is +-1 or 0 = 1 - 1); descent's graph path (its "
        "create_graph backward) sums gy_j e^(x_i - y_j) directly: 31516694 gives gy_0 + gy_1 = "
        "-0.0678, the exact value, where PyTorch gives 0 (31537503: -2.3385 vs -1)",
    ),
    (
        "grad2",
        r"values differ",
        r"m\.linalg\.pinv\(",
        "pinv of an ill-conditioned matrix: the SVDs (OpenBLAS's gesdd, MKL's) differ in the last "
        "bits, which the second order's pinv^3 terms amplify by cond^2 (30518758: 1e-10 relative "
        "apart, each 1e-9 relative from central differences)",
    ),
]


def known_class(mode: str, msg: str, source: str = "") -> str | None:
    for m, pattern, src, reason in KNOWN_CLASSES:
        if m == mode and re.search(pattern, msg) and (not src or re.search(src, source)):
            return reason
    return None


def generate(mode: str, seed: int) -> Program:
    rng = np.random.default_rng((28, seed))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return MODES[mode](rng, seed)


def fuzz(mode: str, first: int, n: int, budget_s: float = 1e9, verbose: bool = False):
    """Programs first..first+n-1 of a mode (within budget_s): (count, known, [(seed, msg,
    program)]), known counting the mismatches of KNOWN_CLASSES."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    bad, count, known, t0 = [], 0, 0, time.perf_counter()
    try:
        for s in range(first, first + n):
            if time.perf_counter() - t0 > budget_s:
                break
            count += 1
            if (mode, s) in KNOWN:
                continue
            prog = generate(mode, s)
            msg = compare(prog)
            if msg is None:
                continue
            if known_class(mode, msg, prog.source()):
                known += 1
                continue
            prog, msg = shrink(prog, msg)
            bad.append((s, msg, prog))
            if verbose:
                print(f"\n=== {mode} {s}: {msg}\n{prog.source()}", flush=True)
    finally:
        torch.set_num_threads(threads)
    return count, known, bad


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "grad2"
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    t0 = time.perf_counter()
    count, known, bad = fuzz(mode, first, 10**9, secs, verbose=True)
    print(f"\n{mode}: {count} programs from {first} in {time.perf_counter() - t0:.1f} s: "
          f"{len(bad)} mismatches, {known} of known classes")  # fmt: skip
