"""A replay as one generated Python function (straight-line code), made once per program.

`Program._run` interprets its steps: per instruction a `type(ins)` dispatch, then `_forward`'s
plan lookups and branches, lists of arrays, a loop over the slots to drop; the backward pass
loops over its nodes with a dispatch on each node's kind and a loop over its deliveries. All of
those questions have the same answer on every call once the first replay has decided the plans
(a program's ops, shapes and dtypes are fixed). `build` writes that answer down: Python source
for the whole call, one block per instruction, specialised to it (the decided ufunc or replay
kernel called directly with its `out=` buffer's shape and dtype as constants, a view as one
`np.ndarray(...)`, the drops as `env[s] = None` lines, the backward pass unrolled node by node
with every delivery's target index and shape written in), compiled once with `compile()` and
run by `exec` in a namespace holding the bound objects (the instructions, ops, boxes, kernels).

Bitwise the interpreter's results, by construction: each block is the interpreter's code for
that instruction with its decided branches folded, so the same kernels meet the same arrays in
the same order. What depends on the call's arrays (contiguity, a kernel that declines, a seed
that is not a NumPy array, a twin left by the previous Linear) is checked as the interpreter
checks it, and whatever the generator does not specialise (an undecided plan, bound
parameters, a Linear+ReLU pair, a Write, a Call) is one call of the interpreter's own method
for that instruction: a fast path that calls the slow path's pieces. One thing the generator
adds (session 28): a ufunc writes its result into an operand that dies at its step where nothing
else holds it (`program._dead_operand`) instead of a pool buffer; the same ufunc on the same
operands, so the same values. The interpreter stays
(`Program.codegen = False`, or `program.CODEGEN[0] = False` for programs made after it) as the
reference and for A/B timings.
"""

from __future__ import annotations

import itertools
import linecache
import weakref

import numpy as np

from .fusion import FusedChain
from .recorder import Backward, Call, Forward, View, Write

# generated replays made: each one's file name in tracebacks (next(): one number per replay,
# also when two threads generate at once; `_COUNT[0] += 1` then read could give two the same)
_COUNT = itertools.count(1)


class _Source:
    """Lines of Python and the objects they name (constants of the generated function)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ns: dict = {}
        self._ids: dict = {}

    def const(self, obj, hint: str = "c") -> str:
        """A name for `obj` in the namespace (one name per object)."""
        key = id(obj)
        name = self._ids.get(key)
        if name is None:
            name = f"{hint}{len(self.ns)}"
            self._ids[key] = name
            self.ns[name] = obj
        return name

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def build(prog, debug: bool = False):
    """The generated replay of `prog` (`fn(prog, env, pool)`: `Program._run`'s contract, the
    program passed in so that the function's namespace holds no reference to it), or None
    where the program is not one the generator handles (no pool). `debug`: also the source."""
    from . import program as P  # noqa: PLC0415 - program imports this module

    if prog.pool is None:
        return None
    src = _Source()
    ns = src.ns
    ns.update(
        _ndarray=np.ndarray,
        _generic=np.generic,
        _asarray=np.asarray,
        _nd=np.ndarray,
        _write=P._replay_write,
        _fusion_run=P.fusion.run,
        _get=prog.pool.get,
        _DONE=P._DONE_BY_LINEAR,
        _INTO_DEAD=P._INTO_DEAD,
        _dead=P._dead_operand,
    )
    src.add(0, "def replay(prog, env, pool):")
    for k, (ins, drops, extra) in enumerate(prog.steps):
        src.add(1, f"# step {k}: {_label(ins)}")
        kind = type(ins)
        if kind is Forward:
            _forward(src, P, prog, ins, extra, drops)
        elif kind is Backward:
            _backward(src, P, prog, ins)
        elif kind is FusedChain:
            src.add(1, f"_fusion_run({src.const(ins, 'chain')}, env, pool)")
        elif kind is View:
            _view(src, ins)
        elif kind is Write:
            src.add(1, f"_write(prog, {src.const(ins, 'write')}, env)")
        elif kind is Call:
            src.add(1, f"prog._call({src.const(ins, 'call')}, env)")
        else:
            return None
        for s in drops:
            src.add(1, f"env[{s}] = None")
    src.add(1, "return None")
    text = "\n".join(src.lines) + "\n"
    filename = f"<descent.compile replay {next(_COUNT)}>"
    code = compile(text, filename, "exec")
    exec(code, ns)  # noqa: S102 - our own generated source, over objects bound in ns
    fn = ns["replay"]
    # tracebacks through the generated code show its lines, for as long as it lives
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    weakref.finalize(fn, linecache.cache.pop, filename, None)
    fn.source = text  # (for reading, and for tools that time its blocks)
    fn.namespace = ns
    return (fn, text) if debug else fn


def _label(ins) -> str:
    if type(ins) is Forward:
        return f"{type(ins.op).__name__} {list(ins.ins)} -> {ins.out}"
    return type(ins).__name__


def _view(src: _Source, ins: View) -> None:
    """`Program._run`'s View: one np.ndarray over the base's buffer (CuPy: the interpreter)."""
    src.add(1, f"b = env[{ins.base}]")
    src.add(1, "if type(b) is _ndarray:")
    src.add(2, f"env[{ins.slot}] = _nd({ins.shape!r}, b.dtype, b, {ins.offset!r}, "
               f"{ins.strides!r})")  # fmt: skip
    src.add(1, "else:")
    src.add(2, f"env[{ins.slot}] = type(b)({ins.shape!r}, b.dtype, b.data + {ins.offset!r}, "
               f"{ins.strides!r})")  # fmt: skip
    src.add(1, "b = None")


def _forward(src: _Source, P, prog, ins: Forward, extra, drops=()) -> None:
    """`Program._forward` for one instruction, its first replay's decisions folded in; a
    ufunc writes into an operand whose slot dies here where nothing else holds it (below)."""
    I, X = src.const(ins, "ins"), src.const(extra, "x")
    pair, plan = extra[2], extra[1]
    delegate = f"prog._forward({I}, {X}, env, pool)"
    if pair is P._DONE_BY_LINEAR:  # a ReLU its Linear computed, unless that declined
        src.add(1, f"if env[{ins.out}] is None:")
        src.add(2, delegate)
        return
    if pair is not None or ins.binds or plan is None:
        src.add(1, delegate)  # a Linear+ReLU pair, bound parameters, an undecided plan
        return
    if type(plan) is list and plan[2] is None:
        src.add(1, delegate)  # a ufunc whose out= shape the interpreter has not seen yet
        return
    op = ins.op
    OP = src.const(op, "op")
    names = [f"a{i}" for i in range(len(ins.ins))]
    args = ", ".join(names)
    ind = 1
    if type(op) is P._Linear:  # a transposed twin left by the previous Linear: the interpreter
        src.add(1, f"if {src.const(prog._twins, 'twins')} and prog.linear_t:")
        src.add(2, delegate)
        src.add(1, "else:")
        ind = 2
    for name, s in zip(names, ins.ins):
        src.add(ind, f"{name} = env[{s}]")
    src.add(ind, "o = None")
    if type(plan) is not list and plan and type(plan[0]) is str:
        K = src.const(plan[1], "kern")
        if plan[0] == "gelu":
            src.add(ind, "if type(a0) is _ndarray and a0.flags.c_contiguous:")
            src.add(ind + 1, f"o = {K}(a0)")
        elif plan[0] in P._OP_KERNELS:
            src.add(ind, f"o = {K}({OP}, {args})")
    elif plan:  # [ufunc, operand form, (shape, dtype)]
        ufunc, form, (shape, dt) = plan
        U = src.const(ufunc, "uf")
        operands = {2: "a0, a1", 1: f"a0, {OP}.ca", 3: f"{OP}.ca, a0", 4: "a0, 0"}.get(form, "a0")
        if shape:  # (0-d results stay NumPy's: the op's forward below)
            cond = " and ".join(f"type({n}) is _ndarray and {n}.flags.c_contiguous"
                                for n in names)  # fmt: skip
            src.add(ind, f"if {cond}:")
            D = src.const(dt, "dt")
            # Session 28 (helper-206): into an operand that dies at this step (its slot
            # dropped here, read by no later instruction) when nothing else holds it
            # (program._dead_operand), with the result's shape and dtype. The same ufunc on
            # the same operands, so the same bits; one memory stream
            # fewer than a pool buffer (no write-allocate read), and the product's output it
            # usually is was just written by both cores: 768 x 128 residual add after a
            # two-thread product 33 -> 16 us (docs/compile.md, session 28).
            # (not for an op that saves its inputs for its backward: its boxes are filled
            # after the ufunc, so getrefcount cannot see them; Mul's dropout mask, helper-206)
            dead = [n for n, sl in zip(names, ins.ins)
                    if sl in drops and list(ins.ins).count(sl) == 1 and extra[0] is None]
            kw = "if"
            for n in reversed(dead):  # (the last operand first: a product's output, mostly)
                src.add(ind + 1, f"{kw} _INTO_DEAD[0] and _dead({n}, {shape!r}, {D}, pool):")
                src.add(ind + 2, f"o = {U}({operands}, out={n})")
                kw = "elif"
            if dead:
                src.add(ind + 1, "else:")
            src.add(ind + 1 + bool(dead), f"o = {U}({operands}, out=_get({shape!r}, {D}))")
    src.add(ind, "if o is None:")
    src.add(ind + 1, f"o = {OP}.forward({args})")
    src.add(ind + 1, "if type(o) is not _ndarray and isinstance(o, _generic):")
    src.add(ind + 2, "o = _asarray(o)")
    src.add(ind, f"env[{ins.out}] = o")
    if ins.node:
        boxes = extra[0]
        if boxes is not None:
            for i, box in enumerate(boxes):
                src.add(ind, f"{src.const(box, 'box')}._data = a{i}")
            src.add(ind, f"{OP}.saved = {src.const(boxes, 'boxes')}")
        src.add(ind, f"if {OP}.save_output:")
        src.add(ind + 1, f"{OP}.out_data = o")
    src.add(ind, " = ".join([*names, "o"]) + " = None")


def _backward(src: _Source, P, prog, ins: Backward) -> None:
    """`Program._backward`: the plain pass (`program._plain_backward`) unrolled, where the
    first replay made its plan; else (and for a call it does not cover) the interpreter's."""
    I = src.const(ins, "bw")
    plan = prog._plain_backward.get(id(ins))
    if not plan:
        src.add(1, f"prog._backward({I}, env, pool)")
        return
    name = f"backward_{sum(1 for n in src.ns if n.startswith('bw'))}"  # one per pass
    sub = _Source()
    sub.ns = src.ns  # one namespace
    sub._ids = src._ids
    _plain(sub, P, prog, ins, plan, name)
    src.lines[:0] = sub.lines  # the pass's function ahead of replay's
    seed = ins.seeds[0][1] if ins.seeds else None
    cond = f"type(env[{seed}]) is _ndarray and " if seed is not None else "False and "
    src.add(1, f"if {cond}prog.plain:")
    src.add(2, f"{name}(env, pool)")
    src.add(1, "else:")
    src.add(2, f"prog._backward({I}, env, pool)")


def _plain(src: _Source, P, prog, ins: Backward, plan, name: str) -> None:
    """`program._plain_backward` for this plan as one function of straight-line code."""
    nodes, seeds, leaves, n = plan
    ops = P._np_ops()
    src.ns.update(_ops=ops, _sum_to=ops.sum_to, _add=P._add, _in_pool=P._in_pool,
                  _refcount=P._getrefcount, _np_add=np.add, _IN_PLACE=P._IN_PLACE,
                  _INTO_FRESH=P._INTO_FRESH,
                  _linear_grads=P._linear_grads, _slice_gradient=P._slice_gradient,
                  _reshaped=P._reshaped_slice_gradient, _relu_backward=P._relu_backward,
                  _store_leaf_grads=P._store_leaf_grads, _rk=P.replay_kernels,
                  _gelu=prog.gelu_backward, _lnb=prog.ln_backward)  # fmt: skip
    fuse = prog.fuse
    retain = ins.retain_graph
    a = src.add
    a(0, f"def {name}(env, pool):")
    a(1, f"grads = [None] * {n}")
    for t, s in seeds:
        a(1, f"g = env[{s}]")
        a(1, f"prev = grads[{t}]")
        a(1, f"grads[{t}] = g if prev is None else _add(prev, g, pool)")
    a(1, "in_place = _IN_PLACE[0]")
    a(1, "into_fresh = in_place and _INTO_FRESH[0]")
    for node, kind, k, deliveries, saves, aux, may_skip in nodes:
        N = src.const(node, "node")
        a(1, f"# node {k}: {type(node).__name__}")
        a(1, f"gy = grads[{k}]")
        a(1, "if gy is None:")
        if may_skip:
            a(2, "pass  # a rewrite above delivered its gradient past it")
        else:
            a(2, f"raise KeyError({N})")
        a(1, "else:")
        a(2, f"grads[{k}] = None")
        a(2, "gxs = None")
        b = 3  # the body's indentation
        dl = None  # a local that says whether the deliveries run (attention's rewrite)
        tail_ind = 2
        if kind == P._SLICE or kind == P._RESHAPE:
            if kind == P._SLICE:
                t, shape, fill = aux
                a(2, "if type(gy) is _ndarray:")
                a(3, f"_slice_gradient(grads, {t}, {N}, gy, {shape!r}, pool, {fill!r})")
            else:
                child, t, shape, fill = aux
                a(2, "if type(gy) is _ndarray and not gy.flags.c_contiguous and _reshaped("
                     f"grads, {t}, {src.const(child, 'node')}, gy, {shape!r}, pool, "
                     f"{fill!r}):")  # fmt: skip
                a(3, "pass")
            a(2, "else:")
            a(3, f"gxs = {N}.backward(gy, _ops)")
            tail_ind = 3
        else:
            a(2, "if type(gy) is _ndarray:")
            if kind == P._LINEAR:
                a(b, f"saved = {N}.saved")
                a(b, 'if type(saved) is tuple and gy.dtype.kind == "f" and '
                     "gy.dtype.itemsize >= 4:")  # fmt: skip
                a(b + 1, "x, w = saved[0]._data, saved[1]._data")
                a(b + 1, "if (type(x) is _ndarray and x.ndim == gy.ndim >= 2 and x.shape[-1] "
                         "and gy.shape[-1] and x.dtype == gy.dtype and type(w) is _ndarray "
                         "and w.dtype == gy.dtype):")  # fmt: skip
                a(b + 2, f"gxs = _linear_grads({N}, gy, x, w)")
                a(b + 1, "else:")
                a(b + 2, f"gxs = {N}._grads(gy, x, w, _ops)")
                a(b + 1, "x = w = None")
            elif kind == P._SDPA:
                into, t = aux
                dl = "dl"
                a(b, f"buf = _rk.sdpa_backward_into({N}, gy, {src.const(into, 'into')}, pool, "
                     "_ops)")  # fmt: skip
                a(b, "if buf is not None:")
                a(b + 1, f"grads[{t}] = buf")
                a(b + 1, "gxs, dl, buf = (), False, None")
                a(b, "else:")
                a(b + 1, "dl = True")
            elif kind == P._GELU:
                a(b, f"site = _gelu.get({aux!r})")
                a(b, "if site is not None:")
                a(b + 1, f"gxs = site({N}.saved[0]._data, gy)")
                a(b, "site = None")
            elif kind == P._LN:
                a(b, f"site = _lnb.get({aux!r})")
                a(b, f"if site is not None and {N}.mean is not None:")
                a(b + 1, f"gxs = site({N}, gy)")
                a(b, "site = None")
            elif kind == P._TRANSPOSE:
                a(b, "gxs = gy" if aux is None else f"gxs = gy.transpose({aux!r})")
            elif kind == P._RELU:
                a(b, f"gxs = _relu_backward({N}, gy, pool)")
            elif kind == P._CE and fuse:
                a(b, f"gxs = _rk.ce_backward({N}, gy, pool)")
            else:
                a(b, "pass")
            if kind == P._CE and fuse:
                a(2, "else:")
                a(3, f"gxs = _rk.ce_backward({N}, gy, pool)")
            elif dl:
                a(2, "else:")
                a(3, "dl = True")
        ti = tail_ind
        a(ti, "if gxs is None:")
        a(ti + 1, f"gxs = {N}.backward(gy, _ops)")
        a(ti, "gy = None")
        if saves and not retain:
            a(ti, f"{N}._free_saved()")
        a(ti, "if type(gxs) is not tuple:")
        a(ti + 1, "gxs = (gxs,)")
        di = ti
        if dl:
            a(ti, "if dl:")
            di = ti + 1
        if not deliveries:
            a(di, "pass")
        for i, t, shape in deliveries:
            a(di, f"gx = gxs[{i}]")
            a(di, f"if gx.shape != {shape!r}:")
            a(di + 1, f"gx = _sum_to(gx, {shape!r})")
            a(di, f"prev = grads[{t}]")
            a(di, "if prev is None:")
            a(di + 1, f"grads[{t}] = gx")
            if kind == P._LN:  # (the interpreter's sum into a layer norm's fresh gradient)
                a(di, "elif (into_fresh and type(gx) is _ndarray and type(prev) is _ndarray and "
                      "_refcount(gx) <= 4 and prev.shape == gx.shape and prev.dtype == gx.dtype "
                      "and gx.base is None and gx.flags.writeable and (_refcount(gx) == 3 or "
                      "_in_pool(gx, pool))):")  # fmt: skip
                a(di + 1, "_np_add(prev, gx, out=gx)")
                a(di + 1, f"grads[{t}] = gx")
            # (the interpreter's in-place condition, `program._plain_backward`)
            a(di, "elif (in_place and type(prev) is _ndarray and _refcount(prev) <= 4 and "
                  "type(gx) is _ndarray and prev.shape == gx.shape and prev.dtype == gx.dtype "
                  "and prev.base is None and prev.flags.writeable and (_refcount(prev) == 3 "
                  "or _in_pool(prev, pool))):")  # fmt: skip
            a(di + 1, "_np_add(prev, gx, out=prev)")
            a(di, "else:")
            a(di + 1, f"grads[{t}] = _add(prev, gx, pool)")
        a(ti, "gxs = gx = prev = None")
    a(1, f"_store_leaf_grads({src.const(leaves, 'leaves')}, grads, env)")
