"""Error paths, differential against torch 2.13 (cases in tests/errors_s13_cases.py): where
torch raises, descent raises a subclass of torch's exception class (so `except RuntimeError:`
keeps working), and its message names the op and the shapes or values at fault; where torch
warns, descent warns the same category."""

import warnings

import numpy as np
import pytest
import torch

import descent
from errors_s13_cases import CASES

# Known gaps, left as they are (reason): strict xfails, so that a fix shows up.
_CHOICE = "a documented descent choice"
KNOWN = {
    # descent takes NumPy dtype spellings ('float32', np.float32); an unknown name raises
    "zeros_dtype_str": _CHOICE,
    # Tensor.numpy never refuses (its docstring); torch asks for detach() first
    "numpy_requires_grad": _CHOICE,
    # descent.softmax(x) takes the last dim (F.softmax without dim warns and takes torch's)
    "softmax_no_dim": _CHOICE,
    # torch's IndexError comes from its own dim arithmetic; descent's DescentError
    # (RuntimeError + ValueError) names the layouts it expects
    "avg_pool_1d": "torch's IndexError is incidental",
    "unfold_f_2d": "torch's IndexError is incidental",
}


def _outcome(f, m):
    """('raise', exc) or ('warn', warning) or ('ok', None)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            f(m)
        except Exception as exc:  # noqa: BLE001 - the exception is the result
            return "raise", exc
    return ("warn", caught[0]) if caught else ("ok", None)


def _params():
    for name, f, fragments in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[name])] if name in KNOWN else []
        yield pytest.param(f, fragments, id=name, marks=marks)


@pytest.mark.parametrize("f, fragments", list(_params()))
def test_error_parity(f, fragments):
    kind, expected = _outcome(f, torch)
    assert kind != "ok", "torch accepts this call: not an error case"
    got_kind, got = _outcome(f, descent)
    assert got_kind == kind, f"torch: {kind} {expected!r}; descent: {got_kind} {got!r}"
    if kind == "raise":
        assert isinstance(got, type(expected)), f"torch: {expected!r}; descent: {got!r}"
        message = str(got)
    else:
        assert issubclass(got.category, expected.category), (expected, got)
        message = str(got.message)
    missing = [s for s in fragments if s not in message]
    assert not missing, f"message lacks {missing}: {message!r}"


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 4), (2, 3, 4, 5)])
def test_softmax_without_dim_takes_torchs_implicit_dim(shape):
    """F.softmax / F.log_softmax without dim: torch's legacy dim (0 for 1-d and 3-d inputs,
    else 1; descent took the last one, silently different for 3-d and 4-d inputs)."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for name in ("softmax", "log_softmax"):
        with pytest.warns(UserWarning, match="implicit dimension"):
            got = getattr(descent.nn.functional, name)(descent.tensor(x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = getattr(torch.nn.functional, name)(torch.tensor(x))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
