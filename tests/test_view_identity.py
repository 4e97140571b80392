"""View identity as PyTorch's: a view op that changes nothing (x.view(x.shape), x.reshape of
the same shape, squeeze of no size-1 dim, permute by the identity, expand to the same shape)
returns a NEW view of x, not x itself; the ops PyTorch answers with self (flatten of a 1-D
tensor, contiguous() of a contiguous one, float() of a float32 one) return x. Differential
against torch 2.13: identity, `_base`, `grad_fn.name()`, `is_leaf`, attribute changes and
gradients."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import descent  # noqa: E402

# name -> f(lib, x): the case; each runs on a (3, 4), a (4,), a (3, 1) and a 0-d x
CASES = {
    "view(shape)": lambda L, x: x.view(x.shape),
    "view(*shape)": lambda L, x: x.view(*x.shape) if x.ndim else x.view(()),
    "view(-1)": lambda L, x: x.view(-1),
    "reshape(shape)": lambda L, x: x.reshape(x.shape),
    "reshape(-1)": lambda L, x: x.reshape(-1),
    "torch.reshape": lambda L, x: L.reshape(x, x.shape),
    "view_as": lambda L, x: x.view_as(x),
    "reshape_as": lambda L, x: x.reshape_as(x),
    "flatten": lambda L, x: x.flatten(),
    "flatten(0, 0)": lambda L, x: x.flatten(0, 0) if x.ndim else x.flatten(),
    "expand(shape)": lambda L, x: x.expand(x.shape),
    "expand(-1s)": lambda L, x: x.expand([-1] * x.ndim),
    "expand_as": lambda L, x: x.expand_as(x),
    "contiguous": lambda L, x: x.contiguous(),
    "squeeze()": lambda L, x: x.squeeze(),
    "squeeze(0)": lambda L, x: x.squeeze(0),
    "squeeze((0,))": lambda L, x: x.squeeze((0,)),
    "unsqueeze(0)": lambda L, x: x.unsqueeze(0),
    "x[...]": lambda L, x: x[...],
    "x[:]": lambda L, x: x[:] if x.ndim else x[...],
    "permute(identity)": lambda L, x: x.permute(tuple(range(x.ndim))),
    "transpose(0, 0)": lambda L, x: x.transpose(0, 0),
    "swapaxes(0, 0)": lambda L, x: x.swapaxes(0, 0),
    "movedim(0, 0)": lambda L, x: x.movedim(0, 0),
    "t()": lambda L, x: x.t() if x.ndim <= 2 else x,
    "unflatten": lambda L, x: x.unflatten(0, (x.shape[0],)) if x.ndim else x.view(()),
    "float()": lambda L, x: x.float(),
    "narrow (all)": lambda L, x: x.narrow(0, 0, x.shape[0]) if x.ndim else x[...],
}
SHAPES = {"2-d": (3, 4), "1-d": (4,), "size-1 dim": (3, 1), "0-d": ()}

rng = np.random.default_rng(0)


def _facts(lib, name, shape, requires_grad):
    """What a program can see of the result: identity, base, node name, leafness."""
    x = lib.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=requires_grad)
    y = CASES[name](lib, x)
    base = y._base
    return {
        "is x": y is x,
        "base": "x" if base is x else (None if base is None else "other"),
        "grad_fn": None if y.grad_fn is None else y.grad_fn.name(),
        "is_leaf": y.is_leaf,
        "requires_grad": y.requires_grad,
        "shape": tuple(y.shape),
    }


@pytest.mark.parametrize("requires_grad", [True, False], ids=["grad", "no-grad"])
@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
@pytest.mark.parametrize("name", list(CASES))
def test_view_identity_like_torch(name, shape, requires_grad):
    s = SHAPES[shape]
    assert _facts(descent, name, s, requires_grad) == _facts(torch, name, s, requires_grad)


def test_view_of_same_shape_is_a_new_tensor_whose_attributes_are_its_own():
    for lib in (torch, descent):
        x = lib.ones(3, 4)
        y = x.view(3, 4)
        y.requires_grad_()  # a new tensor: x is untouched
        assert y.requires_grad and not x.requires_grad and y is not x
        y2 = x.reshape(x.shape)
        y2.name_tag = "mine"
        assert not hasattr(x, "name_tag")


def test_view_of_same_shape_shares_memory_both_ways():
    for lib in (torch, descent):
        x = lib.zeros(2, 3)
        y = x.view(x.shape)
        y[0, 0] = 5.0
        x[1, 2] = 7.0
        assert x[0, 0].item() == 5.0 and y[1, 2].item() == 7.0
        assert y._version == x._version


def test_gradient_through_same_shape_views_like_torch():
    a = rng.standard_normal((3, 4)).astype(np.float32)
    grads = []
    for lib in (torch, descent):
        x = lib.tensor(a, requires_grad=True)
        y = x.view(x.shape).reshape(3, 4).expand(3, 4).squeeze().permute(0, 1) * 2
        y.sum().backward()
        grads.append(x.grad.detach().numpy() if lib is torch else x.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_same_shape_view_in_place_on_leaf_raises_like_torch():
    for lib in (torch, descent):
        x = lib.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError):
            x.view(3).mul_(2)


def test_non_contiguous_same_shape_view_is_a_view():
    for lib in (torch, descent):
        x = lib.ones(3, 4).t()
        y = x.view(4, 3)
        assert y is not x and y._base is x._base and y.stride() == x.stride()
