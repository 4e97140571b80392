"""`torch.testing` for descent: `assert_close`, `make_tensor` and the deprecated `assert_allclose`.

`assert_close(actual, expected)` follows torch.testing's rules, so an op suite written against
PyTorch runs on descent: tensors (and NumPy arrays, compared with each other) must match in
shape, device and dtype (`check_dtype=False` compares in the promoted dtype) and then in value,
|actual - expected| <= atol + rtol |expected|, with PyTorch's default tolerances by dtype
(float16 1e-3/1e-5, bfloat16 1.6e-2/1e-5, float32 1.3e-6/1e-5, float64 1e-7/1e-7, integers
and bools exactly);
Python numbers compare with numbers of the same type; sequences and mappings compare item by
item and say which item failed. The messages are PyTorch's ("Tensor-likes are not close!",
mismatched elements, the greatest absolute and relative differences and where).
"""

from __future__ import annotations

import math as _math
from collections.abc import Mapping as _Mapping
from collections.abc import Sequence as _Sequence

import numpy as _np

from . import backend as _backend
from .tensor import Tensor as _Tensor

__all__ = ["assert_allclose", "assert_close", "make_tensor"]

_TOLERANCES = {  # dtype name -> (rtol, atol), torch.testing's defaults
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
    # complex dtypes take their real component's tolerances (torch.testing's table)
    "complex64": (1.3e-6, 1e-5),
    "complex128": (1e-7, 1e-7),
}


def _tolerance(*dtypes) -> tuple[float, float]:
    tols = [_TOLERANCES.get(_np.dtype(d).name, (0.0, 0.0)) for d in dtypes]
    return max(t[0] for t in tols), max(t[1] for t in tols)


class _Fail(Exception):
    def __init__(self, cls, msg) -> None:
        super().__init__(msg)
        self.cls, self.msg, self.path = cls, msg, None


def _attr_mismatch(name: str, a, b) -> _Fail:
    return _Fail(AssertionError, f"The values for attribute '{name}' do not match: {a} != {b}.")


def _mismatch_msg(identifier, extra, abs_diff, abs_idx, atol, rel_diff, rel_idx, rtol) -> str:
    equality = rtol == 0 and atol == 0

    def diff(kind, value, idx, tol) -> str:
        msg = (
            f"{kind.title()} difference: {value}"
            if idx is None
            else (f"Greatest {kind} difference: {value} at index {idx}")
        )
        return msg + ("" if equality else f" (up to {tol} allowed)") + "\n"

    msg = f"{identifier} are not {'equal' if equality else 'close'}!\n\n"
    if extra:
        msg += f"{extra.strip()}\n"
    msg += diff("absolute", abs_diff, abs_idx, atol) + diff("relative", rel_diff, rel_idx, rtol)
    return msg.strip()


def _scalar_msg(actual, expected, rtol, atol) -> str:
    abs_diff = abs(actual - expected)
    rel_diff = _math.inf if expected == 0 else abs_diff / abs(expected)
    return _mismatch_msg(
        "Scalars",
        f"Expected {expected} but got {actual}.",
        abs_diff,
        None,
        atol,
        rel_diff,
        None,
        rtol,
    )


def _close(a: _np.ndarray, e: _np.ndarray, rtol, atol, equal_nan) -> _np.ndarray:
    a, e = (x.astype(_np.float32) if x.dtype.kind == "V" else x for x in (a, e))  # bfloat16
    if a.dtype.kind in "fc" or e.dtype.kind in "fc":
        return _np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if rtol == 0 and atol == 0:
        return a == e
    return _np.abs(a.astype(_np.float64) - e.astype(_np.float64)) <= atol + rtol * _np.abs(
        e.astype(_np.float64)
    )


def _tensor_msg(a: _np.ndarray, e: _np.ndarray, matches: _np.ndarray, rtol, atol) -> str:
    total = matches.size
    bad = total - int(matches.sum())
    extra = f"Mismatched elements: {bad} / {total} ({bad / total:.1%})"
    af, ef, mf = a.reshape(-1), e.reshape(-1), matches.reshape(-1)
    integer = a.dtype.kind not in "fcV"
    if integer:
        af, ef = af.astype(_np.int64), ef.astype(_np.int64)
    with _np.errstate(all="ignore"):
        abs_diff = _np.abs(af - ef)
        abs_diff[mf] = 0
        if integer:  # torch divides integer tensors in the default float dtype
            rel_diff = abs_diff.astype(_np.float32) / _np.abs(ef).astype(_np.float32)
        else:
            rel_diff = abs_diff / _np.abs(ef)
        rel_diff[mf] = 0

    def top(d):  # torch.max: the first maximum, nan counting as the largest
        nan = _np.isnan(d) if d.dtype.kind in "fV" else _np.zeros(d.shape, bool)
        i = int(_np.argmax(nan)) if nan.any() else int(_np.argmax(d))
        return d[i].item(), tuple(int(v) for v in _np.unravel_index(i, a.shape)) if a.ndim else ()

    (ad, ai), (rd, ri) = top(abs_diff), top(rel_diff)
    return _mismatch_msg("Tensor-likes", extra, ad, ai, atol, rd, ri, rtol)


def _as_array(x) -> _np.ndarray:
    return _backend.as_numpy(x._data) if isinstance(x, _Tensor) else _np.asarray(x)


def _compare_tensors(
    actual, expected, rtol, atol, equal_nan, check_device, check_dtype, check_stride
) -> None:
    a, e = _as_array(actual), _as_array(expected)
    if a.shape != e.shape:
        sa = actual.shape if isinstance(actual, _Tensor) else a.shape
        se = expected.shape if isinstance(expected, _Tensor) else e.shape
        raise _attr_mismatch("shape", sa, se)
    if check_device and isinstance(actual, _Tensor) and actual.device != expected.device:
        raise _attr_mismatch("device", actual.device, expected.device)
    if check_dtype and a.dtype != e.dtype:
        da = actual.dtype if isinstance(actual, _Tensor) else a.dtype
        de = expected.dtype if isinstance(expected, _Tensor) else e.dtype
        raise _attr_mismatch("dtype", da, de)
    if check_stride and a.strides != e.strides:
        raise _attr_mismatch("stride()", actual.stride(), expected.stride())
    if rtol is None:
        rtol, atol = _tolerance(a.dtype, e.dtype)
    if a.dtype != e.dtype:
        common = _np.promote_types(a.dtype, e.dtype)
        a, e = a.astype(common), e.astype(common)
    if a.dtype.kind == "b":
        a, e = a.astype(_np.int64), e.astype(_np.int64)
    matches = _close(a, e, rtol, atol, equal_nan)
    if matches.all():
        return
    if a.shape == ():
        raise _Fail(AssertionError, _scalar_msg(a.item(), e.item(), rtol, atol))
    raise _Fail(AssertionError, _tensor_msg(a, e, matches, rtol, atol))


def _compare_numbers(actual, expected, rtol, atol, equal_nan, check_dtype) -> None:
    if check_dtype and type(actual) is not type(expected):
        raise _Fail(
            AssertionError, f"The (d)types do not match: {type(actual)} != {type(expected)}."
        )
    if rtol is None:
        rtol, atol = _tolerance(
            *(_np.float64 if isinstance(v, float) else _np.int64 for v in (actual, expected))
        )
    if equal_nan and isinstance(actual, float) and _math.isnan(actual) and _math.isnan(expected):
        return
    if actual == expected or abs(actual - expected) <= atol + rtol * abs(expected):
        return
    raise _Fail(AssertionError, _scalar_msg(actual, expected, rtol, atol))


def _is_number(x) -> bool:
    return isinstance(x, (bool, int, float, _np.number)) and not isinstance(x, _np.ndarray)


def _compare(actual, expected, path: list, opts: dict) -> None:
    try:
        _compare_items(actual, expected, path, opts)
    except _Fail as f:
        if f.path is None:
            f.path = path
        raise


def _compare_items(actual, expected, path: list, opts: dict) -> None:
    tensorish = (_Tensor, _np.ndarray)
    if isinstance(actual, tensorish) or isinstance(expected, tensorish):
        if type(actual) is not type(expected) and not (
            isinstance(actual, _Tensor) and isinstance(expected, _Tensor)
        ):
            raise _Fail(
                TypeError,
                "No comparison pair was able to handle inputs of type "
                f"{type(actual)} and {type(expected)}.",
            )
        _compare_tensors(
            actual,
            expected,
            opts["rtol"],
            opts["atol"],
            opts["equal_nan"],
            opts["check_device"],
            opts["check_dtype"],
            opts["check_stride"],
        )
        return
    if _is_number(actual) and _is_number(expected):
        _compare_numbers(
            actual, expected, opts["rtol"], opts["atol"], opts["equal_nan"], opts["check_dtype"]
        )
        return
    if isinstance(actual, _Mapping) and isinstance(expected, _Mapping):
        ka, ke = set(actual), set(expected)
        if ka != ke:
            msg = "The keys of the mappings do not match:\n"
            missing, extra = sorted(ke - ka, key=repr), sorted(ka - ke, key=repr)
            if missing:
                msg += f"Missing keys in the actual mapping: {missing}\n"
            if extra:
                msg += f"Additional keys in the actual mapping: {extra}"
            raise _Fail(AssertionError, msg.strip())
        for k in expected:
            _compare(actual[k], expected[k], [*path, k], opts)
        return
    strs = (str, bytes)
    if (
        isinstance(actual, _Sequence)
        and isinstance(expected, _Sequence)
        and not isinstance(actual, strs)
        and not isinstance(expected, strs)
    ):
        if len(actual) != len(expected):
            raise _Fail(
                AssertionError,
                f"The length of the sequences mismatch: {len(actual)} != {len(expected)}",
            )
        for i, (x, y) in enumerate(zip(actual, expected)):
            _compare(x, y, [*path, i], opts)
        return
    if actual is None and expected is None:
        return
    if type(actual) is type(expected) and actual == expected:
        return
    raise _Fail(
        TypeError,
        f"No comparison pair was able to handle inputs of type {type(actual)} "
        f"and {type(expected)}.",
    )


def assert_close(
    actual,
    expected,
    *,
    allow_subclasses: bool = True,
    rtol=None,
    atol=None,
    equal_nan: bool = False,
    check_device: bool = True,
    check_dtype: bool = True,
    check_layout: bool = True,
    check_stride: bool = False,
    msg=None,
) -> None:
    """Raise AssertionError unless `actual` and `expected` are close (torch.testing.assert_close).

    Args:
        rtol, atol: both or neither; the defaults depend on the dtypes (module docstring).
        equal_nan: nan equals nan.
        check_device, check_dtype, check_stride: also compare these attributes.
        msg: a string replacing the message, or a callable taking the default message.
    """
    if (rtol is None) != (atol is None):
        missing = "atol" if atol is None else "rtol"
        raise ValueError(
            f"Both 'rtol' and 'atol' must be either specified or omitted, but got no {missing}."
        )
    if not allow_subclasses and type(actual) is not type(expected) and (
        isinstance(actual, _Tensor) or isinstance(expected, _Tensor)
    ):  # a Parameter against a plain Tensor: PyTorch's TypeError
        raise TypeError(
            f"No comparison pair was able to handle inputs of type {type(actual)} and "
            f"{type(expected)}."
        )
    opts = dict(
        rtol=rtol,
        atol=atol,
        equal_nan=equal_nan,
        check_device=check_device,
        check_dtype=check_dtype,
        check_stride=check_stride,
    )
    try:
        _compare(actual, expected, [], opts)
    except _Fail as f:
        text = f.msg
        if f.path:
            text += f"\n\nThe failure occurred for item {_failure_item(f.path)}"
        if msg is not None:
            text = msg(text) if callable(msg) else msg
        raise f.cls(text) from None


def _failure_item(path: list) -> str:
    return "".join(f"[{p!r}]" for p in path)


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan=True, msg=""):
    """Deprecated in PyTorch (use assert_close); compares values after promoting dtypes."""
    import warnings  # noqa: PLC0415

    warnings.warn(
        "`descent.testing.assert_allclose()` is deprecated; use assert_close()",
        FutureWarning,
        stacklevel=2,
    )
    if not isinstance(actual, _Tensor):
        actual = _Tensor(_np.asarray(actual))
    if not isinstance(expected, _Tensor):
        expected = _Tensor(_np.asarray(expected, dtype=actual._data.dtype))
    assert_close(
        actual,
        expected,
        rtol=rtol,
        atol=atol,
        equal_nan=equal_nan,
        check_dtype=False,
        check_device=True,
        msg=msg or None,
    )


def make_tensor(
    *shape,
    dtype,
    device=None,
    low=None,
    high=None,
    requires_grad: bool = False,
    noncontiguous: bool = False,
    exclude_zero: bool = False,
    memory_format=None,
):
    """A tensor of `shape` filled uniformly in [low, high) (torch.testing.make_tensor's
    defaults: [-9, 9) for floats and signed ints, [0, 10) for uint8, {False, True} for bool)."""
    from .creation import _rng, tensor  # noqa: PLC0415

    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    dt = _np.dtype(dtype)
    rng = _np.random.default_rng(_rng(None, "cpu").integers(2**63))  # descent's seed decides
    if dt.kind == "b":
        arr = rng.integers(0, 2, size=shape).astype(bool) | bool(exclude_zero)
    else:
        lo = -9 if low is None else low
        hi = 9 if high is None else high
        if dt.kind == "u":
            lo = 0 if low is None else max(low, 0)
            hi = 10 if high is None else high
        if low is not None and high is not None and low > high:
            raise ValueError(f"make_tensor: low={low} is greater than high={high}")
        if dt.kind in "iu":
            arr = rng.integers(int(_math.ceil(lo)), int(_math.floor(hi)), size=shape,
                               endpoint=False)  # fmt: skip
        else:
            arr = rng.uniform(lo, hi, size=shape)
        arr = arr.astype(dt)
        if exclude_zero:
            eps = 1 if dt.kind in "iu" else float(_np.finfo(dt).tiny)
            arr[arr == 0] = eps if dt.kind in "iu" else (hi - lo) / 2 + lo or eps
    out = tensor(arr, dtype=dt, device=device)
    if noncontiguous and out.numel() > 1:
        doubled = _np.repeat(_backend.as_numpy(out._data), 2, axis=-1)
        out = _Tensor._wrap(_backend.to_device(doubled, out.device)[..., ::2])
    if requires_grad:
        out.requires_grad_(True)
    return out
