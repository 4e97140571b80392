"""More of PyTorch's surface (issue 12), each checked against PyTorch: the names an audit of 342
one-call checks found missing. `torch.cuda.amp`, `torch.cuda`'s housekeeping calls,
`torch.add/sub(alpha=)`, `torch.t`, `torch.autograd.backward` and anomaly mode, the RNG state,
the process-wide switches (threads, determinism, matmul precision), in-place unary methods,
`stride()`, `with torch.device(...)` and `utils.data.StackDataset`.

tests/test_pytorch_surface.py holds the rest (that file is at the 700-line limit);
tests/test_pytorch_functions.py the custom autograd functions and composed top-level functions.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import descent as ds

torch = pytest.importorskip("torch")


def pair(a, requires_grad=False):
    """The same values as a descent and a torch tensor (dtype kept)."""
    a = np.asarray(a)
    return (
        ds.tensor(a, requires_grad=requires_grad),
        torch.tensor(a, requires_grad=requires_grad),
    )


def close(d, t, rtol=1e-6, atol=1e-6):
    assert str(d.dtype) == str(t.dtype).replace("torch.", "descent."), (d.dtype, t.dtype)
    assert tuple(d.shape) == tuple(t.shape)
    np.testing.assert_allclose(d.numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


def _defaults(fn) -> dict:
    """name -> default as a string (torch.float16 and descent.float16 both give 'float16')."""
    params = list(inspect.signature(fn).parameters.values())[1:]  # without self
    return {p.name: str(p.default).replace("torch.", "").replace("descent.", "") for p in params}


# ---------------------------------------------------------------------------------------------
# descent.cuda and descent.cuda.amp


def test_cuda_amp_has_torch_cuda_amp_signatures_and_deprecation():
    from descent.cuda import amp

    assert ds.cuda.amp is amp
    for name in ("autocast", "GradScaler"):
        d_cls, t_cls = getattr(amp, name), getattr(torch.cuda.amp, name)
        assert list(inspect.signature(d_cls.__init__).parameters) == list(
            inspect.signature(t_cls.__init__).parameters
        ), name
        assert _defaults(d_cls.__init__) == _defaults(t_cls.__init__), name
    with pytest.warns(FutureWarning, match="descent.amp.GradScaler"):
        scaler = amp.GradScaler(1024.0, 3.0, 0.25, 7)  # positional: init_scale first
    assert isinstance(scaler, ds.amp.GradScaler)
    facts = (scaler.get_growth_factor(), scaler.get_backoff_factor(),
             scaler.get_growth_interval())  # fmt: skip
    assert facts == (3.0, 0.25, 7)  # torch's scaler has none of these without CUDA
    with pytest.warns(FutureWarning):
        t_scaler = torch.cuda.amp.GradScaler(1024.0, 3.0, 0.25, 7, enabled=False)
    assert scaler.get_scale() == 1024.0  # descent's scaler stays enabled without a GPU
    with pytest.warns(FutureWarning):
        off = amp.GradScaler(enabled=False)
    x = ds.ones(2)
    assert off.scale(x) is x and off.get_scale() == 1.0 == t_scaler.get_scale()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        region = amp.autocast(False, ds.float16)  # positional: enabled first
    assert isinstance(region, ds.amp.autocast) and region.device_type == "cuda"
    assert not region.enabled
    assert any(w.category is FutureWarning for w in caught)


@pytest.mark.skipif(ds.cuda.is_available(), reason="checks the answers without a GPU")
def test_cuda_amp_autocast_without_a_gpu_is_disabled_like_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d, t = ds.cuda.amp.autocast(), torch.cuda.amp.autocast()
    with d, t:
        assert ds.is_autocast_enabled("cuda") == torch.is_autocast_enabled("cuda") is False
        lin = ds.nn.Linear(3, 2)
        assert lin(ds.ones(1, 3)).dtype == ds.float32


@pytest.mark.skipif(ds.cuda.is_available(), reason="checks the answers without a GPU")
def test_cuda_housekeeping_without_a_gpu_matches_torch():
    assert ds.cuda.manual_seed_all(3) is None and torch.cuda.manual_seed_all(3) is None
    assert ds.cuda.empty_cache() is None and torch.cuda.empty_cache() is None
    assert ds.cuda.memory_allocated() == torch.cuda.memory_allocated() == 0
    assert ds.cuda.is_bf16_supported() is torch.cuda.is_bf16_supported() is False
    for name in ("get_device_name", "current_device"):
        with pytest.raises(AssertionError):
            getattr(torch.cuda, name)()
        with pytest.raises(AssertionError, match="no CUDA GPU"):  # torch's CPU build's class
            getattr(ds.cuda, name)()
        with pytest.raises(RuntimeError):  # and a CUDA build's
            getattr(ds.cuda, name)()


# ---------------------------------------------------------------------------------------------
# descent.add / sub with alpha, descent.t


@pytest.mark.parametrize("fn", ["add", "sub", "subtract"])
@pytest.mark.parametrize("alpha", [1, 2, -0.5])
def test_add_sub_alpha_values_and_gradients_match_torch(fn, alpha):
    rng = np.random.default_rng(0)
    a, ta = pair(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    b, tb = pair(rng.standard_normal((3,)).astype(np.float32), requires_grad=True)  # broadcast
    y, ty = getattr(ds, fn)(a, b, alpha=alpha), getattr(torch, fn)(ta, tb, alpha=alpha)
    close(y, ty)
    w = rng.standard_normal((2, 3)).astype(np.float32)
    (y * ds.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    close(a.grad, ta.grad)
    close(b.grad, tb.grad)
    close(getattr(ds, fn)(a, 3, alpha=alpha), getattr(torch, fn)(ta, 3, alpha=alpha))


def test_add_alpha_integer_rules_match_torch():
    i, ti = pair(np.array([1, 2], np.int64))
    close(ds.add(i, i, alpha=3), torch.add(ti, ti, alpha=3))
    close(ds.sub(i, i, alpha=2), torch.sub(ti, ti, alpha=2))
    for lib, x in ((ds, i), (torch, ti)):
        with pytest.raises(RuntimeError, match="alpha must not be a floating point"):
            lib.add(x, x, alpha=2.5)
    f, tf = pair(np.array([1.0, 2.0], np.float32))
    close(ds.add(f, i, alpha=2), torch.add(tf, ti, alpha=2))  # float32 + int64 stays float32


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_t_matches_torch(shape):
    a, ta = pair(np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape))
    close(ds.t(a), torch.t(ta))
    with pytest.raises(RuntimeError):
        torch.t(torch.ones(2, 2, 2))
    with pytest.raises(RuntimeError, match="transpose"):
        ds.t(ds.ones(2, 2, 2))


# ---------------------------------------------------------------------------------------------
# descent.autograd.backward and anomaly mode


def _leaves(seed=0):
    rng = np.random.default_rng(seed)
    x, tx = pair(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    w, tw = pair(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    return (x, w), (tx, tw)


def test_autograd_backward_several_tensors_and_grad_tensors_match_torch():
    (x, w), (tx, tw) = _leaves()
    g = np.array([1.0, -2.0, 0.5], np.float32)
    for lib, (a, b) in ((ds, (x, w)), (torch, (tx, tw))):
        y1, y2 = a * b, (a * a).sum()
        lib.autograd.backward([y1, y2], [lib.tensor(g), None])
    close(x.grad, tx.grad)
    close(w.grad, tw.grad)
    for lib, (a, b) in ((ds, (x, w)), (torch, (tx, tw))):  # grad_variables: the old name
        with pytest.warns(FutureWarning, match="grad_variables"):
            lib.autograd.backward(a * b, grad_variables=lib.tensor(g))
    close(x.grad, tx.grad)
    for lib, a in ((ds, x), (torch, tx)):
        with pytest.raises(RuntimeError):
            lib.autograd.backward(a * 2)  # a non-scalar without a gradient


def test_autograd_backward_inputs_accumulates_only_into_them_like_torch():
    (x, w), (tx, tw) = _leaves(1)
    u, tu = pair(np.ones(3, np.float32), requires_grad=True)
    results = []
    for lib, (a, b, c) in ((ds, (x, w, u)), (torch, (tx, tw, tu))):
        h = a * b  # a non-leaf input gets a .grad too
        y = (h * h).sum()
        lib.autograd.backward(y, inputs=[a, h], retain_graph=True)
        assert b.grad is None
        lib.autograd.backward(y, inputs=[c])  # unused: left unchanged, no error
        assert c.grad is None
        (a * 3).sum().backward(inputs=[a])  # Tensor.backward(inputs=) accumulates
        results.append((a.grad, h.grad))
        with pytest.raises(RuntimeError, match="empty"):
            lib.autograd.backward((a * 2).sum(), inputs=[])
    (dg, dh), (tg, th) = results
    close(dg, tg)
    close(dh, th)


def test_autograd_backward_create_graph_gives_second_derivatives():
    x, tx = pair(np.array([0.5, -1.5], np.float32), requires_grad=True)
    second = []
    for lib, a in ((ds, x), (torch, tx)):
        lib.autograd.backward((a**3).sum(), create_graph=True)
        assert a.grad.requires_grad  # the gradient has a graph of its own
        second.append(lib.autograd.grad(a.grad.sum(), a)[0])  # d/dx (3x^2) = 6x
    close(x.grad, tx.grad)
    close(*second)


@pytest.mark.filterwarnings("ignore:Error detected in:UserWarning")  # torch's forward traceback
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NumPy's sqrt(-1)
def test_detect_anomaly_context_raises_at_the_nan_gradient_like_torch():
    for lib in (ds, torch):
        x = lib.tensor([-1.0, 4.0], requires_grad=True)
        with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
            with lib.autograd.detect_anomaly():
                y = x.sqrt()  # NaN in the forward pass: no error (PyTorch checks gradients)
                with pytest.raises(RuntimeError, match="(?i)sqrt"):
                    y.sum().backward()
        assert not _anomaly_enabled(lib)
        x.grad = None
        (x.sqrt() * 0).sum().backward()  # anomaly mode off again: no error
    assert np.isnan(x.grad.numpy()).any()


def _anomaly_enabled(lib) -> bool:
    return lib.autograd.is_anomaly_enabled() if lib is ds else torch.is_anomaly_enabled()


@pytest.mark.filterwarnings("ignore:Error detected in:UserWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_set_detect_anomaly_switch_and_context_match_torch():
    for lib in (ds, torch):
        lib.autograd.set_detect_anomaly(True)
        try:
            assert _anomaly_enabled(lib)
            with lib.autograd.set_detect_anomaly(False):
                assert not _anomaly_enabled(lib)
            assert _anomaly_enabled(lib)  # the context restored the previous mode
            x = lib.tensor([-1.0], requires_grad=True)
            with pytest.raises(RuntimeError):
                x.sqrt().sum().backward()
        finally:
            lib.autograd.set_detect_anomaly(False)
        assert not _anomaly_enabled(lib)

    @ds.autograd.detect_anomaly(check_nan=True)  # descent's is also a decorator
    def step():
        return _anomaly_enabled(ds)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert step() and not _anomaly_enabled(ds)


# ---------------------------------------------------------------------------------------------
# get_rng_state / set_rng_state


def _draws():
    from descent.utils.data import DataLoader

    drop = ds.nn.Dropout(0.5)
    order = [int(b[0]) for b in DataLoader(ds.arange(8), batch_size=1, shuffle=True)]
    return [ds.rand(3).numpy(), ds.randn(2, 2, dtype=ds.float64).numpy(),
            ds.randint(0, 100, (5,)).numpy(), ds.randperm(7).numpy(),
            ds.multinomial(ds.ones(5), 3).numpy(), drop(ds.ones(10)).numpy(),
            ds.empty(4).normal_().numpy(), np.array(order)]  # fmt: skip


@pytest.mark.parametrize("odd_float32_draws", [0, 1, 3])
def test_rng_state_round_trip_replays_every_random_function(odd_float32_draws):
    ds.manual_seed(11)
    ds.rand(odd_float32_draws)  # an odd count of float32 draws leaves half a 64-bit word cached
    state = ds.get_rng_state()
    t_state = torch.get_rng_state()
    assert state.dtype == ds.uint8 and str(t_state.dtype) == "torch.uint8"
    assert state.ndim == t_state.ndim == 1
    first = _draws()
    state_copy = state.clone()
    assert ds.set_rng_state(state) is None and torch.set_rng_state(t_state) is None
    second = _draws()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert ds.equal(state, state_copy)  # set_rng_state does not change its argument
    state.zero_()  # nor does the returned tensor alias the generator
    ds.set_rng_state(state_copy)
    np.testing.assert_array_equal(_draws()[0], first[0])


def test_set_rng_state_refuses_what_get_rng_state_did_not_make():
    with pytest.raises(RuntimeError, match="get_rng_state"):
        ds.set_rng_state(ds.tensor(torch.get_rng_state().numpy()))  # PyTorch's 5056 bytes
    with pytest.raises(TypeError, match="ByteTensor"):  # torch's TypeError
        ds.set_rng_state(ds.get_rng_state().float())
    with pytest.raises(RuntimeError):
        torch.set_rng_state(torch.zeros(3, dtype=torch.uint8))


# ---------------------------------------------------------------------------------------------
# threads, determinism, matmul precision


def test_set_num_threads_sets_the_blas_and_numba_threads_like_torch():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numba

    before, t_before = ds.get_num_threads(), torch.get_num_threads()
    a = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    expected = (ds.tensor(a) @ ds.tensor(a)).numpy()
    try:
        ds.set_num_threads(1)
        torch.set_num_threads(1)
        assert ds.get_num_threads() == torch.get_num_threads() == 1
        info = threadpoolctl.threadpool_info()
        blas = [i["num_threads"] for i in info if i["user_api"] == "blas"]
        assert blas and set(blas) == {1}
        assert numba.get_num_threads() == 1
        np.testing.assert_array_equal((ds.tensor(a) @ ds.tensor(a)).numpy(), expected)
    finally:
        ds.set_num_threads(before)
        torch.set_num_threads(t_before)
    assert ds.get_num_threads() == before
    for bad, message in ((0, "positive integer"), (1.5, "expects an int")):
        for lib in (ds, torch):
            with pytest.raises(RuntimeError, match=message):
                lib.set_num_threads(bad)


def test_set_num_threads_without_threadpoolctl_says_what_it_cannot_do(monkeypatch):
    from descent import runtime

    before = ds.get_num_threads()
    monkeypatch.setattr(runtime, "_threadpoolctl", lambda: None)
    with pytest.warns(RuntimeWarning, match="threadpoolctl is not installed"):
        ds.set_num_threads(before)
    assert ds.get_num_threads() == before


def test_deterministic_and_matmul_precision_switches_read_back_like_torch():
    try:
        for lib in (ds, torch):
            assert lib.are_deterministic_algorithms_enabled() is False
            assert lib.use_deterministic_algorithms(True, warn_only=True) is None
            assert lib.are_deterministic_algorithms_enabled() is True
            assert lib.is_deterministic_algorithms_warn_only_enabled() is True
            assert lib.get_float32_matmul_precision() == "highest"
            lib.set_float32_matmul_precision("high")
            assert lib.get_float32_matmul_precision() == "high"
            assert lib.backends.cuda.matmul.allow_tf32 is True
            with pytest.warns(UserWarning, match="has no effect"):
                lib.set_float32_matmul_precision("low")
            assert lib.get_float32_matmul_precision() == "high"
    finally:
        for lib in (ds, torch):
            lib.use_deterministic_algorithms(False)
            lib.set_float32_matmul_precision("highest")
    assert ds.backends.cuda.matmul.allow_tf32 is False
    a = np.random.default_rng(1).standard_normal((8, 8)).astype(np.float32)
    ds.set_float32_matmul_precision("medium")  # float32 products stay float32 (no TF32 here)
    try:
        close(ds.tensor(a) @ ds.tensor(a), torch.tensor(a) @ torch.tensor(a), rtol=1e-5)
    finally:
        ds.set_float32_matmul_precision("highest")


# ---------------------------------------------------------------------------------------------
# in-place elementwise methods, stride()

_INPLACE = ["exp", "log", "sqrt", "rsqrt", "abs", "neg", "relu", "sigmoid", "tanh", "sin", "cos",
            "log1p", "expm1", "reciprocal", "sign", "floor", "ceil", "trunc", "square"]  # fmt: skip
_POSITIVE = {"log", "sqrt", "rsqrt", "log1p", "reciprocal"}


def _inplace_input(name):
    a = np.array([[0.3, -1.7, 2.2], [1.4, -0.6, 0.9]], np.float32)
    return np.abs(a) + 0.1 if name in _POSITIVE else a


@pytest.mark.parametrize("name", _INPLACE)
def test_inplace_unary_values_and_storage_match_torch(name):
    x, tx = pair(_inplace_input(name))
    r, tr = getattr(x, name + "_")(), getattr(tx, name + "_")()
    assert r is x and tr is tx  # the same object, changed
    close(x, tx, rtol=1e-6, atol=1e-7)
    p = ds.nn.Parameter(ds.tensor(_inplace_input(name)))
    getattr(p.data, name + "_")()  # p.data shares p's storage, as in PyTorch
    close(p.detach(), tx, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", _INPLACE)
def test_inplace_unary_gradients_flow_through_the_update_like_torch(name):
    a = _inplace_input(name)
    w = np.random.default_rng(2).standard_normal(a.shape).astype(np.float32)
    grads = []
    for lib in (ds, torch):
        x = lib.tensor(a, requires_grad=True)
        h = x * 1.0  # a non-leaf: in-place on it is recorded
        getattr(h, name + "_")()
        assert h.requires_grad
        (h * lib.tensor(w)).sum().backward()
        grads.append(x.grad)
    close(*grads, rtol=1e-5, atol=1e-6)


def test_inplace_unary_autograd_rules_match_torch():
    for lib in (ds, torch):
        leaf = lib.tensor([0.5, 1.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf"):
            leaf.exp_()  # a leaf that requires grad, under grad mode
        with lib.no_grad():
            leaf.relu_()  # allowed: how optimizers update parameters
        a = leaf * 1.0
        b = a * a  # Mul saved a
        a.sigmoid_()
        with pytest.raises(RuntimeError, match="modified by an inplace operation|in place"):
            b.sum().backward()
        with pytest.raises(RuntimeError, match="can't be cast"):
            lib.tensor([1, 2]).exp_()  # int64 cannot hold exp's float result
    for name in ("abs", "neg", "relu", "sign", "square"):
        i, ti = pair(np.array([-2, 0, 3], np.int64))
        close(getattr(i, name + "_")(), getattr(ti, name + "_")())


def test_inplace_unary_on_an_output_saved_for_backward_raises_at_backward_as_torch():
    # Exp saves its output; changing it in place under no_grad makes backward raise in both.
    for m in (ds, torch):
        x = m.tensor([0.5, 1.0], requires_grad=True)
        y = x.exp()
        with m.no_grad():
            y.tanh_()
        close(y.detach() if m is ds else ds.tensor(y.detach().numpy()),
              torch.tensor([0.5, 1.0]).exp().tanh())
        with pytest.raises(RuntimeError, match="modified"):
            y.sum().backward()


def test_clamp_min_max_inplace_match_torch():
    a = np.array([-1.5, 0.2, 3.0], np.float32)
    grads = []
    for lib in (ds, torch):
        x = lib.tensor(a, requires_grad=True)
        h = x * 2.0
        h.clamp_min_(0.0).clamp_max_(1.0)
        h.sum().backward()
        grads.append((h, x.grad))
    close(grads[0][0], grads[1][0])
    close(grads[0][1], grads[1][1])


@pytest.mark.parametrize(
    "make",
    [lambda lib: lib.arange(12.0).reshape(3, 4),
     lambda lib: lib.arange(12.0).reshape(3, 4).t(),
     lambda lib: lib.arange(12.0).reshape(3, 4)[::2, 1:],
     lambda lib: lib.ones(3).expand(2, 3),
     lambda lib: lib.tensor(1.0),
     lambda lib: lib.zeros(2, 3, 4, dtype=lib.float64).permute(2, 0, 1)],
)  # fmt: skip
def test_stride_matches_torch(make):
    x, tx = make(ds), make(torch)
    assert x.stride() == tx.stride()
    for d in range(-x.ndim, x.ndim):
        assert x.stride(d) == tx.stride(d)


# ---------------------------------------------------------------------------------------------
# with descent.device(...)


def test_device_is_a_context_manager_like_torch():
    for lib in (ds, torch):
        with lib.device("cpu") as d:
            assert str(d) == "cpu" and str(lib.zeros(1).device) == "cpu"
            assert str(lib.get_default_device()) == "cpu"
        assert str(lib.get_default_device()) == "cpu"


def test_device_context_restores_the_previous_default_in_order(monkeypatch):
    from descent import devices

    current = ["cpu"]
    monkeypatch.setattr(devices, "_default_device_switch",
                        (lambda: current[0], lambda d: current.__setitem__(0, d)))  # fmt: skip
    with ds.device("cuda:1"):
        assert current[0] == "cuda:1"
        with pytest.raises(KeyError):
            with ds.device("cuda", 0):
                assert current[0] == "cuda:0"
                raise KeyError("an error inside the block still restores the default")
        assert current[0] == "cuda:1"
    assert current[0] == "cpu"


# ---------------------------------------------------------------------------------------------
# utils.data.StackDataset


def test_stack_dataset_matches_torch():
    from torch.utils import data as tdata

    from descent.utils import data as ddata

    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.arange(6) % 3
    dx, dy = ddata.TensorDataset(ds.tensor(x)), ddata.TensorDataset(ds.tensor(y))
    tx, ty = tdata.TensorDataset(torch.tensor(x)), tdata.TensorDataset(torch.tensor(y))
    for d_stack, t_stack in (
        (ddata.StackDataset(dx, dy), tdata.StackDataset(tx, ty)),
        (ddata.StackDataset(a=dx, b=dy), tdata.StackDataset(a=tx, b=ty)),
    ):
        assert len(d_stack) == len(t_stack) == 6
        d_item, t_item = d_stack[4], t_stack[4]
        assert type(d_item) is type(t_item)
        d_batches = list(ddata.DataLoader(d_stack, batch_size=4))
        t_batches = list(tdata.DataLoader(t_stack, batch_size=4))
        for d_b, t_b in zip(d_batches, t_batches, strict=True):
            d_leaves = list(d_b.values()) if isinstance(d_b, dict) else list(d_b)
            t_leaves = list(t_b.values()) if isinstance(t_b, dict) else list(t_b)
            for (d_t,), (t_t,) in zip(d_leaves, t_leaves, strict=True):
                close(d_t, t_t)
    for lib, parts in ((ddata, (dx, dy)), (tdata, (tx, ty))):
        with pytest.raises(ValueError):
            lib.StackDataset()
        with pytest.raises(ValueError):
            lib.StackDataset(parts[0], b=parts[1])
        with pytest.raises(ValueError, match="(?i)size mismatch"):
            lib.StackDataset(parts[0], lib.Subset(parts[1], [0, 1]))


# ---------------------------------------------------------------------------------------------
# in-place writes under no_grad into an output its op saved for backward. PyTorch raises at
# backward, and so does descent (never a silently wrong gradient).

_SAVED_OUTPUT_WRITES = {
    "tanh_": lambda y: y.tanh_(),
    "normal_": lambda y: y.normal_(),
    "uniform_": lambda y: y.uniform_(),
    "mul_": lambda y: y.mul_(2.0),
    "add_": lambda y: y.add_(1.0),
    "copy_": lambda y: y.copy_(ds.tensor([5.0, 5.0])),
    "fill_": lambda y: y.fill_(3.0),
    "zero_": lambda y: y.zero_(),
    "clamp_": lambda y: y.clamp_(0.0, 2.0),
    "masked_fill_": lambda y: y.masked_fill_(ds.tensor([True, False]), 9.0),
}


@pytest.mark.parametrize("name", list(_SAVED_OUTPUT_WRITES))
def test_no_grad_write_into_a_saved_output_raises_at_backward_as_torch(name):
    for m in (ds, torch):
        x = m.tensor([0.5, 1.0], requires_grad=True)
        y = x.exp()  # Exp saves its output for backward
        with m.no_grad():
            _write(name, y, m)
        with pytest.raises(RuntimeError, match="modified"):
            y.sum().backward()


def _write(name, y, m):
    if name == "copy_":
        y.copy_(m.tensor([5.0, 5.0]))
    elif name == "masked_fill_":
        y.masked_fill_(m.tensor([True, False]), 9.0)
    else:
        _SAVED_OUTPUT_WRITES[name](y)


def test_no_grad_write_into_a_saved_output_is_seen_by_views_and_leaves_others_alone():
    x = ds.tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()
    v = y.view(2)
    with ds.no_grad():
        y.mul_(2.0)
    np.testing.assert_allclose(v.detach().numpy(), 2 * np.exp([0.5, 1.0]), rtol=1e-6)
    z = x.exp()  # another node, untouched: backward through it works
    z.sum().backward()
    close(x.grad, torch.tensor([0.5, 1.0]).exp())
