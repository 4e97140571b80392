"""Rows of float32 in explicit 16-lane vectors: the causal softmax's passes (`_cpu_jit`).

LLVM's loop vectoriser takes a row VF x interleave values a pass (64 float32 here) and runs
whatever is left in its scalar loop, so attention's causal rows, 1..T long (T = 64 in baby-gpt),
ran their exponentials one at a time (docs/compile.md, "Session 29 (helper-216)"). These
intrinsics write the loop over a row in LLVM IR on `<16 x float>` values: chunk c holds columns
16c .. 16c + 15, its lanes past the row's limit masked out of every load and store
(llvm.masked.load/store: nothing past the limit is read, so a masked score may hold anything,
NaN or inf included, and the last chunk never reads past the array). A row of n values costs
ceil(n / 16) vector steps, whatever n is.

The order is fixed and stated, the same on every machine with FMA (an AVX2 core splits each
vector in two ymm halves, lane for lane the same operations): no fast-math flag is set on these
instructions, so LLVM reorders nothing.
- the row maximum: lane k takes max over chunks of scale * x[16c + k] (llvm.maxnum, a NaN never
  wins), then the 16 lanes by halves (8 + 8, 4 + 4, 2 + 2, 1 + 1). Exact: any order gives it.
- the exponentials: `_cpu_jit._exp32`'s Cephes steps, each multiply-add one FMA (`vexp`), of
  z = fma(x, scale, -m).
- the sum: lane k adds its chunks' exponentials in chunk order, then the 16 lanes by halves.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

W = 16  # lanes
_F32, _I32, _I64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
_VF, _VI, _VL = ir.VectorType(_F32, W), ir.VectorType(_I32, W), ir.VectorType(_I64, W)
_VB = ir.VectorType(ir.IntType(1), W)
_ZEROS = ir.Constant(_VI, [0] * W)


def _const(c) -> ir.Constant:
    return ir.Constant(_VF, [float(c)] * W)


def _fn(b, name, ret, args):
    return cgutils.get_or_insert_function(b.module, ir.FunctionType(ret, args), name)


def _splat(b, scalar, vty):
    v = b.insert_element(ir.Constant(vty, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return b.shuffle_vector(v, v, _ZEROS)


def _fma(b, x, y, z):
    return b.call(_fn(b, "llvm.fma.v16f32", _VF, [_VF] * 3), [x, y, z])


def _maxnum(b, x, y):
    t = x.type
    return b.call(_fn(b, f"llvm.maxnum.v{t.count}f32", t, [t, t]), [x, y])


def vexp(b, x):
    """`_cpu_jit._exp32` on 16 lanes (exp(x < -87.3) = 0, exp(x > 88.7) = inf, exp(NaN) = NaN),
    each multiply-add fused: Cephes' range reduction by ln 2 in two parts and its degree-5
    polynomial, 2^n from its IEEE-754 bits (tests/test_softmax_causal_s30.py: its error)."""
    from . import _cpu_jit as _j  # noqa: PLC0415 - its constants; _cpu_jit imports this module

    hi, lo = _const(_j._EXP_HI), _const(_j._EXP_LO)
    xc = b.select(b.fcmp_ordered(">", x, hi), hi, x)
    xc = b.select(b.fcmp_ordered("<", xc, lo), lo, xc)
    floor = _fn(b, "llvm.floor.v16f32", _VF, [_VF])
    n = b.call(floor, [_fma(b, xc, _const(_j._LOG2E), _const(0.5))])
    nn = b.fneg(n)
    r = _fma(b, nn, _const(_j._LN2_HI), xc)
    r = _fma(b, nn, _const(_j._LN2_LO), r)
    p = _const(_j._E0)
    for c in (_j._E1, _j._E2, _j._E3, _j._E4, _j._E5):
        p = _fma(b, p, r, _const(c))
    y = b.fadd(_fma(b, b.fmul(p, r), r, r), _const(1.0))  # p r^2 + r + 1
    two_n = b.shl(b.add(b.fptosi(n, _VI), ir.Constant(_VI, [127] * W)), ir.Constant(_VI, [23] * W))
    y = b.fmul(y, b.bitcast(two_n, _VF))
    y = b.select(b.fcmp_ordered(">", x, hi), _const(math.inf), y)
    y = b.select(b.fcmp_ordered("<", x, lo), _const(0.0), y)
    return b.select(b.fcmp_unordered("uno", x, x), x, y)


def _halves(b, v, op):
    """The 16 lanes to one by halves: (v[:8] op v[8:]), then 4 + 4, 2 + 2, 1 + 1."""
    w = W
    while w > 1:
        h = w // 2
        idx = ir.VectorType(_I32, h)
        lo = b.shuffle_vector(v, v, ir.Constant(idx, list(range(h))))
        hi = b.shuffle_vector(v, v, ir.Constant(idx, list(range(h, w))))
        v = op(lo, hi)
        w = h
    return b.extract_element(v, ir.Constant(_I32, 0))


class _Row:
    """Row r of a 2-D float32 array (unit stride along the row) and its first `lim` columns."""

    def __init__(self, context, b, aty, arr, r, lim):
        a = context.make_array(aty)(context, b, arr)
        row_bytes = b.mul(r, b.extract_value(a.strides, 0))
        base = b.ptrtoint(a.data, _I64)
        self.ptr = b.inttoptr(b.add(base, row_bytes), _F32.as_pointer())
        self.lim = _splat(b, lim, _VL)
        self.chunks = b.udiv(b.add(lim, ir.Constant(_I64, W - 1)), ir.Constant(_I64, W))
        self.b = b

    def at(self, c):
        """(chunk c's vector pointer, its mask: columns below the limit)."""
        b = self.b
        j0 = b.mul(c, ir.Constant(_I64, W))
        cols = b.add(_splat(b, j0, _VL), ir.Constant(_VL, list(range(W))))
        vp = b.bitcast(b.gep(self.ptr, [j0]), _VF.as_pointer())
        return vp, b.icmp_signed("<", cols, self.lim)

    def load(self, vp, mask, fill):
        f = _fn(self.b, "llvm.masked.load.v16f32.p0", _VF, [_VF.as_pointer(), _I32, _VB, _VF])
        return self.b.call(f, [vp, ir.Constant(_I32, 4), mask, fill])

    def store(self, v, vp, mask):
        f = _fn(self.b, "llvm.masked.store.v16f32.p0", ir.VoidType(),
                [_VF, _VF.as_pointer(), _I32, _VB])  # fmt: skip
        self.b.call(f, [v, vp, ir.Constant(_I32, 4), mask])


def _row_args_ok(x, r, lim, *floats) -> bool:
    return (isinstance(x, types.Array) and x.ndim == 2 and x.dtype == types.float32
            and isinstance(r, types.Integer) and isinstance(lim, types.Integer)
            and all(f == types.float32 for f in floats))  # fmt: skip


def _as_i64(context, b, v, ty):
    return context.cast(b, v, ty, types.int64)


@intrinsic
def row_max(typingctx, x, r, lim, scale):
    """max(scale * x[r, j] for j < lim), lim >= 1 (lanes by halves; NaN never wins)."""
    if not _row_args_ok(x, r, lim, scale):
        return None

    def codegen(context, b, sig, args):
        row = _Row(context, b, sig.args[0], args[0], _as_i64(context, b, args[1], sig.args[1]),
                   _as_i64(context, b, args[2], sig.args[2]))  # fmt: skip
        ninf, sc = _const(-math.inf), _splat(b, args[3], _VF)
        acc = cgutils.alloca_once_value(b, ninf)
        with cgutils.for_range(b, row.chunks) as loop:
            vp, mask = row.at(loop.index)
            v = b.select(mask, b.fmul(row.load(vp, mask, ninf), sc), ninf)
            b.store(_maxnum(b, b.load(acc), v), acc)
        return _halves(b, b.load(acc), lambda u, v: _maxnum(b, u, v))

    return types.float32(x, r, lim, scale), codegen


def _exp_sum(log: bool):
    @intrinsic
    def row_exp_sum(typingctx, x, r, lim, scale, m):
        """x[r, j] = exp(z_j) (log: z_j), z_j = fma(x[r, j], scale, -m), for j < lim; returns
        the sum of the exponentials (lane k over its chunks, then the lanes by halves)."""
        if not _row_args_ok(x, r, lim, scale, m):
            return None

        def codegen(context, b, sig, args):
            row = _Row(context, b, sig.args[0], args[0], _as_i64(context, b, args[1], sig.args[1]),
                       _as_i64(context, b, args[2], sig.args[2]))  # fmt: skip
            sc, neg_m, zero = _splat(b, args[3], _VF), _splat(b, b.fneg(args[4]), _VF), _const(0)
            acc = cgutils.alloca_once_value(b, zero)
            with cgutils.for_range(b, row.chunks) as loop:
                vp, mask = row.at(loop.index)
                z = _fma(b, row.load(vp, mask, zero), sc, neg_m)
                e = b.select(mask, vexp(b, z), zero)
                row.store(z if log else e, vp, mask)
                b.store(b.fadd(b.load(acc), e), acc)
            return _halves(b, b.load(acc), b.fadd)

        return types.float32(x, r, lim, scale, m), codegen

    return row_exp_sum


row_exp_sum = _exp_sum(False)
row_z_sum = _exp_sum(True)


def _apply(log: bool):
    @intrinsic
    def row_apply(typingctx, x, r, lim, a):
        """x[r, j] *= a (log: x[r, j] -= a) for j < lim."""
        if not _row_args_ok(x, r, lim, a):
            return None

        def codegen(context, b, sig, args):
            row = _Row(context, b, sig.args[0], args[0], _as_i64(context, b, args[1], sig.args[1]),
                       _as_i64(context, b, args[2], sig.args[2]))  # fmt: skip
            av = _splat(b, args[3], _VF)
            with cgutils.for_range(b, row.chunks) as loop:
                vp, mask = row.at(loop.index)
                v = row.load(vp, mask, _const(0))
                row.store(b.fsub(v, av) if log else b.fmul(v, av), vp, mask)
            return context.get_dummy_value()

        return types.none(x, r, lim, a), codegen

    return row_apply


row_scale = _apply(False)
row_shift = _apply(True)


@intrinsic
def exp_chunks(typingctx, x, out):
    """out[0, j] = vexp(x[0, j]) over the row (1, n) of two float32 arrays (tests measure the
    vector exponential's error through it)."""
    if not all(isinstance(a, types.Array) and a.ndim == 2 and a.dtype == types.float32
               for a in (x, out)):  # fmt: skip
        return None

    def codegen(context, b, sig, args):
        ax = context.make_array(sig.args[0])(context, b, args[0])
        n = b.extract_value(ax.shape, 1)
        zero = ir.Constant(_I64, 0)
        src = _Row(context, b, sig.args[0], args[0], zero, n)
        dst = _Row(context, b, sig.args[1], args[1], zero, n)
        with cgutils.for_range(b, src.chunks) as loop:
            vp, mask = src.at(loop.index)
            op, _ = dst.at(loop.index)
            dst.store(vexp(b, src.load(vp, mask, _const(0))), op, mask)
        return context.get_dummy_value()

    return types.none(x, out), codegen
