"""`torch.utils.flop_counter` for descent: count the FLOPs of a forward and backward pass.

    from descent.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        model(x).sum().backward()
    fc.get_total_flops()          # an int, equal to PyTorch 2.13's on the same model
    fc.get_flop_counts()          # {"Global": {"aten.mm": n, ...}, "Sequential.0": {...}, ...}

What is counted is what PyTorch counts: the matrix products and convolutions, at the level of
the ATen ops they decompose into (torch's FlopCounterMode counts under `__torch_dispatch__`,
after decomposition). descent runs fewer, fused ops (one `Linear` op where torch runs `addmm`),
so each descent op is mapped here to the ATen ops torch would run for the same call, with
torch's formulas (2 * m * n * k for a product; see `conv_flop_count`):

    descent op / function           torch's ATen ops counted
    MatMul (matmul, mm, bmm, @)     aten.mm or aten.bmm as at::matmul folds or batches; nothing
                                    for mv and dot (1-D operands, except vector @ matrix)
    Linear (F.linear, nn.Linear)    aten.addmm (bias, contiguous input) or matmul's products
    addmm / baddbmm                 aten.addmm / aten.baddbmm, backward aten.mm / aten.bmm
    Conv2d (conv1d, conv2d)         aten.convolution, backward aten.convolution_backward
    conv3d, conv_transpose{1,2,3}d  aten.convolution (transposed), aten.convolution_backward
    Einsum                          aten.bmm per contracted pair (none for a pure product)
    torch._scaled_mm (float8)       aten._scaled_mm (forward only: it has no autograd)
    ScaledDotProductAttention       nothing where torch's CPU flash kernel runs (4-D, equal
                                    head dims, no dropout, equal batch); else the math path's
                                    aten.bmm (aten.mm for 2-D)
    bilinear, nn.Bilinear           nothing (torch's aten._trilinear has no formula)
    nn.MultiheadAttention, nn.RNN,  PyTorch's decomposition of the module from its shapes and
    nn.GRU, nn.LSTM, the encoder    flags (_flop_mha.py): descent's fused modules run other
    layer's inference               ops; LSTM and the fused inference kernels count nothing

Backward FLOPs are counted when the engine runs a node's backward, one product per input that
needs a gradient (a frozen weight costs none), under the modules whose backward is running
(`descent.utils.module_tracker`, with PyTorch's rules). Keys are `OpKey` strings ("aten.mm")
whose repr is torch's (`<OpOverloadPacket(op='aten.mm')>`); a user formula is keyed by an
autograd Function class, a custom op or such a name (`register_flop_formula`).

How it observes: the engine's op hooks (`descent.hooks.add_op_hook`, as the profiler and anomaly
mode) and its composite-function hooks (`hooks.composite`) while the mode is active; nothing is
added to the per-op hot path.
"""

from __future__ import annotations

import math
import sys
import weakref
from collections import defaultdict

import numpy as np

from .. import hooks as _hooks
from ..backends import cuda as _cuda_switches
from ..grad_mode import is_grad_enabled
from ..meta import MetaArray
from ._flop_table import (  # noqa: F401 - re-exported under torch's names
    convert_num_with_suffix,
    convert_to_percent_str,
    get_suffix_str,
)
from .module_tracker import ModuleTracker

# torch's module-level helpers are importable by the same names too: mm_flop, bmm_flop,
# addmm_flop, baddbmm_flop, conv_flop_count, conv_flop, conv_backward_flop, sdpa_flop_count,
# sdpa_backward_flop_count, shape_wrapper, flop_registry, get_suffix_str,
# convert_num_with_suffix, convert_to_percent_str
__all__ = ["FlopCounterMode", "register_flop_formula"]


class OpKey(str):
    """An op's name as a dict key ("aten.mm"), shown as torch's OpOverloadPacket."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<OpOverloadPacket(op='{self}')>"


MM, ADDMM, BMM, BADDBMM = (
    OpKey("aten.mm"),
    OpKey("aten.addmm"),
    OpKey("aten.bmm"),
    OpKey("aten.baddbmm"),
)
CONV, CONV_BW = OpKey("aten.convolution"), OpKey("aten.convolution_backward")
SCALED_MM = OpKey("aten._scaled_mm")
FLASH_CPU = OpKey("aten._scaled_dot_product_flash_attention_for_cpu")
FLASH_CPU_BW = OpKey("aten._scaled_dot_product_flash_attention_for_cpu_backward")


# -- torch's formulas (torch/utils/flop_counter.py), on shapes ----------------------------------
def mm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """(m, k) @ (k, n): 2 m n k (a multiply and an add per term, as torch counts)."""
    m, k = a_shape
    k2, n = b_shape
    if k != k2:
        raise ValueError(f"mm_flop: inner dimensions differ: {tuple(a_shape)} @ {tuple(b_shape)}")
    return m * n * 2 * k


def bmm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """(b, m, k) @ (b, k, n): 2 b m n k."""
    b, m, k = a_shape
    b2, k2, n = b_shape
    if b != b2 or k != k2:
        raise ValueError(f"bmm_flop: shapes do not fit: {tuple(a_shape)} @ {tuple(b_shape)}")
    return b * m * n * 2 * k


def conv_flop_count(x_shape, w_shape, out_shape, transposed: bool = False) -> int:
    """2 * batch * prod(spatial) * prod(kernel) * c_out * c_in (weight's first two dims): the
    output's positions for a convolution, the input's for a transposed one. Bias not counted."""
    batch = x_shape[0]
    conv_shape = (x_shape if transposed else out_shape)[2:]
    c_out, c_in, *kernel = w_shape
    return math.prod(conv_shape) * math.prod(kernel) * batch * c_out * c_in * 2


def conv_backward_flop_count(grad_out_shape, x_shape, w_shape, transposed, mask) -> int:
    """torch's convolution_backward: grad_input as the adjoint convolution of grad_out with w,
    grad_weight as a convolution of x with grad_out (batch and channels swapped)."""

    def t(shape):
        return [shape[1], shape[0]] + list(shape[2:])

    flops = 0
    if mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, x_shape, not transposed)
    if mask[1]:
        if transposed:
            flops += conv_flop_count(t(grad_out_shape), t(x_shape), t(w_shape))
        else:
            flops += conv_flop_count(t(x_shape), t(grad_out_shape), t(w_shape))
    return flops


def sdpa_flop_count(query_shape, key_shape, value_shape) -> int:
    """Forward attention: q k^T and P v as two batched products (torch's `sdpa_flop_count`)."""
    b, h, s_q, d_q = query_shape
    _, _, s_k, _ = key_shape
    d_v = value_shape[-1]
    return bmm_flop((b * h, s_q, d_q), (b * h, d_q, s_k)) + bmm_flop(
        (b * h, s_q, s_k), (b * h, s_k, d_v)
    )


def conv_flop(
    x_shape,
    w_shape,
    _bias,
    _stride,
    _padding,
    _dilation,
    transposed,
    *args,
    out_shape=None,
    **kwargs,
) -> int:
    """aten.convolution's formula on its arguments' shapes."""
    return conv_flop_count(x_shape, w_shape, out_shape, transposed=transposed)


def conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                       transposed, _output_padding, _groups, output_mask, out_shape=None,
                       **kwargs) -> int:  # fmt: skip
    """aten.convolution_backward's formula on its arguments' shapes."""
    return conv_backward_flop_count(grad_out_shape, x_shape, w_shape, transposed, output_mask)


def sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape) -> int:
    """Backward attention as a fused kernel runs it (torch's `sdpa_backward_flop_count`): the
    scores recomputed, then the gradients of P, v, q and k: five batched products."""
    b, h, s_q, d_q = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    bh = b * h
    return (
        bmm_flop((bh, s_q, d_q), (bh, d_q, s_k))
        + bmm_flop((bh, s_q, d_v), (bh, d_v, s_k))
        + bmm_flop((bh, s_k, s_q), (bh, s_q, d_v))
        + bmm_flop((bh, s_q, s_k), (bh, s_k, d_q))
        + bmm_flop((bh, d_q, s_q), (bh, s_q, s_k))
    )


# -- the registry --------------------------------------------------------------------------------
def addmm_flop(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """aten.addmm: the product's FLOPs (the bias add is not counted)."""
    return mm_flop(a_shape, b_shape)


def baddbmm_flop(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """aten.baddbmm: the batched product's FLOPs."""
    return bmm_flop(a_shape, b_shape)


# The formulas by key, as torch's `flop_registry`. descent computes the built-in ops' counts
# itself (the decompositions below); an entry here says that the key is counted at all, so a
# key that torch has no formula for (FLASH_CPU) counts only once a user registers one.
flop_registry: dict = {
    MM: mm_flop, ADDMM: addmm_flop, BMM: bmm_flop, BADDBMM: baddbmm_flop, SCALED_MM: mm_flop,
    CONV: conv_flop, CONV_BW: conv_backward_flop,
}  # fmt: skip


def _key(target):
    """A registry key: a Function class stays itself; an op object or a name becomes an OpKey."""
    if isinstance(target, type):
        return target
    if isinstance(target, str):
        return OpKey(target)
    name = getattr(target, "_qualname", None) or getattr(target, "name", None)
    if isinstance(name, str):
        return OpKey(name.replace("::", "."))
    raise ValueError(
        f"register_flop_formula: expected an autograd Function class, a custom op or an op "
        f"name such as 'aten.mm', got {target!r} of type {type(target).__name__}"
    )


def register_flop_formula(targets, get_raw: bool = False):
    """Decorator: `@register_flop_formula(MyFunction)` registers `formula(*input_shapes,
    out_shape=...) -> int` for every later FlopCounterMode (`get_raw=True`: it receives the
    Tensors and `out_val` instead of shapes). `targets`: one target or a list."""

    def register(formula):
        for target in targets if isinstance(targets, (list, tuple)) else [targets]:
            key = _key(target)
            if key in flop_registry:
                raise RuntimeError(f"duplicate registrations for {key}")
            flop_registry[key] = formula if get_raw else shape_wrapper(formula)
        return formula

    return register


def shape_wrapper(formula):
    def shaped(*args, out_val=None, **kwargs):
        def shape(a):
            return tuple(a.shape) if hasattr(a, "shape") and hasattr(a, "requires_grad") else a

        out = (
            tuple(shape(o) for o in out_val)
            if isinstance(out_val, (tuple, list))
            else shape(out_val)
        )
        return formula(*[shape(a) for a in args], out_shape=out, **kwargs)

    shaped._get_raw = True
    return shaped


# -- torch's decompositions: which ATen products a descent op stands for ----------------------
def layout(t):
    """The array whose strides and flags stand for t's layout. descent's meta arrays keep none
    (zero strides): a contiguous stand-in of the same shape, a strided view of one byte that is
    never read (torch's meta tensors are contiguous unless transposed or sliced)."""
    d = t._data
    if isinstance(d, MetaArray):
        strides, step = [], 1
        for n in reversed(d.shape):
            strides.append(step)
            step *= max(n, 1)
        return np.lib.stride_tricks.as_strided(np.empty(1, "b1"), d.shape, strides[::-1])
    return d


def _folds(t1, t2, t1_big: bool) -> bool:
    """at::matmul's should_fold: fold the larger operand's leading dims into mm rows when the
    other operand (<= 2-D) requires grad or the fold needs no copy."""
    small = t2 if t1_big else t1
    big = t1 if t1_big else t2
    if small._rg:
        return True
    if t1.ndim == 2:
        return False
    data = layout(big)
    if data.size == 0:
        return True
    shape, strides = big.shape, data.strides
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(big.ndim - 2))


def _matmul_products(a, b):
    """(key, flops) of at::matmul(a, b), or None for mv/dot (not counted)."""
    da, db = a.ndim, b.ndim
    if da == 1 and db == 2:
        return MM, mm_flop((1, a.shape[0]), tuple(b.shape))
    if da == 1 or db == 1:
        return None  # dot, mv, or a folded mv: torch has no formula for them
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if da == 2 and db == 2:
        return MM, 2 * m * n * k
    batch = math.prod(_broadcast(a.shape[:-2], b.shape[:-2]))
    flops = 2 * batch * m * n * k
    if (da >= 3 and db <= 2 and _folds(a, b, True)) or (
        db >= 3 and da <= 2 and _folds(a, b, False)
    ):
        return MM, flops
    return BMM, flops


def _broadcast(s1, s2) -> tuple:
    n = max(len(s1), len(s2))
    s1, s2 = (1,) * (n - len(s1)) + tuple(s1), (1,) * (n - len(s2)) + tuple(s2)
    return tuple(max(x, y) if 0 not in (x, y) else 0 for x, y in zip(s1, s2, strict=True))


def _rg(t) -> bool:
    return bool(t._rg) and is_grad_enabled()


def _matmul(op, inputs, out):
    a, b = inputs
    prod = _matmul_products(a, b)
    if prod is None:
        return [], []
    key, flops = prod
    return [(key, flops)], [(key, flops, (0,)), (key, flops, (1,))]


def _linear(op, inputs, out):
    x, w = inputs[0], inputs[1]
    if op.has_b and (x.ndim == 2 or layout(x).flags.c_contiguous):
        # torch: addmm(b, x (M, in), w^T); its backward two mm
        flops = 2 * math.prod(x.shape[:-1]) * x.shape[-1] * w.shape[0]
        return [(ADDMM, flops)], [(MM, flops, (0,)), (MM, flops, (1,))]
    wt = _Transposed(w)
    prod = _matmul_products(x, wt)
    if prod is None:
        return [], []
    key, flops = prod
    return [(key, flops)], [(key, flops, (0,)), (key, flops, (1,))]


class _Transposed:
    """w.t() as at::matmul sees it: the shape and requires_grad (w is 2-D)."""

    def __init__(self, w) -> None:
        self.shape, self.ndim, self._rg, self._data = (w.shape[1], w.shape[0]), 2, w._rg, None


def _conv2d(op, inputs, out):
    x, w = inputs[0], inputs[1]
    xs, ws, ys = list(x.shape), list(w.shape), list(out.shape)
    fwd = conv_flop_count(xs, ws, ys, False)
    return [(CONV, fwd)], [("conv_bw", (ys, xs, ws, False), (0, 1))]


def _sdpa(op, inputs, out):
    q, k, v = inputs[0], inputs[1], inputs[2]
    e, ev = q.shape[-1], v.shape[-1]
    if (
        not isinstance(q._data, MetaArray)  # torch's meta tensors take the math path
        and _cuda_switches.flash_sdp_enabled()  # off: sdpa_kernel without FLASH_ATTENTION
        and q.ndim == k.ndim == v.ndim == 4
        and e == ev
        and op.drop is None
        and q.shape[0] == k.shape[0] == v.shape[0]
        and q.shape[1] == k.shape[1] == v.shape[1]  # (enable_gqa repeated k, v already)
        and all(t.shape[-1] == 1 or t._data.strides[-1] == t._data.itemsize for t in (q, k, v))
    ):
        # torch 2.13's CPU flash kernel: not in its registry, so it counts nothing unless a
        # formula is registered for the key; it gets the shapes (q, k, v) forward and
        # (grad_out, q, k, v) backward, as torch's sdpa_flop / sdpa_backward_flop
        shapes = (tuple(q.shape), tuple(k.shape), tuple(v.shape))
        grad_out = tuple(q.shape[:-1]) + (ev,)
        return [(FLASH_CPU, shapes)], [(FLASH_CPU_BW, (grad_out,) + shapes, (0, 1, 2))]
    # the math path: matmul(q, k^T), softmax, matmul(P, v), each an aten.bmm (mm for 2-D)
    key = MM if q.ndim == 2 and k.ndim == 2 else BMM
    batch = math.prod(_broadcast(q.shape[:-2], k.shape[:-2]))
    n_l, n_s = q.shape[-2], k.shape[-2]
    qk, pv = 2 * batch * n_l * n_s * e, 2 * batch * n_l * n_s * ev
    bw = [(key, pv, (2,)), (key, pv, (0, 1, 3)), (key, qk, (0,)), (key, qk, (1,))]
    return [(key, qk), (key, pv)], bw


def _einsum(op, inputs, out):
    """torch's einsum: operands contracted pairwise, each pair as one bmm over (shared kept
    dims, left-only, contracted, right-only); a pair with nothing to contract is a product (not
    counted), a letter in one operand only is summed first (not counted). With three or more
    operands torch follows opt_einsum's path when `torch.backends.opt_einsum` is enabled (the
    package installed), else left to right; so does this count."""
    from ..backends import opt_einsum as oe

    subs = list(op.inputs_subs)
    sizes = {}
    for s, t in zip(subs, inputs, strict=True):
        sizes.update(zip(s, t.shape, strict=True))
    # (subscripts, input indices) per operand still to contract
    ops = [(s, (i,)) for i, s in enumerate(subs)]
    path = None
    package = oe.get_opt_einsum() if len(subs) > 2 and oe.enabled else None
    if package is not None:
        spec = ",".join(subs) + "->" + op.out_subs
        shapes = [tuple(t.shape) for t in inputs]
        path = package.contract_path(spec, *shapes, shapes=True, optimize=oe.strategy)[0]
    fwd, bw = [], []
    for step in range(len(subs) - 1):
        if path is None:  # left to right: the result stays first
            i, j = 0, 1
        else:  # opt_einsum: the pair is removed, the result appended
            i, j = sorted(path[step])
        (left, left_in), (right, right_in) = ops[i], ops[j]
        rest = [o for k, o in enumerate(ops) if k not in (i, j)]
        later = set(op.out_subs).union(*[set(s) for s, _ in rest])
        contracted = (set(left) & set(right)) - later
        kept = "".join(c for c in dict.fromkeys(left + right) if c in later)
        if contracted:
            flops = 2 * math.prod(sizes[c] for c in contracted) * math.prod(sizes[c] for c in kept)
            fwd.append((BMM, flops))
            bw.append((BMM, flops, left_in))
            bw.append((BMM, flops, right_in))
        merged = (kept, left_in + right_in)
        ops = [merged] + rest if path is None else rest + [merged]
    return fwd, bw


def _op_table() -> dict:
    from ..ops.attention import ScaledDotProductAttention
    from ..ops.conv import Conv2d
    from ..ops.linalg import Einsum, MatMul
    from ..ops.linear import Linear

    return {MatMul: _matmul, Linear: _linear, Conv2d: _conv2d,
            ScaledDotProductAttention: _sdpa, Einsum: _einsum}  # fmt: skip


def _composite(name, args, kwargs, out):
    """(forward, backward) entries of a `hooks.composite` function; backward entries carry the
    input flags (requires grad at forward time) instead of input indices."""
    if name in ("aten.addmm", "aten.baddbmm"):
        _, m1, m2 = args[0], args[1], args[2]
        fwd_key, bw_key = (ADDMM, MM) if name == "aten.addmm" else (BADDBMM, BMM)
        flops = (mm_flop if name == "aten.addmm" else bmm_flop)(tuple(m1.shape), tuple(m2.shape))
        return [(fwd_key, flops)], [(bw_key, flops, (_rg(m1),)), (bw_key, flops, (_rg(m2),))]
    if name == "aten._scaled_mm":  # no autograd, as torch's
        return [(SCALED_MM, mm_flop(tuple(args[0].shape), tuple(args[1].shape)))], []
    if name.startswith("aten.convolution"):
        transposed = name.endswith("transposed")
        x, w, nd = args[0], args[1], args[8 if transposed else 7]
        if out is None or not hasattr(x, "shape"):
            return [], []
        xs, ws, ys = list(x.shape), list(w.shape), list(out.shape)
        if len(xs) == nd + 1:  # unbatched: torch's convolution sees a batch of one
            xs, ys = [1] + xs, [1] + ys
        fwd = conv_flop_count(xs, ws, ys, transposed)
        return [(CONV, fwd)], [("conv_bw", (ys, xs, ws, transposed), (_rg(x), _rg(w)))]
    return [], []  # aten._trilinear: no formula in torch


def _tensors_of(out) -> list:
    """The Tensors in a composite function's result (a Tensor, or nested tuples of them)."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors_of(o)]
    return [out] if hasattr(out, "_node") else []


class FlopCounterMode:
    """Count the FLOPs of the block, per op and per module (torch's FlopCounterMode).

    Args:
        mods: ignored (torch warns that it is no longer needed; so does this).
        depth: the module depth shown by the table printed on exit and `get_table()`.
        display: print the table when the block ends.
        custom_mapping: {target: formula} for user ops (see `register_flop_formula`).
    """

    def __init__(self, mods=None, depth: int = 2, display: bool = True, custom_mapping=None):
        self.flop_counts: dict = defaultdict(lambda: defaultdict(int))
        self.depth = depth
        self.display = display
        if mods is not None:
            import warnings

            warnings.warn(
                "mods argument is not needed anymore, you can stop passing it", stacklevel=2
            )
        self.flop_registry = dict(flop_registry)
        for k, v in (custom_mapping or {}).items():
            self.flop_registry[_key(k)] = v if getattr(v, "_get_raw", False) else shape_wrapper(v)
        self.mod_tracker = ModuleTracker()
        self._handles: list = []
        self._table: dict = {}
        # node -> (backward entries, mode): what a node's backward will count. Weak: a graph
        # that is dropped without a backward (a forward with grad on) frees its saved values
        self._pending = weakref.WeakKeyDictionary()
        self._regions = 0  # depth of composite functions (their inner ops are not counted)
        # per open composite call: its precomputed entries, or None when it is transparent (its
        # inner ops counted instead: descent's general MultiheadAttention path)
        self._calls: list = []

    # -- results -----------------------------------------------------------------------------
    def get_total_flops(self) -> int:
        return sum(self.flop_counts["Global"].values())

    def get_flop_counts(self) -> dict:
        """{module name: {op: flops}}, "Global" for the whole block."""
        return {k: dict(v) for k, v in self.flop_counts.items()}

    def get_table(self, depth=None) -> str:
        from ._flop_table import flop_table

        if depth is None:
            depth = self.depth
        if depth is None:
            depth = 999999
        return flop_table(self.flop_counts, self.get_total_flops(), depth)

    # -- the context --------------------------------------------------------------------------
    def __enter__(self) -> FlopCounterMode:
        self.flop_counts.clear()
        self._table = _op_table()
        self.mod_tracker.__enter__()
        self._handles = [
            _hooks.add_op_hook(forward=self._forward, backward=self._backward),
            _hooks.add_composite_hook(self._on_composite),
        ]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []
        self._pending.clear()
        self._regions = 0
        self._calls.clear()
        self.mod_tracker.__exit__()
        if self.display:
            print(self.get_table(self.depth))
        return False

    # -- counting -------------------------------------------------------------------------------
    def _count(self, key, flops) -> None:
        formula = self.flop_registry.get(key)
        if formula is None:
            return  # a kernel torch has no formula for (FLASH_CPU), until one is registered
        if not isinstance(flops, int):  # shapes: the registered formula computes the count
            flops = formula(*flops, out_val=None)
        for name in set(self.mod_tracker.parents):
            self.flop_counts[name][key] += flops

    def _forward(self, op, inputs, out) -> None:
        if self._regions:
            return  # inside a composite function: it is counted as a whole when it returns
        node = getattr(out, "_node", None)
        cls = type(op)
        rule = self._table.get(cls)
        if rule is None:
            # a user's autograd Function runs as a node that names its class (fn_cls); its
            # inner ops were counted already, as torch counts an autograd.Function's ATen ops
            cls = getattr(op, "fn_cls", cls)
            formula = self.flop_registry.get(cls)
            if formula is not None:  # a user formula for a descent autograd Function
                self._count_user(cls, formula, inputs, out)
            return
        fwd, bw = rule(op, inputs, out)
        if not self.mod_tracker.is_bw:
            for key, flops in fwd:
                self._count(key, flops)
        # else: a product recorded by a backward pass under create_graph, already counted by
        # its node's backward formula; its own backward (a double backward) still counts
        if node is not None and bw:
            self._pending[node] = (bw, "index")

    def _count_user(self, key, formula, inputs, out) -> None:
        flops = formula(*inputs, out_val=out)
        for name in set(self.mod_tracker.parents):
            self.flop_counts[name][key] += flops

    def _backward(self, node, gy, gxs) -> None:
        entry = self._pending.get(node)
        if entry is None:
            return
        bw, mode = entry
        if mode != "index":  # a composite's entries, shared by its outputs' nodes
            if mode["pass"] == self.mod_tracker._pass_id:
                return
            mode["pass"] = self.mod_tracker._pass_id
        parents = node.parents
        for key, flops, which in bw:
            if mode == "index":
                needed = any(i < len(parents) and parents[i] is not None for i in which)
                mask = [i < len(parents) and parents[i] is not None for i in which]
            else:
                needed, mask = any(which), list(which)
            if not needed:
                continue
            if key == "conv_bw":
                ys, xs, ws, transposed = flops
                self._count(CONV_BW, conv_backward_flop_count(ys, xs, ws, transposed, mask))
            else:
                self._count(key, flops)

    def _on_composite(self, event, name, args, kwargs, out) -> None:
        if event == "enter":
            entries = ()
            if name.startswith("nn.") and not self._regions:
                from ._flop_mha import encoder_layer_entries, mha_entries, rnn_entries

                rule = {"nn.MultiheadAttention": mha_entries, "nn.RNNBase": rnn_entries}.get(name)
                if rule is not None:
                    entries = rule(args[0], args[1:], kwargs, sys.modules[__name__])
                else:
                    entries = encoder_layer_entries(args[0], args[1:], kwargs)
            self._calls.append(entries)
            if entries is not None:
                self._regions += 1
                self.mod_tracker._paused += 1
            return
        entries = self._calls.pop()
        if entries is None:
            return  # transparent: its inner ops were counted
        self._regions -= 1
        self.mod_tracker._paused -= 1
        if self._regions:
            return  # a composite inside another: the outer one counts
        if name.startswith("nn."):
            fwd, bw = entries
        else:
            fwd, bw = _composite(name, args, kwargs, out)
        for key, flops in fwd:
            self._count(key, flops)
        if bw:
            # every output's node carries the entries; the first of them that a backward pass
            # runs counts them (a loss may use only an RNN's final state, not its outputs)
            shared = {"pass": None}
            for t in _tensors_of(out):
                node = t._node
                if node is not None:
                    self._pending[node] = (bw, shared)
