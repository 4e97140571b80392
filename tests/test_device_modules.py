"""torch.cpu / torch.mps / torch.xpu, torch.backends.{cpu,mkldnn,opt_einsum},
torch.autograd.profiler / grad_mode, torch.utils.dlpack and torch.utils.benchmark as descent
has them: the answers PyTorch's CPU build gives (is_available, device_count, no-ops, the errors
of calls that need a missing device), and working timers and profilers."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")

SAME_ANSWER = [
    "cpu.is_available()", "cpu.device_count()", "cpu.current_device()", "cpu.synchronize()",
    "cpu.is_initialized()", "mps.device_count()", "mps.manual_seed(0)", "xpu.is_available()",
    "xpu.device_count()", "xpu.manual_seed(0)", "xpu.manual_seed_all(0)", "xpu.empty_cache()",
    "xpu.is_initialized()", "backends.opt_einsum.is_available()",
    "backends.opt_einsum.enabled", "backends.opt_einsum.strategy",
    "backends.cpu.get_cpu_capability()", "backends.mkldnn.enabled",
]  # fmt: skip


@pytest.mark.parametrize("expr", SAME_ANSWER)
def test_same_answer_as_pytorch(expr):
    assert eval(f"descent.{expr}") == eval(f"torch.{expr}")  # noqa: S307


@pytest.mark.parametrize(("expr", "error"), [
    ("mps.synchronize()", RuntimeError), ("mps.empty_cache()", RuntimeError),
    ("mps.seed()", RuntimeError), ("mps.current_allocated_memory()", RuntimeError),
    ("xpu.synchronize()", AssertionError),
])  # fmt: skip
def test_calls_that_need_the_missing_device_raise_as_pytorch(expr, error):
    with pytest.raises(error):
        eval(f"torch.{expr}")  # noqa: S307
    with pytest.raises(error, match="descent has no"):
        eval(f"descent.{expr}")  # noqa: S307


def test_mkldnn_is_not_used_and_its_flags_round_trip():
    assert descent.backends.mkldnn.is_available() is False  # descent never calls oneDNN
    with descent.backends.mkldnn.flags(enabled=False):
        assert descent.backends.mkldnn.enabled is False
    assert descent.backends.mkldnn.enabled is True


def test_device_agnostic_synchronize_idiom():
    for device_type in ("cpu",):
        getattr(descent, device_type).synchronize()
        with descent.cpu.stream(descent.cpu.current_stream()):
            pass


def test_cpu_amp_autocast_is_deprecated_bfloat16_autocast():
    a = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    with pytest.warns(FutureWarning, match="descent.amp.autocast\\('cpu'"):
        region = descent.cpu.amp.autocast()
    with region:
        out = descent.tensor(a) @ descent.tensor(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with torch.cpu.amp.autocast():
            ref = torch.tensor(a) @ torch.tensor(a)
    assert str(out.dtype) == "descent.bfloat16" and ref.dtype == torch.bfloat16
    np.testing.assert_allclose(out.float().numpy(), ref.float().numpy(), rtol=1e-2, atol=1e-2)
    with pytest.warns(FutureWarning):
        scaler = descent.cpu.amp.GradScaler(init_scale=8.0)
    assert scaler.get_scale() == 8.0


def test_autograd_profiler_spelling_records_ops():
    with descent.autograd.profiler.profile(use_cuda=False, record_shapes=True) as prof:
        with descent.autograd.profiler.record_function("forward"):
            x = descent.ones(3, requires_grad=True)
            loss = (x * 2).sum()
        loss.backward()
    table = prof.key_averages().table(sort_by="self_cpu_time_total")
    assert "forward" in table and "Mul" in table
    with descent.autograd.profiler.profile(enabled=False) as off:
        descent.ones(2) + 1
    assert len(off.events) == 0
    assert descent.autograd.grad_mode.no_grad is descent.no_grad


def test_dlpack_capsules_round_trip_both_ways():
    x = descent.arange(6.0).reshape(2, 3)
    y = descent.utils.dlpack.from_dlpack(descent.utils.dlpack.to_dlpack(x))
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    t = torch.arange(4.0)
    z = descent.utils.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(t))
    np.testing.assert_array_equal(z.numpy(), t.numpy())
    t[0] = 7.0  # shares torch's memory
    assert z[0].item() == 7.0
    back = torch.utils.dlpack.from_dlpack(descent.utils.dlpack.to_dlpack(x))
    np.testing.assert_array_equal(back.numpy(), x.numpy())


def test_benchmark_timer_measurements_and_compare():
    from descent.utils.benchmark import Compare, Measurement, Timer

    x = descent.ones(64)
    t = Timer("x + x", globals={"x": x}, label="add", sub_label="64", description="descent")
    m = t.timeit(200)
    assert isinstance(m, Measurement) and m.number_per_run == 200 and len(m.times) == 1
    assert 0 < m.median < 1e-2 and "1 measurement, 200 runs, 1 thread" in repr(m)
    b = t.blocked_autorange(min_run_time=0.05)
    assert sum(b.raw_times) >= 0.05 and b.number_per_run >= 1
    assert b.iqr >= 0 and b.mean > 0 and len(b.times) == len(b.raw_times)
    a = t.adaptive_autorange(min_run_time=0.02, max_run_time=0.5)
    assert a.median > 0
    m2 = Timer("x * x", globals={"x": x}, label="add", sub_label="64",
               description="mul").timeit(100)  # fmt: skip
    text = str(Compare([m, b, m2]))
    assert "add" in text and "descent" in text and "mul" in text and "Times are in" in text
    with pytest.raises(NotImplementedError):
        t.autorange()
    with pytest.raises(ValueError, match="language"):
        Timer("x", language="c++")


def test_modules_load_on_first_use():
    src = ("import descent as torch, sys\n"
           "assert 'descent.cpu' not in sys.modules\n"
           "print(torch.cpu.device_count(), torch.xpu.is_available(), torch.mps.device_count(),\n"
           "      torch.utils.benchmark.Timer('pass').timeit(10).number_per_run)\n")
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False", "0", "10"]


def test_get_device_module_and_legacy_integer_types():
    for dev in ("cpu", descent.device("cpu")):
        assert descent.get_device_module(dev) is descent.cpu
    assert torch.get_device_module("cpu") is torch.cpu
    assert descent.get_device_module("mps") is descent.mps
    with pytest.raises(RuntimeError, match="does not have a corresponding module"):
        descent.get_device_module("foo")
    with pytest.raises(RuntimeError, match="foo"):
        torch.get_device_module("foo")
    for name in ("CharTensor", "ShortTensor"):
        d, t = getattr(descent, name)([1, 2]), getattr(torch, name)([1, 2])
        assert str(d.dtype).split(".")[1] == str(t.dtype).split(".")[1]
        assert tuple(getattr(descent, name)(3).shape) == tuple(getattr(torch, name)(3).shape)


@pytest.mark.parametrize("expr", [
    "sym_int(3.7)", "sym_int(-3.7)", "sym_int(5)", "sym_float(3)", "sym_max(2, 5)",
    "sym_min(2, 5)", "sym_not(True)", "sym_ite(False, 1, 2)", "sym_sum([1, 2, 3])",
    "sym_sqrt(4)",
])  # fmt: skip
def test_symbolic_shape_helpers_on_plain_numbers(expr):
    ours, theirs = eval(f"descent.{expr}"), eval(f"torch.{expr}")  # noqa: S307
    assert ours == theirs and type(ours) is type(theirs)


def test_out_of_memory_error_names():
    assert issubclass(descent.OutOfMemoryError, RuntimeError)
    assert descent.cuda.OutOfMemoryError is descent.OutOfMemoryError
    assert torch.cuda.OutOfMemoryError is torch.OutOfMemoryError
    assert descent.has_lapack and descent.has_spectral
    assert descent.has_mkl is False and descent.has_openmp is False  # NumPy's OpenBLAS, numba
