"""Replaying a recorded program: no Tensors, no graph, preallocated buffers.

A `Program` runs the instructions of a `Recording` on raw NumPy arrays held in an environment
list (one entry per slot):

* `Forward`: the op's own `forward` on the slot arrays, or, for the elementwise ops whose
  forward is one NumPy ufunc (`a + b`, `x * c`, ...), that ufunc with `out=` a buffer from the
  pool (the same ufunc on the same operands: bitwise eager's result). A graph node gets its
  saved inputs as light boxes (`_Box._data`), which is all its `backward` reads.
* `Backward`: the engine's backward pass over the recorded node order, without the heap, the
  Tensor objects or the version checks (the recording proved the order), with the engine's
  delivery rules (unbroadcast with `sum_to`, accumulate out of place, release what each node
  saved) and its rules for storing `.grad`. Gradient sums are written into pool buffers.
* `Call`: the real function (the optimizer's step, clipping, a dropout mask), so optimizer
  state, step counts, schedules and the generator's order of draws are eager's. An SGD or Adam
  step runs with its update rule swapped, for the call, for a fused kernel (`fusion`).
* `FusedChain`: consecutive elementwise ops as one generated kernel (`fusion`).

Replay-only rewrites of single ops, all bitwise eager's values: exact float32 GELU through a
`threads.Tuned` choice (one plan per program, timed on whole calls) of descent's one-thread
kernel or an every-core copy; a basic-index read's gradient added in place at its index
(`_slice_gradient`).

The memory plan. Every slot is dropped from the environment right after its last use (computed
once from the program), so an intermediate's memory goes back as soon as eager's would. The
buffers this module allocates (ufunc outputs, gradient sums) come from a pool keyed by
(shape, dtype) that persists across calls: a buffer is handed out again once nothing but the
pool refers to it (its reference count says so; a view, a saved input, a stored `.grad` or a
returned tensor all hold a reference), so later values of the same shape reuse the memory of
dead ones and a steady-state call allocates few new arrays. `Program.stats` counts values and
distinct buffers.
"""

from __future__ import annotations

import sys
import threading
import weakref
from time import perf_counter as _perf_counter
from typing import Any

import numpy as np

from .. import autograd, backend, hooks
from .. import blas as _blas
from ..array_backward import array_namespace
from ..creation_random import Draw as _Draw
from ..creation_random import Generator as _Generator
from ..creation_random import _default_generator
from ..ops import activation as _ops_activation
from ..ops import indexing as _ops_indexing
from ..ops import linear as _ops_linear
from ..ops import loss as _ops_loss
from ..ops import shape as _ops_shape
from ..ops.untracked import Guarded, GuardFailed
from ..optim import clip as _clip
from ..tensor import Tensor as _Tensor
from . import attach, codegen, fusion, linear_t, replay_kernels
from .fusion import FusedChain
from .mask_read import MaskRead
from .recorder import Backward, Call, Forward, Recording, View, Write, _Out
from .threads import ThreadPlan

_FREED = autograd._FREED
_GetItem = _ops_indexing.GetItem
_Relu = _ops_activation.Relu
_CrossEntropy = _ops_loss.SoftmaxCrossEntropy
# replay kernels called as (op, *arrays)
_OP_KERNELS = frozenset({"sdpa", "ln", "linear", "ce", "relu"})
_RESHAPES = frozenset({_ops_shape.Reshape, _ops_shape.Squeeze, _ops_shape.SqueezeAll,
                       _ops_shape.SqueezeDims, _ops_shape.Unsqueeze})  # fmt: skip
_getrefcount = sys.getrefcount
_ndarray = np.ndarray
_Linear = _ops_linear.Linear
# Programs made from now on replay through generated code (`codegen`) from their second replay;
# False: the interpreter (`Program._run`) only. A program's own `codegen` attribute decides.
CODEGEN = [True]


class _Box:
    """What a replayed node saves instead of an input Tensor: just the array."""

    __slots__ = ("_data", "_version")

    def __init__(self) -> None:
        self._data = None
        self._version = 0


class Pool:
    """Reusable output buffers keyed by (shape, dtype); see the module docstring."""

    LIMIT = 64  # buffers kept per key; beyond it arrays are allocated unpooled

    def __init__(self) -> None:
        self.free: dict[tuple, list] = {}
        self.handed = 0  # values written into pool buffers (the calls' count)
        self.allocated = 0  # distinct buffers ever allocated

    def get(self, shape, dtype):
        key = (shape, dtype)
        bufs = self.free.get(key)
        if bufs is None:
            bufs = self.free[key] = []
        self.handed += 1
        for b in bufs:
            # Referenced by the list, the loop variable and getrefcount's argument only.
            if _getrefcount(b) == 3:
                return b
        b = np.empty(shape, dtype)
        self.allocated += 1
        if len(bufs) < self.LIMIT:
            bufs.append(b)
        return b


# Ops whose forward is exactly one binary or unary ufunc of their (array) inputs, or of the input
# and the op's cached scalar array `ca`: the ufunc with out= gives eager's bits.
_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
# (SubScalar and ExactDivScalar compute x + (-c) and x * (1 / c): ops/arithmetic.py)
_SCALAR = {"AddScalar": np.add, "MulScalar": np.multiply, "DivScalar": np.divide,
           "SubScalar": np.add, "ExactDivScalar": np.multiply}  # fmt: skip
_RSCALAR = {"RSubScalar": np.subtract}  # c - x: the scalar is the first operand
_UNARY = {"Neg": np.negative}


def _ufunc_plan(op, ins_arrays):
    """[ufunc, operand form, (shape, dtype) of the result once known] when op's forward is one
    ufunc over these arrays, else None."""
    name = type(op).__name__
    # (ReLU has none: its forward, backend.clamp_min_zero, keeps -0.0, which maximum(x, 0)
    # into a pool buffer did not; with fuse, replay_kernels.relu_plan's select runs)
    if type(op).__module__ != "descent.ops.arithmetic":
        return None
    if name in _BINARY and len(ins_arrays) == 2:
        return [_BINARY[name], 2, None]
    if name in _SCALAR and len(ins_arrays) == 1 and type(op.ca) is _ndarray:
        return [_SCALAR[name], 1, None]
    if name in _RSCALAR and len(ins_arrays) == 1 and type(op.ca) is _ndarray:
        return [_RSCALAR[name], 3, None]
    if name in _UNARY and len(ins_arrays) == 1:
        return [_UNARY[name], 0, None]
    return None


class Program:
    """A recorded call, ready to replay (see the module docstring)."""

    def __init__(self, rec: Recording, n_args: int, use_pool: bool = True,
                 fuse: bool = True, exact: bool = False) -> None:  # fmt: skip
        if rec.hoisted:  # guarded ops run before the first step they do not depend on
            moved = {id(i) for i in rec.hoisted}
            prog = [i for i in rec.program if id(i) not in moved]
            k = next(j for j, i in enumerate(prog) if i is rec.hoist_before)
            rec.program = prog[:k] + list(rec.hoisted) + prog[k:]
            rec.hoisted = []
        self.rec = rec
        self.n_slots = len(rec.slots)
        self.arg_slots = [(s.arg, i) for i, s in enumerate(rec.slots) if s.kind == "arg"]
        self.consts = [(i, s.value) for i, s in enumerate(rec.slots) if s.kind == "const"]
        self.copies = tuple(rec.copies)  # consts the call writes: a fresh copy per call
        self.live = [(s, t, t._data.shape, t._data.dtype) for s, t in rec.live]
        self.pool = Pool() if use_pool else None
        self.fuse = fuse and fusion._HAVE_NUMBA
        self.exact = exact  # True: only kernels that give eager's bits (all of them today)
        self.fused: list[FusedChain] = []
        self.threads = ThreadPlan()  # one thread or every core for the Tuned sites
        self._backward_meta: dict = {}  # id(Backward) -> _delivery_meta, at the first replay
        self._plain_backward: dict = {}  # id(Backward) -> _plain_plan (or False), likewise
        self.plain = True  # False: every pass takes the general path (benchmarks' A/B)
        self.ln_backward: dict = {}  # id(LayerNorm op) -> its backward (replay_kernels.ln_plan)
        self.gelu_backward: dict = {}  # id(Gelu op) -> its Tuned backward (set at first replay)
        # Linear sites in the transposed layout (`linear_t`): on/off (benchmarks' A/B), the
        # slots a Linear reads as its input, and this call's transposed twins of slots
        self.linear_t = True
        self._twin_want: frozenset = frozenset()
        self._twins: dict = {}
        self.steps = self._compile_steps()
        # The generated replay (`codegen.build`), made after the first replay has decided the
        # plans: None until then, False where it is not made; `codegen` False keeps the
        # interpreter (the reference; benchmarks' A/B). `generated_runs` counts its calls.
        self.codegen = CODEGEN[0]
        self.generated = None
        self.generated_runs = 0
        self.codegen_error: BaseException | None = None
        self._replays = 0
        # What a replay stopped by a guard after a draw, a backward pass or a write into the
        # caller's memory must put back (`_undo_plan`); None when no guard follows such a step
        self.undo = _undo_plan(rec.program)
        self._write_log: list | None = None  # (array, its old values) per journaled write
        # clip_grad_norm_ Calls whose scaling the step Call right after them folds into its
        # kernels (`_fold_clip`): id(clip Call) -> that step Call; and the scaling left for it
        self._clip_next = {
            id(a): b for (a, _, _), (b, _, _) in zip(self.steps, self.steps[1:])
            if type(a) is Call and a.kind == "clip_grad_norm_" and type(b) is Call
            and b.kind == "step"
        }  # fmt: skip
        self._clip_pending: tuple | None = None

    # -- building --------------------------------------------------------------------------
    def _compile_steps(self) -> list:
        """Each instruction with the slots to drop after it (their last use)."""
        last: dict[int, int] = {}
        reads: dict[int, int] = {}
        readers: dict[int, list] = {}
        prog = self.rec.program
        for k, ins in enumerate(prog):
            for s in _reads(ins):
                last[s] = k
                reads[s] = reads.get(s, 0) + 1
                readers.setdefault(s, []).append(k)
        keep = set(_result_slots(self.rec.result))
        for _, _, template in self.rec.attrs:
            keep.update(_result_slots(template))
        # attention outputs written in their transpose's layout (replay_kernels.sdpa_layouts)
        self.sdpa_layouts = replay_kernels.sdpa_layouts(prog, readers, keep) if self.fuse else {}
        for s in keep:
            reads[s] = reads.get(s, 0) + 1
        drops: list[list] = [[] for _ in prog]
        for s, k in last.items():
            if s not in keep:
                drops[k].append(s)
        chains = {}
        if self.fuse:
            for first, end, chain in fusion.plan(prog, self.rec.meta, reads):
                chains[first] = (end, chain)
                self.fused.append(chain)
        steps = []
        k = 0
        while k < len(prog):
            if k in chains:  # one kernel for instructions k..end
                end, chain = chains[k]
                dropped = tuple(s for j in range(k, end + 1) for s in drops[j])
                steps.append((chain, dropped, None))
                k = end + 1
                continue
            ins = prog[k]
            k += 1
            extra = None
            if isinstance(ins, Forward):
                boxes = None
                if ins.node and ins.op.save_inputs:
                    boxes = tuple(_Box() for _ in ins.ins)
                # [boxes, ufunc plan (decided at the first replay), _pair_linear_relu's mark,
                #  a Linear's `linear_t.Site` (0: undecided, None: eager's product)]
                extra = [boxes, None, None, 0]
            steps.append((ins, tuple(drops[k - 1]), extra))
        if self.fuse and self.pool is not None:
            _pair_linear_relu(steps, reads, keep)
            self._twin_want = frozenset(ins.ins[0] for ins in prog
                                        if type(ins) is Forward and type(ins.op) is _Linear)
        return steps

    # -- running ---------------------------------------------------------------------------
    def guard_live(self) -> str | None:
        """None when every captured tensor still has its recorded shape and dtype."""
        for _, t, shape, dtype in self.live:
            d = t._data
            if d.shape != shape or d.dtype != dtype:
                return f"a captured tensor changed from {shape} {dtype} to {d.shape} {d.dtype}"
        return None

    def run(self, arg_arrays: list):
        env: list[Any] = [None] * self.n_slots
        for a, s in self.arg_slots:
            env[s] = arg_arrays[a]
        for s, t, _, _ in self.live:
            env[s] = t._data
        for s, v in self.consts:
            env[s] = v
        for s in self.copies:  # (a factory's tensor written in the call: recorder.Recording)
            env[s] = env[s].copy()
        pool = self.pool
        undo = self.undo
        if undo is not None:
            saved = _undo_begin(undo)
            self._write_log = saved[2]
        t0 = self.threads.begin()
        # NumPy's floating-point warnings silenced, as eager silences them around every op and
        # backward pass (autograd._QUIET; PyTorch is silent): replays warned where eager did not
        quiet = autograd._quiet_on(autograd._QUIET)
        try:
            gen = self.generated
            if gen is None and self._replays and self.codegen:
                gen = self._generate()
            self._replays += 1
            if gen and self.codegen:
                self.generated_runs += 1
                gen(self, env, pool)
            else:
                self._run(env, pool)
        except GuardFailed:
            if undo is not None:
                _undo_end(saved)
            raise
        finally:
            autograd._quiet_off(quiet)
            self.threads.end(t0)
            if self._twins:
                self._twins.clear()
            self._write_log = None
        for obj, name, template in self.rec.attrs:  # what eager's call set on the modules
            setattr(obj, name, _build(template, env))
        return _build(self.rec.result, env)

    def _generate(self):
        """Build the generated replay once (`codegen.build`); False where it is not made (no
        pool, or the generator failed: then the interpreter runs and `codegen_error` says why)."""
        try:
            gen = codegen.build(self) or False
        except Exception as e:  # noqa: BLE001 - the interpreter is always a correct replay
            self.codegen_error = e
            gen = False
        self.generated = gen
        return gen

    def _run(self, env, pool) -> None:
        for ins, drops, extra in self.steps:
            kind = type(ins)
            if kind is Forward:
                self._forward(ins, extra, env, pool)
            elif kind is Backward:
                self._backward(ins, env, pool)
            elif kind is FusedChain:
                fusion.run(ins, env, pool)
            elif kind is View:
                base = env[ins.base]
                if type(base) is _ndarray:
                    env[ins.slot] = np.ndarray(ins.shape, base.dtype, base, ins.offset,
                                               ins.strides)  # fmt: skip
                else:  # CuPy: the same view of the device buffer
                    env[ins.slot] = type(base)(ins.shape, base.dtype, base.data + ins.offset,
                                               ins.strides)  # fmt: skip
            elif kind is Write:
                _replay_write(self, ins, env)
            else:
                self._call(ins, env)
            for s in drops:
                env[s] = None

    def _forward(self, ins: Forward, extra, env, pool) -> None:
        op = ins.op
        pair = extra[2]
        if pair is _DONE_BY_LINEAR and env[ins.out] is not None:
            return  # a ReLU its Linear's step computed (`_linear_relu`)
        arrays = [env[s] for s in ins.ins]
        for name, s in ins.binds:
            if type(s) is int:
                setattr(op, name, env[s])
            else:  # a tuple parameter holding arrays (recorder._items)
                setattr(op, name, tuple([env[v] if slot else v for slot, v in s[1]]))
        plan = extra[1]
        if plan is None:
            plan = extra[1] = self._plan(op, arrays, pool, ins.node,
                                         self.sdpa_layouts.get(id(ins)))  # fmt: skip
        if (pair is not None and pair is not _DONE_BY_LINEAR and plan
                and self._linear_relu(ins, pair, arrays, env, pool)):  # fmt: skip
            if ins.node:  # what Linear's backward reads: its inputs
                boxes = extra[0]
                for box, a in zip(boxes, arrays):
                    box._data = a
                op.saved = boxes
            return
        out = None
        if self._twins and extra[3] is not None and type(op) is _Linear and self.linear_t:
            out = self._linear_twin(ins, extra, arrays, env, pool)
            if out is not None:
                plan = None
        if plan and type(plan[0]) is str and out is None:
            # a replay kernel: ("gelu", fwd, bwd), ("sdpa", fwd), ...
            x = arrays[0]
            if plan[0] == "gelu":
                if type(x) is _ndarray and x.flags.c_contiguous:
                    out = plan[1](x)
            elif plan[0] in _OP_KERNELS:
                out = plan[1](op, *arrays)
            plan = None
        if plan and pool is not None:
            ufunc, form, out_meta = plan
            if form == 2:
                a, b = arrays
                operands = (a, b)
            elif form == 1:
                operands = (arrays[0], op.ca)
            elif form == 3:
                operands = (op.ca, arrays[0])
            else:
                operands = (arrays[0],)
            # (C-contiguous operands only: a ufunc on a strided view writes its result in the
            # view's memory order, and a later reduction sums in that order; a C-ordered pool
            # buffer changed the sum's rounding: (rot90(x).exp() * 1.7).mean(), helper-138)
            if all(type(x) is _ndarray and x.flags.c_contiguous for x in arrays):
                if out_meta is None:  # a program's shapes and dtypes are fixed: once
                    out_meta = plan[2] = (np.broadcast_shapes(*[np.shape(x) for x in operands]),
                                          np.result_type(*operands))  # fmt: skip
                shape, dt = out_meta
                if shape:  # 0-d results stay NumPy's (a fresh 0-d array)
                    out = ufunc(*operands, out=pool.get(shape, dt))
        if out is None:
            out = op.forward(*arrays)
            if type(out) is not _ndarray and isinstance(out, np.generic):
                out = np.asarray(out)
        env[ins.out] = out
        if ins.node:
            boxes = extra[0]
            if boxes is not None:
                for box, a in zip(boxes, arrays):
                    box._data = a
                op.saved = boxes
            if op.save_output:
                op.out_data = out

    def _linear_relu(self, ins: Forward, pair: list, arrays, env, pool) -> bool:
        """A Linear with bias whose output only the next step's ReLU reads
        (`_pair_linear_relu`): the product, then the bias add and ReLU in one pass in place
        (fusion.bias_relu_kernel), written to the ReLU's slot (its step then finds it there
        and returns) and kept as the ReLU node's output. False, with nothing done, where it
        does not apply (then the two steps run as recorded)."""
        relu, k, relu_extra, site = pair
        x, w, b = arrays
        if k is None:  # first replay: eager's forward is linear_forward_plan's and a select?
            k = False
            rp = type(x) is _ndarray and replay_kernels.relu_plan(
                relu.op, [np.empty(1, x.dtype)], pool)  # its dtype: what the plan decides on
            if rp and replay_kernels.linear_forward_plan(ins.op, arrays, pool):
                k = fusion.bias_relu_kernel() or False
                if k and relu_extra[1] is None:
                    relu_extra[1] = rp  # the ReLU step's own plan, for a call that falls back
            pair[1] = k
        if not k or type(x) is not _ndarray or type(w) is not _ndarray or type(b) is not _ndarray:
            return False
        n = w.shape[0]
        if not x.dtype == w.dtype == b.dtype or b.shape != (n,):
            return False
        if site == 0:  # first replay: the transposed layout (linear_t) where it gives the bits
            site = pair[3] = linear_t.plan(x, w, b, True, pool)
        timing = False  # this call times eager's product for the site's choice
        if site is not None and self.linear_t and x.flags.c_contiguous:
            twins = self._twins
            xt = twins.pop(ins.ins[0], None) if twins else None
            if xt is not None and (xt.shape != (site.k, site.m) or xt.dtype != site.dtype):
                xt = None
            # the site's trials wait for the thread plan's (its first calls run both plans)
            settled = self.threads.choice >= 0
            if xt is not None or site.copies():
                timing = xt is None and site.copy_ok is None and settled
                t0 = _perf_counter() if timing else 0.0
                y, yt = site.run(x.reshape(site.m, site.k), w, b, xt, pool)
                if timing:
                    site.timed(True, _perf_counter() - t0)
                if relu.out in self._twin_want:
                    twins[relu.out] = yt  # the next Linear's input, transposed
                out = y.reshape(x.shape[:-1] + (n,))
                env[relu.out] = out
                if relu.node:
                    relu.op.out_data = out
                return True
            timing = site.copy_ok is None and settled
        t0 = _perf_counter() if timing else 0.0
        x2 = x.reshape((-1, w.shape[1]))
        y = _blas.matmul(x2, w.T, out=pool.get((x2.shape[0], n), x2.dtype))
        k(y.reshape(-1), b, n)
        if timing:
            site.timed(False, _perf_counter() - t0)
        out = y.reshape(x.shape[:-1] + (n,))
        env[relu.out] = out
        if relu.node:
            relu.op.out_data = out
        return True

    def _linear_twin(self, ins: Forward, extra, arrays, env, pool):
        """A Linear (without its ReLU) whose input the previous Linear left transposed in
        `_twins`: y from W @ xT (`linear_t`), or None (eager's product runs)."""
        xt = self._twins.pop(ins.ins[0], None)
        if xt is None or len(arrays) != 2 + ins.op.has_b:
            return None
        x, w = arrays[0], arrays[1]
        b = arrays[2] if ins.op.has_b else None
        site = extra[3]
        if site == 0:
            site = extra[3] = linear_t.plan(x, w, b, False, self.pool)
        if (site is None or type(x) is not _ndarray or not x.flags.c_contiguous
                or xt.shape != (site.k, site.m) or xt.dtype != site.dtype):  # fmt: skip
            return None
        y, yt = site.run(x.reshape(site.m, site.k), w, b, xt, pool)
        if ins.out in self._twin_want:
            self._twins[ins.out] = yt
        return y.reshape(x.shape[:-1] + (site.n,))

    def _plan(self, op, arrays, pool, node: bool = True, axes=None):
        """How this op's forward runs on replay (decided at the first replay): a ufunc into a
        pool buffer, a replay kernel (`replay_kernels`: eager's loops), GELU's every-core
        twin, or False (the op's own forward)."""
        if self.fuse:  # one numba pass instead of NumPy's maximum (bitwise: replay_kernels)
            plan = replay_kernels.relu_plan(op, arrays, pool)
            if plan:
                return plan
        plan = _ufunc_plan(op, arrays)
        if plan or not self.fuse:
            return plan or False
        plan = replay_kernels.ln_plan(op, arrays, self.pool)  # bitwise: exact mode too
        if plan:
            self.ln_backward[id(op)] = plan[2]
            return plan
        plan = replay_kernels.linear_forward_plan(op, arrays, pool)  # bitwise: exact too
        if plan:
            return plan
        plan = replay_kernels.ce_plan(op, arrays, pool)  # bitwise: exact too
        if plan:
            return plan
        plan = replay_kernels.plan(op, arrays, pool, node, axes)
        if plan and plan[0] == "gelu" and plan[2] is not None:
            self.gelu_backward[id(op)] = plan[2]
        return plan or False

    def _backward(self, ins: Backward, env, pool) -> None:
        seed = env[ins.seeds[0][1]] if ins.seeds else None
        plain = self._plain_backward.get(id(ins))
        if plain is None and type(seed) is _ndarray and pool is not None:
            plain = self._plain_backward[id(ins)] = _plain_plan(self, ins)
        if plain and type(seed) is _ndarray and self.plain:
            return _plain_backward(plain, self, ins, env, pool)
        # The array namespace of the pass (CuPy's on a GPU), as the engine picks it.
        ops = array_namespace(np if type(seed) is _ndarray else backend.get_array_module(seed))
        grads: dict = {}
        leaf_grads: dict = {}

        def deliver(parent, gx, shape):
            if gx.shape != shape:
                gx = ops.sum_to(gx, shape)
            if isinstance(parent, autograd.Function):
                prev = grads.get(parent)
                if prev is None:
                    grads[parent] = gx
                else:  # out of place, into a pool buffer (never into prev or gx: shared)
                    grads[parent] = _add(prev, gx, pool)
            else:
                prev = leaf_grads.get(parent)
                leaf_grads[parent] = gx if prev is None else _add(prev, gx, pool)

        for target, s in ins.seeds:
            g = env[s]
            deliver(target, g, g.shape)
        retain = ins.retain_graph
        gelu = self.gelu_backward
        lnb = self.ln_backward
        received, deliveries_of, partition, attn = self._meta_of(ins)
        if not pool:
            partition, attn = _NO_PARTITION, None
        done: set = set()  # slice nodes whose gradient a reshape's backward already added
        for node, deliveries in ins.order:
            if done and node in done:
                continue
            gy = grads.pop(node)
            if (type(node) in _RESHAPES and pool and type(gy) is _ndarray and len(deliveries) == 1
                    and not gy.flags.c_contiguous):  # fmt: skip
                child = deliveries[0][1]  # the reshape's input: a slice's output?
                if type(child) is _GetItem and child.basic and received.get(child) == 1:
                    (_, src, src_shape), = deliveries_of[child] or ((None, None, None),)
                    if isinstance(src, autograd.Function) and _reshaped_slice_gradient(
                            grads, src, child, gy, src_shape, pool,
                            src in partition):  # fmt: skip
                        done.add(child)
                        continue
            if type(node) is _GetItem and node.basic and type(gy) is _ndarray and pool:
                parent = deliveries[0][1] if deliveries else None
                if _slice_target(node, parent):
                    _slice_gradient(grads, parent, node, gy, deliveries[0][2], pool,
                                    parent in partition)
                    continue
            into = attn.get(node) if attn else None
            buf = None
            if into is not None and type(gy) is _ndarray:
                buf = replay_kernels.sdpa_backward_into(node, gy, into, pool, ops)
            site = gelu.get(id(node)) if gelu else None
            if buf is not None:
                # gq, gk, gv written into the qkv gradient: its transpose, reshape and slice
                # nodes are skipped (replay_kernels.sdpa_grad_plan)
                grads[into[0]] = buf
                done.update(into[3])
                gxs, deliveries = (), ()
            elif site is not None and type(gy) is _ndarray:
                gxs = site(node.saved[0]._data, gy)  # GELU's backward, tuned (see fusion)
            elif (lnb and type(gy) is _ndarray and id(node) in lnb
                    and node.mean is not None):  # fmt: skip
                gxs = lnb[id(node)](node, gy)  # layer norm's kernel without its wrappers
            elif type(node) is _Relu and pool and type(gy) is _ndarray:
                gxs = replay_kernels.relu_backward(node, gy, pool)  # eager's kernel, out=
                if gxs is None:
                    gxs = node.backward(gy, ops)
            elif type(node) is _CrossEntropy and pool and self.fuse:
                gxs = replay_kernels.ce_backward(node, gy, pool)  # eager's kernel, out=
                if gxs is None:
                    gxs = node.backward(gy, ops)
            else:
                gxs = node.backward(gy, ops)
            if node._saves and not retain:
                node._free_saved()
            if type(gxs) is not tuple:
                gxs = (gxs,)
            for i, parent, shape in deliveries:
                deliver(parent, gxs[i], shape)
        # The engine's rules for `.grad` (run_backward's end), for the same leaves in order.
        seen: set = set()
        new = autograd._new_tensor
        for leaf, gs, was_none in zip(ins.leaves, ins.grad_slots, ins.was_none):
            g = leaf_grads[leaf]
            if g.dtype != leaf._data.dtype:
                g = g.astype(leaf._data.dtype)
            if was_none or leaf.grad is None:
                if id(g) in seen or not backend.owns_data(g):
                    g = g.copy()
                seen.add(id(g))
                leaf.grad = new(g)
            else:
                leaf.grad = new(leaf.grad._data + g)
            env[gs] = leaf.grad._data

    def _meta_of(self, ins: Backward):
        """The pass's delivery facts (`_delivery_meta`) and attention plan, made once."""
        meta = self._backward_meta.get(id(ins))
        if meta is None:
            meta = _delivery_meta(ins)
            attn = replay_kernels.sdpa_grad_plan(ins.order, *meta) if self.fuse else {}
            meta = self._backward_meta[id(ins)] = (*meta, attn)
        return meta

    def _call(self, ins: Call, env) -> None:
        clip = self._clip_pending
        if clip is not None:  # clipping's scaling, left by `_fold_clip` for this step
            self._clip_pending = None
        if ins.kind == "step" and ins.fused is not False:
            opt = getattr(ins.fn, "__self__", None)
            if ins.fused is None:
                ins.fused = fusion.fused_update(opt) if self.fuse else None
                ins.fused = ins.fused or False
            if ins.fused:
                # Adam/AdamW: the step without the optimizer's Python when nothing it decides
                # from changed since the last one (fusion.AdamFastStep), else its own step
                fast = getattr(ins.fused, "fast", None)
                if fast is not None and fast(ins.args, ins.kwargs, clip):
                    return  # (clip's scaling applied)
                if clip is not None:  # (declined: nothing changed)
                    _clip.scale(*clip)
                    clip = None
                # The optimizer's own step() with its rule replaced by one kernel for the
                # duration of the call (an instance attribute shadows the method); for Adam
                # also its per-buffer step, which reads the gradients where they are instead
                # of copying them into its flat buffer (fusion.adam_step_buffer).
                opt._update = ins.fused
                sb = getattr(ins.fused, "step_buffer", None)
                if sb is not None:
                    opt._step_buffer = sb
                try:
                    ins.fn(*ins.args, **ins.kwargs)
                finally:
                    del opt._update
                    if sb is not None:
                        del opt._step_buffer
                if fast is not None and fast.relearn:
                    fast.learn()  # what this step saw, for the next one
                return
        if clip is not None:
            _clip.scale(*clip)
        if ins.kind == "clip_grad_norm_" and self._fold_clip(ins):
            out, grads, coef = _clip._norm_and_coef(*ins.args, **ins.kwargs)
            if coef is not None:
                self._clip_pending = (grads, coef)
        else:
            out = ins.fn(*ins.args, **ins.kwargs)
        if ins.out is not None:
            env[ins.out] = out._data if hasattr(out, "_data") else out

    def _fold_clip(self, ins: Call) -> bool:
        """Whether this clip_grad_norm_ Call leaves its scaling to the step Call right after it
        (session 29, helper-214): descent's own clip_grad_norm_ on the CPU, before an Adam/AdamW
        step whose replay runs `fusion.AdamFastStep` (its plan made at an earlier replay). That
        step scales each gradient in its kernel as it reads it, or scales them all first when it
        cannot (`AdamFastStep.__call__`); any other path scales them before the step runs. The
        gradients, parameters and state are bitwise what the two calls make."""
        nxt = self._clip_next.get(id(ins))
        if nxt is None or not FOLD_CLIP[0] or attach.unpatched(ins.fn) is not _CLIP_NORM:
            return False
        fused = nxt.fused
        fast = getattr(fused, "fast", None) if fused else None
        return fast is not None and fast.plan is not None

    def release(self) -> None:
        """Drop what replayed nodes still hold (a program evicted from the cache)."""
        for ins, _, _ in self.steps:
            if isinstance(ins, Forward) and ins.node:
                ins.op.saved = _FREED
                ins.op.out_data = None


# -- the backward pass from a plan made once ------------------------------------------------------
# `Program._backward`'s general path checks, for every node of every pass, which of its rewrites
# applies (a slice's gradient added at its index, attention's gradients written into qkv's,
# GELU's and layer norm's kernels), keeps gradients in dicts keyed by node and leaf (a leaf
# Tensor hashes in Python) and stores `.grad` through the property's checks: ~60 us of Python a
# step for the MLP 784-256-256-10, ~0.6 ms for baby-gpt's 91 nodes and 27 leaves. `_plain_plan`
# decides those questions once per pass: each node's kernel by its type and the program's plans
# (the slice rewrites, attention's plan, the GELU and layer norm sites, Linear's products,
# ReLU's and cross-entropy's kernels, a transpose's inverse permutation) and every delivery's
# target as an index. `_plain_backward` runs that list with the gradients in a list indexed by
# node and stores `.grad` directly where the property's checks are known to pass. What depends
# on the call's arrays (a kernel that declines: attention with dropout, a layer norm without
# its statistics) is checked as the general path checks it, and a kernel that declines falls
# back to the node's own backward, so the same arrays meet in the same order: the general
# path's bits, which are eager's. The general path remains for what the plan does not cover:
# no pool, a CuPy pass, a delivery to a node the pass never visits.

_RELU, _CE, _LINEAR, _OTHER, _SLICE, _RESHAPE, _SDPA, _GELU, _LN, _TRANSPOSE = range(10)
_GRAD_PROP = None  # Tensor.grad (the property): `.grad` is stored directly only through it
_Transpose = _ops_shape.Transpose
_IN_PLACE = [True]  # gradient sums into an unshared first operand (False: benchmarks' A/B)
# Session 28 (helper-206): a layer norm's input gradient is summed into the residual stream's
# gradient `prev`, which the block's products have just read on both cores at two BLAS threads;
# writing into `prev` then costs a cache-line transfer per line from the other core (the in-place
# add of 768 x 128 float32 after two-thread products: 118 us, after one-thread ones 20). The
# kernel's own output, just written on this core, takes the sum instead (19 us): np.add(prev, gx,
# out=gx), the same addition (docs/compile.md, session 28). False: into prev (benchmarks' A/B).
_INTO_FRESH = [True]
# The generated replay's ufuncs write into an operand that dies at their step where nothing
# else holds it (codegen._forward); the interpreter allocates. False: a pool buffer (A/B).
_INTO_DEAD = [True]
# Session 29 (helper-214): clip_grad_norm_'s scaling folded into the Adam/AdamW step's kernels
# that follow it (`Program._fold_clip`). False: clipping scales as eager does (benchmarks' A/B).
FOLD_CLIP = [True]
_CLIP_NORM = _clip.clip_grad_norm_


def _plain_plan(prog, ins: Backward):
    """([(node, kind, its index, its deliveries as (input, target index, shape), whether it
    saves, the kind's data, whether it may receive nothing), ...], the seeds, the leaves (with
    whether each `.grad` may be stored directly), the number of indices); False when the pass
    needs the general path (no pool, a seed on a leaf, a delivery to a node it never visits)."""
    global _GRAD_PROP
    if _GRAD_PROP is None:
        from ..tensor import Tensor  # noqa: PLC0415 - the engine's Tensor, loaded by then

        _GRAD_PROP = Tensor.__dict__["grad"]
    if prog.pool is None:
        return False
    received, deliveries_of, partition, attn = prog._meta_of(ins)
    index: dict = {}
    for node, _ in ins.order:
        index[id(node)] = len(index)
    for target, _ in ins.seeds:
        if id(target) not in index:
            return False
    for leaf in ins.leaves:
        index.setdefault(id(leaf), len(index))
    # Nodes whose gradient a rewrite may deliver past them (attention's gq, gk, gv into qkv's
    # gradient; a reshape's gradient added straight into its slice's source): when it did, they
    # receive nothing and are skipped, as the general path's `done` set skips them.
    skippable = set()
    for into in attn.values():
        skippable.update(id(n) for n in into[3])
    nodes = []
    for node, deliveries in ins.order:
        dels = []
        for i, parent, shape in deliveries:
            t = index.get(id(parent))
            if t is None:  # a parent the pass never visits: the general path's dict keeps it
                return False
            dels.append((i, t, shape))
        kind, aux, cls = _OTHER, None, type(node)
        if cls is _Relu:
            kind = _RELU
        elif cls is _CrossEntropy:
            kind = _CE
        elif cls is _Linear:
            kind = _LINEAR
        elif node in attn:  # attention's plan (replay_kernels.sdpa_grad_plan)
            into = attn[node]
            kind, aux = _SDPA, (into, index[id(into[0])])
        elif id(node) in prog.gelu_backward:  # looked up at each call, as the general path
            kind, aux = _GELU, id(node)
        elif id(node) in prog.ln_backward:
            kind, aux = _LN, id(node)
        elif cls is _GetItem and node.basic and deliveries and _slice_target(node,
                                                                            deliveries[0][1]):
            parent = deliveries[0][1]
            kind, aux = _SLICE, (dels[0][1], deliveries[0][2], parent in partition)
        elif cls in _RESHAPES and len(deliveries) == 1:
            child = deliveries[0][1]  # the reshape's input: a slice's output read once?
            if type(child) is _GetItem and child.basic and received.get(child) == 1:
                (_, src, src_shape), = deliveries_of[child] or ((None, None, None),)
                if isinstance(src, autograd.Function):
                    kind, aux = _RESHAPE, (child, index[id(src)], src_shape, src in partition)
                    skippable.add(id(child))
        elif cls.backward is _Transpose.backward:  # Transpose, Permute, MatrixT
            inverse = tuple(int(a) for a in np.argsort(node.axes))
            kind, aux = _TRANSPOSE, None if inverse == tuple(range(len(inverse))) else inverse
        nodes.append([node, kind, index[id(node)], tuple(dels), node._saves, aux])
    nodes = tuple((*entry, id(entry[0]) in skippable) for entry in nodes)
    seeds = tuple((index[id(t)], s) for t, s in ins.seeds)
    leaves = tuple((leaf, index[id(leaf)], gs, was_none,
                    type(leaf).__dict__.get("grad", _GRAD_PROP) is _GRAD_PROP
                    and getattr(type(leaf), "grad", None) is _GRAD_PROP)
                   for leaf, gs, was_none in zip(ins.leaves, ins.grad_slots, ins.was_none))
    return (nodes, seeds, leaves, len(index))


def _plain_backward(plan, prog, ins: Backward, env, pool) -> None:
    """`Program._backward` for a pass `_plain_plan` accepted (see above)."""
    nodes, seeds, leaves, n = plan
    ops = _np_ops()
    sum_to = ops.sum_to
    fuse = prog.fuse
    gelu, lnb = prog.gelu_backward, prog.ln_backward
    grads: list = [None] * n
    for t, s in seeds:
        g = env[s]
        prev = grads[t]
        grads[t] = g if prev is None else _add(prev, g, pool)
    retain = ins.retain_graph
    in_place = _IN_PLACE[0]
    into_fresh = in_place and _INTO_FRESH[0]
    for node, kind, k, deliveries, saves, aux, may_skip in nodes:
        gy = grads[k]
        if gy is None:
            if may_skip:  # a rewrite above delivered its gradient past it
                continue
            raise KeyError(node)  # as the general path's grads.pop
        grads[k] = None
        gxs = None
        if type(gy) is _ndarray:
            if kind == _LINEAR:
                saved = node.saved
                # Linear.backward without its wrappers: _grads on the saved arrays (float16
                # computes in float32 there: its own backward)
                if type(saved) is tuple and gy.dtype.kind == "f" and gy.dtype.itemsize >= 4:
                    x, w = saved[0]._data, saved[1]._data
                    if (type(x) is _ndarray and x.ndim == gy.ndim >= 2 and x.shape[-1]
                            and gy.shape[-1] and x.dtype == gy.dtype and type(w) is _ndarray
                            and w.dtype == gy.dtype):  # fmt: skip
                        gxs = _linear_grads(node, gy, x, w)
                    else:
                        gxs = node._grads(gy, x, w, ops)
                    x = w = None
            elif kind == _SLICE:  # added at its index into the source's gradient
                t, shape, fill = aux
                _slice_gradient(grads, t, node, gy, shape, pool, fill)
                continue
            elif kind == _RESHAPE:
                if not gy.flags.c_contiguous:  # through a view of the slice, not a copy
                    child, t, shape, fill = aux
                    if _reshaped_slice_gradient(grads, t, child, gy, shape, pool, fill):
                        continue
            elif kind == _SDPA:
                into, t = aux
                buf = replay_kernels.sdpa_backward_into(node, gy, into, pool, ops)
                if buf is not None:
                    # gq, gk, gv written into the qkv gradient: its transpose, reshape and
                    # slice nodes receive nothing and are skipped (`may_skip`)
                    grads[t] = buf
                    gxs, deliveries, buf = (), (), None
            elif kind == _GELU:
                site = gelu.get(aux)
                if site is not None:
                    gxs = site(node.saved[0]._data, gy)  # GELU's backward, tuned (fusion)
            elif kind == _LN:
                site = lnb.get(aux)
                if site is not None and node.mean is not None:
                    gxs = site(node, gy)  # layer norm's kernel without its wrappers
            elif kind == _TRANSPOSE:
                gxs = gy if aux is None else gy.transpose(aux)  # the op's backward: a view
            elif kind == _RELU:
                gxs = _relu_backward(node, gy, pool)  # eager's kernel, out=
            elif kind == _CE and fuse:
                gxs = replay_kernels.ce_backward(node, gy, pool)  # eager's kernel, out=
        elif kind == _CE and fuse:
            gxs = replay_kernels.ce_backward(node, gy, pool)
        if gxs is None:
            gxs = node.backward(gy, ops)
        gy = None
        if saves and not retain:
            node._free_saved()
        if type(gxs) is not tuple:
            gxs = (gxs,)
        for i, t, shape in deliveries:
            gx = gxs[i]
            if gx.shape != shape:
                gx = sum_to(gx, shape)
            prev = grads[t]
            if prev is None:
                grads[t] = gx
            # Into a layer norm's fresh gradient (_INTO_FRESH) when nothing else can see it:
            # held by `gxs`, `gx` and getrefcount's argument only, or also the pool's list.
            elif (into_fresh and kind == _LN and type(gx) is _ndarray and type(prev) is _ndarray
                    and _getrefcount(gx) <= 4 and prev.shape == gx.shape
                    and prev.dtype == gx.dtype and gx.base is None and gx.flags.writeable
                    and (_getrefcount(gx) == 3 or _in_pool(gx, pool))):  # fmt: skip
                np.add(prev, gx, out=gx)
                grads[t] = gx
            # Into prev itself when nothing else can see it: held by the list, `prev` and
            # getrefcount's argument only (a view, a saved input, env, another delivery of the
            # same array or `gx` would each add one), or one more when that is the pool's
            # list. np.add(prev, gx, out=prev) is the same addition as into a fresh buffer.
            elif (in_place and type(prev) is _ndarray and _getrefcount(prev) <= 4
                    and type(gx) is _ndarray and prev.shape == gx.shape
                    and prev.dtype == gx.dtype and prev.base is None and prev.flags.writeable
                    and (_getrefcount(prev) == 3 or _in_pool(prev, pool))):  # fmt: skip
                np.add(prev, gx, out=prev)
            else:
                grads[t] = _add(prev, gx, pool)
        gxs = gx = prev = None
    _store_leaf_grads(leaves, grads, env)


def _store_leaf_grads(leaves, grads, env) -> None:
    """The engine's rules for `.grad` (run_backward's end), for the same leaves in order."""
    seen: set = set()
    new = autograd._new_tensor
    direct_ok = not hooks._grad_dtypes  # no leaf has a grad_dtype of its own
    for leaf, t, gs, was_none, direct in leaves:
        g = grads[t]
        if g is None:
            raise KeyError(leaf)  # as the general path's leaf_grads[leaf]
        data = leaf._data
        if g.dtype != data.dtype:
            g = g.astype(data.dtype)
        if was_none or leaf._grad is None:
            if id(g) in seen or not (
                    g.base is None and g.flags.writeable and g.flags.c_contiguous
                    if type(g) is _ndarray else backend.owns_data(g)):  # fmt: skip
                g = g.copy()
            seen.add(id(g))
            tg = new(g)
            if direct and direct_ok and g.shape == data.shape:
                leaf._grad = tg  # what the property stores once its checks pass
            else:
                leaf.grad = tg
        else:
            leaf.grad = new(leaf._grad._data + g)
        env[gs] = leaf._grad._data


def _replay_write(prog, ins: Write, env) -> None:
    """An unrecorded in-place write, repeated (recorder.Write); the transposed twins made from
    slots before it may hold old values: made again on demand."""
    log = prog._write_log
    if log is not None and id(ins) in prog.undo[0]:  # (undone if a later guard fails)
        dst = env[ins.dst]
        log.append((dst, dst.copy()))
    ins.fn(env[ins.dst], *[_operand(k, v, env) for k, v in ins.operands])
    if prog._twins:
        prog._twins.clear()


# -- undoing a replay that a guard stopped ------------------------------------------------------
# A guarded op (x[mask]'s MaskRead, `untracked.Guarded`: nonzero, unique, bincount, one_hot
# without num_classes, ...) raises GuardFailed when a call's data give another shape; the call
# then runs another program or is recorded, from the state the caller gave it. What the
# instructions before the guard did outside the replay's own arrays is therefore put back:
# the generators' states (a Draw, dropout's mask), the `.grad` of each leaf a backward pass
# stored (stored out of place, so the old Tensor is intact), and the old values of the memory
# a Write into the caller's tensors changed (copied just before the write). Since session 24
# also optimizer steps, clipping and schedulers' steps (recorder._undoable): at the start of
# each replay a snapshot of the optimizers' parameters, gradients, state and groups, the
# schedulers' attributes and the clipped gradients, put back in place (the same arrays and
# objects: flat buffers, views and the fused step's learned plan stay valid) when a guard fails.


def _undo_plan(program):
    """(ids of the Writes to journal, leaves whose .grad to keep, generators) for the steps
    before the program's last guard, or None when none of them acts outside the replay."""
    last = -1
    for k, ins in enumerate(program):
        if type(ins) is Forward and type(ins.op) in (Guarded, MaskRead):
            last = k
    if last < 0:  # no guard: nothing stops a replay half-way (program[:-1] below would snapshot
        return None  # every optimizer state and clipped gradient on each call: ~0.9 ms, GPT)
    writes: set = set()
    leaves: dict = {}
    gens: dict = {}
    opts: dict = {}
    scheds: dict = {}
    clipped: dict = {}
    effects = False
    for ins in program[:last]:
        kind = type(ins)
        if kind is Call and ins.kind in ("step", "clip_grad_norm_", "clip_grad_value_"):
            effects = True
            obj = getattr(ins.fn, "__self__", None)
            if ins.kind != "step":  # clipping: the tensors it was given
                for a in ins.args:
                    for t in a if isinstance(a, (list, tuple)) else (a,):
                        if isinstance(t, _Tensor):
                            clipped[id(t)] = t
            elif hasattr(obj, "param_groups"):
                opts[id(obj)] = obj
            else:  # a scheduler: its attributes and its optimizer's groups
                _schedulers_in(obj, scheds, opts)
            continue
        if kind is Write and not ins.local:
            writes.add(id(ins))
            effects = True
        elif kind is Backward:
            for leaf in ins.leaves:
                leaves[id(leaf)] = leaf
            effects = True
        elif kind is Forward and type(ins.op) is _Draw:
            effects = True
            _generators_in((ins.op.args, ins.op.kwargs), gens)
        elif kind is Call and ins.kind == "dropout_mask":
            effects = True
            _generators_in((ins.args, ins.kwargs), gens)
    if not effects:
        return None
    gens[id(_default_generator)] = _default_generator  # (a draw without generator=)
    steps = (tuple(opts.values()), tuple(scheds.values()), tuple(clipped.values()))
    return (frozenset(writes), tuple(leaves.values()), tuple(gens.values()),
            steps if any(steps) else None)  # fmt: skip


def _schedulers_in(sched, scheds: dict, opts: dict, depth: int = 0) -> None:
    """Add `sched`, the schedulers it holds in lists (SequentialLR's, ChainedScheduler's,
    which step them) and their optimizers to `scheds` and `opts`."""
    scheds[id(sched)] = sched
    opt = getattr(sched, "optimizer", None)
    if opt is not None:
        opts[id(opt)] = opt
    for v in vars(sched).values():
        if depth < 4 and type(v) is list:
            for e in v:
                if hasattr(e, "optimizer") and callable(getattr(e, "step", None)):
                    _schedulers_in(e, scheds, opts, depth + 1)


def _generators_in(v, found: dict, depth: int = 0) -> None:
    """Add the descent Generators found in `v` (nested tuples, lists, dicts) to `found`."""
    if isinstance(v, _Generator):
        found[id(v)] = v
    elif depth < 4 and isinstance(v, (tuple, list)):
        for e in v:
            _generators_in(e, found, depth + 1)
    elif depth < 4 and isinstance(v, dict):
        for e in v.values():
            _generators_in(e, found, depth + 1)


def _undo_begin(undo) -> tuple:
    """What a stopped replay puts back: generator states, leaves' .grad, a write log, and the
    optimizers', schedulers' and clipped gradients' snapshot (`_steps_snapshot`)."""
    gens = [(g, g._rng.bit_generator.state) for g in undo[2]]
    grads = [(leaf, leaf._grad) for leaf in undo[1]]
    steps = None if undo[3] is None else _steps_snapshot(*undo[3])
    return (gens, grads, [], steps)


def _undo_end(saved) -> None:
    gens, grads, log, steps = saved
    for dst, old in reversed(log):  # (the first write's old values last)
        dst[...] = old
    if steps is not None:
        _steps_restore(steps)
    for leaf, g in grads:
        leaf._grad = g
    for g, state in gens:
        g._rng.bit_generator.state = state


def _tensor_snapshot(t) -> tuple:
    return (t, t._data, t._data.copy(), t._version)


def _steps_snapshot(opts, scheds, clipped) -> tuple:
    """In-place copies of what optimizer steps, schedulers' steps and clipping change: each
    parameter's values, version and `.grad` (its object and values), each state entry (the
    dict's items, its tensors' values and versions), each group's hyperparameters, the
    optimizer's and scheduler's plain attributes (lists copied)."""
    tensors: dict = {}
    for t in clipped:
        tensors[id(t)] = t
    state, groups, attrs = [], [], []
    for opt in opts:
        for g in opt.param_groups:
            hyper = {k: v for k, v in g.items() if k != "params"}
            # (a tensor lr or betas: a scheduler fills it in place)
            filled = [
                _tensor_snapshot(e)
                for v in hyper.values()
                for e in (v if type(v) is tuple else (v,))
                if isinstance(e, _Tensor)
            ]
            groups.append((g, hyper, filled))
            for p in g["params"]:
                tensors[id(p)] = p
        for st in opt.state.values():
            state.append((st, dict(st), [_tensor_snapshot(v) for v in st.values()
                                         if isinstance(v, _Tensor)]))  # fmt: skip
    for obj in (*opts, *scheds):  # (lists in place: param_groups, _layouts, _last_lr)
        plain = {k: v for k, v in vars(obj).items() if type(v) in (int, float, bool, type(None))}
        lists = [(k, v, list(v)) for k, v in vars(obj).items() if type(v) is list]
        attrs.append((obj, plain, lists))
    params = []
    for t in tensors.values():
        g = t._grad
        params.append((_tensor_snapshot(t), g, None if g is None else _tensor_snapshot(g)))
    known = {id(st) for st, _, _ in state}
    return (params, state, groups, attrs, (opts, known))


def _tensor_restore(snap) -> None:
    t, arr, old, version = snap
    cur = t._data
    if cur is not arr and (cur.shape != old.shape or cur.dtype != old.dtype):
        t._data = cur = arr  # (re-pointed to another shape: its own array back)
    cur[...] = old  # (re-pointed into a new flat buffer by the step: the values go there)
    t._version = version


def _steps_restore(saved) -> None:
    params, state, groups, attrs, (opts, known) = saved
    for opt in opts:  # a state made by the stopped step: made again by the next one
        for st in opt.state.values():
            if id(st) not in known:
                st.clear()
    for st, items, tensors in state:
        st.clear()
        st.update(items)
        for snap in tensors:
            _tensor_restore(snap)
    for p, g, gsnap in params:
        _tensor_restore(p)
        p[0]._grad = g
        if gsnap is not None:
            _tensor_restore(gsnap)
    for g, hyper, filled in groups:
        g.update(hyper)
        for snap in filled:
            _tensor_restore(snap)
    for obj, plain, lists in attrs:
        vars(obj).update(plain)
        for k, lst, items in lists:
            lst[:] = items
            setattr(obj, k, lst)


def _dead_operand(a, shape, dtype, pool) -> bool:
    """Whether the generated replay's ufunc may write its result into `a`, an operand whose
    slot dies at its step: a C-contiguous writeable array of the result's shape and dtype held
    only by env and the generated code's local (getrefcount: those, this parameter and its own
    argument, 4; 5 for a pool buffer, whose list holds one more), or such a view of the whole
    of a pool buffer that only the pool and the view hold (a Linear's reshaped output). A saved
    input, another view, an op's saved output or the caller's tensor each add a reference."""
    if (type(a) is not _ndarray or a.shape != shape or a.dtype != dtype
            or not a.flags.c_contiguous or not a.flags.writeable):  # fmt: skip
        return False
    n = _getrefcount(a)
    b = a.base
    if b is None:
        return n == 4 or (n == 5 and _in_pool(a, pool))
    # (b: the pool's list, the view's base, this local and getrefcount's argument)
    return (n == 4 and type(b) is _ndarray and b.base is None and b.size == a.size
            and b.dtype == dtype and _getrefcount(b) == 4 and _in_pool(b, pool))  # fmt: skip


def _in_pool(a, pool) -> bool:
    """Whether `a` is one of the pool's buffers (whose list holds a reference to it)."""
    for b in pool.free.get((a.shape, a.dtype), ()):
        if b is a:
            return True
    return False


def _linear_grads(node, gy, x, w):
    """`Linear._grads` for real arrays of one dtype, x (..., in) and gy (..., out) with the same
    leading dimensions: the same products and sum on the same operands (its `_fold`s are these
    reshapes; gy and x themselves when 2-D), without its checks."""
    parents = node.parents
    gy2 = gy if gy.ndim == 2 else gy.reshape((-1, gy.shape[-1]))  # (M, out)
    gx = gw = None
    if parents[0] is not None:
        gx = _blas.matmul(gy2, w)
        if gy.ndim != 2:
            gx = gx.reshape(x.shape)
    if parents[1] is not None:
        gw = _blas.matmul(gy2.T, x if x.ndim == 2 else x.reshape((-1, x.shape[-1])))  # (out, in)
    if not node.has_b:
        return (gx, gw)
    return (gx, gw, gy2.sum(axis=0) if parents[2] is not None else None)


_NP_OPS: list = [None]  # NumPy's backward namespace, made once
_CPU: list = []  # [kernels.cpu, kernels._cpu_jit] once imported


def _np_ops():
    """NumPy's backward namespace (`array_namespace(np)`), made once."""
    ops = _NP_OPS[0]
    if ops is None:
        ops = _NP_OPS[0] = array_namespace(np)
    return ops


def _relu_backward(node, gy, pool):
    """`replay_kernels.relu_backward` (eager's one-pass kernel where eager's `backend.fused`
    picks it, into a pool buffer; else None) with its modules imported once."""
    y = node.out_data
    if (type(y) is not _ndarray or y.shape != gy.shape or y.dtype != gy.dtype
            or not (y.flags.c_contiguous and gy.flags.c_contiguous) or not y.size):  # fmt: skip
        return None
    if not _CPU:
        from ..kernels import _cpu_jit, cpu  # noqa: PLC0415 - imports numba

        _CPU.extend((cpu, _cpu_jit))
    cpu, jit = _CPU
    # backend.fused(name, y, gy) for a NumPy y: the CPU kernel when fused kernels are on
    if not backend._fused_enabled or cpu.kernel("relu_backward", (y, gy)) is not cpu.relu_backward:
        return None
    out = pool.get(y.shape, y.dtype)
    jit.relu_bwd(y.reshape(-1), gy.reshape(-1), out.reshape(-1))
    return out


_DONE_BY_LINEAR = "relu after its linear"  # a paired ReLU step's mark (`_pair_linear_relu`)


def _pair_linear_relu(steps: list, reads: dict, keep) -> None:
    """Mark each Linear with bias followed by the ReLU that alone reads its output: the
    Linear's step may compute both (`Program._linear_relu`: its extra[2] = [the ReLU's
    instruction, the kernel once decided, the ReLU's extra]), the ReLU's step then returns at
    once."""
    for (ins, _, extra), (nxt, _, nextra) in zip(steps, steps[1:]):
        if (type(ins) is Forward and type(ins.op) is _Linear and type(nxt) is Forward
                and type(nxt.op) is _Relu and tuple(nxt.ins) == (ins.out,) and ins.op.has_b
                and len(ins.ins) == 3 and not ins.binds and not nxt.binds
                and reads.get(ins.out) == 1 and ins.out not in keep and extra[2] is None
                and (not ins.node or extra[0] is not None)):  # fmt: skip
            extra[2] = [nxt, None, nextra, 0]  # 0: linear_t's site, undecided
            nextra[2] = _DONE_BY_LINEAR


def _slice_target(node, parent) -> bool:
    """Whether a basic-index read's gradient goes into its parent's at its index
    (`_slice_gradient`): a parent node's, or a leaf's for a piece of a split (eager's cat,
    run_group: a leaf's zero-padded pieces summed made a piece's -0.0 +0.0; session 31)."""
    if isinstance(parent, autograd.Function):
        return True
    return node.group is not None and isinstance(parent, _Tensor)


def _slice_gradient(grads, parent, node, gy, shape, pool, fill: bool = False) -> None:
    """A basic-index read's gradient added at its index into the parent's gradient.

    Eager makes zeros of the input's shape, writes gy at the index and adds that to what the
    parent has received (qkv.split(C, dim=2): three full-size zero arrays and two full-size
    sums per attention layer). Here gy is added in place at the index, into the parent's
    gradient when nothing else holds that array (its reference count says so), else into a
    copy. The same additions in the same order: equal values (a -0.0 outside the index stays
    -0.0, where eager's + 0.0 makes it +0.0).

    `fill`: the parent's whole gradient is these slices' (`_partitions`: its only deliveries
    are basic-index reads that cover it exactly once), so each gy is copied into an unzeroed
    pool buffer: no zeros, no additions (x + 0.0 = x; only a -0.0 stays -0.0, as above).

    `grads`: the general path's dict keyed by node, or `_plain_backward`'s list (`parent` an
    index); either holds the one reference to the gradient that the count below allows."""
    prev = grads[parent] if type(grads) is list else grads.get(parent)
    if prev is not None and _widens(prev, gy):
        # gy of a wider dtype (float64 into float32): eager's sum is in gy's dtype, `prev +
        # zeros with gy at the index`; an add in place would round it to prev's dtype
        full = np.zeros(shape, gy.dtype)
        full[node.idx] = gy
        grads[parent] = prev + full
        return
    if fill:
        if prev is None:
            prev = grads[parent] = pool.get(shape, gy.dtype)
        prev[node.idx] = gy
        return
    if prev is None:
        buf = np.zeros(shape, gy.dtype)
        buf[node.idx] = gy
        grads[parent] = buf
        if node.group is not None:
            _FRESH.mark = (weakref.ref(buf), node.group)
        return
    if node.group is not None and _started_by_group(prev, node):
        prev[node.idx] = gy  # eager's cat (run_group): copied, a -0.0 kept
        return
    # Held by the dict, `prev` and getrefcount's argument only (and the pool's list when it is
    # a pool buffer); and a plain owning array of the right shape and dtype.
    pooled = any(b is prev for b in pool.free.get((shape, prev.dtype), ()))
    if not (_getrefcount(prev) <= 3 + pooled and prev.base is None and prev.flags.writeable
            and prev.shape == shape and prev.dtype == gy.dtype):  # fmt: skip
        prev = grads[parent] = _owned_copy(prev, pool)
    prev[node.idx] += gy


def _reshaped_slice_gradient(grads, parent, node, gy, shape, pool, fill: bool = False) -> bool:
    """`_slice_gradient` for the gradient of a reshape of the slice, written through a view of
    the slice in gy's shape: attention's head split reads qkv[..., a:b] (B, T, C) and reshapes
    it to (B, T, H, D); its transposed gradient is not contiguous, so the reshape's backward
    would copy it before the slice's adds it. Here it is added (or, first, copied) straight in:
    the same values, one pass instead of two. False, with nothing changed, when the slice has
    no view of gy's shape. `fill`: as `_slice_gradient`'s (copies into an unzeroed buffer)."""
    prev = grads[parent] if type(grads) is list else grads.get(parent)
    if prev is not None and _widens(prev, gy):
        return False  # the reshape's backward, then `_slice_gradient`'s sum in gy's dtype
    if fill or prev is None or (node.group is not None and _started_by_group(prev, node)):
        # copied in: into zeros, into the unzeroed buffer (`fill`), or into the zeros another
        # piece of the same split started (eager's cat, run_group)
        buf = prev if prev is not None else (
            pool.get(shape, gy.dtype) if fill else np.zeros(shape, gy.dtype))
        dest = _view_as(buf[node.idx], gy.shape)
        if dest is None:
            return False
        np.copyto(dest, gy)
        grads[parent] = buf
        if prev is None and not fill and node.group is not None:
            _FRESH.mark = (weakref.ref(buf), node.group)
        return True
    pooled = any(b is prev for b in pool.free.get((shape, prev.dtype), ()))
    if not (_getrefcount(prev) <= 3 + pooled and prev.base is None and prev.flags.writeable
            and prev.shape == shape and prev.dtype == gy.dtype):  # fmt: skip
        prev = grads[parent] = _owned_copy(prev, pool)  # equal values: safe even if unused
    dest = _view_as(prev[node.idx], gy.shape)
    if dest is None:
        return False
    dest += gy
    return True


# .mark: (weak reference to the zeros buffer a piece of a split started as its parent's
# gradient, the split's group (grad_fn.PieceGroup)): the pass delivers one split's pieces one
# after another (eager runs them as one step), so the other pieces copy into that buffer instead
# of adding (0.0 + -0.0 would be +0.0 where eager's cat keeps the piece's -0.0). Per thread: a
# pass runs on its caller's thread, and two compiled functions replaying at once in two threads
# read their own (one module variable let one add into the other's: session 31).
_FRESH = threading.local()


def _started_by_group(prev, node) -> bool:
    """Whether `prev` is the zeros buffer another piece of `node`'s split started."""
    mark = getattr(_FRESH, "mark", None)
    return mark is not None and mark[1] is node.group and mark[0]() is prev


def _widens(prev, gy) -> bool:
    """Whether adding gy to prev gives a wider dtype than prev's (NumPy's promotion)."""
    return prev.dtype != gy.dtype and np.result_type(prev.dtype, gy.dtype) != prev.dtype


def _view_as(a, shape):
    """A view of `a` with this shape, or None when it needs a copy."""
    if type(a) is not _ndarray:
        return None
    v = a.view()
    try:
        v.shape = shape  # NumPy refuses when the strides cannot express it
    except AttributeError:
        return None
    return v


def _owned_copy(a, pool):
    buf = pool.get(a.shape, a.dtype)
    np.copyto(buf, a)
    return buf


def _add(a, b, pool):
    if pool is None or type(a) is not _ndarray or type(b) is not _ndarray or a.dtype != b.dtype:
        return a + b
    shape = a.shape if a.shape == b.shape else np.broadcast_shapes(a.shape, b.shape)
    if not shape:
        return a + b
    return np.add(a, b, out=pool.get(shape, a.dtype))


def _delivery_meta(ins: Backward):
    """(how many gradients each node receives, each node's deliveries, the nodes whose gradient
    is exactly a partition into basic-index reads: `_partitions`) of a backward pass."""
    received: dict = {}
    for target, _ in ins.seeds:
        received[target] = received.get(target, 0) + 1
    deliveries_of: dict = {}
    for node, deliveries in ins.order:
        deliveries_of[node] = deliveries
        for _, parent, _ in deliveries:
            received[parent] = received.get(parent, 0) + 1
    return received, deliveries_of, _partitions(ins, received)


_NO_PARTITION: frozenset = frozenset()
_PARTITION_MAX = 1 << 24  # elements: the cover check's counter array stays small


def _partitions(ins: Backward, received: dict) -> frozenset:
    """Graph nodes whose every gradient comes from basic-index reads of their output that
    together cover it exactly once (qkv.split(C, dim=2), chunk, unbind): their gradient is
    assembled by copies into an unzeroed buffer (`_slice_gradient`'s `fill`). Checked once per
    program, on an int8 counter of the node's shape."""
    slices: dict = {}
    for node, deliveries in ins.order:
        if type(node) is _GetItem and node.basic and len(deliveries) == 1:
            _, parent, shape = deliveries[0]
            if isinstance(parent, autograd.Function):
                slices.setdefault(parent, (shape, []))[1].append(node)
    out = set()
    for parent, (shape, reads) in slices.items():
        n = 1
        for d in shape:
            n *= d
        if len(reads) < 2 or received.get(parent) != len(reads) or not 0 < n <= _PARTITION_MAX:
            continue
        count = np.zeros(shape, np.int8)
        try:
            for g in reads:
                count[g.idx] += 1
        except (IndexError, TypeError, ValueError):
            continue
        if (count == 1).all():
            out.add(parent)
    return frozenset(out)


def _reads(ins) -> list:
    if isinstance(ins, Forward):
        reads = list(ins.ins)
        for _, s in ins.binds:
            if type(s) is int:
                reads.append(s)
            else:
                reads.extend(v for slot, v in s[1] if slot)
        return reads
    if isinstance(ins, Backward):
        return [s for _, s in ins.seeds]
    if isinstance(ins, View):
        return [ins.base]
    if isinstance(ins, Write):  # (the written slot counts as read: no fused chain skips it)
        reads = [ins.dst] + [v for k, v in ins.operands if k == "s"]
        for k, v in ins.operands:
            if k == "i":  # an index tuple's slots (recorder._items)
                reads.extend(e for slot, e in v if slot)
        return reads
    return []


def _operand(kind: str, v, env):
    """A Write's operand at replay: a slot's array, a constant, or an index tuple rebuilt from
    env (its arrays' slots, recorder._items)."""
    if kind == "s":
        return env[v]
    if kind == "c":
        return v
    return tuple([env[e] if slot else e for slot, e in v])


def _result_slots(result) -> list:
    if isinstance(result, _Out):
        return [result.slot]
    if isinstance(result, (list, tuple)):
        return [s for r in result for s in _result_slots(r)]
    if isinstance(result, dict):
        return [s for r in result.values() for s in _result_slots(r)]
    return []


def _build(result, env):
    """The return value: the template with each _Out replaced by a Tensor (no graph)."""
    if isinstance(result, _Out):
        return autograd._new_tensor(env[result.slot])
    if isinstance(result, tuple):
        return tuple(_build(r, env) for r in result)
    if isinstance(result, list):
        return [_build(r, env) for r in result]
    if isinstance(result, dict):
        return {k: _build(v, env) for k, v in result.items()}
    return result
