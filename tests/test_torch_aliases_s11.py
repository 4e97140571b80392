"""Small PyTorch surfaces that were missing, each against torch 2.13: torch.GradScaler,
torch.autograd.inference_mode / set_multithreading_enabled, torch.amp.is_autocast_available,
torch.view_as_real_copy / view_as_complex_copy, torch.func.functionalize."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds


def test_aliases_are_the_same_objects_as_in_torch():
    assert torch.GradScaler is torch.amp.GradScaler and ds.GradScaler is ds.amp.GradScaler
    assert torch.autograd.inference_mode is torch.inference_mode
    assert ds.autograd.inference_mode is ds.inference_mode


def test_set_multithreading_enabled_leaves_grad_mode_alone():
    for lib in (ds, torch):
        with lib.no_grad(), lib.autograd.set_multithreading_enabled(False):
            assert not lib.is_grad_enabled()
        with lib.autograd.set_multithreading_enabled(True):
            assert lib.is_grad_enabled()

        @lib.autograd.set_multithreading_enabled(False)
        def f(x):
            return (x * 2).sum()

        x = lib.ones(2, requires_grad=True)
        f(x).backward()
        assert x.grad.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("device", ["cpu", "cuda", "mps", "xpu", "hpu", "meta", "foo"])
def test_is_autocast_available_matches_torch(device):
    def ask(lib):
        try:
            return lib.amp.is_autocast_available(device)
        except RuntimeError as e:
            return str(e)

    assert ask(ds) == ask(torch)


def test_view_as_real_and_complex_copies():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    w = np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)
    # view_as_complex_copy: torch's values; its gradient torch refuses ("does not support
    # automatic differentiation for outputs with complex dtype"), descent's equals that of
    # torch's view_as_complex, the view it copies
    d_in, t_in = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    d = ds.view_as_complex_copy(d_in)
    with torch.no_grad():
        np.testing.assert_array_equal(d.detach().numpy(), torch.view_as_complex_copy(t_in))
    assert d.data_ptr() != d_in.data_ptr()  # a copy, as the name says
    ds.view_as_real(d).mul(ds.tensor(w)).sum().backward()
    torch.view_as_real(torch.view_as_complex(t_in)).mul(torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(d_in.grad.numpy(), t_in.grad.numpy())
    # view_as_real_copy: values and gradients as torch's
    d_in, t_in = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    d = ds.view_as_real_copy(ds.view_as_complex(d_in))
    t = torch.view_as_real_copy(torch.view_as_complex(t_in))
    np.testing.assert_array_equal(d.detach().numpy(), t.detach().numpy())
    d.mul(ds.tensor(w)).sum().backward()
    t.mul(torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(d_in.grad.numpy(), t_in.grad.numpy())


def _f(a):
    b = a + 1
    c = b.view(-1)
    c.add_(1)  # an in-place op on an intermediate view
    a.mul_(2)  # and one on the input
    return b, a[0], {"s": a.sum()}


@pytest.mark.parametrize("remove", ["mutations", "mutations_and_views"])
def test_functionalize_keeps_semantics_and_never_aliases_inputs(remove):
    outs = {}
    for lib in (ds, torch):
        x = lib.ones(2, 2)
        out = lib.func.functionalize(_f, remove=remove)(x)
        assert out[1].data_ptr() != x.data_ptr()  # a[0] is a copy, not a view of x
        outs[lib.__name__] = (out[0].tolist(), out[1].tolist(), out[2]["s"].item(), x.tolist())
    assert outs["descent"] == outs["torch"]
    with pytest.raises(RuntimeError, match="received invalid argument for remove=x"):
        ds.func.functionalize(_f, remove="x")
