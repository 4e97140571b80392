"""Regressions found by the session-27 fuzz work (helper-195; session 26's open view-fuzz
programs and seeds 27000001 onward of tests/test_fuzz_differential.py,
tests/test_view_inplace_fuzz_s14.py and tests/fuzz_extra_dtypes.py, on an Intel AVX-512 host):
each case runs in descent and in torch 2.13 (the oracle) and compares the outcomes."""

import contextlib
import math
import random

import numpy as np
import pytest
import torch

import descent as ds


def _outcome(fn, m):
    """fn(m) as plain Python values, or the class of the error it raised."""
    try:
        r = fn(m)
    except Exception as e:  # noqa: BLE001 - the outcome compared is the error class
        return RuntimeError if isinstance(e, RuntimeError) else type(e)
    return _plain(r)


def _plain(r):
    if isinstance(r, (tuple, list)):
        return [_plain(v) for v in r]
    if isinstance(r, (torch.Tensor, ds.Tensor)):
        a = np.asarray(r.detach().numpy())
        # (+ 0: a zero's sign is not compared, as the view fuzz's allclose)
        return (a.round(12) + a.dtype.type(0) if a.dtype.kind in "fc" else a).tolist()
    return r


def _same(fn):
    t, d = _outcome(fn, torch), _outcome(fn, ds)
    if isinstance(t, type):
        assert isinstance(d, type) and issubclass(d, t), (d, t)
    else:
        assert repr(d) == repr(t), (d, t)  # (repr: a nan equals a nan)


# ---------------------------------------------------------------------------------------------
# Strides on size-1 dims. NumPy gives a dim that None makes stride 0, and its reshape picks its
# own strides for size-1 dims (or keeps x's for the same shape); PyTorch's are unsqueeze's (the
# extent of the dim it goes before), computeStride's (view/reshape/flatten) and squeeze's (the
# kept dims' own). stride() shows them, and the overlap check of in-place ops compares them
# (get_overlap_status: the same memory with other strides is a partial overlap).

CHAINS = {
    "none_first": lambda x: x[None],
    "none_then_int": lambda x: x[None, 0],
    "none_last": lambda x: x[..., None],
    "none_of_transpose": lambda x: x.t()[None],
    "slice_none": lambda x: x[0:1, None],
    "ellipsis_none_ellipsis": lambda x: x[..., None, :],
    "movedim_unsqueeze": lambda x: x.view(1, 3, 4).movedim(1, 0).unsqueeze(3),
    "stepped_slice_none_flatten": lambda x: x[0, 1:3:2][None].flatten(0, 1),
    "movedim_none_squeeze": lambda x: x.view(1, 3, 4).movedim(1, 0)[None, 0].squeeze(1),
    "permute_view_ones": lambda x: x[:1].permute(1, 0).view(1, 4, 1),
    "reshape_same_shape": lambda x: x.view(12, 1).permute(1, 0).reshape(1, 12),
    "permute_squeeze": lambda x: x[:1].view(1, 4, 1).permute(2, 1, 0).squeeze(2),
    "diagonal_reshape": lambda x: x[:1, :2].diagonal().reshape(1, 1),
    "unfold_reshape": lambda x: x.view(1, 4, 3).unfold(0, 1, 2).reshape(4, 1, 3, 1),
    "stepped_slice_view": lambda x: x[0, 0:1:2].view(1, 1),
    "reshape_minus_one_same_shape": lambda x: x[0, 1:3:2].reshape(-1),
    "reshape_minus_one_column": lambda x: x[:, 1:2].reshape(-1, 1),
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_size_one_strides_as_torch(name):
    f = CHAINS[name]
    t, d = f(torch.zeros(3, 4)), f(ds.zeros(3, 4))
    assert tuple(d.shape) == tuple(t.shape)
    assert d.stride() == t.stride(), (d.stride(), t.stride())


def _random_chain(rng, m, x):
    for _ in range(rng.randint(1, 4)):
        n = x.ndim
        k = rng.choice(["view", "unsqueeze", "none", "squeeze", "permute", "slice"])
        if k == "view":
            sizes = [x.numel()] if x.numel() else [0]
            for _ in range(rng.randint(0, 2)):
                sizes.insert(rng.randint(0, len(sizes)), 1)
            x = x.reshape(*sizes) if rng.random() < 0.5 else x.view(*sizes)
        elif k == "unsqueeze":
            x = x.unsqueeze(rng.randint(-n - 1, n))
        elif k == "none":
            x = x[rng.choice([(None,), (..., None), (None, ..., None), (slice(None), None)])
                  if n else (None,)]  # fmt: skip
        elif k == "squeeze":
            x = x.squeeze(rng.randrange(n)) if n else x.squeeze()
        elif k == "permute" and n:
            p = list(range(n))
            rng.shuffle(p)
            x = x.permute(*p)
        elif k == "slice" and n:
            d = rng.randrange(n)
            x = x[(slice(None),) * d + (slice(0, rng.randint(1, 2), rng.randint(1, 3)),)]
    return x


def test_size_one_strides_random_chains():
    """300 random chains of view/reshape/unsqueeze/None/squeeze/permute/slice on shapes with
    size-1 dims: descent's stride() is torch's after each chain."""
    bad = []
    for i in range(300):
        shape = [random.Random(i).choice([1, 2, 3]) for _ in range(random.Random(-i).randint(0, 3))]
        outs = []
        for m in (torch, ds):
            try:
                outs.append(_random_chain(random.Random(i), m, m.zeros(shape)))
            except Exception as e:  # noqa: BLE001 - compared below
                outs.append(type(e))
        t, d = outs
        if isinstance(t, type):
            continue
        if isinstance(d, type) or tuple(d.shape) != tuple(t.shape) or (
                t.numel() and d.stride() != t.stride()):  # fmt: skip
            bad.append((i, shape, t.shape, t.stride(), d if isinstance(d, type) else d.stride()))
    assert not bad, bad[:5]


def test_setitem_none_selection_from_expand():
    # view fuzz 26100079308628: x[None, :] is x's memory with strides (4, 1) in PyTorch, as
    # x.expand(1, -1): a full overlap, no error (descent's stride 0 made it partial)
    def fn(m):
        x = m.tensor([0.3, -0.668, 0.584, 0.535], dtype=m.float64, requires_grad=True)
        c = x.clone()
        v = c[None, :]
        v[...] = c.expand(1, -1)
        c.sum().backward()
        return c, x.grad

    _same(fn)


def test_setitem_none_int_of_a_diagonal_from_itself():
    # view fuzz 26100080308518: d[None, 0] = d, d a one-element diagonal of a bool tensor
    def fn(m):
        x = m.tensor([[True, False, True]])
        d = x.diagonal(-1, 1, 0)
        d[None, 0] = d
        return x

    _same(fn)


@pytest.mark.parametrize("write", ["add_", "copy_"])
def test_permute_and_reshape_of_a_column_overlap_in_part(write):
    # view fuzz 26100081312630: x.view(3, 1).permute(1, 0) has strides (1, 1), its reshape(1, 3)
    # (3, 1): the same memory, other strides, so PyTorch's add_ raises the partial-overlap error
    def fn(m):
        x = m.tensor([-0.089, 0.574, 1.095], dtype=m.float64, requires_grad=True)
        p = x.clone().view(3, 1).permute(1, 0)
        getattr(p, write)(p.reshape(1, 3))
        return p

    _same(fn)


# ---------------------------------------------------------------------------------------------
# A view made under no_grad of a tensor that requires grad, saved by an op, then written (its
# base or itself, with grad mode on or off): PyTorch's backward unpacks the saved view, which
# reads its grad_fn, which raises the no_grad-view error. descent skipped the version check for
# a node none of whose inputs gets a gradient (such a view has no gradient edge).


@pytest.mark.parametrize("case", ["base_grad_mode", "base_no_grad", "itself_no_grad",
                                  "sin_of_diagonal", "not_written", "input_only"])  # fmt: skip
def test_saved_no_grad_view_written_since(case):
    def fn(m):
        x = m.tensor([1.476, -0.11, 1.099, -0.631], dtype=m.float64, requires_grad=True)
        c = x.clone()
        if case == "sin_of_diagonal":  # (view fuzz 26100080329851's shape of it)
            c = c.view(2, 2)
        with m.no_grad():
            v = c.diagonal() if case == "sin_of_diagonal" else c.expand(-1)
        p = v.sin() if case == "sin_of_diagonal" else v.pow(3)  # (26100080325079)
        if case in ("base_grad_mode", "sin_of_diagonal", "input_only"):
            c.zero_()
        elif case == "base_no_grad":
            with m.no_grad():
                c.zero_()
        elif case == "itself_no_grad":
            with m.no_grad():
                v.mul_(2)
        if case == "input_only":  # (the pow node is not on the path to x: not run)
            return m.autograd.grad((p.sum() + x.sum()), x)
        (p.sum() + (x * 2).sum()).backward()
        return x.grad

    _same(fn)


# ---------------------------------------------------------------------------------------------
# A detach() of a tensor whose elements share memory (an expand, an as_strided with a 0
# stride), written in place with a value that requires grad: its views join the graph as
# as_strided views of it (PyTorch regenerates them so, AsStridedBackward0); descent's positions
# in such a base are not unique, so they stayed outside (view fuzz 25100076314769), and an
# empty read-only one was not written at all (26100080308042).


@pytest.mark.parametrize("write", ["masked_fill_", "copy_", "fill_"])
def test_view_of_a_detached_expand_joins_the_graph(write):
    def fn(m):
        x = m.tensor(-0.506, dtype=m.float64, requires_grad=True)
        d = x.clone().as_strided((2,), (0,), 0).detach()
        t = d.transpose(0, 0)
        w = m.tensor(-0.416, dtype=m.float64, requires_grad=True)
        if write == "masked_fill_":
            d.masked_fill_(m.tensor(True), w)
        elif write == "copy_":
            d.copy_(w.expand(2))
        else:
            d.fill_(w)
        (t * m.tensor([1.0, 2.0], dtype=m.float64)).sum().backward()
        return t.requires_grad, t.grad_fn is None, t, w.grad, x.grad

    _same(fn)


def test_view_of_an_empty_detached_expand_joins_the_graph():
    def fn(m):
        x = m.zeros(1, 0, dtype=m.complex128, requires_grad=True)
        e = x.clone().expand(3, 0)
        d = e.chunk(1, 0)[0].detach()
        t = d.transpose(1, 0)
        d.copy_(e)
        return t.requires_grad, d.requires_grad, t.grad_fn is None, t.shape == (0, 3)

    _same(fn)


# ---------------------------------------------------------------------------------------------
# x[i] = v writes into x itself only where PyTorch's applySlice returns x (every item a slice
# from None or 0, step 1, to None or at least the length); x[-2:] on 2 rows and e[-1:-1] on an
# empty e are slice views (CopySlices). descent took any index selecting all of x as x itself,
# so e[-1:-1] = e ran copy_ from itself on a view still unused since its base joined the graph,
# and raised the leaf error (view fuzz 27100082311526).


def test_setitem_of_an_empty_slice_view_from_itself():
    def fn(m):
        x = m.tensor([0.669, 2.246], dtype=m.float64)
        v = x[2::2]
        x.pow_(m.tensor([-1.425, -0.05], dtype=m.float64, requires_grad=True))
        v[-1:-1] = v
        return v.requires_grad, x

    _same(fn)


@pytest.mark.parametrize("sl", [slice(None), slice(0, 2), slice(0, 5), slice(-2, None)])
def test_setitem_of_all_rows_from_itself_node(sl):
    def fn(m):
        x = m.tensor([1.0, 2.0], requires_grad=True).clone()
        x[sl] = x
        return "CopySlices" in x.grad_fn.name(), x._version

    _same(fn)


# fill_ with a 0-d tensor value checks the written-to tensor for internal overlap (a 0 stride
# over more than one element: an expand) and raises, with or without grad; with a number it
# fills (descent filled in both cases; seen while checking the detach() cases above)


@pytest.mark.parametrize("value", ["tensor", "tensor_rg", "number"])
@pytest.mark.parametrize("detach", [False, True])
def test_fill_of_an_expand_with_a_tensor_value(value, detach):
    def fn(m):
        x = m.tensor([-0.506], dtype=m.float64, requires_grad=detach)
        d = x.clone().expand(2)
        if detach:
            d = d.detach()
        w = (
            -0.416
            if value == "number"
            else m.tensor(-0.416, dtype=m.float64, requires_grad=value == "tensor_rg")
        )
        with m.no_grad() if not detach and value != "tensor_rg" else contextlib.nullcontext():
            d.fill_(w)
        return d

    _same(fn)


# norm(p=0) sends no gradient (PyTorch's undefined one: x.grad stays None), an empty x's
# too; descent gave an empty x over all its dims an empty .grad (the open item of "Left open"
# in docs/fuzz_long_run.md, found with case 42286's checks)


@pytest.mark.parametrize("shape", [(3,), (0, 3), (2, 0)])
@pytest.mark.parametrize("dim", [None, 0])
def test_norm_p0_sends_no_gradient(shape, dim):
    def fn(m):
        x = m.ones(*shape, requires_grad=True)
        kw = {} if dim is None else {"dim": dim}
        m.norm(x, p=0, **kw).sum().backward()
        return x.grad is None

    _same(fn)


# ldexp of an integer or bool input is PyTorch's mul(input, pow(2.0, other)), the power in the
# default float dtype: int8 1 * 2 ** uint8 254 is inf (fuzz_extra_dtypes ints, seed 27300001);
# descent promoted the exponent with the input first (a 0-d uint8 254 into int8: -2, 0.25)

_INTS = ["int8", "uint8", "int16", "int32", "int64", "bool"]


@pytest.mark.parametrize("xd", _INTS)
@pytest.mark.parametrize("ed", _INTS)
@pytest.mark.parametrize("zero_d", [False, True])
def test_ldexp_of_an_integer_input(xd, ed, zero_d):
    xs = [True, False, True] if xd == "bool" else [1, 3, 100]
    es = {"bool": [True, False, True], "uint8": [254, 0, 200], "int8": [-128, 127, -2]}
    es = es.get(ed, [31, -150, 200])

    def fn(m):
        x = m.tensor(xs, dtype=getattr(m, xd))
        e = m.tensor(es[0] if zero_d else es, dtype=getattr(m, ed))
        r = m.ldexp(x, e)
        return str(r.dtype).split(".")[-1], r

    _same(fn)


def test_add_of_a_one_element_view_and_its_reshape():
    # view fuzz 27100084315336: d.reshape(-1) of a one-element view has d's stride in PyTorch
    # (a full overlap: no error); descent's first form of the size-1 rule read the -1 as a size
    def fn(m):
        x = m.arange(24, dtype=m.float64).reshape(2, 4, 3)
        d = x.diagonal(0, 0, 1).diagonal(2, 1, 0)
        d.add_(d.reshape(-1))
        return x, d.stride()

    _same(fn)


def test_view_as_real_transposed_create_graph():
    # view fuzz 27100085318961: under create_graph, view_as_real's backward is PyTorch's
    # view_as_complex(grad.contiguous()); descent's view_as_complex refused a transposed
    # gradient (its last dim's stride is not 1)
    def fn(m):
        z = m.tensor([0.9 + 0.6j, 0.08 + 0.3j, -1.5 + 0.1j], dtype=m.complex128, requires_grad=True)
        r = m.view_as_real(z.clone())
        p = z @ z
        t = r.transpose(0, -1)
        w = m.tensor([[-0.4, 1.04, -0.59], [-1.69, -0.2, 0.39]], dtype=m.float64)
        loss = (t * w).sum() + (p.real * -0.05).sum()
        (g,) = m.autograd.grad(loss, [z], create_graph=True)
        (g.real * g.real).sum().backward()
        return g, z.grad

    _same(fn)


@pytest.mark.parametrize("shape", [(), (1,), (2,), (1, 1)])
def test_cumprod_of_one_element_passes_sgns_zero_gradient(shape):
    # fuzz_extra_dtypes ints 27300003: PyTorch's cumprod_backward returns grad itself for one
    # element, so sgn's zero tensor reaches mul(x, -inf) (x.grad 0); descent made it real
    # zeros first (0 * inf = nan)
    def fn(m):
        x = m.ones(shape, requires_grad=True)
        m.cumprod(m.mul(x, -math.inf), 0).sgn().sum().backward()
        g = x.grad
        return bool((g != g).any()), bool((g == 0).all())

    _same(fn)
