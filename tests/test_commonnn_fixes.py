"""Regression tests for what PyTorch's legacy nn database (tests/commonnn_harness.py) found.

load_state_dict(assign=True) cast each value to the dtype of the tensor it replaced; PyTorch's
assign keeps the value's own dtype (the state dict's tensors become the module's). The database's
``check_with_long_tensor`` entries (Conv2d/Conv3d/ConvTranspose2d with int64 weights) need it:
descent's conv then saw float32 weights and an int64 input and refused.

nn.Unflatten turned its size into a tuple; PyTorch keeps the object given (a Size, a list), and
its printout shows it (the database's Unflatten_no_batch_dim passes a torch.Size).
"""

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _np(t):
    return t.detach().numpy()


def test_assign_keeps_float64_values_dtype_and_grads():
    tm, dm = torch.nn.Linear(3, 2), descent.nn.Linear(3, 2)
    state = {
        "weight": torch.randn(2, 3, dtype=torch.float64),
        "bias": torch.randn(2, dtype=torch.float64),
    }
    tm.load_state_dict(state, assign=True)
    dm.load_state_dict({k: descent.tensor(_np(v)) for k, v in state.items()}, assign=True)
    for name in ("weight", "bias"):
        tp, dp = getattr(tm, name), getattr(dm, name)
        assert str(dp.dtype) == "descent.float64" and tp.dtype == torch.float64
        assert isinstance(dp, descent.nn.Parameter) and dp.requires_grad == tp.requires_grad
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    dx = descent.tensor(_np(x), requires_grad=True)
    tm(x).sum().backward()
    dm(dx).sum().backward()
    np.testing.assert_allclose(dx.grad.numpy(), _np(x.grad), rtol=1e-12)
    np.testing.assert_allclose(dm.weight.grad.numpy(), _np(tm.weight.grad), rtol=1e-12)


def test_assign_float32_values_agree_with_torch():
    # float32 (the default): values, input and parameter gradients after an assign
    tm, dm = torch.nn.Conv1d(2, 3, 3), descent.nn.Conv1d(2, 3, 3)
    state = {k: torch.randn(v.shape) for k, v in tm.state_dict().items()}
    tm.load_state_dict(state, assign=True)
    dm.load_state_dict({k: descent.tensor(_np(v)) for k, v in state.items()}, assign=True)
    x = torch.randn(2, 2, 7, requires_grad=True)
    dx = descent.tensor(_np(x), requires_grad=True)
    ty, dy = tm(x), dm(dx)
    np.testing.assert_allclose(dy.numpy(), _np(ty), rtol=1e-5, atol=1e-6)
    g = torch.randn(ty.shape)
    ty.backward(g)
    dy.backward(descent.tensor(g.numpy()))
    np.testing.assert_allclose(dx.grad.numpy(), _np(x.grad), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dm.weight.grad.numpy(), _np(tm.weight.grad), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dm.bias.grad.numpy(), _np(tm.bias.grad), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", ["Conv2d", "ConvTranspose2d"])
def test_assign_int64_weights_int64_forward(cls):
    # common_nn's Conv2d_with_long_tensor: int64 weights (no grad) on an int64 input
    tm, dm = getattr(torch.nn, cls)(3, 4, 3), getattr(descent.nn, cls)(3, 4, 3)
    for m in (tm, dm):
        for p in m.parameters():
            p.requires_grad_(False)
    gen = torch.Generator().manual_seed(0)
    state = {
        k: torch.randint(-1000, 1000, v.shape, generator=gen) for k, v in tm.state_dict().items()
    }
    tm.load_state_dict(state, assign=True)
    dm.load_state_dict({k: descent.tensor(v.numpy()) for k, v in state.items()}, assign=True)
    assert str(dm.weight.dtype) == "descent.int64" and not dm.weight.requires_grad
    x = torch.randint(-1000, 1000, (2, 3, 6, 5), generator=gen)
    ty, dy = tm(x), dm(descent.tensor(x.numpy()))
    assert str(dy.dtype) == "descent.int64"
    np.testing.assert_array_equal(dy.numpy(), ty.numpy())


def test_assign_buffer_takes_the_values_dtype():
    # torch: a float32 num_batches_tracked replaces the int64 one under assign=True
    tm, dm = torch.nn.BatchNorm1d(3), descent.nn.BatchNorm1d(3)
    state = {k: v.float() for k, v in tm.state_dict().items()}
    tm.load_state_dict(state, assign=True)
    dm.load_state_dict({k: descent.tensor(_np(v)) for k, v in state.items()}, assign=True)
    assert tm.num_batches_tracked.dtype == torch.float32
    assert str(dm.num_batches_tracked.dtype) == "descent.float32"


def test_assign_integer_into_grad_parameter_raises_and_changes_nothing():
    tm, dm = torch.nn.Linear(2, 3), descent.nn.Linear(2, 3)
    with pytest.raises(RuntimeError, match="floating point"):
        tm.load_state_dict(
            {"weight": torch.zeros(3, 2, dtype=torch.long), "bias": torch.zeros(3)}, assign=True
        )
    before = dm.weight
    with pytest.raises(RuntimeError, match="floating point"):
        dm.load_state_dict(
            {"weight": descent.zeros(3, 2, dtype=descent.int64), "bias": descent.zeros(3)},
            assign=True,
        )
    assert dm.weight is before and str(dm.weight.dtype) == "descent.float32"


def test_copy_without_assign_still_casts_to_the_modules_dtype():
    # assign=False is unchanged: float64 values are copied into the float32 parameters
    dm = descent.nn.Linear(2, 3)
    w = descent.tensor(np.arange(6.0).reshape(3, 2))
    dm.load_state_dict({"weight": w, "bias": descent.zeros(3, dtype=descent.float64)})
    assert str(dm.weight.dtype) == "descent.float32"
    np.testing.assert_array_equal(dm.weight.numpy(), np.arange(6.0).reshape(3, 2))


def test_assign_empty_and_zero_d_values():
    # an empty parameter and a 0-d buffer keep the value's dtype too
    tm = torch.nn.Linear(0, 2)
    dm = descent.nn.Linear(0, 2)
    state = {
        "weight": torch.zeros(2, 0, dtype=torch.float64),
        "bias": torch.ones(2, dtype=torch.float64),
    }
    tm.load_state_dict(state, assign=True)
    dm.load_state_dict({k: descent.tensor(_np(v)) for k, v in state.items()}, assign=True)
    assert dm.weight.shape == (2, 0) and str(dm.weight.dtype) == "descent.float64"
    x = torch.zeros(4, 0, dtype=torch.float64)
    np.testing.assert_array_equal(dm(descent.tensor(_np(x))).numpy(), _np(tm(x)))
    bn = descent.nn.BatchNorm1d(2)
    bn.load_state_dict(
        {
            **{k: v for k, v in bn.state_dict().items()},
            "num_batches_tracked": descent.tensor(np.int32(5)),
        },
        assign=True,
    )
    assert (
        bn.num_batches_tracked.shape == () and str(bn.num_batches_tracked.dtype) == "descent.int32"
    )


@pytest.mark.parametrize("size", [(2, 2), [2, 2], "size"])
def test_unflatten_keeps_its_size_object_as_torch(size):
    # common_nn's Unflatten_no_batch_dim passes torch.Size([2, 2]): PyTorch's repr shows the
    # Size (descent turned it into a tuple); forward and gradient unchanged
    tsize = torch.Size([2, 2]) if size == "size" else size
    dsize = descent.Size([2, 2]) if size == "size" else size
    tm, dm = torch.nn.Unflatten(-2, tsize), descent.nn.Unflatten(-2, dsize)
    assert repr(dm) == repr(tm).replace("torch.", "descent.")
    assert type(dm.unflattened_size) is type(dsize)
    x = torch.randn(3, 4, 5, requires_grad=True)
    dx = descent.tensor(_np(x), requires_grad=True)
    ty, dy = tm(x), dm(dx)
    np.testing.assert_array_equal(dy.numpy(), _np(ty))
    g = torch.randn(ty.shape)
    ty.backward(g)
    dy.backward(descent.tensor(g.numpy()))
    np.testing.assert_array_equal(dx.grad.numpy(), _np(x.grad))
