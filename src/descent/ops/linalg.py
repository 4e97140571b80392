"""Linear algebra: matmul (batched, broadcasting, NumPy's 1-D rules), dot, outer, einsum."""

from __future__ import annotations

import math
import string

import numpy as np

from .. import amp, backend
from ..autograd import Function
from ..errors import DescentError
from ..grad_fn import show_as
from ..grad_fn_names import mark_name
from ..hooks import composite
from ..opmath import HALF, in_float32
from ..tensor import Tensor
from ..tensor_methods import beta_alpha_first
from ._common import (
    as_tensor,
    check_devices,
    conj_if_complex,
    holomorphic,
    refuse_kinds,
    result_type,
)
from .elementwise import cast as _cast
from .half import rounds_once
from .out_arg import write_out
from .shape import broadcast_to as _broadcast_to
from .shape import reshape as _reshape
from .shape_index import diagonal as _diagonal


class MatMul(Function):
    """d(a @ b)/da = gy @ b^T, d(a @ b)/db = a^T @ gy (batch dims summed by the engine; b^H and
    a^H for complex operands).

    1-D operands follow NumPy: a vector on the left is a row (promoted to (1, k)), on the right a
    column (promoted to (k, 1)); the promoted axis is removed from the result and re-added to the
    gradient here.
    """

    save_inputs = True
    cross_saved = True  # each operand is read only for the other's gradient (autograd_backward)
    # A dot product's known-zero gradient passes (PyTorch's dot_backward multiplies it); the
    # matrix products materialize it, as PyTorch's mm.
    zero_passes = property(lambda self: len(self.in_shapes[0]) == len(self.in_shapes[1]) == 1)

    def forward(self, a, b):
        return a @ b

    def backward(self, gy, ops):
        # Both operands are saved: each gradient is a product with the other one.
        a, b = self.inputs(ops)
        if a.dtype.kind == "c":  # complex: ga = gy @ b^H, gb = a^H @ gy (PyTorch's convention)
            a, b = conj_if_complex(ops, a), conj_if_complex(ops, b)
        a_vec, b_vec = a.ndim == 1, b.ndim == 1
        if a_vec and b_vec:  # dot product: gy is a scalar
            return (gy * b if self.parents[0] is not None else None,
                    gy * a if self.parents[1] is not None else None)  # fmt: skip
        if a_vec:
            a = a.reshape((1,) + a.shape)
            gy = ops.expand_dims(gy, -2)
        if b_vec:
            b = b.reshape(b.shape + (1,))
            gy = ops.expand_dims(gy, -1)
        ga = gb = None
        if self.parents[0] is not None:
            # (..., m, n) @ (..., n, k)^T -> (..., m, k): gy times b transposed in its last two
            # dims.
            ga = gy @ ops.swapaxes(b, -1, -2)
            # (the engine sums ga over broadcast batch dimensions)
            if a_vec:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if self.parents[1] is not None:
            if b.ndim == 2 and a.ndim > 2 and not a_vec:
                # A shared weight (k, n) under a batched input (..., m, k): fold the batch into
                # the rows and do one (k, M) @ (M, n) product instead of summing many small ones.
                # (Explicit row counts: -1 is ambiguous when a dimension is 0.)
                rows = math.prod(a.shape[:-1])
                a2 = a.reshape((rows, a.shape[-1]))
                gb = ops.swapaxes(a2, -1, -2) @ gy.reshape((rows, gy.shape[-1]))
            else:
                gb = ops.swapaxes(a, -1, -2) @ gy
            if b_vec:
                gb = gb.reshape(gb.shape[:-1])
        return ga, gb


def matmul(a, b, *, out=None) -> Tensor:
    """Matrix product with NumPy's rules (batched and broadcasting; 1-D vectors promoted);
    `out=` as PyTorch's (out's dtype must be the result's)."""
    if out is not None:
        return write_out(matmul(a, b), out, "matmul", same_dtype=True)
    return product(a, b, "matmul")


# Products PyTorch's autocast leaves in their input dtype (not on its lower-precision list,
# which has mm, bmm, matmul, addmm, baddbmm, addbmm, linear, convolutions, linalg_vecdot)
_NOT_AUTOCAST = frozenset({"dot", "mv", "vdot"})


def product(a, b, op: str) -> Tensor:
    """matmul under another op's name (mm, bmm, mv, dot, addmm): its errors name that op."""
    both = isinstance(a, Tensor) and isinstance(b, Tensor)
    a = as_tensor(a, b) if isinstance(b, Tensor) else as_tensor(a)
    b = as_tensor(b, a)
    if a._nested_layout or b._nested_layout:  # jagged nested tensors: descent.nested
        return (a if a._nested_layout else b)._nested_matmul(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise DescentError(
            f"{op}: operands must have at least one dimension, got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}; use * for scaling"
        )
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise DescentError(
            f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align: the last "
            f"dimension of the first ({ka}) must equal the "
            f"{'only' if b.ndim == 1 else 'second-to-last'} dimension of the second ({kb}); "
            "transpose one of them (x.T or x.mT)"
        )
    # Batch dimensions must broadcast; checked here so the error names both shapes before
    # NumPy's own (less specific) one.
    if a.ndim > 2 and b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise DescentError(
                f"{op}: batch dimensions of {tuple(a.shape)} and {tuple(b.shape)} cannot "
                "be broadcast"
            ) from None
    if type(a._data) is not type(b._data) or type(a._data) is not np.ndarray:
        sparse = a if hasattr(type(a), "_matmul_sparse") else b
        if hasattr(type(sparse), "_matmul_sparse"):
            # a sparse operand (descent.sparse: COO, CSR, CSC, BSR): its own product; reached
            # only here, where the operands' array types differ or are not NumPy's (sparse @
            # sparse), so dense NumPy products pay one type test
            return sparse._matmul_sparse(a, b)
        check_devices(op, a, b)
    # Under autocast the product runs in float16/bfloat16 (the point of mixed precision);
    # amp._lower records the casts, so gradients flow back in each input's own dtype.
    if amp._depth and op not in _NOT_AUTOCAST:  # inside descent.autocast: the low dtype
        a, b = amp._lower(a, b)
    if a._data.dtype != b._data.dtype and not both:
        # A NumPy array or nested list with a tensor (np.ones((2, 3)) @ t): at
        # torch.result_type; the casts are recorded, so gradients keep each dtype.
        dt = result_type(a, b)
        a = a if a._data.dtype == dt else _cast(a, dt)
        b = b if b._data.dtype == dt else _cast(b, dt)
    if a._data.dtype != b._data.dtype:
        if op == "bmm" and a._data.dtype == np.bool_:  # (PyTorch's bmm finds no bool kernel
            refuse_kinds(op, a, "b")  # before its dtype check: a NotImplementedError)
        # PyTorch has no mixed-dtype product of tensors (float32 @ float64 raises): refused
        raise DescentError(
            f"{op}: expected both operands to have the same dtype, got {a.dtype} "
            f"{tuple(a.shape)} and {b.dtype} {tuple(b.shape)}; cast one first, e.g. "
            "b.to(a.dtype)"
        )
    if a._data.dtype.kind == "b" and (
        (a._data.size and b._data.size) or (a._data.ndim == 1 and b._data.ndim == 1)
    ):  # PyTorch has no bool matmul kernel (NotImplementedError); an empty product never
        # reaches one there (zeros, or an empty result), except a dot of two vectors
        refuse_kinds(op, a, "b", "convert the tensors first, e.g. .int() or .float()")
    return MatMul.apply(a, b)


def mm(a, b, *, out=None) -> Tensor:
    """Product of two matrices (torch.mm: 2-D only, no broadcasting); `out=` as PyTorch's."""
    if out is not None:
        return write_out(mm(a, b), out, "mm", same_dtype=True)
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim != 2 or b.ndim != 2:
        raise DescentError(
            f"mm: expects two 2-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}; "
            "use matmul (@) for vectors and batches"
        )
    return product(a, b, "mm")


def bmm(a, b, *, out=None) -> Tensor:
    """Batched product of (B, n, m) and (B, m, p) tensors (torch.bmm: 3-D, equal batches);
    `out=` as PyTorch's."""
    if out is not None:
        return write_out(bmm(a, b), out, "bmm", same_dtype=True)
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise DescentError(
            f"bmm: expects two 3-D tensors with the same batch size, got shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    out = product(a, b, "bmm")
    if out._node is not None:  # PyTorch's BmmBackward0 (matmul's is an UnsafeViewBackward0)
        mark_name(out._node, "BmmBackward0")
    return out


def integer_coefficients(op: str, prod: Tensor, beta, alpha):
    """beta and alpha for an integer product of the addmm family: PyTorch casts them to the
    integer type (truncating: 0.6 -> 0), so the result keeps the dtype instead of becoming
    float; bool operands are refused, as PyTorch's kernels do."""
    if prod._data.dtype == np.bool_:
        raise RuntimeError(
            f"{op}: not implemented for bool tensors, as in PyTorch; convert them first, "
            "e.g. x.long()"
        )
    return int(beta), int(alpha)


@beta_alpha_first(method=False)
def addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2) (torch.addmm; input broadcasts); `out=` as
    PyTorch's."""
    if out is not None:
        result = addmm(input, mat1, mat2, beta=beta, alpha=alpha)
        return write_out(result, out, "addmm", same_dtype=True)
    # PyTorch's one node over (input, mat1, mat2)
    return show_as(_addmm(input, mat1, mat2, beta, alpha), "AddmmBackward0", (input, mat1, mat2))


@composite("aten.addmm")  # one op for descent.utils.flop_counter
@rounds_once  # one kernel in PyTorch: float16/bfloat16 products, scales and sum rounded once
def _addmm(input, mat1, mat2, beta, alpha) -> Tensor:
    if amp._depth:  # on PyTorch's autocast list: input, mat1, mat2 in the low dtype
        input, mat1, mat2 = amp._lower(as_tensor(input), as_tensor(mat1), as_tensor(mat2))
    prod = mm(mat1, mat2)
    if prod._data.dtype.kind in "iub":
        beta, alpha = integer_coefficients("addmm", prod, beta, alpha)
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:  # PyTorch ignores input (even nan) when beta is 0
        return prod
    return (input if beta == 1 else input * beta) + prod


def dot(a, b) -> Tensor:
    """Inner product of two 1-D tensors."""
    a = as_tensor(a)
    b = as_tensor(b, a)
    if a.ndim != 1 or b.ndim != 1:
        raise DescentError(
            f"dot: expects two 1-D tensors, got {tuple(a.shape)} and {tuple(b.shape)}; use matmul"
        )
    return product(a, b, "dot")


def outer(a, b) -> Tensor:
    """Outer product of two 1-D tensors: out[i, j] = a[i] b[j]."""
    a = as_tensor(a)
    b = as_tensor(b, a)
    if a.ndim != 1 or b.ndim != 1:
        raise DescentError(
            f"outer: expects two 1-D tensors, got {tuple(a.shape)} and {tuple(b.shape)}; "
            "flatten them first (a.flatten())"
        )
    # A broadcast product: composite, its gradient comes from Mul and the engine's unbroadcast.
    # (PyTorch's a.reshape(-1, 1) * b: one ViewBackward0, b broadcast)
    return a.reshape(-1, 1) * b


class FixedMatmul(Function):
    """y = x @ m for a matrix m that is a constant of a composite op (interpolate's resampling
    weights, built from the sizes alone): d/dx = gy @ m^T. PyTorch's node for such an op
    (UpsampleBilinear2DBackward0, ...) saves nothing, so m is an op parameter that does not
    count as saving: a second backward runs again. Under create_graph the gradient is this op
    with m^T (linear in gy: every order)."""

    __slots__ = ("m",)  # (k, n) array of x's dtype

    def forward(self, x):
        return x @ self.m

    def backward(self, gy, ops):
        mt = self.m.T
        if ops.is_graph:
            return FixedMatmul.apply(gy, m=mt)
        return gy @ mt


@holomorphic  # complex: each operand's gradient with the others conjugated
class Einsum(Function):
    """Gradient of operand i: einsum of the output gradient with the other operands, onto i's
    subscripts; letters that appear only in operand i (summed away) are broadcast back."""

    __slots__ = ("inputs_subs", "out_subs")
    save_inputs = True

    def forward(self, *operands):
        if operands[0].dtype == HALF:  # NumPy's float16 einsum accumulates in float16 (8-12x
            return in_float32(self.forward, *operands)  # PyTorch's error): float32, rounded
        xp = backend.get_array_module(*operands)
        spec = ",".join(self.inputs_subs) + "->" + self.out_subs
        return xp.einsum(spec, *operands, optimize=len(operands) > 2)

    def backward(self, gy, ops):
        # For each operand i: contract gy with all the other operands onto i's subscripts. Letters
        # of i that appear nowhere else were summed away in forward; their gradient is a broadcast.
        # (One operand: nothing else to contract with, nothing saved; see EinsumOne.)
        operands = self.inputs(ops) if self.save_inputs else (None,)
        grads = []
        for i, sub in enumerate(self.inputs_subs):
            if self.parents[i] is None:
                grads.append(None)
                continue
            others = [(s, o) for j, (s, o) in enumerate(zip(self.inputs_subs, operands)) if j != i]
            avail = set(self.out_subs) | {c for s, _ in others for c in s}
            kept = "".join(c for c in sub if c in avail)
            spec = ",".join([self.out_subs] + [s for s, _ in others]) + "->" + kept
            # This is itself an einsum, so under create_graph it records an Einsum op and the
            # gradient is differentiable again.
            g = ops.einsum(spec, gy, *[o for _, o in others])
            if kept != sub:
                shape = [self.in_shapes[i][k] if c in kept else 1 for k, c in enumerate(sub)]
                g = g.reshape(tuple(shape))
                g = ops.broadcast_to(g, self.in_shapes[i])
            grads.append(g)
        return tuple(grads)


class EinsumOne(Einsum):
    """An einsum of one operand ('ij->ji', 'ij->i'): linear in it, so its gradient is gy alone
    re-indexed and broadcast, and nothing is saved (PyTorch's einsum of one operand is a sum and
    a permute, which save nothing: a second backward runs again)."""

    save_inputs = False


def einsum(subscripts: str, *operands) -> Tensor:
    """Einstein summation with NumPy's and PyTorch's notation: explicit ('bij,bjk->bik') or
    implicit output, '...' for broadcast leading dimensions, and repeated letters within an
    operand for diagonals and traces ('ii->i', 'ii', 'bii->b').

    A repeated letter first takes that operand's diagonal (a recorded `diagonal`, so its
    gradient lands on the diagonal); '...' is spelled out with unused letters, after the
    operands' ellipsis dimensions are broadcast to one shape (a recorded broadcast, whose
    gradient the engine sums back). What is left is one `Einsum` op.

    PyTorch's sublist form, `einsum(a, [0, 1], b, [1, 2], [0, 2])` (ints in 0..51 and
    `...`), is spelled as the equation `'AB,BC->AC'` first, with PyTorch's letters.
    """
    if not isinstance(subscripts, str):
        subscripts, operands = _sublist_equation((subscripts, *operands))
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    tensors = [as_tensor(o) for o in operands]
    spec = subscripts.replace(" ", "")
    lhs, out = spec.split("->") if "->" in spec else (spec, None)
    subs = lhs.split(",")
    if len(subs) != len(tensors):
        raise DescentError(f"einsum: {len(subs)} operand subscripts for {len(tensors)} operands")
    if amp._depth and _einsum_contracts(subs, out):
        tensors = list(amp._lower(*tensors))
    if len({t._data.dtype for t in tensors}) > 1:  # PyTorch refuses; promoted here before
        if tensors[0]._data.dtype == np.bool_:  # (a bool first operand: its bmm has no bool
            refuse_kinds("einsum", tensors[0], "b")  # kernel, a NotImplementedError first)
        raise DescentError(
            "einsum: operands must share one dtype, got "
            f"{', '.join(f'{t.dtype} {tuple(t.shape)}' for t in tensors)}; cast them first"
        )
    for s in subs + ([out] if out is not None else []):
        bad = set(s.replace("...", "")) - set(string.ascii_letters)
        if bad or s.count("...") > 1 or s.replace("...", "").count(".") > 0:
            raise DescentError(
                f"einsum: invalid subscripts {s!r} (letters a-z, A-Z and at most one '...')"
            )
    if any(t._data.dtype.kind in "bu" for t in tensors):
        tensors = _sum_first_as_int64(subs, tensors, out)
    subs, tensors, ell = _expand_ellipsis(subs, tensors)
    letters = "".join(subs)
    if out is None:
        # The implicit output: the ellipsis dimensions, then the letters that occur once
        # (NumPy's and PyTorch's rule), in alphabetical order.
        single = sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell)
        out = ell + "".join(single)
    else:
        out = out.replace("...", ell)
    for s, o in zip(subs, tensors):
        if len(s) != o.ndim:
            raise DescentError(
                f"einsum: subscripts {s!r} do not match an operand of shape {tuple(o.shape)}"
            )
    # Repeated letters: take the diagonal over each repeated pair, the letter once at the end.
    for k, (s, o) in enumerate(zip(subs, tensors)):
        while len(set(s)) != len(s):
            c = next(c for c in s if s.count(c) > 1)
            i = s.index(c)
            j = s.index(c, i + 1)
            if o.shape[i] != o.shape[j]:
                raise DescentError(
                    f"einsum: letter {c!r} repeated in {subs[k]!r} names dimensions of "
                    f"different sizes ({o.shape[i]} and {o.shape[j]})"
                )
            o = _diagonal(o, 0, i, j)
            s = s[:i] + s[i + 1 : j] + s[j + 1 :] + c
        subs[k], tensors[k] = s, o
    # A letter's size: dimensions of size 1 broadcast against the others, as PyTorch's
    # ('bij,bjk->bik' with b = 1 and 5); two sizes other than 1 must agree.
    sizes: dict = {}
    for s, o in zip(subs, tensors):
        for c, n in zip(s, o.shape):
            have = sizes.setdefault(c, n)
            if have != n:
                if have != 1 and n != 1:
                    raise DescentError(
                        f"einsum: letter {c!r} names dimensions of sizes {have} and {n} "
                        "(dimensions must match or be 1, which broadcasts)"
                    )
                sizes[c] = max(have, n)
    for k, (s, o) in enumerate(zip(subs, tensors)):
        full = tuple(sizes[c] for c in s)
        if full != tuple(o.shape):  # a size-1 dimension broadcast (recorded: its gradient sums)
            tensors[k] = o.expand(*full)
    if set(out) - set("".join(subs)) or len(set(out)) != len(out):
        raise DescentError(f"einsum: output subscripts {out!r} must be distinct input letters")
    check_devices("einsum", *tensors)
    op = EinsumOne if len(tensors) == 1 else Einsum
    return op.apply(*tensors, inputs_subs=tuple(subs), out_subs=out)


def _einsum_contracts(subs: list, out: str | None) -> bool:
    """Whether PyTorch's einsum ends in a bmm (so autocast runs it in the low dtype): a letter
    that two operands share and the output drops. PyTorch contracts operand pairs with bmm
    when they share a summed letter and with mul otherwise (which keeps float32); for three
    or more operands the order is opt_einsum's, and this takes any contraction as a bmm."""
    if len(subs) < 2:
        return False  # sums and permutes: not on the autocast list
    letters = "".join(s.replace("...", "") for s in subs)
    if out is None:
        kept = {c for c in letters if letters.count(c) == 1}
    else:
        kept = set(out.replace("...", ""))
    shared = [c for c in set(letters) if sum(c in s for s in subs) >= 2 and c not in kept]
    return bool(shared)


def _sum_first_as_int64(subs, tensors, out):
    """PyTorch's einsum first sums each operand over the letters it alone has (not in the
    output, nor in another operand), with torch.sum, whose result for a bool or uint8 tensor
    is int64: such an operand takes part in int64 ('i->' on uint8 is int64, 'ij,jk->ik'
    stays uint8). Casting it to int64 before the contraction gives the same values."""
    letters = "".join(s.replace("...", "") for s in subs)
    if out is None:  # implicit output: the letters that occur once (and the ellipsis)
        kept, keep_ell = {c for c in letters if letters.count(c) == 1}, True
    else:
        kept, keep_ell = set(out.replace("...", "")), "..." in out
    # the number of ellipsis dimensions of each operand (right-aligned when broadcast)
    n_ell = [t.ndim - len(s.replace("...", "")) if "..." in s else 0 for s, t in zip(subs, tensors)]
    result = list(tensors)
    for k, (s, t) in enumerate(zip(subs, tensors)):
        dt = t._data.dtype
        if dt.kind not in "bu" or dt.itemsize == 8:  # uint64 sums in uint64
            continue
        others = "".join(s2 for j, s2 in enumerate(subs) if j != k)
        own = any(c not in kept and c not in others for c in s.replace("...", ""))
        if not keep_ell:
            own = own or n_ell[k] > max([n for j, n in enumerate(n_ell) if j != k], default=0)
        if own:
            result[k] = _cast(t, np.int64)
    return result


def _sublist_letters(sublist) -> str:
    """[0, 1, ...] -> 'AB...': ints 0-25 are 'A'-'Z' and 26-51 'a'-'z', as in PyTorch."""
    out = []
    for i in sublist:
        if i is Ellipsis:
            out.append("...")
        elif isinstance(i, int) and 0 <= i < 52:
            out.append(chr(ord("A") + i) if i < 26 else chr(ord("a") + i - 26))
        else:
            raise DescentError(
                f"einsum: sublist entries must be ints in [0, 52) or Ellipsis, got {i!r}"
            )
    return "".join(out)


def _sublist_equation(args):
    """(op1, sub1, op2, sub2, ..., [out]) -> (equation, operands)."""
    operands, subs = list(args[0::2]), [_sublist_letters(s) for s in args[1::2]]
    out = None
    if len(args) % 2 == 1:  # an odd count ends with the output sublist
        out = _sublist_letters(operands.pop())
    if len(subs) != len(operands):
        raise DescentError("einsum: the sublist form needs one sublist per operand")
    equation = ",".join(subs) + ("" if out is None else "->" + out)
    return equation, tuple(operands)


def _expand_ellipsis(subs, tensors):
    """Replace '...' by unused letters: (subs, tensors, the letters), with every operand's
    ellipsis dimensions broadcast to the common shape (right-aligned, as NumPy)."""
    if not any("..." in s for s in subs):
        return list(subs), list(tensors), ""
    free = [c for c in string.ascii_letters if c not in "".join(subs)]
    dims = []  # the ellipsis shape of each operand
    for s, o in zip(subs, tensors):
        n_named = len(s.replace("...", ""))
        if "..." in s:
            if o.ndim < n_named:
                raise DescentError(
                    f"einsum: subscripts {s!r} need at least {n_named} dimensions, operand "
                    f"has shape {tuple(o.shape)}"
                )
            i = s.index("...")
            dims.append(tuple(o.shape[i : i + o.ndim - n_named]))
        else:
            dims.append(None)
    try:
        common = np.broadcast_shapes(*[d for d in dims if d is not None])
    except ValueError:
        raise DescentError(
            f"einsum: the '...' dimensions {[d for d in dims if d is not None]} cannot be "
            "broadcast together"
        ) from None
    ell = "".join(free[: len(common)])
    new_subs, new_tensors = [], []
    for s, o, d in zip(subs, tensors, dims):
        if d is not None:
            i = s.index("...")
            if d != common:
                # Broadcast the operand's ellipsis dims to the common shape (the engine sums
                # the gradient back), so every letter has one size.
                target = o.shape[:i] + common + o.shape[i + len(d) :]
                o = _reshape(o, o.shape[:i] + (1,) * (len(common) - len(d)) + o.shape[i:])
                o = _broadcast_to(o, target)
            s = s.replace("...", ell)
        new_subs.append(s)
        new_tensors.append(o)
    return new_subs, new_tensors, ell
