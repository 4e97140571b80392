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
