"""descent.nn.utils.parametrize, parametrizations (weight_norm, spectral_norm, orthogonal) and
the older weight_norm / spectral_norm hooks, against torch.nn.utils with PyTorch's state_dict
loaded (keys and shapes equal): parametrized weights, outputs and gradients (float32 and
float64), the class swap, assignment through right_inverse, caching, removal and errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.utils.parametrizations as TPS
import torch.nn.utils.parametrize as TP

import descent
import descent.nn as nn
from descent.explain import gradcheck
from descent.nn.utils import parametrizations as PS
from descent.nn.utils import parametrize as P

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _np(t):
    if isinstance(t, np.ndarray):
        return t
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.numpy())


def _close(a, b, dtype=np.float32, what=""):
    np.testing.assert_allclose(_np(a), _np(b), **TOL[dtype], err_msg=what)


def _load(ours, theirs):
    sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd)
    for k, v in ours.state_dict().items():
        assert tuple(v.shape) == tuple(sd[k].shape), k
    ours.load_state_dict({k: v.detach().numpy() for k, v in sd.items()})


def _twins(kind, *args, dtype=np.float32):
    """The same layer in both libraries (PyTorch's weights), in `dtype`."""
    theirs = getattr(torch.nn, kind)(*args)
    ours = getattr(nn, kind)(*args)
    _load(ours, theirs)
    ours.to(dtype)
    theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    return ours, theirs


def _grads_match(ours, theirs, x, dtype, what=""):
    """Forward the same input, backpropagate the same weighting, compare every gradient."""
    y, ty = ours(descent.tensor(x)), theirs(torch.tensor(x))
    _close(y, ty, dtype, what + " output")
    w = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(dtype)
    (y * descent.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    tp = dict(theirs.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(tp)
    for name, p in ours.named_parameters():
        _close(p.grad, tp[name].grad, dtype, f"{what} {name}")


class Symmetric(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(-1, -2)

    def right_inverse(self, a):
        return a.triu()


class TSymmetric(torch.nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(-1, -2)

    def right_inverse(self, a):
        return a.triu()


class Scale(nn.Module):
    def forward(self, x):
        return 2.0 * x

    def right_inverse(self, a):
        return a / 2.0


class TScale(torch.nn.Module):
    def forward(self, x):
        return 2.0 * x

    def right_inverse(self, a):
        return a / 2.0


# -- register_parametrization -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_register_parametrization_chain_matches_torch(dtype):
    ours, theirs = _twins("Linear", 4, 4, dtype=dtype)
    param = ours.weight
    P.register_parametrization(ours, "weight", Symmetric())
    P.register_parametrization(ours, "weight", Scale())
    TP.register_parametrization(theirs, "weight", TSymmetric())
    TP.register_parametrization(theirs, "weight", TScale())
    assert type(ours).__name__ == "ParametrizedLinear" and isinstance(ours, nn.Linear)
    assert P.type_before_parametrizations(ours) is nn.Linear
    assert ours.parametrizations.weight.original is param  # the same Parameter object
    _load(ours, theirs)
    _close(ours.weight, theirs.weight, dtype)
    np.testing.assert_allclose(ours.weight.numpy(), ours.weight.numpy().T)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    _grads_match(ours, theirs, x, dtype)
    # Assignment runs the right inverses (last first) into original.
    target = np.random.default_rng(2).standard_normal((4, 4)).astype(dtype)
    target = target + target.T
    ours.weight = descent.tensor(target)
    with torch.no_grad():
        theirs.weight = torch.tensor(target)
    _close(ours.parametrizations.weight.original, theirs.parametrizations.weight.original, dtype)
    _close(ours.weight, target, dtype)
    # Other Linear instances keep the plain class.
    assert type(nn.Linear(2, 2)) is nn.Linear and not P.is_parametrized(nn.Linear(2, 2))


def test_cached_remove_and_errors():
    lin = nn.Linear(3, 3)
    P.register_parametrization(lin, "weight", Symmetric())
    P.register_parametrization(lin, "bias", Scale())
    assert P.is_parametrized(lin) and P.is_parametrized(lin, "weight")
    assert not P.is_parametrized(lin, "foo")
    assert lin.weight is not lin.weight  # recomputed on every access
    with P.cached():
        assert lin.weight is lin.weight
    value = lin.weight.numpy().copy()
    original = lin.parametrizations.weight.original
    P.remove_parametrizations(lin, "weight")  # leaves the parametrized value
    assert isinstance(lin.weight, nn.Parameter) and lin.weight is original
    np.testing.assert_array_equal(lin.weight.numpy(), value)
    assert type(lin).__name__ == "ParametrizedLinear"  # bias is still parametrized
    bias_orig = lin.parametrizations.bias.original.numpy().copy()
    P.remove_parametrizations(lin, "bias", leave_parametrized=False)
    np.testing.assert_array_equal(lin.bias.numpy(), bias_orig)
    assert type(lin) is nn.Linear and "parametrizations" not in dict(lin.named_children())
    assert list(lin.state_dict()) == ["weight", "bias"]
    with pytest.raises(ValueError, match="does not have a parametrization"):
        P.remove_parametrizations(lin, "weight")
    with pytest.raises(ValueError, match="does not have a parameter"):
        P.register_parametrization(lin, "foo", Scale())

    class Shrink(nn.Module):
        def forward(self, x):
            return x[:1]

    with pytest.raises(ValueError, match="may not change the shape"):
        P.register_parametrization(lin, "weight", Shrink())
    P.register_parametrization(lin, "weight", Shrink(), unsafe=True)
    assert lin.weight.shape == (1, 3)


def test_transfer_parametrizations_and_params():
    src = nn.Linear(3, 3)
    P.register_parametrization(src, "weight", Symmetric())
    PS.weight_norm(src, name="bias", dim=None)
    dst = nn.Linear(3, 3)
    P.transfer_parametrizations_and_params(src, dst)
    assert P.is_parametrized(dst, "weight") and P.is_parametrized(dst, "bias")
    assert dst.parametrizations.weight.original is src.parametrizations.weight.original
    assert dst.parametrizations.bias.original1 is src.parametrizations.bias.original1
    np.testing.assert_array_equal(dst.weight.numpy(), src.weight.numpy())
    np.testing.assert_array_equal(dst.bias.numpy(), src.bias.numpy())
    other = P.transfer_parametrizations_and_params(src, nn.Linear(3, 3), "weight")
    assert P.is_parametrized(other, "weight") and not P.is_parametrized(other, "bias")


def test_parametrized_module_trains_deepcopies_and_moves():
    import copy

    descent.manual_seed(0)
    lin = nn.Linear(3, 3)
    P.register_parametrization(lin, "weight", Symmetric())
    opt = descent.optim.SGD(lin.parameters(), lr=0.1)
    x = descent.randn(5, 3)
    before = lin.weight.numpy().copy()
    (lin(x) ** 2).sum().backward()
    opt.step()
    after = lin.weight.numpy()
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, after.T)  # still symmetric after a step
    twin = copy.deepcopy(lin)
    assert type(twin) is type(lin)
    np.testing.assert_array_equal(twin.weight.numpy(), after)
    assert twin.parametrizations.weight.original is not lin.parametrizations.weight.original
    lin.double()
    assert lin.weight.dtype == np.float64


# -- parametrizations.weight_norm / spectral_norm / orthogonal --------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("kind", "args", "dim", "shape"),
    [("Linear", (3, 4), 0, (2, 3)), ("Linear", (3, 4), None, (2, 3)),
     ("Conv2d", (2, 3, 3), 1, (1, 2, 5, 5)), ("Conv1d", (2, 3, 2), 2, (2, 2, 6))],
)  # fmt: skip
def test_weight_norm_parametrization_matches_torch(kind, args, dim, shape, dtype):
    ours, theirs = _twins(kind, *args, dtype=dtype)
    PS.weight_norm(ours, dim=dim)
    TPS.weight_norm(theirs, dim=dim)
    _load(ours, theirs)
    _close(ours.weight, theirs.weight, dtype)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    _grads_match(ours, theirs, x, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("kind", "args", "shape"),
    [("Linear", (3, 5), (2, 3)), ("Conv2d", (2, 3, 3), (1, 2, 5, 5)),
     ("ConvTranspose2d", (2, 3, 3), (1, 2, 4, 4))],  # dim 1 for ConvTranspose
)  # fmt: skip
def test_spectral_norm_parametrization_matches_torch(kind, args, shape, dtype):
    ours, theirs = _twins(kind, *args, dtype=dtype)
    PS.spectral_norm(ours)
    TPS.spectral_norm(theirs)
    _load(ours, theirs)  # PyTorch's u and v: the same power iterations from here
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    for step in range(3):  # each training-mode access does one power iteration
        _grads_match(ours, theirs, x, dtype, f"step {step}")
        for m in (ours, theirs):
            m.zero_grad()
    _close(ours.parametrizations.weight[0]._u, theirs.parametrizations.weight[0]._u, dtype)
    ours.eval(), theirs.eval()
    _grads_match(ours, theirs, x, dtype, "eval")
    w = ours.weight.numpy().reshape(ours.weight.shape[1 if "Transpose" in kind else 0], -1)
    if "Transpose" in kind:
        w = np.moveaxis(ours.weight.numpy(), 1, 0).reshape(ours.weight.shape[1], -1)
    assert abs(np.linalg.svd(w.astype(np.float64), compute_uv=False)[0] - 1.0) < 0.05


def test_spectral_norm_errors_and_vector():
    with pytest.raises(ValueError, match="n_power_iterations"):
        PS.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(IndexError):
        PS.spectral_norm(nn.Linear(2, 2), dim=2)
    with pytest.raises(ValueError, match="no parameter or buffer"):
        PS.spectral_norm(nn.Linear(2, 2), name="foo")
    lin = PS.spectral_norm(nn.Linear(3, 4), name="bias")  # a vector: its 2-norm
    np.testing.assert_allclose(np.linalg.norm(lin.bias.numpy()), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("omap", [None, "matrix_exp", "cayley", "householder"])
@pytest.mark.parametrize("out_in", [(4, 4), (5, 3), (3, 5)])
def test_orthogonal_parametrization_matches_torch(out_in, omap, dtype):
    if omap == "householder" and out_in[0] == out_in[1]:
        pass  # allowed: householder on a square matrix
    ours, theirs = _twins("Linear", out_in[1], out_in[0], dtype=dtype)
    PS.orthogonal(ours, orthogonal_map=omap)
    TPS.orthogonal(theirs, orthogonal_map=omap)
    _load(ours, theirs)  # PyTorch's base (its random completion for rectangular weights)
    w = ours.weight.numpy().astype(np.float64)
    gram = w.T @ w if out_in[0] >= out_in[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(min(out_in)), atol=1e-5)
    # Move the original off -I, so the map is not at its base point.
    rng = np.random.default_rng(4)
    delta = (0.3 * rng.standard_normal(out_in)).astype(dtype)
    with torch.no_grad():
        theirs.parametrizations.weight.original.add_(torch.tensor(delta))
    orig = ours.parametrizations.weight.original
    orig._data[...] = orig._data + delta
    x = rng.standard_normal((2, out_in[1])).astype(dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours.weight.numpy(), _np(theirs.weight), **tol)
    y, ty = ours(descent.tensor(x)), theirs(torch.tensor(x))
    g = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    (y * descent.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(orig.grad.numpy(), _np(theirs.parametrizations.weight.original.grad),
                               **tol)  # fmt: skip


def test_orthogonal_errors_and_training_keeps_orthogonality():
    with pytest.raises(ValueError, match="orthogonal_map"):
        PS.orthogonal(nn.Linear(3, 3), orthogonal_map="svd")
    with pytest.raises(ValueError, match="matrix"):
        PS.orthogonal(nn.Linear(3, 3), name="bias")
    descent.manual_seed(0)
    lin = PS.orthogonal(nn.Linear(4, 6))
    opt = descent.optim.Adam(lin.parameters(), lr=0.05)
    x, t = descent.randn(8, 4), descent.randn(8, 6)
    for _ in range(5):
        opt.zero_grad()
        ((lin(x) - t) ** 2).mean().backward()
        opt.step()
    w = lin.weight.numpy().astype(np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-5)


def test_parametrizations_gradcheck():
    """float64 central differences through each parametrization's forward (its module called
    on fresh leaves): weight norm, spectral norm (eval: fixed u, v), the three orthogonal maps."""
    descent.manual_seed(0)
    rng = np.random.default_rng(0)
    wn = PS.weight_norm(nn.Linear(3, 2).double(), dim=0).parametrizations.weight[0]
    assert gradcheck(wn, [rng.uniform(0.5, 1.5, (2, 1)), rng.standard_normal((2, 3))])
    sn = PS.spectral_norm(nn.Linear(3, 2).double()).eval().parametrizations.weight[0]
    assert gradcheck(sn, [rng.standard_normal((2, 3))])
    for out_in, omap in (((3, 3), "matrix_exp"), ((3, 3), "cayley"), ((4, 2), "householder")):
        orth = PS.orthogonal(nn.Linear(out_in[1], out_in[0]).double(), orthogonal_map=omap)
        x0 = orth.parametrizations.weight.original.numpy() + 0.2 * rng.standard_normal(out_in)
        assert gradcheck(orth.parametrizations.weight[0], [x0]), omap


# -- the older hook-based weight_norm / spectral_norm ------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_old_weight_norm_matches_torch(dtype):
    ours, theirs = _twins("Conv1d", 2, 3, 3, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's deprecation warning
        torch.nn.utils.weight_norm(theirs, dim=0)
    with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
        nn.utils.weight_norm(ours, dim=0)
    _load(ours, theirs)  # bias, weight_g, weight_v
    x = np.random.default_rng(0).standard_normal((2, 2, 6)).astype(dtype)
    _grads_match(ours, theirs, x, dtype)
    nn.utils.remove_weight_norm(ours)
    torch.nn.utils.remove_weight_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    _close(ours.weight, theirs.weight, dtype)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        nn.utils.remove_weight_norm(ours)
    with pytest.raises(RuntimeError, match="two weight_norm"):
        nn.utils.weight_norm(nn.utils.weight_norm(nn.Linear(2, 2)))


def test_old_weight_norm_checkpoint_loads_into_parametrization_as_torch():
    # a state_dict saved with nn.utils.weight_norm (weight_g, weight_v), nested in a model,
    # loads into parametrizations.weight_norm modules: PyTorch's load pre-hook renames the keys
    def build(lib, new):
        wn = lib.nn.utils.parametrizations.weight_norm if new else lib.nn.utils.weight_norm
        return lib.nn.Sequential(wn(lib.nn.Conv1d(2, 3, 2)), lib.nn.Tanh(), wn(lib.nn.Linear(3, 2)))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the old function's deprecation warning
        old_t = build(torch, new=False)
    rng = np.random.default_rng(3)
    with torch.no_grad():
        for p in old_t.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    old_sd = old_t.state_dict()
    assert "0.weight_g" in old_sd and "2.weight_v" in old_sd
    new_t, new_d = build(torch, new=True), build(descent, new=True)
    res_t = new_t.load_state_dict(old_sd)
    res_d = new_d.load_state_dict({k: v.numpy() for k, v in old_sd.items()})
    assert list(res_d.missing_keys) == list(res_t.missing_keys) == []
    assert list(res_d.unexpected_keys) == list(res_t.unexpected_keys) == []
    assert list(new_d.state_dict()) == list(new_t.state_dict())
    x = rng.standard_normal((2, 2, 4)).astype(np.float32)
    _close(new_d[0].weight, new_t[0].weight)
    _close(new_d[0](descent.tensor(x)), old_t[0](torch.tensor(x)))  # the old model's output
    _close(new_d[2].weight, new_t[2].weight)
    # a checkpoint with only one of the two keys is not renamed: both report it
    partial = {k: v for k, v in old_sd.items() if k != "2.weight_v"}
    res_t = build(torch, new=True).load_state_dict(partial, strict=False)
    res_d = build(descent, new=True).load_state_dict(
        {k: v.numpy() for k, v in partial.items()}, strict=False
    )
    assert sorted(res_d.missing_keys) == sorted(res_t.missing_keys)
    assert sorted(res_d.unexpected_keys) == sorted(res_t.unexpected_keys) == ["2.weight_g"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_old_spectral_norm_matches_torch(dtype):
    ours, theirs = _twins("Linear", 3, 4, dtype=dtype)
    torch.nn.utils.spectral_norm(theirs)
    nn.utils.spectral_norm(ours)
    _load(ours, theirs)  # bias, weight_orig, weight_u, weight_v
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(dtype)
    for step in range(2):
        _grads_match(ours, theirs, x, dtype, f"step {step}")
        ours.zero_grad(), theirs.zero_grad()
    _close(ours.weight_u, theirs.weight_u, dtype)
    ours.eval(), theirs.eval()
    _grads_match(ours, theirs, x, dtype, "eval")
    nn.utils.remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _close(ours.weight, theirs.weight, dtype)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        nn.utils.remove_spectral_norm(ours)
