"""PyTorch fidelity, session 29 (helper-221), against torch 2.13.

Part 1, the graph a program walks (docs/pytorch.md, "Edges, session 29"): where descent computes
in one node what PyTorch's graph holds as several (`x[0, 1]` is PyTorch's select of a select,
`F.linear`'s weight goes through a TBackward0, cross_entropy's input through a
LogSoftmaxBackward0, `2 / x` is a reciprocal times 2), `next_functions` shows PyTorch's nodes
(grad_fn.ShownNode); the pieces of split / chunk / unbind share one node, piece k being its
output k (`output_nr`, the index in a `next_functions` pair); `torch.bmm` is BmmBackward0.
Each case walks both graphs and compares class names, `name()` and the edges with their
indices; gradients are checked unchanged.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent
from test_fidelity_s28 import walk  # the same torchviz-style walker

RNG = np.random.default_rng(29)
X = RNG.standard_normal((3, 4)).astype(np.float32)
W = RNG.standard_normal((5, 4)).astype(np.float32)
B3 = RNG.standard_normal((2, 3, 4)).astype(np.float32)


def _env(lib) -> dict:
    return {
        "torch": lib,
        "F": lib.nn.functional,
        "x": lib.tensor(X, requires_grad=True),
        "w": lib.tensor(W, requires_grad=True),
        "b3": lib.tensor(B3, requires_grad=True),
        "c": lib.tensor(X),  # no gradient
    }


def _run(lib, src: str):
    ns = _env(lib)
    *stmts, last = src.split("\n")
    for s in stmts:
        exec(s, ns)
    return eval(last, ns), ns


GRAPHS = [
    # basic indexes: one node per int, per slice that is not the whole dim, per None
    "x[0, 1]",
    "x[0, :2]",
    "x[1:, 0]",
    "x[None, 0]",
    "x[0, None]",
    "x[0, 1:, None]",
    "x[0, 0:4]",  # a slice over the whole dim records nothing: one SelectBackward0
    "x[0:9, 2]",
    "x[-3:, 2]",  # (a negative start is a slice node in PyTorch, even over the whole dim)
    "x[..., 1, None]",
    "b3[1, ..., 2]",
    "b3[1, 1:, ::2]",
    "b3[None, 0, None, 1]",
    "x[torch.tensor(1), 2]",
    "x[0, 1] * x[1, 0]",
    # advanced indexes: the basic entries' nodes, then IndexBackward0
    "x[0, [0, 1]]",
    "x[[0, 1], 0]",
    "x[1:, [0, 2]]",
    "x[None, [0, 2]]",
    "x[0, torch.tensor([True, False, True, False])]",
    "b3[1, [0, 2], 1:3]",
    # one fused node here, two there
    "2 / x",
    "1 / x",
    "-1.5 / x[0]",
    "F.linear(x, w)",
    "F.linear(x, w, w[:, 0])",
    "F.linear(x, w.detach(), w[:, 1])",
    "F.linear(c, w)",
    "torch.nn.Linear(4, 2)(x)",
    "F.cross_entropy(x, torch.tensor([0, 1, 3]))",
    "F.cross_entropy(x, torch.tensor([0, -100, 3]), reduction='sum')",
    "F.cross_entropy(x, torch.tensor([0, 1, 3]), weight=torch.ones(4))",
    "torch.bmm(b3, b3.transpose(1, 2))",
    "b3.bmm(b3.mT)",
    # split / chunk / unbind: one node shared by the pieces, piece k its output k
    "a, b = x.split(2, dim=1)\na * b",
    "a, b = x.split(2, dim=1)\nb * a",
    "p = x.split([1, 2], dim=0)\np[1].sum(0) * p[0]",
    "p = x.chunk(3, 0)\np[2] - p[0] + p[1]",
    "p = x.unbind(1)\ntorch.stack([p[3], p[1]])",
    "p = torch.unsafe_split(x, 2, 1)\np[1] * p[0]",
    "p = torch.unsafe_chunk(x, 2)\np[1].sum() * p[0]",
    "p = x.split(1)\nq = x.split(1)\np[2] * q[0]",
    "q, k = x.split(2, dim=1)\n(q.t() @ k).softmax(-1)",
    # composites shown as PyTorch's node, or built from PyTorch's pieces
    "torch.aminmax(x)[1] * torch.aminmax(x)[0]",
    "r = torch.aminmax(x, dim=0, keepdim=True)\nr.max - r.min",
    "torch.nanmedian(x)",
    "torch.roll(x[:0], 1)",
    "x.index_fill(1, torch.tensor([0, 2]), 2.0)",
    "x.index_fill(1, torch.tensor([0, 2]), x[0, 0])",
    "torch.atleast_2d(x[0])",
    "torch.atleast_3d(x[0])",
    "torch.atleast_3d(x)",
    "torch.vstack([x[0], x[1], x[2]])",
    "torch.dstack([x[0], x[1]])",
    "torch.outer(x[0], x[1, :3])",
    # tutorial-shaped: an MLP with a classification loss
    "h = F.linear(x, w, w[:, 0]).relu()\nF.cross_entropy(h, torch.tensor([0, 4, 2]))",
]


@pytest.mark.parametrize("src", GRAPHS)
def test_graph_walk_as_torch(src):
    t, _ = _run(torch, src)
    d, _ = _run(descent, src)
    assert walk(d.grad_fn) == walk(t.grad_fn)


@pytest.mark.parametrize(
    "src",
    [
        "x[0, 1] * x[2, 3]",
        "F.linear(x, w, w[:, 0]).tanh().sum()",
        "F.cross_entropy(x, torch.tensor([0, 1, 3]))",
        "(2 / x).sum()",
        "a, b = x.split(2, dim=1)\n(a * b).sum() + x.unbind(0)[2].sum()",
        "torch.bmm(b3, b3.transpose(1, 2)).sum() + b3[1, 0, 2]",
        "(x[1:, [0, 2]] ** 2).sum() + x[None, 0, 1:].sum()",
    ],
)
@pytest.mark.parametrize("read", [False, True], ids=["plain", "walked"])
def test_gradients_unchanged(src, read):
    """Walking the graph (making the shown nodes) changes no gradient: float32 vs torch."""
    grads = []
    for lib in (torch, descent):
        out, ns = _run(lib, src)
        if read and lib is descent:
            walk(out.grad_fn)
        out.sum().backward()
        grads.append([ns[k].grad for k in ("x", "w", "b3")])
    for tg, dg in zip(*grads, strict=True):
        assert (tg is None) == (dg is None)
        if tg is not None:
            np.testing.assert_allclose(dg.numpy(), tg.numpy(), rtol=1e-5, atol=1e-6)


def test_shown_nodes_float64_gradcheck():
    """float64 gradients through the fused nodes, against finite differences."""
    x = descent.tensor(X.astype(np.float64), requires_grad=True)
    w = descent.tensor(W.astype(np.float64), requires_grad=True)

    def f(x, w):
        y = descent.nn.functional.linear(x, w, w[:, 0]) + (2 / (x[0, 1] + 3.0))
        p = y.split(2, dim=1)
        return descent.nn.functional.cross_entropy(p[0] * p[1], descent.tensor([0, 1, 1]))

    walk(f(x, w).grad_fn)
    assert descent.autograd.gradcheck(f, (x, w))


def test_shown_node_identity_and_hooks():
    """A shown node is the same object on every read, an instance of autograd.graph.Node,
    printed as PyTorch's; it has no node of its own to run hooks on, so they are refused."""
    x = descent.tensor(X, requires_grad=True)
    y = x[0, 1]
    inner = y.grad_fn.next_functions[0][0]
    assert inner is y.grad_fn.next_functions[0][0]
    assert type(inner).__name__ == "SelectBackward0" == inner.name()
    assert isinstance(inner, descent.autograd.graph.Node)
    assert repr(inner).startswith("<SelectBackward0 object at 0x")
    assert inner.next_functions[0][0].variable is x
    assert inner.metadata == {}
    with pytest.raises(RuntimeError, match="register the hook on the tensor"):
        inner.register_hook(lambda gi, go: None)
    with pytest.raises(RuntimeError, match="SelectBackward0"):
        inner.register_prehook(lambda go: None)
    # the node above keeps its hooks
    seen = []
    y.grad_fn.register_prehook(lambda go: seen.append(go[0].item()))
    (y * 3).backward()
    assert seen == [3.0]


@pytest.mark.parametrize("how", ["split", "chunk", "unbind", "split_sizes"])
def test_pieces_share_one_node(how):
    """`a.grad_fn is b.grad_fn` and `output_nr` as PyTorch's; the shared node outlives a
    dropped first piece while another piece lives."""
    res = []
    for lib in (torch, descent):
        x = lib.tensor(X, requires_grad=True)
        method, args = {
            "split": ("split", (2, 1)),
            "chunk": ("chunk", (2, 1)),
            "unbind": ("unbind", (1,)),
            "split_sizes": ("split", ([1, 3], 1)),
        }[how]
        p = getattr(x, method)(*args)
        names = {type(q.grad_fn).__name__ for q in p}
        same = all(q.grad_fn is p[0].grad_fn for q in p)
        nrs = [q.output_nr for q in p]
        last = p[-1]
        del p
        res.append((names, same, nrs, last.grad_fn.name(), last.output_nr, x.output_nr))
    assert res[1] == res[0]


def test_output_nr_of_plain_tensors():
    x = descent.tensor(X, requires_grad=True)
    assert x.output_nr == 0 and (x * 2).output_nr == 0 and x[1].output_nr == 0


# Part 2, keyword names in torch.linalg and torch.special (a probe of the names PyTorch's parser
# accepts for the first argument: /work/notes/s29/h221/kw1.py; docs/pytorch.md, "Edges,
# session 29"): where PyTorch takes a keyword descent refused, and the reverse
M2 = np.array([[2.0, 1.0], [1.0, 3.0]])

KEYWORD_CALLS = [
    "L.linalg.inv(A=a)",
    "L.linalg.det(A=a)",
    "L.linalg.solve(A=a, B=v)",
    "L.linalg.solve(a, B=v, left=True)",
    "L.linalg.svdvals(A=a)",
    "L.linalg.svdvals(a, driver=None)",
    "L.linalg.matmul(input=a, other=a)",
    "L.linalg.cholesky(input=a)",
    "L.linalg.eigvals(input=a)",
    "L.linalg.eigvalsh(input=a)",
    "L.linalg.pinv(input=a)",
    "L.linalg.cholesky_ex(input=a)",
    "L.linalg.cond(input=a)",
    "L.linalg.eig(input=a)",
    "L.linalg.eigh(input=a, UPLO='U')",
    "L.linalg.ldl_factor(input=a)",
    "L.linalg.ldl_factor_ex(input=a)",
    "L.linalg.matrix_exp(input=a)",
    "L.linalg.matrix_norm(input=a, ord='nuc')",
    "L.linalg.matrix_rank(input=a)",
    "L.linalg.norm(input=a)",
    "L.matrix_exp(input=a)",
    "L.linalg.inv(a, out=L.empty(2, 2, dtype=L.float64))",
    "L.special.erf(input=v)",
    "L.special.exp2(input=v)",
    "L.special.expit(input=v)",
    "L.special.expm1(input=v)",
    "L.special.log1p(input=v)",
    "L.special.expm1(v, out=L.empty(2, dtype=L.float64))",
    "L.special.airy_ai(x=v)",
    "L.special.scaled_modified_bessel_k0(x=v)",
    "L.special.scaled_modified_bessel_k1(x=v)",
    "L.special.spherical_bessel_j0(x=v)",
    # refused by PyTorch's parser (its docs say A; its schema's name is `self`, read `input`)
    "L.linalg.cholesky(A=a)",
    "L.linalg.eigh(A=a)",
    "L.linalg.norm(A=a)",
    "L.linalg.matrix_exp(A=a)",
    "L.matrix_exp(A=a)",
    "L.special.airy_ai(input=v)",
    "L.linalg.svdvals(a, driver='gesvd')",  # (a cuSOLVER option: RuntimeError on the CPU)
]


def _outcome(lib, src: str):
    env = {"L": lib, "a": lib.tensor(M2), "v": lib.tensor([0.5, 2.0], dtype=lib.float64)}
    try:
        out = eval(src, env)
    except Exception as e:  # noqa: BLE001 - the class is the result
        return type(e)
    return [np.asarray(t) for t in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("src", KEYWORD_CALLS)
def test_linalg_special_keywords_as_torch(src):
    t, d = _outcome(torch, src), _outcome(descent, src)
    if isinstance(t, type):
        assert isinstance(d, type) and issubclass(d, t), (t, d)
        return
    assert not isinstance(d, type), d
    assert len(d) == len(t)
    for x, y in zip(d, t, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


def test_renamed_functions_keep_positional_calls_and_gradients():
    """The renamed functions run the same code: positional calls, out= and gradients."""
    a = descent.tensor(M2, requires_grad=True)
    ta = torch.tensor(M2, requires_grad=True)
    descent.linalg.inv(a).sum().backward()
    torch.linalg.inv(ta).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    assert descent.linalg.solve(a, descent.tensor([1.0, 2.0], dtype=descent.float64)).shape == (2,)
    assert descent.linalg.inv.__module__ == "descent.linalg"


@pytest.mark.parametrize("indexing", [None, "ij", "xy"])
def test_meshgrid_warns_without_indexing_as_torch(indexing):
    """PyTorch's UserWarning when `indexing` is left out (then 'ij'); none when it is given.
    (PyTorch warns once per process, so its text is written here, not caught from torch.)"""
    kw = {} if indexing is None else {"indexing": indexing}
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        grids = descent.meshgrid(descent.arange(2), descent.arange(3), **kw)
    texts = [str(w.message) for w in got if w.category is UserWarning]
    want = "torch.meshgrid: in an upcoming release, it will be required to pass the indexing"
    assert [t[: len(want)] for t in texts] == ([want] if indexing is None else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.meshgrid(torch.arange(2), torch.arange(3), **kw)
    assert [g.tolist() for g in grids] == [g.tolist() for g in ref]


def _pieces(x, how):
    if how == "aminmax":
        return x.aminmax()
    return {"split": x.split(2, 1), "chunk": x.chunk(2, 1), "unbind": x.unbind(1)}[how]


def _piece_grads(lib, how):
    """Each piece's gradient: from one prehook on the shared node (descent's too for split's
    pieces since session 30, for aminmax's results since session 31)."""
    x = lib.tensor(X, requires_grad=True)
    p = _pieces(x, how)
    seen = {}
    p[1].grad_fn.register_prehook(lambda go: seen.update(enumerate(go)) or None)
    sum(float(k + 1) * (q * q).sum() for k, q in enumerate(p)).backward()
    return {k: np.asarray(g.detach()) for k, g in seen.items()}


@pytest.mark.parametrize("how", ["split", "chunk", "unbind", "aminmax"])
def test_shared_node_hooks_see_every_output(how):
    """A node hook on the node split's pieces share sees every piece's gradient at once, as
    PyTorch's (session 30); so does one on aminmax's shared node (session 31: it was refused,
    as it would have seen one result's gradient; tests/test_fidelity_s31.py)."""
    want, got = _piece_grads(torch, how), _piece_grads(descent, how)
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6)


def _one_piece_hook(lib):
    x = lib.tensor(X, requires_grad=True)
    (a,) = x.split(X.shape[0])
    seen = []
    a.grad_fn.register_hook(lambda gi, go: seen.append(np.asarray(go[0].detach())))
    (a * 3).sum().backward()
    return seen


def test_one_piece_keeps_node_hooks():
    """split into one piece: its node is the piece's own, hooks run as on any node."""
    want, got = _one_piece_hook(torch), _one_piece_hook(descent)
    assert len(want) == len(got) == 1
    np.testing.assert_array_equal(got[0], want[0])
