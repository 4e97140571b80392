"""NumPy's keyword names where PyTorch's argument parser takes them (session 29, helper-223):
`axis=` for `dim`, `keepdims=` for `keepdim`, `x=` / `a=` / `x1=` for `input`, `x2=` for `other`
on the functions and Tensor methods with a `dim` that had no `axis` of their own
(descent.torch_keywords.NUMPY_ALIASES). Each call is written with PyTorch's names, then with each
alias, and compared with torch's result; PyTorch's Python-level functions (unique, stft, ...)
refuse the aliases and descent refuses them too."""

import pickle

import numpy as np
import pytest
import torch

import descent

TOP = {
    "aminmax": "m.aminmax(input=t, dim=1, keepdim=True)",
    "frobenius_norm": "m.frobenius_norm(input=t, dim=(1,), keepdim=True)",
    "kthvalue": "m.kthvalue(input=t, k=2, dim=1, keepdim=True)",
    "mode": "m.mode(input=ti, dim=1, keepdim=True)",
    "nanmedian": "m.nanmedian(input=t, dim=1, keepdim=True)",
    "nanquantile": "m.nanquantile(input=t, q=0.3, dim=1, keepdim=True)",
    "nuclear_norm": "m.nuclear_norm(input=t, dim=(0, 1), keepdim=True)",
    "quantile": "m.quantile(input=t, q=0.3, dim=1, keepdim=True)",
    "cosine_similarity": "m.cosine_similarity(t, t2, dim=0)",
    "cumulative_trapezoid": "m.cumulative_trapezoid(t, dim=0)",
    "index_fill": "m.index_fill(t, dim=1, index=idx, value=-1.0)",
    "trapezoid": "m.trapezoid(t, dim=0)",
    "trapz": "m.trapz(t, dim=0)",
    "diff": "m.diff(input=t, dim=0)",
    "gradient": "m.gradient(t, dim=1)",
    "index_copy": "m.index_copy(input=t, dim=1, index=idx, source=t[:, :2])",
    "index_reduce": "m.index_reduce(input=t, dim=1, index=idx, source=t[:, :2], reduce='prod')",
    "narrow": "m.narrow(input=t, dim=1, start=1, length=2)",
    "narrow_copy": "m.narrow_copy(input=t, dim=1, start=1, length=2)",
    "renorm": "m.renorm(input=t, p=2, dim=0, maxnorm=1.0)",
    "repeat_interleave": "m.repeat_interleave(input=t, repeats=2, dim=0)",
    "scatter": "m.scatter(input=t, dim=1, index=ix2, src=t2)",
    "scatter_reduce": "m.scatter_reduce(input=t, dim=1, index=ix2, src=t2, reduce='sum')",
    "select": "m.select(input=t, dim=1, index=2)",
    "select_copy": "m.select_copy(input=t, dim=1, index=2)",
    "select_scatter": "m.select_scatter(input=t, src=t[:, 0], dim=1, index=2)",
    "slice_copy": "m.slice_copy(input=t, dim=1, start=1)",
    "slice_scatter": "m.slice_scatter(input=t, src=t[:, :2], dim=1, start=1)",
    "split_copy": "m.split_copy(input=t, split_size=1, dim=0)",
    "split_with_sizes": "m.split_with_sizes(input=t, split_sizes=[1, 2], dim=1)",
    "split_with_sizes_copy": "m.split_with_sizes_copy(input=t, split_sizes=[1, 2], dim=1)",
    "squeeze_copy": "m.squeeze_copy(input=t[None], dim=0)",
    "take_along_dim": "m.take_along_dim(input=t, indices=ix2, dim=1)",
    "tensor_split": "m.tensor_split(input=t, sections=3, dim=1)",
    "topk": "m.topk(input=t, k=2, dim=0)",
    "unbind": "m.unbind(input=t, dim=1)",
    "unbind_copy": "m.unbind_copy(input=t, dim=1)",
    "unflatten": "m.unflatten(input=t, dim=1, sizes=(3, 1))",
    "unsafe_chunk": "m.unsafe_chunk(input=t, chunks=3, dim=1)",
    "unsafe_split": "m.unsafe_split(input=t, split_size=1, dim=0)",
    "unsafe_split_with_sizes": "m.unsafe_split_with_sizes(input=t, split_sizes=[2, 1], dim=1)",
    "unsqueeze_copy": "m.unsqueeze_copy(input=t, dim=1)",
    "median": "m.median(input=t, dim=1, keepdim=True)",
    "nanmean": "m.nanmean(input=t, dim=1, keepdim=True)",
    "nansum": "m.nansum(input=t, dim=1, keepdim=True)",
    "cross": "m.cross(input=t3, other=t3.flip(0), dim=1)",
    "pairwise_distance": "m.pairwise_distance(t, t2, keepdim=True)",
    "norm_except_dim": "m.norm_except_dim(t, pow=2, dim=1)",
    "hash_tensor": "m.hash_tensor(input=ti, dim=1, keepdim=True)",
}
METH = {
    "aminmax": "t.aminmax(dim=1, keepdim=True)",
    "kthvalue": "t.kthvalue(2, dim=1, keepdim=True)",
    "mode": "ti.mode(dim=1, keepdim=True)",
    "nanmean": "t.nanmean(dim=1, keepdim=True)",
    "nanmedian": "t.nanmedian(dim=1, keepdim=True)",
    "nanquantile": "t.nanquantile(0.3, dim=1, keepdim=True)",
    "nansum": "t.nansum(dim=1, keepdim=True)",
    "quantile": "t.quantile(0.3, dim=1, keepdim=True)",
    "count_nonzero": "t.count_nonzero(dim=1)",
    "cumprod_": "t.clone().cumprod_(dim=1)",
    "cumsum_": "t.clone().cumsum_(dim=1)",
    "diff": "t.diff(dim=0)",
    "index_add_": "t.clone().index_add_(dim=1, index=idx, source=t[:, :2])",
    "index_copy": "t.index_copy(dim=1, index=idx, source=t[:, :2])",
    "index_copy_": "t.clone().index_copy_(dim=1, index=idx, source=t[:, :2])",
    "index_fill": "t.index_fill(dim=1, index=idx, value=-1.0)",
    "index_fill_": "t.clone().index_fill_(dim=1, index=idx, value=-1.0)",
    "index_reduce": "t.index_reduce(dim=1, index=idx, source=t[:, :2], reduce='prod')",
    "index_reduce_": "t.clone().index_reduce_(dim=1, index=idx, source=t[:, :2], reduce='prod')",
    "narrow": "t.narrow(dim=1, start=1, length=2)",
    "narrow_copy": "t.narrow_copy(dim=1, start=1, length=2)",
    "renorm": "t.renorm(p=2, dim=0, maxnorm=1.0)",
    "renorm_": "t.clone().renorm_(p=2, dim=0, maxnorm=1.0)",
    "repeat_interleave": "t.repeat_interleave(repeats=2, dim=0)",
    "scatter": "t.scatter(dim=1, index=ix2, src=t2)",
    "scatter_": "t.clone().scatter_(dim=1, index=ix2, src=t2)",
    "scatter_add_": "t.clone().scatter_add_(dim=1, index=ix2, src=t2)",
    "scatter_reduce": "t.scatter_reduce(dim=1, index=ix2, src=t2, reduce='amax')",
    "scatter_reduce_": "t.clone().scatter_reduce_(dim=1, index=ix2, src=t2, reduce='amax')",
    "select": "t.select(dim=1, index=2)",
    "select_scatter": "t.select_scatter(src=t[:, 0], dim=1, index=2)",
    "slice_scatter": "t.slice_scatter(src=t[:, :2], dim=1, start=1)",
    "split_with_sizes": "t.split_with_sizes(split_sizes=[1, 2], dim=1)",
    "squeeze_": "t[None].clone().squeeze_(dim=0)",
    "take_along_dim": "t.take_along_dim(indices=ix2, dim=1)",
    "topk": "t.topk(2, dim=0)",
    "unbind": "t.unbind(dim=1)",
    "unsafe_chunk": "t.unsafe_chunk(chunks=3, dim=1)",
    "unsafe_split": "t.unsafe_split(split_size=1, dim=0)",
    "unsafe_split_with_sizes": "t.unsafe_split_with_sizes(split_sizes=[2, 1], dim=1)",
    "unsqueeze_": "t.clone().unsqueeze_(dim=1)",
    "cross": "t3.cross(other=t3.flip(0), dim=1)",
    "median": "t.median(dim=1, keepdim=True)",
}

ALIASES = {"keepdim=": ["keepdims="], "input=": ["x=", "a=", "x1="], "other=": ["x2="]}


def _axis(call):
    return call.replace(", dim=", ", axis=").replace("(dim=", "(axis=")


def _variants(call):
    out = []
    if _axis(call) != call:
        out.append(_axis(call))
    for canon, aliases in ALIASES.items():
        if canon in call:
            out += [call.replace(canon, alias) for alias in aliases]
    every = _axis(call).replace("keepdim=", "keepdims=").replace("input=", "x=")
    every = every.replace("other=", "x2=")
    if every not in out and every != call:
        out.append(every)
    return out


CALLS = [v for c in TOP.values() for v in _variants(c)] + [
    v for c in METH.values() for v in _variants(c)
]


def _env(m):
    t = m.tensor(np.array([[1.5, -2.0, 3.25], [4.0, 0.5, -6.0], [2.0, 7.0, 1.0]], dtype=np.float32))
    return dict(
        m=m,
        t=t,
        t2=t * 0.5 + 1,
        ti=m.tensor([[1, 2, 2], [3, 3, 1], [0, 0, 0]]),
        idx=m.tensor([2, 0]),
        ix2=m.tensor([[0, 2, 1], [1, 0, 2], [2, 1, 0]]),
        t3=m.tensor(np.arange(9, dtype=np.float32).reshape(3, 3) - 2),
    )


def _values(out):
    seq = out if isinstance(out, (tuple, list)) else (out,)
    return [np.asarray(x.tolist()) for x in seq]


def test_table_is_covered():
    assert len(CALLS) > 250
    assert set(TOP) == set(descent.torch_keywords.NUMPY_ALIASES)
    assert set(METH) == set(descent.torch_keywords.NUMPY_ALIASES_TENSOR)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("call", CALLS)
def test_alias_as_torch(call):
    want = _values(eval(call, _env(torch)))
    got = _values(eval(call, _env(descent)))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


# PyTorch's Python-level functions: its parser never sees them, so they refuse the aliases.
REFUSED = [
    "m.unique(t, axis=0)",
    "t.unique(axis=0)",
    "m.unique_consecutive(t, axis=0)",
    "m.stft(x=t[0], n_fft=2)",
    "m.tensordot(x=t, b=t, dims=1)",
    "m.meshgrid(x=t[0], indexing='ij')",
    "t.topk(2, dim=0, axis=0)",
    "m.narrow(t, 1, 0, 1, axis=1)",
    "m.kthvalue(t, 1, 0, keepdim=True, keepdims=True)",
    "m.narrow(t, start=0, length=1)",
    "t.narrow(axis=0, start=0)",
]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("call", REFUSED)
def test_refused_as_torch(call):
    for m in (torch, descent):
        with pytest.raises(TypeError):
            eval(call, _env(m))


def test_both_spellings_name_the_fix():
    t = descent.ones(2, 3)
    with pytest.raises(TypeError, match="multiple values for argument 'dim'.*pass one"):
        descent.topk(t, 1, dim=0, axis=0)


def test_gradient_through_alias_float32():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    grads = []
    for m in (torch, descent):
        t = m.tensor(x, requires_grad=True)
        (m.kthvalue(t, 2, axis=1, keepdims=True).values * 3).sum().backward()
        v = m.tensor(x, requires_grad=True)
        (v.narrow(axis=1, start=1, length=2) ** 2).sum().backward()
        grads.append((t.grad.numpy(), v.grad.numpy()))
    for g, w in zip(grads[1], grads[0]):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def test_wrapped_functions_pickle_and_keep_their_names():
    assert pickle.loads(pickle.dumps(descent.topk)) is descent.topk
    assert descent.topk.__name__ == "topk" and descent.Tensor.narrow.__name__ == "narrow"
    assert descent.Tensor.narrow.__qualname__.endswith(".narrow")
    # the hot functions are not wrapped: they take axis / keepdims in their own signatures
    assert not hasattr(descent.sum, "__numpy_aliases__")
    assert not hasattr(descent.add, "__numpy_aliases__")


def test_out_with_an_alias():
    got = []
    for m in (torch, descent):
        t = m.tensor([[3.0, 1.0, 2.0], [0.5, 4.0, -1.0]])
        values, indices = m.empty(0), m.empty(0, dtype=m.int64)
        m.topk(t, 2, axis=1, out=(values, indices))
        q = m.empty(0)
        m.quantile(x=t, q=0.25, axis=0, keepdims=True, out=q)
        got.append([values.tolist(), indices.tolist(), q.tolist()])
    assert got[0] == got[1]


def test_templates_cover_every_shape():
    # a missing shape would be compiled at import (~0.1 ms each); regenerate with
    # `python -c 'import descent; descent.torch_keywords.write_alias_templates()'`
    from descent import numpy_alias_templates, torch_keywords

    for key in torch_keywords._TEMPLATES:
        tag = "_".join(map(str, (*key[:3], *key[3])))
        fn = getattr(numpy_alias_templates, f"_w_{tag}", None)
        assert fn is not None and fn.__code__ is torch_keywords._TEMPLATES[key], key
