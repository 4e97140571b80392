"""Anomaly mode names the op and the user's line; attaches through the engine's hook point."""

import warnings

import numpy as np
import pytest

import descent as ds
from descent import autograd
from descent.autograd import Function
from descent.explain import AnomalyError, detect_anomaly
from descent.explain.anomaly import is_anomaly_enabled

# NumPy's own warnings about the planted log(0) and 1/0 are expected here.
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")


def _line_of(marker: str) -> int:
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if marker in line and "_line_of" not in line:
                return i
    raise AssertionError(marker)


def test_forward_log_zero_names_op_and_line():
    x = ds.tensor([1.0, 0.0, 2.0], requires_grad=True)
    with pytest.raises(AnomalyError) as ei:
        with detect_anomaly():
            h = x * 2.0
            y = ds.log(h)  # PLANTED-LOG
            y.sum()
    rep = ei.value.report
    assert rep.phase == "forward"
    assert rep.op == "Log"
    assert rep.source.filename == __file__
    assert rep.source.lineno == _line_of("# PLANTED-LOG")
    assert "ds.log(h)" in rep.source.code
    assert rep.inputs[0].shape == (3,) and rep.inputs[0].min == 0.0 and rep.inputs[0].max == 4.0
    assert rep.output.inf == 1
    msg = str(ei.value)
    assert "Log" in msg and "PLANTED-LOG" in msg and "range [0, 4]" in msg


def test_forward_without_grad_also_checked():
    with pytest.raises(AnomalyError, match="Log"):
        with detect_anomaly():
            ds.log(ds.zeros(2))


def test_backward_names_op_with_forward_origin_first():
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    with detect_anomaly():
        r = ds.sqrt(w - 1.0)  # PLANTED-SQRT: finite forward, infinite derivative at 0
        loss = r.sum()
        with pytest.raises(AnomalyError) as ei:
            loss.backward()
    rep = ei.value.report
    assert rep.phase == "backward" and rep.op == "SqrtBackward"  # the node, named as grad_fn
    assert rep.source.lineno == _line_of("# PLANTED-SQRT")
    text = str(ei.value)
    # forward origin comes before the gradient details
    assert text.index("forward origin") < text.index("gradient produced")


def test_nonfinite_seed_is_reported_as_incoming():
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    with detect_anomaly():
        y = w * 3.0
        with pytest.raises(AnomalyError, match="already non-finite"):
            y.backward(ds.tensor([np.nan, 1.0]))


def test_warn_mode_records_and_continues():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with detect_anomaly(raise_error=False) as mode:
            y = ds.log(ds.zeros(2))
    assert y.shape == (2,)
    assert len(mode.found) == 1 and mode.found[0].op == "Log"
    assert any("Log" in str(w.message) for w in caught)


def test_binary_fast_path_is_checked():
    a = ds.tensor([1.0, 2.0], requires_grad=True)
    b = ds.tensor([1.0, 0.0], requires_grad=True)
    with pytest.raises(AnomalyError) as ei:
        with detect_anomaly():
            a / b  # PLANTED-DIV (two tensors: the operators' fast path)
    assert ei.value.report.op == "Div"
    assert ei.value.report.source.lineno == _line_of("# PLANTED-DIV")


def test_scalar_fast_path_is_checked():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(AnomalyError) as ei:
        with detect_anomaly(), np.errstate(over="ignore"):
            x * 1e39  # PLANTED-OVERFLOW (float32 overflows to inf; a tensor-scalar op)
    assert ei.value.report.op == "MulScalar"
    assert ei.value.report.source.lineno == _line_of("# PLANTED-OVERFLOW")


def test_attaches_through_the_engine_hook_point_and_patches_nothing():
    entry_points = {k: v for k, v in vars(Function).items() if k.startswith("apply")}
    assert "apply" in entry_points
    from descent.ops.elementwise import Log

    backward_before = Log.__dict__["backward"]
    assert not is_anomaly_enabled()
    assert autograd._forward_hooks == [] and autograd._backward_hooks == []
    with detect_anomaly():
        # one hook each way, the classes untouched
        assert len(autograd._forward_hooks) == 1 and len(autograd._backward_hooks) == 1
        with detect_anomaly():  # nesting adds nothing
            assert is_anomaly_enabled()
            assert len(autograd._forward_hooks) == 1
        assert is_anomaly_enabled()
        assert {k: v for k, v in vars(Function).items() if k.startswith("apply")} == entry_points
        assert Log.__dict__["backward"] is backward_before
    assert not is_anomaly_enabled()
    assert autograd._forward_hooks == [] and autograd._backward_hooks == []
    # and detached after an exception too
    with pytest.raises(AnomalyError):
        with detect_anomaly():
            ds.log(ds.zeros(1))
    assert autograd._forward_hooks == [] and autograd._backward_hooks == []
    assert not is_anomaly_enabled()


def test_op_hooks_see_every_op_and_node():
    seen_fw, seen_bw = [], []
    handle = autograd._add_op_hook(
        forward=lambda op, inputs, out: seen_fw.append((type(op).__name__, len(inputs))),
        backward=lambda node, gy, gxs: seen_bw.append(node.name),
    )
    try:
        x = ds.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x + 1.0).sum()  # apply2, apply_scalar, apply
        with ds.no_grad():
            ds.exp(x)  # not recorded, still seen
        y.backward()
    finally:
        handle.remove()
    assert seen_fw == [("Mul", 2), ("AddScalar", 1), ("Sum", 1), ("Exp", 1)]
    assert seen_bw == ["SumBackward", "AddScalarBackward", "MulBackward"]
    ds.exp(x)
    assert len(seen_fw) == 4  # removed


def test_clean_computation_passes_and_gradients_agree():
    x = ds.tensor([0.5, 1.5], requires_grad=True)
    with detect_anomaly():
        loss = (ds.log(x) * ds.tanh(x)).sum()
        loss.backward()
    g1 = x.grad.numpy().copy()
    x.grad = None
    (ds.log(x) * ds.tanh(x)).sum().backward()
    np.testing.assert_array_equal(g1, x.grad.numpy())
