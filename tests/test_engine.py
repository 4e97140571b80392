"""The engine: graph recording, the backward pass, grad modes, hooks, memory, and user errors."""

from __future__ import annotations

import gc
import re
import weakref

import numpy as np
import pytest
import torch

import descent as ds
from descent import backend


def leaf(values, dtype=ds.float64):
    return ds.tensor(values, dtype=dtype, requires_grad=True)


# ---------------------------------------------------------------------------------------------
# Gradients flow correctly through shared structure


def test_fan_out_and_reuse():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()  # the same tensor as both inputs of one op
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])

    x = leaf([0.5, 2.0])
    y = x * 3.0
    z = y + y * y + ds.exp(y)  # y used three times
    z.sum().backward()
    yv = x.numpy() * 3
    np.testing.assert_allclose(x.grad.numpy(), 3 * (1 + 2 * yv + np.exp(yv)))


def test_diamond_graph_matches_torch():
    xv = np.array([0.3, -1.2, 2.0])
    x, tx = leaf(xv), torch.tensor(xv, requires_grad=True)
    for mod, t in ((ds, x), (torch, tx)):
        a = mod.tanh(t)
        b = a * t
        c = mod.exp(a) - b / (1 + a * a)
        (c * b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])
    x.grad = None  # what zero_grad does
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_stored_grad_is_not_shared_with_other_leaves():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()  # both get the same upstream array
    a.grad._data[0] = 100.0
    assert b.grad.numpy()[0] == 1.0


def test_broadcast_gradients_are_summed_to_input_shapes():
    a = leaf(np.ones((3, 1)))
    b = leaf(np.arange(4.0))
    c = leaf(2.0)
    (a * b * c).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,) and c.grad.shape == ()
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), 6 * 2.0))
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 3 * 2.0))
    np.testing.assert_allclose(c.grad.numpy(), 3 * 6.0)


def test_inputs_without_requires_grad_get_no_grad():
    x = ds.tensor([1.0, 2.0])
    w = leaf([3.0, 4.0])
    (x * w).sum().backward()
    assert x.grad is None
    assert x.is_leaf and w.is_leaf
    assert (x * w).grad_fn is not None and not (x * w).is_leaf


# ---------------------------------------------------------------------------------------------
# Grad modes


def test_no_grad_and_enable_grad_context_managers():
    x = leaf([1.0])
    assert ds.is_grad_enabled()
    with ds.no_grad():
        assert not ds.is_grad_enabled()
        y = x * 2
        assert not y.requires_grad and y.grad_fn is None
        with ds.enable_grad():
            assert ds.is_grad_enabled()
            assert (x * 2).requires_grad
        assert not ds.is_grad_enabled()
    assert ds.is_grad_enabled()
    with ds.set_grad_enabled(False):
        assert not (x * 2).requires_grad


def test_grad_mode_restored_after_exception():
    with pytest.raises(ZeroDivisionError):
        with ds.no_grad():
            1 / 0  # noqa: B018
    assert ds.is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators():
    x = leaf([1.0])

    @ds.no_grad()
    def frozen(t, depth=0):
        assert not ds.is_grad_enabled()
        return frozen(t, depth + 1) if depth < 2 else t * 2  # recursion keeps the mode

    @ds.enable_grad()
    def live(t):
        return t * 2

    assert not frozen(x).requires_grad
    assert ds.is_grad_enabled()
    with ds.no_grad():
        assert live(x).requires_grad
        assert not ds.is_grad_enabled()
    assert frozen.__name__ == "frozen"


# ---------------------------------------------------------------------------------------------
# retain_graph / create_graph


def test_retain_graph_allows_a_second_backward():
    x = leaf([0.5, 1.5])
    y = ds.tanh(x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1)


def test_second_backward_through_freed_graph_names_op_and_fix():
    x = leaf([0.5, 1.5])
    y = ds.tanh(x).sum()
    y.backward()
    with pytest.raises(RuntimeError) as e:
        y.backward()
    msg = str(e.value)
    assert "Tanh" in msg and "retain_graph=True" in msg and "freed" in msg


def test_create_graph_gives_second_derivatives():
    x = leaf([0.5, -1.0, 2.0])
    y = (x**3).sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad  # the gradient has a graph of its own
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy())


def test_autograd_grad_third_derivative_of_tanh():
    xv = np.array([0.3, -0.7])
    x, tx = leaf(xv), torch.tensor(xv, requires_grad=True)
    g = ds.tanh(x).sum()
    tg = torch.tanh(tx).sum()
    for _ in range(3):
        (g,) = ds.autograd.grad(g, [x], create_graph=True)
        (tg,) = torch.autograd.grad(tg, [tx], create_graph=True)
        g, tg = g.sum(), tg.sum()
    np.testing.assert_allclose(g.item(), tg.item(), rtol=1e-12)
    assert x.grad is None  # autograd.grad never stores .grad


def test_autograd_grad_unused_input():
    x, z = leaf([1.0]), leaf([2.0])
    gx, gz = ds.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert gz is None and gx.item() == 2.0
    with pytest.raises(RuntimeError, match="not used"):  # PyTorch's default: allow_unused=False
        ds.autograd.grad((x * 2).sum(), [x, z])


# ---------------------------------------------------------------------------------------------
# Deep graphs and memory


def test_hundred_thousand_deep_chain():
    x = ds.tensor([0.5], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y = y + 0.0
    y.sum().backward()  # no recursion anywhere: this must not hit the recursion limit
    assert x.grad.item() == 1.0


def test_deep_chain_with_create_graph():
    x = leaf([0.5])
    y = x
    for _ in range(5_000):
        y = ds.sin(y) * 0.5 + y * 0.5
    (g,) = ds.autograd.grad(y.sum(), [x], create_graph=True)
    (gg,) = ds.autograd.grad(g.sum(), [x])
    tx = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    ty = tx
    for _ in range(5_000):
        ty = torch.sin(ty) * 0.5 + ty * 0.5
    (tg,) = torch.autograd.grad(ty.sum(), [tx], create_graph=True)
    (tgg,) = torch.autograd.grad(tg.sum(), [tx])
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-8)


def test_saved_arrays_are_freed_after_backward():
    x = leaf(np.linspace(-1, 1, 8))
    h = x * 2.0
    t = ds.tanh(h)  # Tanh saves its output array
    m = t * h  # Mul saves both input tensors
    loss = m.sum()
    out_ref = weakref.ref(t._data)
    h_ref = weakref.ref(h)
    del h, t, m
    gc.collect()
    assert out_ref() is not None and h_ref() is not None  # the graph keeps them for backward
    loss.backward()
    gc.collect()
    assert out_ref() is None, "Tanh's saved output survived backward"
    assert h_ref() is None, "Mul's saved input survived backward"


def test_retain_graph_keeps_saved_arrays():
    x = leaf(np.ones(4))
    t = ds.exp(x)
    ref = weakref.ref(t._data)
    loss = t.sum()
    del t
    loss.backward(retain_graph=True)
    gc.collect()
    assert ref() is not None


def test_graph_is_freed_by_reference_counting_alone():
    gc.collect()
    gc.disable()
    try:
        x = leaf(np.ones(3))
        y = ds.tanh(x * 2.0)
        node = weakref.ref(y.grad_fn)
        arr = weakref.ref(y._data)
        del y  # no cycles between tensors and nodes: freed at once, without the collector
        assert node() is None and arr() is None
    finally:
        gc.enable()


# ---------------------------------------------------------------------------------------------
# Hooks and retain_grad


def test_leaf_hook_sees_grad_and_return_value_replaces_it():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    handle = x.register_hook(lambda g: g * 10)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    handle.remove()
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_non_leaf_hook_modifies_gradient_flowing_on():
    x = leaf([1.0, 2.0])
    y = x * 2.0
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 0.5)
    (y * y).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * y.numpy())
    np.testing.assert_allclose(x.grad.numpy(), 0.5 * 2 * y.numpy() * 2)
    assert y.grad is None  # a non-leaf keeps no .grad unless asked


def test_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ds.tensor([1.0]).register_hook(lambda g: g)


def test_retain_grad_on_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * y.numpy())
    np.testing.assert_allclose(x.grad.numpy(), 3 * 2 * y.numpy())


def test_retain_grad_accumulates_like_torch():
    x, tx = leaf([1.0, 2.0]), torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y, ty = x * 3.0, tx * 3.0
    y.retain_grad()
    ty.retain_grad()
    (y * y).sum().backward(retain_graph=True)
    (ty * ty).sum().backward(retain_graph=True)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy())
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


# ---------------------------------------------------------------------------------------------
# In-place operations


def test_inplace_without_grad_writes_into_the_same_array():
    x = ds.zeros(2, 3)
    buf = x._data
    view = x[0]  # a view shares memory on the CPU
    x.fill_(1.0)
    x.add_(ds.ones(3))
    x.mul_(3.0)
    x.sub_(1.0)
    x.div_(2.0)
    x[1, 0] = -7.0
    x.clamp_(max=2.0)
    assert x._data is buf
    np.testing.assert_allclose(x.numpy(), [[2.0, 2.0, 2.0], [-7.0, 2.0, 2.0]])
    np.testing.assert_allclose(view.numpy(), [2.0, 2.0, 2.0])
    x.copy_(ds.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(x.numpy(), [[1, 2, 3], [1, 2, 3]])
    x.zero_()
    assert not x.numpy().any()
    assert x._version == 9  # every in-place change counts


def test_inplace_on_parameters_under_no_grad():
    w = leaf([1.0, 2.0], dtype=ds.float32)
    (w * w).sum().backward()
    with ds.no_grad():
        w.sub_(w.grad * 0.1)  # an SGD step
        w[0] = 5.0
    np.testing.assert_allclose(w.numpy(), [5.0, 1.6], rtol=1e-6)
    assert w.requires_grad and w.is_leaf and w.dtype == ds.float32


def test_inplace_on_leaf_requiring_grad_in_grad_mode_raises():
    w = leaf([1.0, 2.0])
    for update in (lambda: w.add_(1.0), lambda: w.mul_(2.0), lambda: w.fill_(0.0),
                   lambda: w.copy_(ds.ones(2)), lambda: w.clamp_(0, 1),
                   lambda: w.zero_()):  # fmt: skip
        with pytest.raises(RuntimeError, match="no_grad"):
            update()
    with pytest.raises(RuntimeError, match="no_grad"):
        w[0] = 3.0


def test_inplace_change_to_saved_tensor_is_detected():
    x = leaf([1.0, 2.0])
    y = x * 1.0
    z = y * y  # Mul saves y
    y.add_(1.0)  # recorded in place: y's version goes up
    with pytest.raises(RuntimeError) as e:
        z.sum().backward()
    msg = str(e.value)
    assert "'MulBackward'" in msg and "(2,)" in msg
    assert "modified in place" in msg and "clone" in msg


def test_inplace_change_under_no_grad_to_saved_leaf_is_detected():
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()
    with ds.no_grad():
        w.mul_(0.5)
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()
    loss2 = (w * w).sum()
    with ds.no_grad():
        w[0] = 2.0
    with pytest.raises(RuntimeError, match="version 0 -> 1|version 1 -> 2|version"):
        loss2.backward()


def test_inplace_ops_recorded_match_torch():
    xv = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    x, tx = leaf(xv), torch.tensor(xv, requires_grad=True)
    for t, lib in ((x, ds), (tx, torch)):
        z = t * 2.0
        z[0, 1] = t[1, 2] * 3.0
        z.add_(t)
        z.mul_(t)
        z.clamp_(-1.0, 4.0)
        z[z > 3.5] = 0.0
        lib.exp(z).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Known tricky gradients


def test_norm_at_zero_has_zero_gradient_not_nan():
    x = leaf(np.zeros((2, 3)))
    ds.norm(x).backward()
    assert np.all(x.grad.numpy() == 0)
    y = leaf([[0.0, 0.0], [3.0, 4.0]])
    ds.norm(y, axis=1).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [[0, 0], [0.6, 0.8]])


def test_max_ties_share_the_gradient_like_torch_amax():
    xv = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x, tx = leaf(xv), torch.tensor(xv, requires_grad=True)
    x.amax(1).sum().backward()
    torch.amax(tx, 1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_prod_with_zeros_matches_torch_first_and_second_order():
    xv = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.5], [1.0, 2.0, 4.0]])
    x, tx = leaf(xv), torch.tensor(xv, requires_grad=True)
    (g,) = ds.autograd.grad(x.prod(1).sum(), [x], create_graph=True)
    (tg,) = torch.autograd.grad(tx.prod(1).sum(), [tx], create_graph=True)
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy())
    (gg,) = ds.autograd.grad((g * g).sum(), [x])
    (tgg,) = torch.autograd.grad((tg * tg).sum(), [tx])
    np.testing.assert_allclose(gg.numpy(), tgg.numpy())


def test_var_std_correction_match_torch():
    xv = np.random.default_rng(0).standard_normal((4, 5))
    for c in (0, 1, 2):
        x, tx = leaf(xv), torch.tensor(xv, requires_grad=True)
        (x.var(1, correction=c).sum() + x.std(correction=c)).backward()
        (torch.var(tx, 1, correction=c).sum() + torch.std(tx, correction=c)).backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


def test_boolean_mask_repeated_integer_index_accumulate():
    x = leaf(np.arange(6.0).reshape(2, 3))
    (x[np.array([0, 0, 1])].sum() + x[x > 2.5].sum() * 2).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[2, 2, 2], [3, 3, 3]])


# ---------------------------------------------------------------------------------------------
# Errors a user will hit: each names the op, the shapes or dtypes, and the fix


def test_broadcast_error_names_op_shapes_and_fix():
    a, b = ds.ones(3, 4), ds.ones(3)
    for op, name in ((lambda: a + b, "add"), (lambda: a * b, "mul"), (lambda: a - b, "sub"),
                     (lambda: a / b, "div"), (lambda: ds.maximum(a, b), "maximum")):  # fmt: skip
        with pytest.raises(ValueError) as e:
            op()
        msg = str(e.value)
        assert msg.startswith(name), msg
        assert "(3, 4)" in msg and "(3,)" in msg and "broadcast" in msg and "unsqueeze" in msg


def test_matmul_error_names_shapes_and_fix():
    with pytest.raises(ValueError) as e:
        ds.ones(2, 3) @ ds.ones(2, 3)
    msg = str(e.value)
    assert "matmul" in msg and "(2, 3)" in msg and "transpose" in msg
    with pytest.raises(ValueError, match=r"matmul: batch dimensions of \(2, 3, 4\) and \(3, 4"):
        ds.ones(2, 3, 4) @ ds.ones(3, 4, 5)
    with pytest.raises(ValueError, match="at least one dimension"):
        ds.matmul(ds.ones(()), ds.ones(3))


def test_backward_on_non_scalar_without_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    with pytest.raises(RuntimeError) as e:
        y.backward()
    msg = str(e.value)
    assert "non-scalar" in msg and "(3,)" in msg and "gradient=" in msg
    assert "'MulScalarBackward'" in msg
    y.backward(gradient=ds.tensor([1.0, 0.0, 2.0], dtype=ds.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 4.0])
    with pytest.raises(RuntimeError, match=r"gradient has shape \(2,\)"):
        (x * 2).backward(gradient=ds.ones(2))


def test_backward_on_tensor_without_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ds.ones(1).sum().backward()


def test_requires_grad_on_integer_tensor_is_a_clear_error():
    for make in (lambda: ds.tensor([1, 2], requires_grad=True),
                 lambda: ds.zeros(2, dtype=ds.int64, requires_grad=True),
                 lambda: ds.tensor([True]).requires_grad_(),
                 lambda: ds.arange(3, requires_grad=True)):  # fmt: skip
        with pytest.raises(RuntimeError) as e:
            make()
        msg = str(e.value)
        assert "floating-point" in msg and re.search(r"int64|bool", msg) and "float32" in msg


class _FakeGpuArray(np.ndarray):
    """A NumPy array that claims to live on a GPU (to test device checks without one)."""


@pytest.fixture
def fake_gpu(monkeypatch):
    real = backend.device_of
    monkeypatch.setattr(
        backend, "device_of", lambda a: "cuda:0" if isinstance(a, _FakeGpuArray) else real(a)
    )

    def make(values):
        return ds.Tensor._wrap(np.asarray(values, np.float32).view(_FakeGpuArray))

    return make


def test_mixing_devices_is_a_clear_error(fake_gpu):
    cpu = ds.ones(3)
    gpu = fake_gpu([1.0, 2.0, 3.0])
    assert gpu.device == "cuda:0" and cpu.device == "cpu"
    for op, name in ((lambda: cpu + gpu, "add"), (lambda: gpu * cpu, "mul"),
                     (lambda: cpu @ gpu, "matmul"), (lambda: ds.cat([cpu, gpu]), "cat"),
                     (lambda: ds.einsum("i,i->", cpu, gpu), "einsum")):  # fmt: skip
        with pytest.raises(RuntimeError) as e:
            op()
        msg = str(e.value)
        assert msg.startswith(name) and "cpu" in msg and "cuda:0" in msg and ".to(" in msg
        assert "(3,)" in msg


def test_requesting_cuda_without_gpu_explains(monkeypatch):
    if backend.cuda_available():
        pytest.skip("a GPU is present: this checks the message on machines without one")
    with pytest.raises(RuntimeError, match="CUDA is not available.*CuPy"):
        ds.ones(2).to("cuda")


def test_create_graph_through_non_differentiable_backward_raises():
    from descent.autograd import Function

    class Fused(Function):
        differentiable_backward = False

        def forward(self, x):
            return x * 2

        def backward(self, gy, F):
            return gy * 2

    x = leaf([1.0])
    y = Fused.apply(x).sum()
    with pytest.raises(RuntimeError, match="'FusedBackward' does not support create_graph"):
        y.backward(create_graph=True)


def test_wrong_gradient_count_from_backward_is_reported():
    from descent.autograd import Function

    class Broken(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy, F):
            return gy  # one gradient for two inputs

    a, b = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match=r"'BrokenBackward'.backward: returned 1 gradients"):
        Broken.apply(a, b).sum().backward()


def test_wrong_gradient_shape_from_backward_is_reported():
    from descent.autograd import Function

    class BadShape(Function):
        def forward(self, x):
            return x.sum()

        def backward(self, gy, F):
            return F.ones((5,))

    with pytest.raises(RuntimeError, match=r"'BadShapeBackward'.backward produced a gradient of "):
        BadShape.apply(leaf([1.0, 2.0])).backward()


def test_op_parameters_may_not_clash_with_node_fields():
    from descent.autograd import Function

    with pytest.raises(TypeError, match="clash"):

        class Clash(Function):
            __slots__ = ("index",)


def test_parameters_take_the_same_op_paths_as_tensors():
    from descent.nn import Parameter

    p = Parameter(ds.tensor([1.0, 2.0]))
    q = Parameter(ds.tensor([3.0, 4.0]))
    # The tensor-scalar and tensor-tensor fast paths (not a scalar converted to a tensor).
    mul_s, add_s = "MulScalarBackward", "AddScalarBackward"
    assert (p * 2.0).grad_fn.name == mul_s and (2 * p).grad_fn.name == mul_s
    assert (p + 1).grad_fn.name == add_s and (p - 1.5).grad_fn.name == "SubScalarBackward"
    assert (1.0 - p).grad_fn.name == "RSubScalarBackward"
    assert (p / 2).grad_fn.name == "ExactDivScalarBackward"
    assert (p + q).grad_fn.name == "AddBackward" and (p * q).grad_fn.name == "MulBackward"
    loss = ((p * q + p * 2.0 - 1.0) ** 2).sum()
    loss.backward()
    pv, qv = p.numpy(), q.numpy()
    r = pv * qv + 2 * pv - 1
    np.testing.assert_allclose(p.grad.numpy(), 2 * r * (qv + 2))
    np.testing.assert_allclose(q.grad.numpy(), 2 * r * pv)
    assert p.is_leaf and isinstance(p, Parameter) and p.grad.dtype == ds.float32


def test_forward_and_backward_on_each_backend(xp):
    device = "cpu" if xp is np else "cuda"
    x = ds.tensor([[0.5, -1.0], [2.0, 0.1]], requires_grad=True, device=device)
    w = ds.tensor([1.5, -0.5], requires_grad=True, device=device)
    loss = (ds.tanh(x @ w) * 2.0 + (x * x).sum(1)).sum()
    loss.backward()
    assert isinstance(x.grad._data, xp.ndarray) and x.grad.device == x.device
    xv, wv = x.numpy(), w.numpy()
    t = np.tanh(xv @ wv)
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1 - t * t)[:, None] * wv + 2 * xv, rtol=1e-5)
    np.testing.assert_allclose(w.grad.numpy(), 2 * ((1 - t * t)[:, None] * xv).sum(0), rtol=1e-5)


def test_zero_dim_results_are_arrays_so_in_place_updates_work():
    # NumPy returns scalars (np.float32) for 0-d results; descent keeps 0-d arrays, so a scalar
    # parameter and its gradient can be updated in place like any other.
    x = ds.tensor(2.0, requires_grad=True)
    ys = [x * 3.0, x + x, ds.tanh(x), x.sum(), x**2, -x, x.exp(), ds.ones(3).sum(),
          ds.ones(3) @ ds.ones(3), ds.ones(2, 2)[0, 0], ds.tensor([1.0, 2.0]).max()]  # fmt: skip
    for y in ys:
        assert isinstance(y._data, np.ndarray), type(y._data)
    loss = (x * 3.0) * x
    loss.backward()
    assert isinstance(x.grad._data, np.ndarray) and x.grad.item() == 12.0
    (x * 1.0).backward()  # accumulation keeps an array too
    assert isinstance(x.grad._data, np.ndarray) and x.grad.item() == 13.0
    with ds.no_grad():
        x.sub_(x.grad * 0.1)
        x.grad.mul_(0.0)
        y = x * 2.0
        y.fill_(5.0)
    np.testing.assert_allclose([x.item(), x.grad.item(), y.item()], [0.7, 0.0, 5.0], rtol=1e-6)


def test_var_std_without_degrees_of_freedom_are_nan_like_torch():
    x = leaf([1.5])
    v = x.std()
    v.backward()
    assert np.isnan(v.item()) and np.isnan(x.grad.item())
    assert np.isinf(ds.tensor([1.0, 2.0]).var(correction=2).item())


def test_cat_of_zero_dim_tensors_points_to_stack():
    with pytest.raises(ValueError, match="use stack"):
        ds.cat([ds.tensor(1.0), ds.tensor(2.0)])
    assert ds.stack([ds.tensor(1.0), ds.tensor(2.0)]).tolist() == [1.0, 2.0]


def test_every_op_enters_through_a_function_apply_classmethod(monkeypatch):
    # Tools such as anomaly mode instrument ops by swapping Function's `apply*` classmethods;
    # every fast path must therefore be one of them (not a private shortcut).
    from descent.autograd import Function

    seen = []

    def counting(orig):
        def wrapper(cls, *args, **kwargs):
            out = orig(cls, *args, **kwargs)
            seen.append(out._node)
            return out

        return classmethod(wrapper)

    names = [n for n, v in vars(Function).items()
             if n.startswith("apply") and isinstance(v, classmethod)]  # fmt: skip
    assert {"apply", "apply2", "apply_scalar"} <= set(names)
    for n in names:
        monkeypatch.setattr(Function, n, counting(Function.__dict__[n].__func__))
    x = leaf([0.5, 1.5])
    w = leaf([2.0, 3.0])
    ops = [lambda: x * 2.0, lambda: 2 * x, lambda: x + 1, lambda: 1.0 - x, lambda: x - 1,
           lambda: x / 2, lambda: 2.0 / x, lambda: x**2, lambda: 2.0**x, lambda: x * w,
           lambda: x + w, lambda: x - w, lambda: x / w, lambda: ds.tanh(x), lambda: x.sum(),
           lambda: x[0], lambda: -x, lambda: x @ w]  # fmt: skip
    for op in ops:
        seen.clear()
        y = op()
        assert y.grad_fn in seen, y.grad_fn


# ---------------------------------------------------------------------------------------------
# The two backward namespaces


def test_backward_namespaces_offer_the_same_names_with_the_same_signatures():
    """Op backward code is written once against `ops`; both namespaces must serve it alike."""
    import inspect

    from descent import array_backward
    from descent.ops import graph_backward

    helpers = array_backward._HELPERS
    assert "sum_to" in helpers and "index_grad" in helpers
    for name, fn in helpers.items():
        twin = getattr(graph_backward, name, None)
        assert twin is not None, f"graph_backward lacks {name}"
        array_params = list(inspect.signature(fn).parameters.values())
        assert array_params[0].name == "xp", f"array_backward.{name} must take xp first"
        want = [(p.name, p.kind, p.default) for p in array_params[1:]]
        got = [(p.name, p.kind, p.default) for p in inspect.signature(twin).parameters.values()]
        assert got == want, f"{name}: {got} vs {want}"
    array_names = set(helpers) | set(array_backward.ARRAY_MODULE_NAMES) | {"is_graph"}
    graph_names = {n for n in vars(graph_backward) if not n.startswith("_")}
    graph_names -= {"annotations", "array_backward", "backend", "AlongAxisGrad", "IndexGrad"}
    assert graph_names == array_names
    ns = array_backward.array_namespace(np)
    for name in array_names:
        assert getattr(ns, name) is not None  # NumPy has every array-module name
    assert ns.is_graph is False and graph_backward.is_graph is True


def test_op_backward_code_uses_only_namespace_names():
    """Every `ops.<name>` in an op's backward exists in both namespaces (source scan)."""
    from pathlib import Path

    from descent import array_backward

    allowed = set(array_backward._HELPERS) | set(array_backward.ARRAY_MODULE_NAMES)
    allowed.add("is_graph")
    ops_dir = Path(ds.__file__).parent / "ops"
    used = set()
    for path in ops_dir.glob("*.py"):
        # `ops.<name>` not preceded by a dot (so `descent.ops.conv` in prose does not count)
        used |= set(re.findall(r"(?<![\w.])ops\.([a-z_]+)\b", path.read_text()))
    assert used and used <= allowed, sorted(used - allowed)


def test_node_names_follow_pytorch_grad_fn_and_are_not_module_names():
    from descent import nn

    x = ds.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = nn.functional.layer_norm(x, (3,))
    assert y.grad_fn.name == "LayerNormBackward" and "grad_fn=<NativeLayerNormBackward0>" in repr(y)
    assert nn.functional.linear(x, x).grad_fn.name == "LinearBackward"
    assert not hasattr(nn, y.grad_fn.name)
