"""torch.compiler's default backend and 2.13 compile keywords, torch.autograd.is_tensor_like and
enforce_grad_layout_policy, against PyTorch 2.13 (session 14)."""

import threading

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _reset_backends():
    yield
    descent.compiler.set_default_backend(None)
    torch.compiler.set_default_backend(None)


def test_default_backend_round_trip_matches_torch():
    for lib in (torch, descent):
        assert lib.compiler.get_default_backend() == "inductor"
    for value in ("eager", "aot_eager", "made_up_name"):
        torch.compiler.set_default_backend(value)
        descent.compiler.set_default_backend(value)
        assert descent.compiler.get_default_backend() == torch.compiler.get_default_backend()

    def my_backend(gm, example_inputs):
        return gm

    descent.compiler.set_default_backend(my_backend)
    assert descent.compiler.get_default_backend() is my_backend
    descent.compiler.set_default_backend(None)
    assert descent.compiler.get_default_backend() == "inductor"


def test_default_backend_refuses_what_torch_refuses():
    for bad in (3, 1.5, ["eager"]):
        with pytest.raises(TypeError) as t_err:
            torch.compiler.set_default_backend(bad)
        with pytest.raises(TypeError) as d_err:
            descent.compiler.set_default_backend(bad)
        assert str(d_err.value) == str(t_err.value)
    with pytest.raises(TypeError, match="backend must be a string or callable"):
        descent.compile(lambda x: x, backend=3)


def test_list_backends_names_are_torchs():
    for tags in (("debug", "experimental"), ()):
        mine = descent.compiler.list_backends(exclude_tags=tags)
        assert "inductor" in mine and set(mine) <= set(torch.compiler.list_backends(tags))
    assert "eager" in descent.compiler.list_backends(exclude_tags=())
    assert "eager" not in descent.compiler.list_backends()


def _step_fn():
    w = descent.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)

    def f(x):
        y = (x @ w).tanh() * 0.5 + x.sum()
        y.sum().backward()
        return y

    return f, w


@pytest.mark.parametrize("backend", ["eager", "aot_eager", "inductor", None])
def test_backend_name_picks_fused_or_eager_kernels_with_eager_values(backend):
    f, w = _step_fn()
    x = descent.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) / 7)
    ref = f(x).numpy()
    ref_grad = w.grad.numpy().copy()
    f2, w2 = _step_fn()
    cf = descent.compile(f2, backend=backend)
    assert cf.fuse == (backend not in ("eager", "aot_eager"))
    for _ in range(3):  # record, then replay
        w2.grad = None
        out = cf(x)
    np.testing.assert_array_equal(out.numpy(), ref)
    np.testing.assert_array_equal(w2.grad.numpy(), ref_grad)


def test_default_backend_applies_when_compile_names_none():
    descent.compiler.set_default_backend("eager")
    assert descent.compile(lambda x: x * 2).fuse is False
    descent.compiler.set_default_backend(None)
    assert descent.compile(lambda x: x * 2).fuse is True
    # an explicit backend wins over the default, as in PyTorch
    descent.compiler.set_default_backend("eager")
    assert descent.compile(lambda x: x * 2, backend="inductor").fuse is True


def test_compile_takes_torch_213_keywords():
    import inspect

    torch_params = set(inspect.signature(torch.compile).parameters)
    mine = set(inspect.signature(descent.compile).parameters)
    assert torch_params <= mine, sorted(torch_params - mine)
    cf = descent.compile(lambda x: x + 1, name="step", recompile_limit=2, isolate_recompiles=True,
                         shapes_spec=None)  # fmt: skip
    assert cf.cache_size == 2
    for n in (1, 2, 3):  # three shapes, two kept
        np.testing.assert_array_equal(cf(descent.ones(n)).numpy(), np.full(n, 2, np.float32))
    assert len(cf.programs()) <= 2


@pytest.mark.parametrize(
    "make", [lambda lib: lib.ones(2), lambda lib: 3, lambda lib: np.ones(2), lambda lib: None,
             lambda lib: [lib.ones(1)], lambda lib: lib.nn.Parameter(lib.ones(2))],
)  # fmt: skip
def test_is_tensor_like_matches_torch(make):
    assert descent.autograd.is_tensor_like(make(descent)) == torch.autograd.is_tensor_like(
        make(torch)
    )
    assert descent.autograd.is_tensor_like is descent.overrides.is_tensor_like


def test_enforce_grad_layout_policy_is_a_setter_and_a_context_manager():
    from descent.autograd_torch import _grad_layout_policy_enabled as enabled

    assert enabled()
    for lib in (torch, descent):
        p = lib.empty(2, 3, 4).permute(2, 0, 1).requires_grad_()
        with lib.autograd.enforce_grad_layout_policy(False):
            (p * 2).sum().backward()
        assert tuple(p.grad.shape) == (4, 2, 3)
    assert enabled()
    with descent.autograd.enforce_grad_layout_policy(False):
        assert not enabled()
        seen = []
        t = threading.Thread(target=lambda: seen.append(enabled()))
        t.start()
        t.join()
        assert seen == [True]  # per thread, as PyTorch's
    assert enabled()
    descent.autograd.enforce_grad_layout_policy(False)  # called: sets it
    assert not enabled()
    descent.autograd.enforce_grad_layout_policy(True)
    assert enabled()
    # descent's accumulated gradient is contiguous either way (its documented layout)
    q = descent.empty(2, 3, 4).permute(2, 0, 1).requires_grad_()
    with descent.autograd.enforce_grad_layout_policy(False):
        (q * 2).sum().backward()
    assert q.grad.is_contiguous()
    np.testing.assert_array_equal(q.grad.numpy(), np.full((4, 2, 3), 2, np.float32))


# -- an in-place change of an op's result where PyTorch saved no result ----------------------
# (session 14: the new saved-output check raised here, where PyTorch runs and gives these
# gradients; before it, max-pool's backward read the changed output)
_CHANGED_RESULT = {
    "max_pool2d then relu_": lambda L, x: L.nn.functional.max_pool2d(x, 2).relu_(),
    "max_pool2d then mul_": lambda L, x: L.nn.functional.max_pool2d(x, 2, 1).mul_(-3.0),
    "MaxPool2d then ReLU(inplace)": lambda L, x: L.nn.ReLU(True)(L.nn.MaxPool2d(2)(x - 0.5)),
    "erfinv then mul_": lambda L, x: L.erfinv(x * 0.9).mul_(2.0),
    "1 / x then add_": lambda L, x: (1 / x).add_(1.0),
    "2 / x then mul_": lambda L, x: (2 / x).mul_(x.detach()),
}


@pytest.mark.parametrize("name", sorted(_CHANGED_RESULT))
def test_inplace_change_of_a_result_torch_does_not_save(name):
    f = _CHANGED_RESULT[name]
    x0 = np.random.default_rng(5).uniform(0.1, 0.9, (2, 3, 6, 6))
    grads = []
    for lib in (torch, descent):
        x = lib.tensor(x0, requires_grad=True)
        y = f(lib, x)
        (y * lib.tensor(np.linspace(-1, 1, y.numel()).reshape(tuple(y.shape)))).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_reciprocal_result_changed_in_place_raises_as_torch(dtype):
    # x.reciprocal() saves its result in PyTorch (ReciprocalBackward0): a change in place makes
    # backward raise; `1 / x` (reciprocal(x) * 1, the product not saved) runs in both
    x0 = np.array([0.5, 2.0, -4.0]).astype(dtype)
    for lib in (torch, descent):
        x = lib.tensor(x0, requires_grad=True)
        y = x.reciprocal()
        assert y.grad_fn.name() == "ReciprocalBackward0"
        assert (1 / x).grad_fn.name() == "MulBackward0"
        y.mul_(2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace|modified in place"):
            y.abs().sum().backward()
    grads = []
    for lib in (torch, descent):  # unchanged: the gradient from the saved result
        x = lib.tensor(x0, requires_grad=True)
        lib.reciprocal(x).abs().sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)


def test_max_pool_result_changed_in_place_under_create_graph():
    x0 = np.random.default_rng(6).standard_normal((1, 2, 5, 5))
    out = []
    for lib in (torch, descent):
        x = lib.tensor(x0, requires_grad=True)
        y = lib.nn.functional.max_pool2d(x, 3, 1)
        c = lib.tensor(np.arange(18.0).reshape(1, 2, 3, 3))
        loss = (y * c).sum()
        y.mul_(0.0)  # PyTorch's max-pool saved its indices: backward does not read y
        (g,) = lib.autograd.grad(loss, x, create_graph=True)
        out.append(g.detach().numpy())
    np.testing.assert_allclose(out[1], out[0], rtol=1e-12, atol=1e-12)


_PARTNER_CONSTANT = {
    "y * c, y changed": lambda L, y, c: ((y * c).sum(), y),
    "c * y, y changed": lambda L, y, c: ((c * y).sum(), y),
    "y @ C, y changed": lambda L, y, c: ((y @ c.mT).sum(), y),
    "linear(y, C), y changed": lambda L, y, c: (L.nn.functional.linear(y, c).sum(), y),
}


@pytest.mark.parametrize("name", sorted(_PARTNER_CONSTANT))
def test_inplace_change_of_an_input_only_a_constant_needed(name):
    # PyTorch saves a product's operand only for the other operand's gradient: when that one is
    # a constant, changing the operand in place before backward is fine (the gradient, c, does
    # not read it); descent checked every saved input's version and raised.
    x0 = np.random.default_rng(7).standard_normal((3, 3))
    grads = []
    for lib in (torch, descent):
        x = lib.tensor(x0, requires_grad=True)
        y = x * 2
        loss, changed = _PARTNER_CONSTANT[name](lib, y, lib.tensor(np.arange(9.0).reshape(3, 3)))
        changed.mul_(0.0)
        loss.backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


def test_inplace_change_of_an_input_whose_partner_needs_it_still_raises():
    for lib in (torch, descent):
        x = lib.ones(3, 3, requires_grad=True)
        w = lib.ones(3, 3, requires_grad=True)
        y = x * 2
        loss = (y * w).sum()  # w's gradient reads y
        y.mul_(0.0)
        with pytest.raises(RuntimeError, match="inplace operation|modified in place"):
            loss.backward()
