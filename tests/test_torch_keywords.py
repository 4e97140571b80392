"""PyTorch's keyword spellings (torch.sum(input=x), x.transpose(dim0=0, dim1=1), zeros(size=),
...) on descent's top-level functions and Tensor methods, compared with torch 2.13.

The RENAMES table of descent.torch_keywords is checked against torch's documented signatures
(the first line of `torch.<name>.__doc__`), so a wrong entry fails here.
"""

from __future__ import annotations

import inspect
import pickle
import re

import numpy as np
import pytest
import torch

import descent
from descent.torch_keywords import RENAMES, torch_names

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4)).astype(np.float32)
B = RNG.standard_normal((3, 4)).astype(np.float32)
M = RNG.standard_normal((4, 3)).astype(np.float32)
V = RNG.standard_normal(4).astype(np.float32)
P = RNG.standard_normal((2, 3, 4)).astype(np.float32)
Q = RNG.standard_normal((2, 4, 3)).astype(np.float32)
IDX = np.array([[0, 2, 1, 0], [1, 1, 0, 2], [2, 0, 0, 1]], dtype=np.int64)
MASK = A > 0


def _np(v):
    if isinstance(v, (descent.Tensor, torch.Tensor)):
        return v.detach().numpy() if isinstance(v, torch.Tensor) else v.numpy()
    if isinstance(v, (tuple, list)):
        return [_np(u) for u in v]
    return v


def _same(a, b) -> None:
    a, b = _np(a), _np(b)
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for u, w in zip(a, b):
            _same(u, w)
        return
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def _args(lib, kw: dict) -> dict:
    """kw's NumPy arrays as lib tensors."""
    return {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}


# (function name, torch keyword arguments): every argument by keyword, as PyTorch names it
TOP = [
    ("sum", {"input": A}), ("sum", {"input": A, "dim": 1, "keepdim": True}),
    ("mean", {"input": A, "dim": 0}), ("prod", {"input": A}), ("std", {"input": A}),
    ("var", {"input": A, "dim": 1}), ("amax", {"input": A, "dim": 1}), ("amin", {"input": A}),
    ("argmax", {"input": A, "dim": 1}), ("argmin", {"input": A}), ("max", {"input": A}),
    ("min", {"input": A}), ("all", {"input": MASK}), ("any", {"input": MASK}),
    ("logsumexp", {"input": A, "dim": 1}), ("cumsum", {"input": A, "dim": 1}),
    ("cumprod", {"input": A, "dim": 0}), ("softmax", {"input": A, "dim": 1}),
    ("exp", {"input": A}), ("log", {"input": np.abs(A) + 0.1}), ("sin", {"input": A}),
    ("cos", {"input": A}), ("tanh", {"input": A}), ("sigmoid", {"input": A}),
    ("sqrt", {"input": np.abs(A)}), ("rsqrt", {"input": np.abs(A) + 0.1}), ("abs", {"input": A}),
    ("neg", {"input": A}), ("sign", {"input": A}), ("floor", {"input": A}), ("ceil", {"input": A}),
    ("round", {"input": A}), ("trunc", {"input": A}), ("erf", {"input": A}),
    ("expm1", {"input": A}), ("log1p", {"input": np.abs(A)}), ("square", {"input": A}),
    ("clamp", {"input": A, "min": -0.5, "max": 0.5}), ("clip", {"input": A, "min": -0.5}),
    ("isnan", {"input": A}), ("isinf", {"input": A}), ("isfinite", {"input": A}),
    ("add", {"input": A, "other": B}), ("sub", {"input": A, "other": B, "alpha": 2}),
    ("mul", {"input": A, "other": B}), ("div", {"input": A, "other": B}),
    ("pow", {"input": np.abs(A), "exponent": 2.0}), ("remainder", {"input": A, "other": 0.7}),
    ("maximum", {"input": A, "other": B}), ("minimum", {"input": A, "other": B}),
    ("eq", {"input": A, "other": B}), ("ne", {"input": A, "other": A}),
    ("lt", {"input": A, "other": B}), ("le", {"input": A, "other": B}),
    ("gt", {"input": A, "other": B}), ("ge", {"input": A, "other": B}),
    ("logical_and", {"input": MASK, "other": ~MASK}), ("logical_not", {"input": MASK}),
    ("isclose", {"input": A, "other": B}), ("allclose", {"input": A, "other": A}),
    ("equal", {"input": A, "other": A}), ("where", {"condition": MASK, "input": A, "other": B}),
    ("mm", {"input": A, "mat2": M}), ("bmm", {"input": P, "mat2": Q}),
    ("matmul", {"input": A, "other": M}), ("dot", {"input": V, "tensor": V}),
    ("outer", {"input": V, "vec2": V}), ("trace", {"input": A[:3, :3]}),
    ("reshape", {"input": A, "shape": (4, 3)}), ("transpose", {"input": A, "dim0": 0, "dim1": 1}),
    ("permute", {"input": P, "dims": (2, 0, 1)}),
    ("swapaxes", {"input": A, "axis0": 0, "axis1": 1}),
    ("flatten", {"input": P, "start_dim": 1}), ("squeeze", {"input": A[None]}),
    ("unsqueeze", {"input": A, "dim": 0}), ("flip", {"input": A, "dims": (0,)}),
    ("roll", {"input": A, "shifts": 1, "dims": 1}), ("tile", {"input": A, "dims": (2, 1)}),
    ("movedim", {"input": P, "source": 0, "destination": 2}),
    ("narrow", {"input": A, "dim": 1, "start": 1, "length": 2}),
    ("chunk", {"input": A, "chunks": 2, "dim": 1}), ("diagonal", {"input": A, "offset": 1}),
    ("diag", {"input": V}), ("tril", {"input": A}), ("triu", {"input": A, "diagonal": 1}),
    ("gather", {"input": A, "dim": 1, "index": IDX}), ("take", {"input": A, "index": IDX}),
    ("index_select", {"input": A, "dim": 1, "index": np.array([0, 2])}),
    ("scatter", {"input": A, "dim": 1, "index": IDX, "src": B}),
    ("sort", {"input": A, "dim": 1, "descending": True}), ("argsort", {"input": A}),
    ("topk", {"input": A, "k": 2}), ("nonzero", {"input": MASK}), ("numel", {"input": A}),
    ("repeat_interleave", {"input": A, "repeats": 2}),
    ("broadcast_to", {"input": V, "size": (3, 4)}),
    ("zeros_like", {"input": A}), ("ones_like", {"input": A}),
    ("full_like", {"input": A, "fill_value": 2.0}),
    ("nan_to_num", {"input": np.array([np.nan, np.inf, 1.0], np.float32)}),
    ("clone", {"input": A, "memory_format": "contiguous"}),
    ("zeros", {"size": (2, 3)}), ("ones", {"size": (2, 3)}),
    ("full", {"size": (2, 3), "fill_value": 1.5}),
    ("arange", {"end": 5}), ("arange", {"start": 1, "end": 5, "step": 2}),
    ("divide", {"input": A, "other": B}), ("greater", {"input": A, "other": B}),
    ("less_equal", {"input": A, "other": B}), ("multiply", {"input": A, "other": B}),
    ("tan", {"input": A}),
    ("arcsin", {"input": np.clip(A, -0.9, 0.9)}), ("moveaxis", {"input": P, "source": 0,
    "destination": 2}), ("masked_select", {"input": A, "mask": MASK}),
    ("scatter_add", {"input": A, "dim": 1, "index": IDX, "src": B}),
    ("cummin", {"input": A, "dim": 1}), ("unflatten", {"input": A, "dim": 1, "sizes": (2, 2)}),
    ("norm", {"input": A}), ("norm", {"input": A, "p": 1, "dim": 1}),
    ("split", {"tensor": A, "split_size_or_sections": 2, "dim": 1}),
    ("det", {"input": A[:3, :3]}), ("matrix_power", {"input": A[:3, :3], "n": 2}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kw"), TOP, ids=[f"{n}-{i}" for i, (n, _) in enumerate(TOP)])
def test_top_level_keywords_match_torch(name, kw):
    if kw.get("memory_format") == "contiguous":
        tkw = {**_args(torch, kw), "memory_format": torch.contiguous_format}
        dkw = {**_args(descent, kw), "memory_format": descent.contiguous_format}
    else:
        tkw, dkw = _args(torch, kw), _args(descent, kw)
    if name == "equal" or name == "allclose":
        assert getattr(descent, name)(**dkw) == getattr(torch, name)(**tkw)
        return
    _same(getattr(descent, name)(**dkw), getattr(torch, name)(**tkw))


def test_keyword_forms_keep_gradients():
    """input=/other= calls record the same graph as positional ones."""
    grads = []
    for lib in (torch, descent):
        x = lib.tensor(A, requires_grad=True)
        w = lib.tensor(M, requires_grad=True)
        y = lib.sum(input=lib.tanh(input=lib.mm(input=x, mat2=w)))
        y.backward()
        grads.append((x.grad, w.grad))
    _same(list(grads[1]), list(grads[0]))


@pytest.mark.parametrize("fn", ["rand", "randn", "empty"])
def test_random_and_empty_creation_size_keyword(fn):
    t = getattr(descent, fn)(size=(2, 3))
    assert tuple(t.shape) == tuple(getattr(torch, fn)(size=(2, 3)).shape) == (2, 3)
    assert t.dtype == descent.float32
    assert tuple(getattr(descent, fn)(size=[4]).shape) == (4,)


# (method, positional-free keyword arguments, the tensor it runs on)
METHODS = [
    ("transpose", {"dim0": 0, "dim1": 1}, A), ("permute", {"dims": (2, 0, 1)}, P),
    ("reshape", {"shape": (4, 3)}, A), ("expand", {"size": (3, 4)}, V),
    ("split", {"split_size": 2, "dim": 1}, A), ("split", {"split_size": 2}, A),
    ("tile", {"dims": (2, 1)}, A), ("swapaxes", {"axis0": 0, "axis1": 1}, A),
    ("new_zeros", {"size": (2, 3)}, A), ("new_ones", {"size": (2,)}, A),
    ("new_full", {"size": (2, 3), "fill_value": 2.5}, A),
    ("min", {"other": B}, A), ("max", {"other": B}, A),
    ("mm", {"mat2": M}, A), ("bmm", {"mat2": Q}, P), ("matmul", {"other": M}, A),
    ("dot", {"tensor": V}, V), ("clone", {}, A),
    ("index_add", {"dim": 1, "index": np.array([0, 2, 0, 1]), "source": B}, A),
    ("sum", {"dim": 1, "keepdim": True}, A), ("squeeze", {"dim": 0}, A[None]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kw", "data"), METHODS, ids=[m[0] for m in METHODS])
def test_method_keywords_match_torch(name, kw, data):
    got = getattr(descent.tensor(data), name)(**_args(descent, kw))
    want = getattr(torch.tensor(data), name)(**_args(torch, kw))
    _same(got, want)


def test_new_empty_size_keyword_and_clone_memory_format():
    x = descent.tensor(A)
    assert tuple(x.new_empty(size=(2, 5)).shape) == (2, 5)
    assert x.new_empty(size=(2, 5)).dtype == descent.float32
    c = x.clone(memory_format=descent.preserve_format)
    assert c is not x and np.array_equal(c.numpy(), A)


def test_positional_forms_unchanged():
    x = descent.tensor(A)
    assert tuple(x.transpose(0, 1).shape) == (4, 3)
    assert tuple(x.permute(1, 0).shape) == tuple(x.permute((1, 0)).shape) == (4, 3)
    assert tuple(x.reshape(2, 6).shape) == tuple(x.reshape((2, 6)).shape) == (2, 6)
    assert tuple(descent.zeros(2, 3).shape) == tuple(descent.zeros((2, 3)).shape) == (2, 3)
    assert tuple(descent.arange(5).shape) == (5,)
    assert x.max().item() == pytest.approx(A.max())
    values, idx = x.max(1)
    np.testing.assert_array_equal(idx.numpy(), A.argmax(1))


def test_keyword_errors_still_raise():
    with pytest.raises(TypeError):
        descent.sum(inputs=descent.tensor(A))  # a misspelt name is still refused
    with pytest.raises(TypeError):
        descent.tensor(A).transpose(dim_0=0, dim1=1)


def _torch_positional_names(name: str) -> list[str]:
    try:  # a Python function in torch (torch.norm, torch.split): its real signature
        params = inspect.signature(getattr(torch, name)).parameters.values()
        names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if names:  # (not a dispatcher taking *args, **kwargs)
            return names
    except (TypeError, ValueError):
        pass
    first = getattr(torch, name).__doc__.strip().splitlines()[0]
    m = re.match(rf"{re.escape(name)}\((.*?)\)\s*(->|$)", first)
    assert m, f"no signature line in torch.{name}.__doc__: {first!r}"
    names = []
    for p in m.group(1).split(","):
        p = p.strip()
        if p.startswith("*"):
            break
        if p:
            names.append(p.split("=")[0].split(":")[0].strip())
    return names


@pytest.mark.parametrize("name", sorted(RENAMES))
def test_renames_table_matches_torch_and_is_applied(name):
    """Each renamed parameter has PyTorch's documented name, and descent's bound function
    accepts it (the rename was applied: a silent skip in torch_names would fail here)."""
    params = inspect.signature(getattr(descent, name)).parameters
    tnames = _torch_positional_names(name)
    for new in RENAMES[name].values():
        assert new in tnames, f"torch.{name} has no parameter {new!r}: {tnames}"
        assert new in params, f"descent.{name} does not accept {new!r}: {list(params)}"


def test_torch_names_keeps_the_function_working():
    def f(x, y=2, *, z=3):
        def inner():
            return x + y + z  # x is a cell variable: renamed in both places

        return inner()

    g = torch_names(f, {"x": "input"})
    assert g(1) == 6 and g(input=1, y=1, z=1) == 3
    assert list(inspect.signature(g).parameters) == ["input", "y", "z"]
    with pytest.raises(TypeError):
        g(x=1)
    assert torch_names(len, {"obj": "input"}) is len  # not a Python function: unchanged


# -- torch 2.13's weight= of mse_loss / l1_loss / huber_loss (found by the nn.functional survey) --


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_regression_losses_match_torch(name, reduction):
    wt = np.abs(RNG.standard_normal((3, 4))).astype(np.float32) + 0.1
    out = []
    for lib in (torch, descent):
        x = lib.tensor(A * 2, requires_grad=True)
        loss = getattr(lib.nn.functional, name)(
            input=x, target=lib.tensor(B), reduction=reduction, weight=lib.tensor(wt)
        )
        loss.sum().backward()
        out.append((loss.detach().numpy(), x.grad.numpy().copy()))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-5, atol=1e-6)


def test_weighted_loss_shape_mismatch_raises_like_torch():
    for lib in (torch, descent):
        with pytest.raises(ValueError, match="same size"):
            lib.nn.functional.mse_loss(lib.tensor(A), lib.tensor(B), weight=lib.tensor(V))


U = np.clip(np.abs(A), 0.1, 0.9)  # inside every unary domain below but acosh's
I4 = np.array([[3, 5, 12], [7, 1, 2]], dtype=np.int64)
MORE = [
    *[(n, {"input": U}) for n in """absolute acos arccos arcsinh arctan arctanh asin asinh atan
      atanh cosh exp2 fix frac log10 log2 negative sinh msort isneginf isposinf count_nonzero
      median aminmax std_mean var_mean unique""".split()],
    ("acosh", {"input": U + 1}), ("arccosh", {"input": U + 1}),
    *[(n, {"input": A, "other": B}) for n in "floor_divide greater_equal less not_equal".split()],
    *[(n, {"input": MASK, "other": ~MASK}) for n in ("logical_or", "logical_xor")],
    *[(n, {"input": I4, "other": I4[::-1].copy()}) for n in ("bitwise_and", "bitwise_or",
      "bitwise_xor")],
    ("bitwise_left_shift", {"input": I4, "other": 1}), ("bitwise_not", {"input": I4}),
    ("bitwise_right_shift", {"input": I4, "other": 1}),
    ("cummax", {"input": A, "dim": 1}), ("kthvalue", {"input": A, "k": 2}),
    ("logcumsumexp", {"input": A, "dim": 1}), ("mode", {"input": np.round(A)}),
    ("einsum", {"equation": "ij->j", "operands": "A"}),
    ("index_add", {"input": A, "dim": 1, "index": np.array([0, 2, 0, 1]), "source": B}),
    ("scatter_reduce", {"input": A, "dim": 1, "index": IDX, "src": B, "reduce": "amax"}),
]  # fmt: skip
SHAPED = [("empty_like", {}), ("rand_like", {}), ("randn_like", {}), ("randint_like", {"high": 5})]


@pytest.mark.parametrize(("name", "kw"), MORE, ids=[m[0] for m in MORE])
def test_more_renamed_functions_match_torch(name, kw):
    """Every RENAMES entry is called with PyTorch's keywords here or in TOP (a name PyTorch's
    docs list but its parser refuses would fail: true_divide's dividend= was such a name)."""
    if kw.get("operands") == "A":
        _same(descent.einsum("ij->j", descent.tensor(A)), torch.einsum("ij->j", torch.tensor(A)))
        return  # torch.einsum(equation=...) is refused by torch's parser: positional only
    _same(getattr(descent, name)(**_args(descent, kw)), getattr(torch, name)(**_args(torch, kw)))


@pytest.mark.parametrize(("name", "kw"), SHAPED, ids=[s[0] for s in SHAPED])
def test_renamed_like_functions_shape_and_dtype(name, kw):
    got = getattr(descent, name)(input=descent.tensor(A), **kw)
    want = getattr(torch, name)(input=torch.tensor(A), **kw)
    assert tuple(got.shape) == tuple(want.shape)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]


def test_every_rename_is_called_by_a_test():
    covered = {n for n, _ in TOP} | {n for n, _ in MORE} | {n for n, _ in SHAPED}
    assert sorted(set(RENAMES) - covered) == ["is_floating_point"]  # below
    assert descent.is_floating_point(input=descent.tensor(A)) is torch.is_floating_point(
        input=torch.tensor(A)
    )


@pytest.mark.parametrize("name", ["hsplit", "vsplit", "dsplit", "tensor_split"])
@pytest.mark.parametrize("kw", [{"sections": 2}, {"indices": [1, 3]}], ids=["sections", "indices"])
def test_split_overload_keywords_match_torch(name, kw):
    data = RNG.standard_normal((4, 4, 4)).astype(np.float32)
    _same(getattr(descent.tensor(data), name)(**kw), getattr(torch.tensor(data), name)(**kw))
    _same(
        getattr(descent, name)(descent.tensor(data), **kw),
        getattr(torch, name)(torch.tensor(data), **kw),
    )
    with pytest.raises(TypeError):
        getattr(descent, name)(descent.tensor(data), 2, sections=2)  # two split arguments


def test_uniform_and_random_from_to_keywords():
    x = descent.zeros(1000)
    x.uniform_(**{"from": 2.0, "to": 3.0})
    assert 2.0 <= float(x.min()) and float(x.max()) < 3.0
    x.random_(**{"from": 5, "to": 7})
    assert set(np.unique(x.numpy())) == {5.0, 6.0}
    torch.zeros(3).uniform_(**{"from": 2.0, "to": 3.0})  # the spelling torch accepts
    with pytest.raises(TypeError, match="frm"):
        x.uniform_(frm=1.0)


@pytest.mark.parametrize("name", [*sorted(RENAMES), "det", "matrix_power", "clone"])
def test_renamed_functions_pickle_by_reference(name):
    """pickle finds a function by module and qualified name (DataLoader workers, torch.save of
    a config holding torch.relu, ...): a renamed copy must be found at its own place."""
    fn = getattr(descent, name)
    assert pickle.loads(pickle.dumps(fn)) is fn


# nn modules' forward parameters carry PyTorch's names, so `norm(input=x)`,
# `nn.Linear(2, 2)(input=x)` and `bilinear(input1=a, input2=b)` work (they were x, x1, x2, idx).
# The containers and the abstract bases take (*args, **kwargs) or their own forms, as documented.
_FORWARD_OWN_FORMS = {"Container", "Module", "ModuleDict", "ModuleList", "ParameterDict",
                      "ParameterList", "RNNBase", "RNNCellBase"}  # fmt: skip


def _module_pairs():
    for name in sorted(dir(torch.nn)):
        tc, dc = getattr(torch.nn, name), getattr(descent.nn, name, None)
        if (name in _FORWARD_OWN_FORMS or name.startswith("Lazy") or not inspect.isclass(tc)
                or not issubclass(tc, torch.nn.Module) or not inspect.isclass(dc)):  # fmt: skip
            continue
        try:
            t = list(inspect.signature(tc.forward).parameters)
            d = list(inspect.signature(dc.forward).parameters)
        except (TypeError, ValueError):
            continue
        yield name, t, d


def test_module_forward_parameter_names_match_torch():
    pairs = list(_module_pairs())
    assert len(pairs) > 100  # the comparison covers the library, not a handful
    bad = [(name, t, d) for name, t, d in pairs if t != d]
    assert not bad, bad


def test_module_forward_by_keyword_matches_torch():
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    for lib in (torch, descent):
        lib.manual_seed(0)
    lin_d = descent.nn.Linear(3, 2)
    lin_t = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin_t.weight.copy_(torch.from_numpy(lin_d.weight.numpy()))
        lin_t.bias.copy_(torch.from_numpy(lin_d.bias.numpy()))
    np.testing.assert_allclose(lin_d(input=descent.tensor(x)).detach().numpy(),
                               lin_t(input=torch.from_numpy(x)).detach().numpy(), rtol=1e-6)
    assert descent.nn.Embedding(5, 2)(input=descent.tensor([1, 4])).shape == (2, 2)
    b = descent.nn.Bilinear(3, 3, 1)
    assert b(input1=descent.tensor(x), input2=descent.tensor(x)).shape == (2, 1)
