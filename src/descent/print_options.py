"""How tensors print: PyTorch's `set_printoptions` (precision, threshold, edgeitems, linewidth,
sci_mode, profile) and PyTorch's layout (torch/_tensor_str.py's rules, written again here):
one width and notation per tensor, "3." for integral floats, scientific past a 1000x range,
suffixes wrapped at the line width. `Tensor.__repr__` calls `format_values` and `add_suffixes`.

The options are process-wide, as PyTorch's `PRINT_OPTS`. The defaults are PyTorch's "default"
profile: 4 digits, summarize ("...") above 1000 elements showing 3 at each edge, 80 columns.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["add_suffixes", "format_values", "print_edgeitems", "set_printoptions"]

_PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}

_options = dict(_PROFILES["default"], sci_mode=None)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:  # fmt: skip
    """Set how tensors print (torch.set_printoptions).

    Args:
        precision: digits after the decimal point of floating values (4).
        threshold: more elements than this print summarized, with "..." (1000).
        edgeitems: elements shown at each end of a summarized dimension (3).
        linewidth: characters per line before wrapping (80).
        profile: "default", "short" (precision 2, edgeitems 2) or "full" (never summarize),
            applied first; the other arguments then override it.
        sci_mode: True always uses scientific notation, False never, None decides per tensor
            (PyTorch's rule: a range over 1000x, a value over 1e8 or, for non-integers, under
            1e-4). Like PyTorch, every call sets it (None unless given).
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: unknown profile {profile!r}; use one of "
                             f"{sorted(_PROFILES)}")  # fmt: skip
        _options.update(_PROFILES[profile])
    for name, value in (("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)):  # fmt: skip
        if value is not None:
            _options[name] = value
    _options["sci_mode"] = sci_mode


def _summarized(arr: np.ndarray, edge: int) -> np.ndarray:
    """The values a summarized print shows (PyTorch's get_summarized_data)."""
    if arr.ndim == 0:
        return arr
    if arr.ndim == 1:
        return np.concatenate((arr[:edge], arr[-edge:])) if arr.shape[0] > 2 * edge else arr
    if not edge:
        return arr[(slice(0, 0),) * arr.ndim]
    rows = list(range(edge)) + list(range(arr.shape[0] - edge, arr.shape[0]))
    if arr.shape[0] <= 2 * edge:
        rows = range(arr.shape[0])
    return np.stack([_summarized(arr[i], edge) for i in rows])


class _Formatter:
    """One width and one notation for every value of a tensor (PyTorch's `_Formatter`).

    Floats: scientific when max/min > 1000, max > 1e8 or min < 1e-4 over the finite nonzero
    values (nan, inf and 0 never decide; `sci_mode` overrides), else "3." when every value is
    an integer, else `precision` digits. Integers and bools: str().
    """

    def __init__(self, values: np.ndarray, floating: bool) -> None:
        self.floating = floating
        self.int_mode, self.sci_mode, self.width = True, False, 1
        self.precision = int(_options["precision"])
        flat = values.reshape(-1)
        if not floating:
            self.width = max([1] + [len(str(v)) for v in flat.tolist()])
            return
        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            return  # PyTorch returns here, before sci_mode's override
        mags = np.abs(finite)
        lo, hi = float(mags.min()), float(mags.max())
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        sci = _options["sci_mode"]
        self.sci_mode = (
            (hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4) if sci is None else bool(sci)
        )
        p = self.precision
        if self.sci_mode:
            self.width = max(len(f"{v:.{p}e}") for v in finite.tolist())
        elif self.int_mode:
            self.width = max(len(f"{v:.0f}") + 1 for v in finite.tolist())  # "3." has a dot
        else:
            self.width = max(len(f"{v:.{p}f}") for v in finite.tolist())

    def format(self, value) -> str:
        if not self.floating:
            out = str(value)
        elif self.sci_mode:
            out = f"{value:{self.width}.{self.precision}e}"
        elif self.int_mode:
            out = f"{value:.0f}"
            if not (math.isinf(value) or math.isnan(value)):
                out += "."
        else:
            out = f"{value:.{self.precision}f}"
        return " " * (self.width - len(out)) + out


class _ComplexFormatter:
    """PyTorch's pair of formatters for complex tensors: one for the real parts, one for the
    imaginary parts, each deciding its own notation; "a+bj" with the imaginary part unpadded."""

    def __init__(self, values: np.ndarray) -> None:
        self.re, self.im = _Formatter(values.real, True), _Formatter(values.imag, True)
        # element length as torch's _vector_str counts it: both widths and the "j"
        self.width = self.re.width + self.im.width + 1

    def format(self, value) -> str:
        value = complex(value)
        real_str = self.re.format(value.real)
        imag_str = (self.im.format(value.imag) + "j").lstrip()
        if imag_str[0] in "+-":
            return real_str + imag_str
        return real_str + "+" + imag_str


def _vector(arr, indent: int, summarize: bool, fmt: _Formatter) -> str:
    edge = int(_options["edgeitems"])
    per_line = max(1, int((_options["linewidth"] - indent) // (fmt.width + 2)))
    if summarize and not edge:
        data = ["..."]
    elif summarize and arr.shape[0] > 2 * edge:
        data = ([fmt.format(v) for v in arr[:edge].tolist()] + [" ..."]
                + [fmt.format(v) for v in arr[-edge:].tolist()])  # fmt: skip
    else:
        data = [fmt.format(v) for v in arr.tolist()]
    lines = [", ".join(data[i : i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _body(arr, indent: int, summarize: bool, fmt: _Formatter) -> str:
    """PyTorch's `_tensor_str_with_formatter`: nested brackets, one blank line per extra dim."""
    if arr.ndim == 0:
        return fmt.format(arr.item())
    if arr.ndim == 1:
        return _vector(arr, indent, summarize, fmt)
    edge = int(_options["edgeitems"])
    n = arr.shape[0]
    if summarize and n > 2 * edge:
        head = [_body(arr[i], indent + 1, summarize, fmt) for i in range(edge)]
        tail = [_body(arr[i], indent + 1, summarize, fmt) for i in range(n - edge, n)]
        slices = head + ["..."] + tail
    else:
        slices = [_body(arr[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def format_values(arr: np.ndarray, prefix: str) -> str:
    """The values of a NumPy array as the current options and PyTorch print them (the body).

    "[]" when empty; float16 prints through float32, as in PyTorch.
    """
    if arr.size == 0:
        return "[]"
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    summarize = arr.size > _options["threshold"]
    edge = int(_options["edgeitems"])
    shown = _summarized(arr, edge) if summarize else arr
    if arr.dtype.kind == "c":
        fmt = _ComplexFormatter(shown)
    else:
        fmt = _Formatter(shown, arr.dtype.kind == "f")
    return _body(arr, len(prefix), summarize, fmt)


def print_edgeitems() -> int:
    """The current `edgeitems` option."""
    return int(_options["edgeitems"])


def add_suffixes(body: str, suffixes: list[str], indent: int) -> str:
    """`body` then ", dtype=..." etc., each on a new line when it would pass the line width."""
    parts = [body]
    last = len(body) - body.rfind("\n") + 1
    width = _options["linewidth"]
    for suffix in suffixes:
        if last + len(suffix) + 2 > width:
            parts.append(",\n" + " " * indent + suffix)
            last = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last += len(suffix) + 2
    parts.append(")")
    return "".join(parts)
