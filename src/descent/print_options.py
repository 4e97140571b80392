"""How tensors print: PyTorch's `set_printoptions` (precision, threshold, edgeitems, linewidth,
sci_mode, profile) over NumPy's `array2string`, which `Tensor.__repr__` calls through
`format_values`.

The options are process-wide, as PyTorch's `PRINT_OPTS`. The defaults are PyTorch's "default"
profile: 4 digits, summarize ("...") above 1000 elements showing 3 at each edge, 80 columns.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["format_values", "set_printoptions"]

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
            (as NumPy does). Like PyTorch, every call sets it (None unless given).
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


def format_values(arr: np.ndarray, prefix: str) -> str:
    """The values of a NumPy array as the current options print them (the repr's body)."""
    threshold = _options["threshold"]
    precision = int(_options["precision"])
    kwargs = {}
    sci = _options["sci_mode"]
    if sci is not None and arr.dtype.kind == "f":
        if sci:
            kwargs["formatter"] = {"float_kind": lambda v: np.format_float_scientific(
                v, precision=precision, unique=False)}  # fmt: skip
        else:
            kwargs["suppress_small"] = True
            kwargs["formatter"] = {"float_kind": lambda v: np.format_float_positional(
                v, precision=precision, unique=False, fractional=True)}  # fmt: skip
    return np.array2string(
        arr, separator=", ", precision=precision, prefix=prefix,
        threshold=int(min(threshold, np.iinfo(np.int64).max)), edgeitems=int(_options["edgeitems"]),
        max_line_width=int(_options["linewidth"]), **kwargs,
    )  # fmt: skip
