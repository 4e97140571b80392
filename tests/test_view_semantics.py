"""Views and aliasing exactly as PyTorch's, differentially against torch 2.13.

For each view-type op on contiguous, transposed, step-sliced, 0-d and empty inputs: the same
error class where torch refuses; otherwise the same shape, `is_contiguous()`,
`storage_offset()` and strides, and the same aliasing in both directions (a write into the
result changes the input exactly where torch's does, and a write into the input shows in the
result). Then `view`'s refusals (never a silent copy), `unfold` / `view_as_real` /
`as_strided` / `as_strided_` as views, `ravel`'s copy, and the scatter / index_add edge cases
PyTorch's OpInfo error inputs found (docs/pytorch.md, "Views and aliasing").
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch

import descent as ds


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else ds


def _real_input(lib, kind: str, shape=(2, 3, 4)):
    n = int(np.prod(shape))
    base = np.arange(n, dtype=np.float32).reshape(shape)
    if kind == "contiguous":
        return lib.tensor(base.copy())
    if kind == "transposed":  # the last two dims swapped: strides (12, 1, 3)
        return lib.tensor(np.ascontiguousarray(np.swapaxes(base, -1, -2))).transpose(-1, -2)
    if kind == "stepped":  # every other element of the last dim: strides (24, 8, 2)
        big = np.arange(2 * n, dtype=np.float32).reshape(shape[:-1] + (2 * shape[-1],))
        return lib.tensor(big)[..., ::2]
    if kind == "0-d":
        return lib.tensor(np.float32(5.0))
    assert kind == "empty"
    return lib.tensor(np.zeros((0, 3, 4), np.float32))


def _complex_input(lib, kind: str, shape=(2, 3, 4)):
    n = int(np.prod(shape))
    base = (np.arange(n) * (1 + 2j)).astype(np.complex64).reshape(shape)
    if kind == "contiguous":
        return lib.tensor(base.copy())
    if kind == "transposed":
        return lib.tensor(np.ascontiguousarray(np.swapaxes(base, -1, -2))).transpose(-1, -2)
    if kind == "stepped":
        big = (np.arange(2 * n) * (1 + 2j)).astype(np.complex64)
        return lib.tensor(big.reshape(shape[:-1] + (2 * shape[-1],)))[..., ::2]
    if kind == "0-d":
        return lib.tensor(np.complex64(5 + 1j))
    assert kind == "empty"
    return lib.tensor(np.zeros((0, 3, 4), np.complex64))


KINDS = ("contiguous", "transposed", "stepped", "0-d", "empty")

# name -> f(x): every view op of PyTorch's (and the ops that return views or copies by rule)
REAL_VIEWS = {
    "view(-1)": lambda x: x.view(-1),
    "view(6,4)": lambda x: x.view(6, 4),
    "view(2,12)": lambda x: x.view(2, 12),
    "view(2,3,2,2)": lambda x: x.view(2, 3, 2, 2),
    "view(own shape)": lambda x: x.view(x.shape),
    "view_as": lambda x: x.view_as(_lib(x).zeros(6, 4)),
    "view(int32)": lambda x: x.view(_lib(x).int32),
    "view(float64)": lambda x: x.view(_lib(x).float64),
    "[:, 1:3].view(float64)": lambda x: x[:, 1:3].view(_lib(x).float64),
    "[..., :2].view(float64)": lambda x: x[..., :2].view(_lib(x).float64),
    "view(float16)": lambda x: x.view(_lib(x).float16),
    "reshape(-1)": lambda x: x.reshape(-1),
    "reshape(2,12)": lambda x: x.reshape(2, 12),
    "reshape(own shape)": lambda x: x.reshape(x.shape),
    "reshape_as": lambda x: x.reshape_as(_lib(x).zeros(6, 4)),
    "flatten()": lambda x: x.flatten(),
    "flatten(1)": lambda x: x.flatten(1),
    "flatten(0,1)": lambda x: x.flatten(0, 1),
    "ravel": lambda x: x.ravel(),
    "unflatten(-1,(2,2))": lambda x: x.unflatten(-1, (2, 2)),
    "unflatten(0,(1,-1))": lambda x: x.unflatten(0, (1, -1)),
    "squeeze()": lambda x: x.squeeze(),
    "unsqueeze(0).squeeze(0)": lambda x: x.unsqueeze(0).squeeze(0),
    "unsqueeze(0)": lambda x: x.unsqueeze(0),
    "unsqueeze(-1)": lambda x: x.unsqueeze(-1),
    "transpose(0,1)": lambda x: x.transpose(0, 1),
    "swapaxes(0,2)": lambda x: x.swapaxes(0, 2),
    "permute(2,0,1)": lambda x: x.permute(2, 0, 1),
    "movedim(0,-1)": lambda x: x.movedim(0, -1),
    "t()": lambda x: x[0].t() if x.ndim == 3 else x.t(),
    "mT": lambda x: x.mT,
    "narrow(1,1,2)": lambda x: x.narrow(1, 1, 2),
    "select(1,1)": lambda x: x.select(1, 1),
    "x[1:]": lambda x: x[1:],
    "x[:, ::2]": lambda x: x[:, ::2],
    "x[0]": lambda x: x[0],
    "x[...]": lambda x: x[...],
    "x[None]": lambda x: x[None],
    "diagonal(0,1,2)": lambda x: x.diagonal(0, 1, 2),
    "diagonal(1,-1,-2)": lambda x: x.diagonal(1, -1, -2),
    "unfold(-1,2,1)": lambda x: x.unfold(-1, 2, 1),
    "unfold(-1,2,2)": lambda x: x.unfold(-1, 2, 2),
    "unfold(1,2,1)": lambda x: x.unfold(1, 2, 1),
    "split(1,-1)[1]": lambda x: x.split(1, -1)[1],
    "split([1,2],1)[1]": lambda x: x.split([1, 2], 1)[1],
    "chunk(2,1)[1]": lambda x: x.chunk(2, 1)[1],
    "tensor_split(2,1)[1]": lambda x: x.tensor_split(2, 1)[1],
    "unbind(1)[2]": lambda x: x.unbind(1)[2],
    "expand": lambda x: x.unsqueeze(0).expand(2, *x.shape),
    "expand_as": lambda x: x.expand_as(_lib(x).zeros((2,) + tuple(x.shape))),
    "contiguous": lambda x: x.contiguous(),
    "detach": lambda x: x.detach(),
    "as_strided((2,2),(1,2),1)": lambda x: x.as_strided((2, 2), (1, 2), 1),
    "as_strided((3,),(2,))": lambda x: x.as_strided((3,), (2,)),
}

COMPLEX_VIEWS = {
    "real": lambda x: x.real,
    "imag": lambda x: x.imag,
    "view_as_real": lambda x: _lib(x).view_as_real(x),
    "view_as_complex(view_as_real)": lambda x: _lib(x).view_as_complex(_lib(x).view_as_real(x)),
    "view(float32)": lambda x: x.view(_lib(x).float32),
    "transpose(0,1)": lambda x: x.transpose(0, 1),
    "conj()": lambda x: x.conj(),
}

# What still differs, with the reason (strict xfails: a fix makes them fail, to be removed).
KNOWN: dict[tuple[str, str], str] = {}
_CONJ = ("PyTorch's conj() is a lazy view (a conjugate bit on the same memory, written "
         "through); NumPy has no such bit, so descent's conj() is a copy")  # fmt: skip
for _k in KINDS:
    KNOWN[("conj()", _k)] = _CONJ
for _name in ("view(float32)", "view(float64)", "[:, 1:3].view(float64)",
              "[..., :2].view(float64)", "view(float16)"):  # fmt: skip
    KNOWN[(_name, "empty")] = (
        "torch refuses: its empty tensor made from an empty NumPy array has stride 0 in the "
        "last dim; descent's strides of empty tensors are NumPy's (arbitrary for 0 elements)"
    )


def _probe(make, kind: str, f, lib):
    """What f does to an input of `kind`: its error class, or its geometry and aliasing."""
    x = make(lib, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation of mT / T on some ranks
        try:
            y = f(x)
        except Exception as e:  # noqa: BLE001 - the class is the result
            return {"error": e}
    x0 = x.detach().clone()
    out = {
        "shape": tuple(y.shape),
        "dtype": str(y.dtype).split(".")[-1],
        "is_contiguous": y.is_contiguous(),
        "storage_offset": y.storage_offset(),
        # strides of dims of size 1, and of empty tensors, are arbitrary (NumPy and PyTorch
        # pick different ones); the others address memory and must agree
        "stride": tuple(s if n > 1 else None for s, n in zip(y.stride(), y.shape))
        if y.numel()
        else None,
        "values": y.detach().clone().numpy().copy(),
    }
    grad_off = torch.no_grad() if lib is torch else ds.no_grad()
    with grad_off:
        try:
            y.fill_(-3)  # result -> input (fill: the same result for overlapping elements)
            out["write"] = "ok"
        except Exception as e:  # noqa: BLE001
            out["write"] = e
        out["input after write"] = x.detach().numpy().copy()
        x.copy_(x0)
        x.add_(1000)  # input -> result
        out["result after input write"] = y.detach().numpy().copy()
    return out


def _compare(t, d):
    if "error" in t:
        assert "error" in d, f"torch raises {t['error']!r}; descent returns {d.get('shape')}"
        assert isinstance(d["error"], type(t["error"])), (t["error"], d["error"])
        return
    assert "error" not in d, f"descent raises {d['error']!r} where torch gives {t['shape']}"
    for key in ("shape", "dtype", "is_contiguous", "storage_offset", "stride"):
        assert t[key] == d[key], (key, t[key], d[key])
    np.testing.assert_array_equal(d["values"], t["values"])
    if isinstance(t["write"], Exception):
        assert isinstance(d["write"], type(t["write"])), (t["write"], d["write"])
    else:
        assert d["write"] == "ok", d["write"]
    for key in ("input after write", "result after input write"):
        np.testing.assert_array_equal(d[key], t[key], err_msg=key)


def _cases(table, prefix):
    for name in table:
        for kind in KINDS:
            marks = ()
            if (name, kind) in KNOWN:
                marks = pytest.mark.xfail(strict=True, reason=KNOWN[(name, kind)])
            yield pytest.param(table, name, kind, id=f"{prefix}{name}-{kind}", marks=marks)


@pytest.mark.parametrize(("table", "name", "kind"), list(_cases(REAL_VIEWS, "")))
def test_view_ops_alias_as_in_torch(table, name, kind):
    f = table[name]
    _compare(_probe(_real_input, kind, f, torch), _probe(_real_input, kind, f, ds))


@pytest.mark.parametrize(("table", "name", "kind"), list(_cases(COMPLEX_VIEWS, "complex-")))
def test_complex_view_ops_alias_as_in_torch(table, name, kind):
    f = table[name]
    _compare(_probe(_complex_input, kind, f, torch), _probe(_complex_input, kind, f, ds))


# ---------------------------------------------------------------------------------------------
# view: never a silent copy


def _random_strided(rng: random.Random):
    """(build(lib), description): a tensor made by permuting, slicing and unsqueezing."""
    nd = rng.randint(1, 4)
    shape = [rng.choice([1, 2, 3, 4, 6]) for _ in range(nd)]
    if rng.random() < 0.05:
        shape[rng.randrange(nd)] = 0
    perm = list(range(nd))
    rng.shuffle(perm)
    index = []
    for d in range(nd):
        n, r = shape[perm[d]], rng.random()
        if r < 0.5 or n == 0:
            index.append(slice(None))
        elif r < 0.75:
            index.append(slice(rng.randrange(n), None))
        else:
            index.append(slice(None, None, rng.choice([2, 3])))
    unsq = [rng.randint(0, nd) for _ in range(rng.choice([0, 0, 1]))]

    def build(lib):
        x = lib.arange(int(np.prod(shape)), dtype=lib.float32).reshape(shape)
        x = x.permute(*perm)[tuple(index)]
        for d in unsq:
            x = x.unsqueeze(d)
        return x

    return build, (shape, perm, index, unsq)


def _random_shape(rng: random.Random, n: int) -> list:
    k = rng.randint(1, 4)
    if n == 0:
        return [0] + [rng.choice([1, 2])] * (k - 1)
    out = []
    for _ in range(k - 1):
        d = rng.choice([d for d in range(1, n + 1) if n % d == 0])
        out.append(d)
        n //= d
    out.append(n)
    if rng.random() < 0.3:
        out[rng.randrange(k)] = -1
    return out


@pytest.mark.parametrize("seed", range(8))
def test_view_refuses_exactly_where_torch_does_and_reshape_aliases_as_torch(seed):
    rng = random.Random(seed)
    for _ in range(60):
        build, desc = _random_strided(rng)
        tx, dx = build(torch), build(ds)
        assert tuple(dx.stride()) == tuple(tx.stride()) or 1 in tx.shape or 0 in tx.shape
        new = _random_shape(rng, tx.numel())
        try:
            ty = tx.view(new)
        except RuntimeError as e:
            with pytest.raises(RuntimeError, match="Use .reshape"):
                dx.view(new)
            assert "view size is not compatible" in str(e)
        else:
            dy = dx.view(new)
            assert tuple(dy.shape) == tuple(ty.shape)
            ty.add_(1000), dy.add_(1000)  # a view: the input changes
            np.testing.assert_array_equal(dx.numpy(), tx.numpy(), err_msg=str((desc, new)))
        tr, dr = tx.reshape(new), dx.reshape(new)  # a view where torch's is, else a copy
        tr.mul_(-1), dr.mul_(-1)
        np.testing.assert_array_equal(dx.numpy(), tx.numpy(), err_msg=str((desc, new)))


def test_view_error_names_the_sizes_and_the_fix():
    x = ds.arange(6.0).reshape(2, 3).t()
    with pytest.raises(RuntimeError) as e:
        x.view(-1)
    msg = str(e.value)
    assert "view size is not compatible with input tensor's size and stride" in msg
    assert "(3, 2)" in msg and "(1, 3)" in msg and "(6,)" in msg and ".reshape(...)" in msg
    assert ".contiguous()" in msg
    with pytest.raises(RuntimeError):
        x.view_as(ds.zeros(6))
    with pytest.raises(RuntimeError, match=r"shape '\[4, 4\]' is invalid for input of size 6"):
        x.view(4, 4)
    # the fixes the message names work, and agree with torch
    t = torch.arange(6.0).reshape(2, 3).t()
    np.testing.assert_array_equal(x.reshape(-1).numpy(), t.reshape(-1).numpy())
    np.testing.assert_array_equal(x.contiguous().view(-1).numpy(), t.contiguous().view(-1).numpy())


def test_view_writes_through_under_autograd():
    """A view of a graph tensor (a non-contiguous one that can still be viewed) written in
    place: the base changes and the gradient flows as in torch."""
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 6)).astype(np.float32)
    c = rng.normal(size=(6, 4)).astype(np.float32)
    grads = []
    for lib in (torch, ds):
        w = lib.tensor(w0, requires_grad=True)
        y = (w * 2).t()  # (6, 4), not contiguous
        v = y.view(3, 2, 4)  # splits dim 0: a view
        v[1].mul_(3.0)
        assert not y.is_contiguous()
        (y * lib.tensor(c)).sum().backward()
        grads.append((y.detach().numpy(), w.grad.numpy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-6)
    np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# unfold, view_as_real, ravel, as_strided, as_strided_


def test_unfold_is_a_view_with_gradients_as_in_torch():
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(3, 8)).astype(np.float32)
    c = rng.normal(size=(3, 8)).astype(np.float32)
    res = []
    for lib in (torch, ds):
        w = lib.tensor(w0, requires_grad=True)
        y = w * 1
        y.unfold(1, 2, 2).mul_(lib.tensor([2.0, 3.0]))  # non-overlapping windows, in place
        y.t().unfold(0, 3, 1)[1, 2].fill_(0.5)  # overlapping windows: one element
        (y * lib.tensor(c)).sum().backward()
        res.append((y.detach().numpy(), w.grad.numpy()))
        b = lib.zeros(2, 6)
        b.unfold(1, 3, 3)[1, 1].fill_(7.0)  # outside autograd: the buffer changes
        res.append((b.numpy(), b.unfold(1, 3, 3).stride()))
    np.testing.assert_allclose(res[2][0], res[0][0], rtol=1e-6)
    np.testing.assert_allclose(res[2][1], res[0][1], rtol=1e-6)
    np.testing.assert_array_equal(res[3][0], res[1][0])
    assert res[3][1] == res[1][1]


def test_view_as_real_of_a_non_contiguous_tensor_is_a_view():
    for lib in (torch, ds):
        z = lib.tensor((np.arange(12) * (1 + 1j)).astype(np.complex64).reshape(3, 4)).t()
        r = lib.view_as_real(z)
        r[..., 1].zero_()  # the imaginary parts, through the view
        assert not z.imag.numpy().any()
        r2 = lib.view_as_real(z[:, ::2])
        r2.fill_(1.0)
        assert (z.real.numpy()[:, ::2] == 1).all() and (z.real.numpy()[:, 1::2] != 1).any()
        assert tuple(r.stride()) == (2, 8, 1)


def test_ravel_copies_a_non_contiguous_tensor_as_torch():
    for lib in (torch, ds):
        x = lib.arange(12.0).reshape(3, 4)[:, ::2]  # strides (4, 2): reshape could view it
        x.ravel().fill_(-1.0)
        assert (x.numpy() >= 0).all()  # torch's ravel is contiguous().view(-1): a copy
        c = lib.arange(4.0)
        c.ravel().fill_(-1.0)
        assert (c.numpy() == -1).all()  # a contiguous input: a view


def _as_pair(shape, offset=0):
    base = np.arange(offset + int(np.prod(shape)), dtype=np.float32)
    return ds.tensor(base)[offset:].reshape(shape), torch.tensor(base)[offset:].reshape(shape)


@pytest.mark.parametrize(
    "size,stride,offset",
    [((2, 2), (1, 2), None), ((2, 2), (1, 2), 0), ((3,), (3,), 1), ((2, 3), (0, 1), 2),
     ((0, 2), (1, 1), None), ((), (), 5)],
)  # fmt: skip
def test_as_strided_reads_and_writes_the_storage_as_torch(size, stride, offset):
    d, t = _as_pair((2, 3), offset=2)  # views of a (8,) storage, at offset 2
    d, t = d.t(), t.t()  # and not contiguous
    vd, vt = d.as_strided(size, stride, offset), t.as_strided(size, stride, offset)
    np.testing.assert_array_equal(vd.numpy(), vt.numpy())
    assert vd.storage_offset() == vt.storage_offset()
    assert tuple(vd.stride()) == tuple(vt.stride())
    if vt.numel() and 0 not in stride:
        vd.fill_(-7.0), vt.fill_(-7.0)  # a writable view of the storage
        np.testing.assert_array_equal(d.numpy(), t.numpy())


def test_as_strided_gradients_as_torch():
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(12,)).astype(np.float32)
    c = rng.normal(size=(2, 3)).astype(np.float32)
    grads = []
    for lib in (torch, ds):
        w = lib.tensor(w0, requires_grad=True)
        x = w.reshape(3, 4).t()  # a non-contiguous input
        (x.as_strided((2, 3), (1, 3), 1) * lib.tensor(c)).sum().backward()
        g1 = w.grad.numpy().copy()
        w.grad = None
        e = w[:6].expand(2, 6)  # elements sharing memory: the gradient is split among them
        (e.as_strided((3,), (2,), 0) * lib.tensor(c[0])).sum().backward()
        grads.append((g1, w.grad.numpy()))
    for a, b in zip(grads[1], grads[0]):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_as_strided_in_place_as_torch():
    out = []
    for lib in (torch, ds):
        x = lib.arange(12.0)
        y = x[2:]
        r = y.as_strided_((2, 3), (1, 2))
        assert r is y
        got = [y.numpy().copy(), y.storage_offset(), tuple(y.shape), y.stride()]
        y.add_(100.0)  # y views x's memory: x changes
        got.append(x.numpy().copy())
        y.as_strided_((2,), (1,), 0)
        got += [y.numpy().copy(), y.storage_offset()]
        with pytest.raises(RuntimeError, match="setStorage"):
            lib.arange(4.0).as_strided_((3, 3), (3, 1))
        # with history: recorded, the gradient flows to the old value's positions
        w = lib.tensor(np.arange(6, dtype=np.float32), requires_grad=True)
        z = w * 2
        z.as_strided_((2, 2), (1, 2), 1)
        (z * lib.arange(4.0).reshape(2, 2)).sum().backward()
        got += [z.detach().numpy(), w.grad.numpy()]
        with pytest.raises(RuntimeError, match="leaf Variable"):
            w.as_strided_((2, 3), (3, 1))
        with lib.no_grad():
            w.as_strided_((2, 3), (3, 1))
        got.append(tuple(w.shape))
        out.append(got)
    for a, b in zip(out[1], out[0]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ---------------------------------------------------------------------------------------------
# scatter / index_add edge cases (PyTorch's OpInfo error inputs): empty and 0-d tensors


def _arr(lib, a, dtype=np.float32):
    return lib.tensor(np.asarray(a, dtype=dtype))


def _idx(lib, a):
    return lib.tensor(np.asarray(a, dtype=np.int64))


EDGE_CASES = {
    # an empty index writes nothing, whatever the shapes (PyTorch skips the shape checks)
    "scatter empty 1-d index": lambda L: _arr(L, np.arange(4)).scatter(
        0, _idx(L, np.zeros(0)), _arr(L, np.ones(3))
    ),
    "scatter empty (2,0) index": lambda L: _arr(L, np.zeros((2, 3))).scatter(
        1, _idx(L, np.zeros((2, 0))), _arr(L, np.ones((2, 3)))
    ),
    "scatter empty index of other rank": lambda L: _arr(L, np.zeros((2, 3))).scatter(
        1, _idx(L, np.zeros(0)), _arr(L, np.ones((2, 3)))
    ),
    "scatter empty index, small src": lambda L: _arr(L, np.zeros((2, 3))).scatter(
        1, _idx(L, np.zeros((2, 0))), _arr(L, np.ones(1))
    ),
    "scatter empty index, value": lambda L: _arr(L, np.zeros((2, 3))).scatter(
        0, _idx(L, np.zeros((0, 3))), 5.0
    ),
    "scatter_ empty index": lambda L: _arr(L, np.zeros((2, 3))).scatter_(
        1, _idx(L, np.zeros((2, 0))), 5.0
    ),
    "scatter empty index, bad dim": lambda L: _arr(L, np.zeros((2, 3))).scatter(
        5, _idx(L, np.zeros((2, 0))), 1.0
    ),
    "scatter empty float index": lambda L: _arr(L, np.zeros((2, 3))).scatter(
        0, _arr(L, np.zeros((0, 3))), 1.0
    ),
    "scatter_add empty index of other rank": lambda L: _arr(L, np.zeros((2, 3))).scatter_add(
        1, _idx(L, np.zeros(0)), _arr(L, np.ones((2, 3)))
    ),
    "scatter_reduce empty index of other rank": lambda L: _arr(L, np.zeros((2, 3))).scatter_reduce(
        1, _idx(L, np.zeros(0)), _arr(L, np.ones((2, 3))), "sum"
    ),
    # a 0-d tensor counts as 1-d of one element
    "scatter 0-d self, index, src": lambda L: _arr(L, 1.0).scatter(0, _idx(L, 0), _arr(L, 7.0)),
    "scatter 0-d self, 1-d index": lambda L: _arr(L, 1.0).scatter(0, _idx(L, [0]), _arr(L, 7.0)),
    "scatter 1-d self, 0-d index": lambda L: _arr(L, np.zeros(3)).scatter(
        0, _idx(L, 1), _arr(L, 7.0)
    ),
    "scatter_ 1-d self, 0-d index": lambda L: _arr(L, np.zeros(3)).scatter_(0, _idx(L, 2), 4.0),
    "scatter 2-d self, 0-d index": lambda L: _arr(L, np.zeros((2, 2))).scatter(0, _idx(L, 1), 4.0),
    "scatter 0-d, dim 1": lambda L: _arr(L, 1.0).scatter(1, _idx(L, 0), 3.0),
    "scatter_add 1-d self, 0-d index": lambda L: _arr(L, np.zeros(3)).scatter_add(
        0, _idx(L, 1), _arr(L, 7.0)
    ),
    "scatter_add 0-d self, 1-d index": lambda L: _arr(L, 1.0).scatter_add(
        0, _idx(L, [0]), _arr(L, [7.0])
    ),
    "scatter_reduce 1-d self, 0-d index": lambda L: _arr(L, np.zeros(3)).scatter_reduce(
        0, _idx(L, 1), _arr(L, 7.0), "amax"
    ),
    "gather 1-d self, 0-d index": lambda L: _arr(L, np.arange(3)).gather(0, _idx(L, 1)),
    "gather 0-d self, 1-d index": lambda L: _arr(L, 4.0).gather(0, _idx(L, [0, 0])),
    "index_add 0-d self, index, source": lambda L: _arr(L, 1.0).index_add(
        0, _idx(L, 0), _arr(L, 5.0)
    ),
    "index_add 0-d self, 1-d index": lambda L: _arr(L, 1.0).index_add(
        0, _idx(L, [0]), _arr(L, 5.0)
    ),
    "index_add 0-d self, 1-d source": lambda L: _arr(L, 1.0).index_add(
        0, _idx(L, [0]), _arr(L, [5.0])
    ),
    "index_add_ 0-d self, 1-d source": lambda L: _arr(L, 1.0).index_add_(
        0, _idx(L, [0]), _arr(L, [5.0])
    ),
    "index_add 1-d self, 0-d source": lambda L: _arr(L, np.zeros(3)).index_add(
        0, _idx(L, [1]), _arr(L, 5.0)
    ),
    "index_add 1-d self, 0-d index": lambda L: _arr(L, np.zeros(3)).index_add(
        0, _idx(L, 1), _arr(L, [5.0])
    ),
    "index_add 0-d, dim -1": lambda L: _arr(L, 1.0).index_add(-1, _idx(L, [0]), _arr(L, 5.0)),
    "index_add 0-d, dim 1": lambda L: _arr(L, 1.0).index_add(1, _idx(L, [0]), _arr(L, 5.0)),
    "index_add 0-d, index 1": lambda L: _arr(L, 1.0).index_add(0, _idx(L, [1]), _arr(L, 5.0)),
    "index_add 0-d, two indices": lambda L: _arr(L, 1.0).index_add(
        0, _idx(L, [0, 0]), _arr(L, 5.0)
    ),
    "index_add_ 0-d": lambda L: _arr(L, 1.0).index_add_(0, _idx(L, [0]), _arr(L, 5.0)),
    "index_add empty index": lambda L: _arr(L, np.zeros((2, 3))).index_add(
        0, _idx(L, np.zeros(0)), _arr(L, np.zeros((0, 3)))
    ),
    "index_add 2-d index": lambda L: _arr(L, np.zeros((2, 3))).index_add(
        0, _idx(L, [[0]]), _arr(L, np.ones((1, 3)))
    ),
    "index_add float index": lambda L: _arr(L, np.zeros((2, 3))).index_add(
        0, _arr(L, [0.0]), _arr(L, np.ones((1, 3)))
    ),
    "index_add float64 source": lambda L: _arr(L, np.zeros((2, 3))).index_add(
        0, _idx(L, [0]), _arr(L, np.ones((1, 3)), np.float64)
    ),
    "index_add negative dim": lambda L: _arr(L, np.zeros((2, 3))).index_add(
        -1, _idx(L, [2, 2]), _arr(L, np.ones((2, 2))), alpha=3
    ),
    "index_add negative index": lambda L: _arr(L, np.zeros((2, 3))).index_add(
        0, _idx(L, [-1]), _arr(L, np.ones((1, 3)))
    ),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_scatter_and_index_add_edge_cases_as_torch(name):
    f = EDGE_CASES[name]
    try:
        expected = f(torch)
    except Exception as e:  # noqa: BLE001 - torch's error class is the expectation
        with pytest.raises(type(e)):
            f(ds)
        return
    got = f(ds)
    assert tuple(got.shape) == tuple(expected.shape)
    assert str(got.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_scatter_edge_cases_keep_gradients():
    """The empty-index and 0-d paths stay differentiable, with torch's gradients."""
    out = []
    for lib in (torch, ds):
        x = lib.tensor(np.arange(3, dtype=np.float32), requires_grad=True)
        s = lib.tensor(np.float32(2.0), requires_grad=True)
        y = x.scatter(0, _idx(lib, 1), s) * lib.tensor([1.0, 2.0, 3.0])
        z = x.scatter(0, _idx(lib, np.zeros(0)), 5.0) * lib.tensor([1.0, 2.0, 3.0])
        a = x.scatter_add(0, _idx(lib, 2), s) * lib.tensor([1.0, 2.0, 3.0])
        (y.sum() + z.sum() + a.sum()).backward()
        out.append((x.grad.numpy(), s.grad.numpy()))
    np.testing.assert_allclose(out[1][0], out[0][0])
    np.testing.assert_allclose(out[1][1], out[0][1])


@pytest.mark.parametrize(
    "write",
    ["fill_", "zero_", "setitem", "masked_fill_", "add_", "mul_", "copy_", "clamp_", "exp_"],
)
def test_writes_into_an_expanded_tensor_as_torch(write):
    """fill_, zero_, x[i] = v and masked_fill_ write into an expanded tensor's memory (every
    element sharing a location gets the same value); the others raise PyTorch's error."""
    ops = {
        "fill_": lambda e: e.fill_(1.0),
        "zero_": lambda e: e.zero_(),
        "setitem": lambda e: e.__setitem__(0, 5.0),
        "masked_fill_": lambda e: e.masked_fill_(_lib(e).tensor([[True, False, True]] * 2), 3.0),
        "add_": lambda e: e.add_(1.0),
        "mul_": lambda e: e.mul_(2.0),
        "copy_": lambda e: e.copy_(_lib(e).ones(2, 3)),
        "clamp_": lambda e: e.clamp_(0.0, 0.5),
        "exp_": lambda e: e.exp_(),
    }
    res = []
    for lib in (torch, ds):
        x = lib.tensor([0.25, 2.0, -1.0])
        try:
            if write == "masked_fill_":  # deprecated in torch: both warn
                with pytest.warns(UserWarning, match="masked_fill_ on expanded tensors"):
                    ops[write](x.expand(2, 3))
            else:
                ops[write](x.expand(2, 3))
            res.append(x.numpy().copy())
        except RuntimeError as e:
            res.append(type(e))
            assert "more than one element" in str(e)
    if isinstance(res[0], type):
        assert res[1] is not None and isinstance(res[1], type)
    else:
        np.testing.assert_array_equal(res[1], res[0])
    empty = ds.zeros(0).expand(2, 0)  # nothing to write: no error, as in torch
    ops[write](empty) if write not in ("setitem", "masked_fill_", "copy_") else None


def _base_cases(lib):
    x = lib.arange(12.0).reshape(3, 4)
    y = lib.ones(3, requires_grad=True)
    with lib.no_grad():
        g = x[0]
    cases = {
        "x": x, "select": x[1], "slice of select": x[1][1:], "detach": x.detach(), "t": x.t(),
        "reshape": x.reshape(12), "clone": x.clone(), "no_grad select": g,
        "view of leaf": y.view(1, 3), "detach of leaf": y.detach(), "leaf": y,
        "expand": y.detach().expand(2, 3), "diagonal": x.diagonal(), "permute": x.permute(1, 0),
    }  # fmt: skip
    return x, y, cases


def test_base_and_is_view_as_pytorch():
    """Tensor._base is the root tensor whose memory a view shares (None for detach() and for a
    tensor that owns its memory), `_is_view()` says whether it is set: torchviz reads both."""
    tx, ty, tcases = _base_cases(torch)
    dx, dy, dcases = _base_cases(ds)
    for name, t in tcases.items():
        d = dcases[name]
        got = (d._is_view(), d._base is dx, d._base is dy, d._base is None)
        want = (t._is_view(), t._base is tx, t._base is ty, t._base is None)
        assert got == want, name
