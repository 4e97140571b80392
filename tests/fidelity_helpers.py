"""Shared by the tests/test_fidelity_s2*.py probes: run one call in torch and in descent and agree
on whether (and with which exception class) it raises."""

import warnings


def outcome(fn, m):
    """(None, result) or (the exception, None) of fn(m)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return None, fn(m)
    except Exception as e:  # noqa: BLE001 - any class: compared with torch's by the caller
        return e, None


def results_or_same_error(fn, torch, descent):
    """fn(torch) raises X => fn(descent) raises an X, and None is returned; fn(torch) computes =>
    fn(descent) computes too, and (torch's result, descent's) is returned."""
    te, tr = outcome(fn, torch)
    de, dr = outcome(fn, descent)
    if te is not None:
        assert de is not None, f"torch raises {type(te).__name__}: {te}; descent computes"
        assert isinstance(de, type(te)), (type(te), type(de), str(de))
        return None
    assert de is None, f"torch computes; descent raises {type(de).__name__}: {de}"
    return tr, dr
