"""Fusing chains of elementwise ops of a recorded program into one numba kernel.

NumPy runs `(x * 0.5 + y) * x - 1.0` as four passes over memory with three temporaries; a fused
kernel reads x and y once and writes the result once, computing each element in registers.
`plan` finds such chains in a program: consecutive `Forward` instructions of the arithmetic ops
below, where each intermediate value has exactly one reader (the next op of the chain) and no
op keeps anything for backward (an op that is a graph node and saves its inputs, as `Mul` and
`Div` do, needs its intermediate inputs materialised, so it ends a chain). Every array operand
must have the result's shape and dtype (float32 or float64), or be 0-d (then a scalar).

Rounding: the kernel applies the same IEEE operations in the same order as NumPy, on values of
the same dtype, without fast-math, so the result is **bitwise** eager's (each `+ - * /` is
correctly rounded in both). `tests/test_compile.py` checks it.

Threads: a kernel over at least `PARALLEL_MIN` elements also gets a version compiled with
numba's `parallel=True` (a `prange` over every core), run when the program's plan says so
(`threads.ThreadPlan`, timed on whole calls); smaller ones run serially, where waking threads
costs more than the pass. Kernels are generated per expression and dtype, compiled on first
use (at the first replay) and kept for the process. Without numba nothing is fused.

On a GPU (CuPy arrays) the same chain runs as one CuPy `ElementwiseKernel` whose operation
uses CUDA's round-to-nearest intrinsics (`__fadd_rn`, `__fmul_rn`, ...: never contracted into
a fused multiply-add), so it too gives eager's bits; its output is a fresh CuPy array (the
pool is host memory).
"""

from __future__ import annotations

import importlib.util
import operator
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from ..backend import is_cupy_array
from .recorder import Forward
from .threads import SPLIT_MIN, Tuned, run_halves
from .threads import _state as _tstate

PARALLEL_MIN = 1 << 18  # elements; below it a fused kernel runs on one thread
_HAVE_NUMBA = importlib.util.find_spec("numba") is not None

# op class name -> (number of array inputs, expression template over {0}, {1} / scalar {s});
# SubScalar and ExactDivScalar compute x + (-c) and x * (1 / c) (ops/arithmetic.py)
_BINARY = {"Add": "({0} + {1})", "Sub": "({0} - {1})", "Mul": "({0} * {1})", "Div": "({0} / {1})"}
_SCALAR = {"AddScalar": "({0} + {s})", "MulScalar": "({0} * {s})", "RSubScalar": "({s} - {0})",
           "DivScalar": "({0} / {s})",
           "SubScalar": "({0} + {s})", "ExactDivScalar": "({0} * {s})"}  # fmt: skip
_UNARY = {"Neg": "(-{0})"}
_MODULE = "descent.ops.arithmetic"

# The same chains on a GPU: a CuPy ElementwiseKernel whose operation uses CUDA's
# round-to-nearest intrinsics ({t} = f for float32, d for float64). nvcc contracts a * b + c
# into one fused multiply-add by default (--fmad=true), which rounds once where CuPy's
# separate kernels (eager) round twice; the intrinsics are never contracted, so every value is
# eager's, as on the CPU. Division and negation are IEEE in both.
_CUDA = {"Add": "__{t}add_rn({0}, {1})", "Sub": "__{t}sub_rn({0}, {1})",
         "Mul": "__{t}mul_rn({0}, {1})", "Div": "__{t}div_rn({0}, {1})",
         "AddScalar": "__{t}add_rn({0}, {s})", "MulScalar": "__{t}mul_rn({0}, {s})",
         "RSubScalar": "__{t}sub_rn({s}, {0})", "DivScalar": "__{t}div_rn({0}, {s})",
         "SubScalar": "__{t}add_rn({0}, {s})", "ExactDivScalar": "__{t}mul_rn({0}, {s})",
         "Neg": "(-{0})"}  # fmt: skip


@dataclass
class FusedChain:
    """The instructions [first, last] replaced by one kernel call writing env[out]."""

    ops: list  # the Forward instructions, in order
    out: int  # the slot of the chain's result
    leaves: list  # operand slots: arrays (flattened) and 0-d arrays (scalars)
    scalar_ops: list  # (position in ops) of the tensor-scalar ops: their `ca` is an operand
    expr: str  # the per-element expression over a0.., s0..
    n_arrays: int
    n_scalars: int
    shape: tuple
    dtype: np.dtype
    cuda_expr: str = ""  # the expression over a0.., s0.. for CuPy (see _CUDA)
    kernel: object = None
    cuda_kernel: object = None


def fusable(ins: Forward, meta: dict) -> bool:
    """An op whose forward is one elementwise arithmetic ufunc and that saves nothing."""
    op = ins.op
    name = type(op).__name__
    if type(op).__module__ != _MODULE or name not in {**_BINARY, **_SCALAR, **_UNARY}:
        return False
    if ins.node and (op.save_inputs or op.save_output):
        return False
    if name in _SCALAR and not isinstance(getattr(op, "ca", None), np.ndarray):
        return False
    out = meta.get(ins.out)
    return out is not None and out[1] in (np.float32, np.float64) and not ins.binds


def plan(program: list, meta: dict, reads: dict) -> list:
    """The fusable chains of `program`, as (first index, last index, FusedChain)."""
    chains = []
    k = 0
    while k < len(program):
        chain = _grow(program, k, meta, reads)
        if chain is not None:
            chains.append(chain)
            k = chain[1] + 1
        else:
            k += 1
    return chains


def _grow(program, k, meta, reads):
    """The longest chain starting at instruction k (at least two ops), or None."""
    first = program[k]
    if not isinstance(first, Forward) or not fusable(first, meta):
        return None
    shape, dtype = meta[first.out]
    ops = [first]
    j = k + 1
    while j < len(program):
        nxt = program[j]
        prev = ops[-1].out
        if not (isinstance(nxt, Forward) and fusable(nxt, meta) and prev in nxt.ins):
            break
        if reads.get(prev, 0) != 1 or nxt.ins.count(prev) != 1 or meta[nxt.out] != (shape, dtype):
            break
        ops.append(nxt)
        j += 1
    if len(ops) < 2:
        return None
    chain = _build(ops, meta, shape, dtype)
    return None if chain is None else (k, j - 1, chain)


def _build(ops, meta, shape, dtype):
    leaves: list = []
    arrays, scalars = 0, 0
    scalar_ops = []
    expr = cuda = None
    t = "f" if np.dtype(dtype) == np.float32 else "d"
    for pos, ins in enumerate(ops):
        name = type(ins.op).__name__
        terms, cterms = [], []
        for s in ins.ins:
            if expr is not None and s == ops[pos - 1].out:
                terms.append(expr)
                cterms.append(cuda)
                continue
            m = meta.get(s)
            if m is None or m[1] != dtype or (m[0] != shape and m[0] != ()):
                return None  # broadcasting or mixed dtypes: not fused
            if m[0] == ():
                terms.append(f"s{scalars}")
                cterms.append(f"s{scalars}")
                leaves.append(("scalar", s))
                scalars += 1
            else:
                terms.append(f"a{arrays}[i]")
                cterms.append(f"a{arrays}")
                leaves.append(("array", s))
                arrays += 1
        if name in _BINARY:
            expr = _BINARY[name].format(*terms)
            cuda = _CUDA[name].format(*cterms, t=t)
        elif name in _SCALAR:
            sname = f"s{scalars}"
            scalars += 1
            leaves.append(("ca", pos))
            scalar_ops.append(pos)
            expr = _SCALAR[name].format(terms[0], s=sname)
            cuda = _CUDA[name].format(cterms[0], s=sname, t=t)
        else:
            expr = _UNARY[name].format(terms[0])
            cuda = _CUDA[name].format(cterms[0], t=t)
    return FusedChain(ops, ops[-1].out, leaves, scalar_ops, expr, arrays, scalars, shape,
                      np.dtype(dtype), cuda)  # fmt: skip


_KERNELS: dict = {}


def kernel(chain: FusedChain):
    """The chain's kernel: serial below PARALLEL_MIN elements, else a `Tuned` choice between
    the serial and the every-core version."""
    if int(np.prod(chain.shape)) < PARALLEL_MIN:
        return _kernel(chain, False)
    return Tuned(_kernel(chain, False), _kernel(chain, True))


def _kernel(chain: FusedChain, parallel: bool):
    """The compiled kernel of a chain's expression (generated and compiled once per process)."""
    key = (chain.expr, chain.n_arrays, chain.n_scalars, chain.dtype.str, parallel)
    k = _KERNELS.get(key)
    if k is None:
        import numba  # noqa: PLC0415 - numba loads with the first fused kernel

        names = [f"a{i}" for i in range(chain.n_arrays)] + [f"s{i}" for i in range(chain.n_scalars)]
        loop = "numba.prange" if parallel else "range"
        src = (
            f"def fused({', '.join(names + ['out'])}):\n"
            f"    for i in {loop}(out.size):\n"
            f"        out[i] = {chain.expr}\n"
        )
        scope: dict = {"numba": numba}
        exec(compile(src, f"<descent.compile fused {chain.expr}>", "exec"), scope)  # noqa: S102
        k = numba.njit(parallel=parallel, nogil=True, error_model="numpy")(scope["fused"])
        _KERNELS[key] = k
    return k


def cuda_kernel(chain: FusedChain):
    """The chain as one CuPy ElementwiseKernel (compiled by CuPy on first call, cached by it)."""
    key = ("cuda", chain.cuda_expr, chain.n_arrays, chain.n_scalars, chain.dtype.str)
    k = _KERNELS.get(key)
    if k is None:
        from .. import backend  # noqa: PLC0415

        cp = backend.cupy_module()
        params = [f"T a{i}" for i in range(chain.n_arrays)]
        params += [f"T s{i}" for i in range(chain.n_scalars)]
        k = _KERNELS[key] = cp.ElementwiseKernel(
            ", ".join(params), "T out", f"out = {chain.cuda_expr}", "descent_fused"
        )
    return k


def run(chain: FusedChain, env, pool) -> None:
    """env[chain.out] = the chain's result, computed in one pass (NumPy arrays: a numba kernel
    into a pool buffer; CuPy arrays: a CuPy ElementwiseKernel)."""
    arrays, scalars = [], []
    dt = chain.dtype.type
    for kind, ref in chain.leaves:
        if kind == "array":
            arrays.append(env[ref])
        elif kind == "scalar":
            scalars.append(env[ref])
        else:
            scalars.append(chain.ops[ref].op.ca)
    if any(type(x) is not np.ndarray and is_cupy_array(x) for x in arrays + scalars):
        if chain.cuda_kernel is None:
            chain.cuda_kernel = cuda_kernel(chain)
        # 0-d device arrays stay on the device; host scalars are rounded to the dtype first.
        scalars = [x if is_cupy_array(x) else dt(x[()]) for x in scalars]
        env[chain.out] = chain.cuda_kernel(*arrays, *scalars)
        return
    if not all([a.flags.c_contiguous for a in arrays]):
        # A strided operand (an F-ordered reshape of a transpose): NumPy's ufuncs write each
        # result in the operands' memory order, and a later reduction sums in that order, so a
        # C-ordered result changed its rounding (`(z.t().reshape(4, -1).abs() + 0.1) ...
        # .mean()`: fuzz seed 23001470, 1 ulp). The chain's ops run one by one instead, as
        # eager's (the interpreter's ufunc plan declines such operands the same way).
        _run_ops(chain, env)
        return
    arrays = [a.reshape(-1) for a in arrays]
    scalars = [dt(x[()]) for x in scalars]
    out = pool.get(chain.shape, chain.dtype) if pool is not None else np.empty(chain.shape,
                                                                               chain.dtype)
    if chain.kernel is None:
        chain.kernel = kernel(chain)
    chain.kernel(*arrays, *scalars, out.reshape(-1))
    env[chain.out] = out


def _run_ops(chain: FusedChain, env) -> None:
    """env[chain.out] = the chain's ops' own forwards in turn (no op of a chain saves anything
    for backward or binds a parameter: `plan`), on eager's layouts."""
    local: dict = {}
    for ins in chain.ops:
        local[ins.out] = ins.op.forward(*[local[s] if s in local else env[s] for s in ins.ins])
    out = local[chain.out]
    env[chain.out] = np.asarray(out) if isinstance(out, np.generic) else out


# -- Linear's bias add and the ReLU after it, in one pass ------------------------------------------
# Eager runs y = x @ W.T, then y += b (NumPy's float32/float64 add), then ReLU (maximum(0, y)):
# two passes over y after the product. The replay (program._LinearRelu) runs the same product
# and then this kernel: t = y + b rounded to the dtype (the same IEEE add; numba without
# fast-math), then ReLU's value (backend.clamp_min_zero): +0.0 where t < 0, else t (-0.0 and
# NaN kept; replay_kernels' ReLU select), written in place.

_BIAS_RELU: list = []


def _bias_relu_py(y, b, n):  # pragma: no cover - compiled
    for i in range(y.size // n):
        row = y[i * n : (i + 1) * n]
        for j in range(n):
            t = row[j] + b[j]
            row[j] = 0 if t < 0 else t


def bias_relu_kernel():
    """The numba kernel y[i, :] = relu(y[i, :] + b) over a flat C-order y (or None)."""
    if not _BIAS_RELU:
        k = None
        if _HAVE_NUMBA:
            import numba  # noqa: PLC0415

            k = numba.njit(nogil=True, error_model="numpy")(_bias_relu_py)
        _BIAS_RELU.append(k)
    return _BIAS_RELU[0]


# -- the optimizer update, fused per parameter group --------------------------------------------
# Adam/AdamW and SGD run one numba kernel per parameter group on replay: eager's own loops
# (`kernels/_cpu_jit.adam32`, `kernels/_cpu_optim.sgd`, each Python scalar rounded to the
# buffer's dtype first, as NumPy does under NEP 50), over every core for large groups, so the
# parameters are bitwise eager's.

def _sgd_kernel(parallel: bool):
    """The eager SGD loop (`kernels/_cpu_optim.sgd`), or the same loop over every core."""
    from ..kernels import _cpu_optim  # noqa: PLC0415 - imports numba

    return _cpu_optim.sgd_kernel(parallel)


def sgd_update(opt, group, a, step, kernel) -> None:
    """SGD's `_update(group, a, step)` in one pass (see above); float32/float64 NumPy only."""
    p, g = a.param, a.grad
    dt = p.dtype.type
    mu = group["momentum"]
    buf = a.state["momentum_buffer"] if mu != 0 else p  # unused when mu == 0
    wd, damp_alpha, alpha = group["weight_decay"], 1 - group["dampening"], -group["lr"]
    kernel(p, g, buf, bool(group["maximize"]), wd != 0, dt(wd), wd == 1, mu != 0, step == 1,
           dt(mu), dt(damp_alpha), damp_alpha == 1, bool(group["nesterov"]), mu == 1,
           dt(alpha), alpha == 1)  # fmt: skip


def fused_update(opt):
    """The fused `_update` for this optimizer (one per compiled program), or None (then its
    own rule runs). Large buffers get a `Tuned` choice of one thread or every core."""
    from ..kernels import cpu  # noqa: PLC0415
    from ..optim.adam import Adam, AdamW  # noqa: PLC0415 - optim sits above the engine
    from ..optim.sgd import SGD  # noqa: PLC0415

    if not _HAVE_NUMBA or type(opt) not in (SGD, Adam, AdamW):
        return None
    adam = type(opt) is not SGD
    if adam and not cpu.enabled():
        return None
    for group in opt.param_groups:
        if adam and group["amsgrad"]:
            return None
        for q in group["params"]:
            ok = (np.float32,) if adam else (np.float32, np.float64)
            if type(q._data) is not np.ndarray or q._data.dtype not in ok:
                return None
    sites: dict = {}

    def update(group, a, step) -> None:
        n = a.param.size
        if adam and group["amsgrad"]:  # turned on after the program was made
            return type(opt)._update(opt, group, a, step)
        k = sites.get(n)
        if k is None:
            serial = _adam_kernel(False) if adam else _sgd_kernel(False)
            parallel = _adam_kernel(True) if adam else _sgd_kernel(True)
            k = sites[n] = serial if n < PARALLEL_MIN else Tuned(serial, parallel)
        (adam_update if adam else sgd_update)(opt, group, a, step, k)

    if adam:
        update.step_buffer = adam_step_buffer(opt)
        update.fast = AdamFastStep(opt)
    return update


def adam_step_buffer(opt):
    """A replacement for `opt._step_buffer` (optim/optimizer.py) during a replayed Adam/AdamW
    step, for its common case: every parameter of the buffer has a float32 contiguous gradient
    of its shape and existing state, all at the same step count. Instead of copying the
    gradients into the flat gradient buffer and running the kernel over it, one kernel call
    (`kernels/_cpu_optim.adam_grads`) reads each gradient where it is: adam32's loop body on
    the same values, so the same parameters and state, bitwise; the flat gradient buffer,
    which nothing reads after the rule, is left as it was. The step count, the scalar state
    and the parameters' versions advance as `_step_buffer` advances them. Any other case
    (a missing gradient, a first step, per-parameter counts) runs the real `_step_buffer`."""
    orig = type(opt)._step_buffer.__get__(opt)
    cache: dict = {}  # id(buffer) -> (buffer, its start offsets, its kernel site)
    f32 = np.dtype(np.float32)

    def step_buffer(group, buf, state_init, scalar_init) -> None:
        if group["amsgrad"]:  # turned on after the program was made: the rule's own path
            return orig(group, buf, state_init, scalar_init)
        state = opt.state
        gs = []
        for p in buf.params:
            g = p.grad
            if g is None or not state.get(p):
                return orig(group, buf, state_init, scalar_init)
            g = g._data
            if (type(g) is not np.ndarray or g.dtype != f32 or g.shape != p._data.shape
                    or not g.flags.c_contiguous):  # fmt: skip
                return orig(group, buf, state_init, scalar_init)
            gs.append(g.reshape(-1))
        values = {k: arr.tolist() for k, arr in buf.scalars.items()}
        if not opt._counts_steps or list(values) != ["step"] or not all(
                v.count(v[0]) == len(v) for v in values.values()):  # fmt: skip
            return orig(group, buf, state_init, scalar_init)
        a = buf.whole
        if a.param.dtype != f32 or a.param.size == 0:
            return orig(group, buf, state_init, scalar_init)
        hit = cache.get(id(buf))
        if hit is None or hit[0] is not buf:
            if not all(v.flags.c_contiguous for v in buf.views):
                # a channels-last parameter: its flat slice is in its memory order, a
                # C-contiguous gradient's in index order (the flat copy aligns them)
                return orig(group, buf, state_init, scalar_init)
            hit = cache[id(buf)] = (buf, *_grads_kernel(buf))
        _, lo, k, _ = hit
        a.scalars = {}
        step = int(values["step"][0]) + 1
        k(a.param, tuple(gs), lo, a.state["exp_avg"], a.state["exp_avg_sq"],
          *adam_args(opt, group, step))  # fmt: skip
        buf.scalars["step"] += 1
        for p in buf.params:
            p._version += 1  # in-place change: backward through old graphs errs
        return None

    return step_buffer


_is = operator.is_
_data_of = operator.attrgetter("_data")
_grad_of = operator.attrgetter("_grad")
_shape_of = operator.attrgetter("shape")
_dtype_of = operator.attrgetter("dtype")
_flat = operator.methodcaller("reshape", -1)


class AdamFastStep:
    """A replayed Adam/AdamW `step()` without the optimizer's Python, when nothing it decides
    from has changed since the last step it ran.

    `Optimizer.step` spends ~30 us of Python on a six-parameter MLP (the layout's currency
    check, the state and gradient checks, dict and list building) around a kernel that
    `adam_step_buffer` then runs. Its decisions depend on: the group list and each group's
    parameter list, each group's `amsgrad` and whether lr or betas are Tensors, the state dict
    and each parameter's state entries, which array each parameter, state tensor and gradient
    holds, the gradients' dtypes and shapes, the step counts (all equal), and the step hooks.
    `learn()` (after a step took the optimizer's own path) records the objects those decisions
    saw when they lead to `adam_step_buffer`'s one kernel call per buffer; `__call__` checks
    each of them again by identity or value and, when all hold, makes that call: the same
    kernel with `adam_args` of the group as it is now (so an lr changed by a scheduler, or any
    hyperparameter edited in `param_groups`, is read fresh every step), then the step counts
    and the parameters' versions advance as `_step_buffer` advances them. Anything else (a
    replaced `param_groups` or `state`, `load_state_dict`, a `.data` or state tensor
    swapped, a missing or odd gradient, per-parameter step counts, amsgrad, a closure) returns
    False and the caller runs the real `step()`, whose result `learn()` may record again."""

    __slots__ = ("opt", "plan", "relearn", "misses", "learned", "hits", "args", "folds")

    def __init__(self, opt) -> None:
        self.opt = opt
        self.plan = None  # (groups list, groups, state, layouts list, layouts, per-group plans)
        self.relearn = True  # whether the step that runs next should be recorded
        self.misses = 0  # calls without a plan
        self.learned = 0  # how many times a plan was built (tests)
        self.hits = 0  # steps it ran (tests)
        self.folds = 0  # of them, steps whose kernels made clipping's scaling (tests)
        self.args: dict = {}  # id(group) -> (hyperparameters, group, adam_args' fixed part, eps)

    def learn(self) -> None:
        """Record the optimizer as it is now (after its own step ran), or no plan."""
        from ..optim.optimizer_hooks import has_step_hooks  # noqa: PLC0415

        self.plan = None
        self.relearn = False
        opt = self.opt
        groups = opt.param_groups
        layouts = opt._layouts
        if not opt._counts_steps or has_step_hooks(opt) or len(layouts) != len(groups):
            return
        f32 = np.dtype(np.float32)
        state = opt.state
        per_group = []
        for group, layout in zip(groups, layouts):
            if layout is None or group["amsgrad"] or _tensor_hyper(group):
                return
            params = tuple(group["params"])
            if len(layout.params) != len(params) or not all(map(_is, layout.params, params)):
                return
            bufs = []
            for buf in layout.buffers:
                a = buf.whole
                if (list(buf.scalars) != ["step"] or type(a.param) is not np.ndarray
                        or a.param.dtype != f32 or a.param.size == 0
                        or list(a.state) != ["exp_avg", "exp_avg_sq"]):  # fmt: skip
                    return
                sdicts = tuple(state.get(p) for p in buf.params)
                if not all(sdicts) or any(sd is not bd for sd, bd in zip(sdicts, buf.state_dicts)):
                    return
                names = ("step", "exp_avg", "exp_avg_sq")
                sd_rep = tuple(sd for sd in sdicts for _ in names)
                nm_rep = names * len(sdicts)
                sviews = tuple(v[n] for v in buf.checked_views for n in names)
                if not all(map(_is, map(_data_of, map(dict.get, sd_rep, nm_rep)), sviews)):
                    return
                views = tuple(buf.views)
                if not all(v.flags.c_contiguous for v in views):  # gradients read in C order
                    return
                if not all(map(_is, map(_data_of, buf.params), views)):
                    return
                lo, k, ks = _grads_kernel(buf)
                bufs.append((tuple(buf.params), views, sdicts, sd_rep, nm_rep, sviews,
                             [v.shape for v in views], buf.scalars["step"], a, lo, k,
                             ks))  # fmt: skip
            per_group.append((group, params, bufs))
        self.plan = (groups, tuple(groups), state, layouts, tuple(layouts), tuple(per_group))
        self.learned += 1

    def __call__(self, args, kwargs, clip=None) -> bool:
        """Run the step if the recorded plan still holds (True), else change nothing (False;
        `relearn` then says whether the caller should `learn()` after the real step).

        `clip`: (gradient arrays, coef) of a clip_grad_norm_ the replay ran just before without
        its scaling (`optim.clip._norm_and_coef`); a True return has applied it. Where those
        arrays are exactly the gradients the kernels read, each once and each owning its memory
        (so none overlaps another), the kernels scale each gradient as they read it
        (`_cpu_optim.adam_grads_scaled`: g * coef stored back, then the update: clipping's own
        float32 products, so the same gradients, parameters and state); else the scaling runs
        first (`clip.scale`), then the plain kernels."""
        plan = self.plan
        if plan is None:  # the last learn() found no plan: look again now and then
            self.misses += 1
            self.relearn = self.misses % 16 == 1  # the first miss, then every 16th
            return False
        if args or kwargs:
            self.relearn = False
            return False
        self.relearn = True  # until the layout checks below pass
        opt = self.opt
        groups, group_objs, state, layouts, layout_objs, per_group = plan
        if (opt.param_groups is not groups or opt.state is not state
                or opt._layouts is not layouts or len(groups) != len(group_objs)
                or len(layouts) != len(layout_objs) or not all(map(_is, groups, group_objs))
                or not all(map(_is, layouts, layout_objs))):  # fmt: skip
            return False
        own = opt.__dict__
        if own.get("_step_pre_hooks") or own.get("_step_post_hooks") or _global_hooks():
            return False
        runs = []
        for group, params, bufs in per_group:
            gp = group["params"]
            if (len(gp) != len(params) or not all(map(_is, gp, params)) or group["amsgrad"]
                    or _tensor_hyper(group)):  # fmt: skip
                return False
            for ps, views, sdicts, sd_rep, nm_rep, sviews, shapes, steps, a, lo, k, ks in bufs:
                try:
                    if not (all(map(_is, map(_data_of, ps), views))
                            and all(map(_is, map(state.get, ps), sdicts))
                            and all(map(_is, map(_data_of, map(dict.get, sd_rep, nm_rep)),
                                        sviews))):  # fmt: skip
                        return False
                except AttributeError:  # a state entry missing (None)
                    return False
                # The layout holds (a step now would not rebuild it): what is left to check
                # changes from step to step, the plan stays
                self.relearn = False
                try:
                    gs = list(map(_data_of, map(_grad_of, ps)))
                except AttributeError:  # a parameter without a gradient
                    return False
                if (not all(map(_is, map(type, gs), repeat(np.ndarray)))
                        or not all(map(operator.eq, map(_dtype_of, gs), repeat(np.float32)))
                        or list(map(_shape_of, gs)) != shapes):  # fmt: skip
                    return False
                v = steps.tolist()
                if v.count(v[0]) != len(v):  # per-parameter step counts
                    return False
                self.relearn = True
                runs.append((group, a, lo, k, tuple(map(_flat, gs)), steps, ps, int(v[0]) + 1,
                             ks, gs))  # fmt: skip
        self.relearn = False
        coef = None
        if clip is not None:
            if _folds(clip[0], runs):
                coef = clip[1]
                self.folds += 1
            else:
                _clip_scale()(*clip)
        # Everything checked: the kernel calls, as `adam_step_buffer` makes them.
        for group, a, lo, k, gs, steps, ps, step, ks, _ in runs:
            if coef is None:
                k(a.param, gs, lo, a.state["exp_avg"], a.state["exp_avg_sq"],
                  *self._args(group, step))  # fmt: skip
            else:
                ks(a.param, gs, lo, a.state["exp_avg"], a.state["exp_avg_sq"], coef,
                   *self._args(group, step))  # fmt: skip
            a.scalars = {}
            steps += 1
            for p in ps:
                p._version += 1  # in-place change: backward through old graphs errs
        self.hits += 1
        return True

    def _args(self, group, step) -> tuple:
        """`adam_args(opt, group, step)`, its step-independent part kept while the group's
        hyperparameters (values and types: a NumPy float computes in its own precision) stay
        the same."""
        lr, (beta1, beta2) = group["lr"], group["betas"]
        eps, wd = group["eps"], group["weight_decay"]
        key = (lr, beta1, beta2, eps, wd, type(eps), type(wd), bool(group["maximize"]),
               group.get("decoupled_weight_decay", self.opt._decoupled))  # fmt: skip
        hit = self.args.get(id(group))
        if hit is None or hit[0] != key or hit[1] is not group:
            full = adam_args(self.opt, group, step)
            self.args[id(group)] = (key, group, full[:9], full[10])
            return full
        f = np.float32
        alpha = -(lr / (1 - beta1**step))
        return (*hit[2], f((1 - beta2**step) ** 0.5), hit[3], f(alpha), alpha == 1)


def _folds(grads: list, runs: list) -> bool:
    """Whether clipping's gradient arrays are the ones the step's kernels read (`runs`' raw
    gradients), each exactly once, float32, each owning its memory (no base: two such arrays
    cannot overlap, so scaling each as it is read equals scaling all first)."""
    ids = {id(g) for g in grads}
    if len(ids) != len(grads):
        return False
    n = 0
    for run in runs:
        for g in run[-1]:
            if id(g) not in ids or g.base is not None:
                return False
            n += 1
    return n == len(ids)


def _clip_scale():
    """optim.clip.scale (optim sits above the engine: imported when first needed)."""
    f = _HOOKS.get("scale")
    if f is None:
        from ..optim.clip import scale as f  # noqa: PLC0415

        _HOOKS["scale"] = f
    return f


def _global_hooks() -> bool:
    h = _HOOKS.get("module")
    if h is None:
        from ..optim import optimizer_hooks as h  # noqa: PLC0415 - optim sits above the engine

        _HOOKS["module"] = h
    return bool(h._global_step_pre_hooks or h._global_step_post_hooks)


_HOOKS: dict = {}


def _grads_kernel(buf):
    """(lo, k, ks) for `_cpu_optim.adam_grads` over a flat buffer: each parameter's start in
    the buffer, the one-thread kernel (or its every-core twin, chosen by the thread plan), and
    the same for `adam_grads_scaled` (clipping's scaling folded in: `AdamFastStep`)."""
    from ..kernels import _cpu_optim  # noqa: PLC0415 - imports numba

    lo = np.array([b[0] for b in buf.bounds], np.int64)
    size = buf.whole.param.size
    sites = []
    kernel = _cpu_optim.adam_grads_kernel
    for scaled in (False, True):
        serial = _paired(kernel(False, scaled), kernel(False, not scaled), scaled)
        serial = _split_adam(serial, lo, size)
        if size >= PARALLEL_MIN:
            serial = Tuned(serial, _paired(kernel(True, scaled), kernel(True, not scaled), scaled))
        sites.append(serial)
    return lo, *sites


def _paired(kernel, twin, scaled: bool):
    """`kernel` (a numba dispatcher of `adam_grads`, or of `adam_grads_scaled` where scaled),
    which compiles `twin` (the other one) for each argument signature it compiles itself.

    Which of the two a step runs depends on the data: the scaled kernel while the gradients'
    norm is over clip_grad_norm_'s max_norm, the plain one from the first step under it. So
    the twin's first call came tens of steps in, and compiled there (its signature holds the
    number of parameters of the buffer or of a half: numba's cache has it only after a run of
    the same model): the ~0.4-1.1 s calls at replays 52 and 55 of benchmarks/compile.py's GPT
    step (session 31, helper-231: faulthandler's traceback of the slow call). Now both compile
    at a plan's first call. The twin's signature is the kernel's without clipping's coef
    (argument 5) or with it, a float32 (`optim.clip._norm_and_coef`'s coefficient of float32
    gradients, the only ones `AdamFastStep` folds)."""
    seen = [0]

    def run(*args) -> None:
        kernel(*args)
        if len(kernel.overloads) != seen[0]:  # a signature compiled (or loaded) just now
            seen[0] = len(kernel.overloads)
            for sig in kernel.signatures:
                sig = sig[:5] + sig[6:] if scaled else (*sig[:5], _numba_float32(), *sig[5:])
                if sig not in twin.overloads:
                    twin.compile(sig)

    run.kernel = kernel  # (tests)
    return run


def _numba_float32():
    from numba.core import types  # noqa: PLC0415 - imports numba (compiler layer, at replay)

    return types.float32


def _split_adam(kernel, lo, size: int):
    """`adam_grads` over the parameters in two runs at once where `threads.split` allows: the
    parameters before and from the one that starts nearest the buffer's middle. Each
    parameter's span runs the same loop on the same slices as in a whole call: its bits."""
    if len(lo) < 2 or size < SPLIT_MIN:
        return kernel
    cut = max(1, min(len(lo) - 1, int(np.searchsorted(lo, size / 2))))
    halves = ((0, cut), (cut, len(lo)))

    def run(p, gs, lo_, *rest) -> None:
        if not _tstate["split"] or len(gs) != len(lo_):
            kernel(p, gs, lo_, *rest)
            return
        run_halves(halves, lambda j0, j1: kernel(p, gs[j0:j1], lo_[j0:j1], *rest))

    return run


def _tensor_hyper(group) -> bool:
    """Whether lr or betas are not plain numbers (PyTorch's tensor hyperparameters, which
    `Optimizer.step` converts with `_with_numbers`)."""
    betas = group["betas"]
    return (type(betas) is not tuple or len(betas) != 2 or type(group["lr"]) not in _NUMBERS
            or type(betas[0]) not in _NUMBERS or type(betas[1]) not in _NUMBERS)  # fmt: skip


_NUMBERS = frozenset({float, int})


_ADAM_KERNELS: dict = {}


def _adam_kernel(parallel: bool):
    """descent's Adam/AdamW kernel (`kernels/_cpu_jit.adam32`), or the same loop body over
    every core: strict IEEE float32 in both (no fast-math), so bitwise the same."""
    k = _ADAM_KERNELS.get(parallel)
    if k is None:
        from ..kernels import _cpu_jit as jit  # noqa: PLC0415

        if not parallel:
            k = jit.adam32
        else:
            import numba  # noqa: PLC0415

            # adam32's own loop (its prange split over the cores): float32 throughout and
            # vectorised as adam32 (vsqrtps/vdivps; tests/test_kernel_vectorization.py)
            k = numba.njit(parallel=True, nogil=True, error_model="numpy")(jit.adam32.py_func)
        _ADAM_KERNELS[parallel] = k
    return k


def adam_args(opt, group, step) -> tuple:
    """The numbers after (p, g, m, v) of descent's Adam kernels for this group and step (the
    arguments `kernels.cpu.adam_update` computes, the same way)."""
    f = np.float32
    lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
    beta1, beta2 = group["betas"]
    decoupled = group.get("decoupled_weight_decay", opt._decoupled)
    w = 1 - beta1
    lerp_small = abs(w) < 0.5
    wd_mode = 0 if wd == 0 else (1 if decoupled else 2)
    alpha = -(lr / (1 - beta1**step))
    bc2 = (1 - beta2**step) ** 0.5
    return (bool(group["maximize"]), wd_mode, f(1 - lr * wd), f(wd), wd == 1, lerp_small,
            f(w if lerp_small else 1 - w), f(beta2), f(1 - beta2), f(bc2), f(eps), f(alpha),
            alpha == 1)  # fmt: skip


def adam_update(opt, group, a, step, kernel) -> None:
    """Adam's `_update` for float32 flat buffers through `kernel`."""
    if a.param.size:
        kernel(a.param, a.grad, a.state["exp_avg"], a.state["exp_avg_sq"],
               *adam_args(opt, group, step))  # fmt: skip
