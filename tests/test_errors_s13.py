"""Error paths, differential against torch 2.13 (cases in tests/errors_s13_cases.py): where
torch raises, descent raises a subclass of torch's exception class (so `except RuntimeError:`
keeps working), and its message names the op and the shapes or values at fault; where torch
warns, descent warns the same category."""

import warnings

import pytest
import torch

import descent
from errors_s13_cases import CASES

# Known gaps, left as they are (reason): strict xfails, so that a fix shows up.
KNOWN = {
    "mT_1d": "open",
    "fill_nonscalar": "open",
    "baddbmm_shape": "open",
    "where_cond_dtype": "open",
    "gather_shape": "open",
    "gather_float": "open",
    "masked_fill_shape": "open",
    "masked_fill_dtype": "open",
    "masked_select_shape": "open",
    "expand_shape": "open",
    "expand_fewer": "open",
    "expand_neg_new": "open",
    "view_neg2": "open",
    "permute_oob": "open",
    "flip_repeat": "open",
    "tile_neg": "open",
    "diag_embed_same": "open",
    "repeat_interleave": "open",
    "setitem_shape": "open",
    "index_put_shape": "open",
    "new_zeros_neg": "open",
    "zeros_dtype_str": "open",
    "to_bad_device": "open",
    "avg_pool_1d": "open",
    "unfold_f_2d": "open",
    "softmax_no_dim": "open",
    "inplace_saved_output": "open",
    "numpy_requires_grad": "open",
    "grad_assign_shape": "open",
    "grad_assign_dtype": "open",
    "retain_grad_no_grad": "open",
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
