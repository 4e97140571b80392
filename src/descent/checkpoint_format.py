"""The checkpoint file format, read defensively: safetensors framing and descent's JSON document.

`descent.io` writes and loads checkpoints; this module holds what reading a file needs before
any tensor reaches a model -- so a crafted file is refused with a `CheckpointError` that says
why, never a TypeError, RecursionError or OverflowError from deep inside:

* `_parse`: the 8-byte header size, the UTF-8 JSON header (nesting bounded by MAX_JSON_DEPTH,
  no NaN/Infinity), every tensor entry strictly typed (a known dtype, a list of JSON integers
  for the shape, two integer offsets), byte spans that tile the data section exactly;
* `json_depth` / `loads_bounded`: JSON nesting measured by a linear scan, without recursion;
* `_doc_problem`: the structure of descent's document (meta, model, rng, aliases, optimizer).

It also holds what writing and reading share: the names in the file (`FORMAT_VERSION`, the
metadata keys, the tensor-name prefixes), `_resolve` (a directory means its
`checkpoint.safetensors`) and `_checksum`.

`descent.io` re-exports every name, so `descent.io.CheckpointError` is this module's class.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .float8 import SAFETENSORS as FLOAT8_CODES

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.safetensors"  # the file used when `path` is a directory
_META_KEY = "descent"  # metadata key of the JSON document
_SUM_KEY = "descent.sha256"  # metadata key of the checksum
_MODEL = "model."  # tensor-name prefix of the model's state_dict entries
_OPT = "optimizer.state."  # tensor-name prefix of the optimizer's per-parameter tensors

# safetensors dtype codes <-> NumPy dtypes (the ones NumPy can hold).
_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}  # fmt: skip
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
# ml_dtypes' dtypes (loaded on first use: docs/bfloat16.md, docs/dtypes.md) by name: bfloat16 is
# safetensors' BF16, float8 its F8_* codes (float8_e8m0fnu has none).
_ML_DTYPES = {"BF16": "bfloat16", **{code: name for name, code in FLOAT8_CODES.items()}}
_ML_CODES = {name: code for code, name in _ML_DTYPES.items()}
_DTYPES.update(_ML_DTYPES)


def dtype_of_code(code: str) -> np.dtype:
    """The NumPy dtype of a safetensors dtype code (BF16, F8_*: ml_dtypes' dtypes)."""
    name = _ML_DTYPES.get(code)
    if name is not None:
        from .dtypes import as_dtype  # noqa: PLC0415 - loads ml_dtypes on first use

        return as_dtype(name)
    return np.dtype(_DTYPES[code])


def code_of(dtype: np.dtype) -> str | None:
    """The safetensors dtype code of a NumPy dtype, or None when safetensors has none."""
    if dtype.num >= 256:  # ml_dtypes' (float8_e5m2 is of NumPy kind "f", the others "V")
        return _ML_CODES.get(dtype.name)
    return _CODES.get(dtype)


_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
# JSON nesting deeper than this is refused before parsing: Python's json module recurses once
# per level and a crafted header of ~1000 levels would end in a RecursionError. descent's own
# documents nest about 6 levels.
MAX_JSON_DEPTH = 64
# A JSON string literal (the unrolled-loop form, linear time): removed before counting brackets.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupted, not a descent/safetensors file, or does not fit
    the model or optimizer it is loaded into."""


def _resolve(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    return p / CHECKPOINT_NAME if p.is_dir() else p


def _checksum(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    """SHA-256 over the tensors (sorted by name: name, dtype, shape, bytes) and the metadata."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(json.dumps([name, code_of(a.dtype), list(a.shape)]).encode())
        h.update(a.reshape(-1).view(np.uint8))  # a is C-contiguous (_to_numpy)
    h.update(json.dumps(dict(metadata), sort_keys=True).encode())
    return h.hexdigest()


def _sniff_foreign(head: bytes, path: Path) -> None:
    """Refuse pickles and torch.save files by their first bytes, with a useful message.

    A descent.io checkpoint is safetensors. A torch.save file (a zip, or the legacy stream
    that starts with a pickled magic number) is read by descent.load instead, through
    descent's own restricted reader (checkpoint_torch.py); any other pickle is refused."""
    if head[:4] == b"PK\x03\x04":
        kind = "a zip archive (torch.save writes these; they contain pickles)"
    elif head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5 and head[8:9] != b"{":
        # (a safetensors header of 0x480-0x5ff bytes also starts with 80 04/05: its JSON
        # header then opens at byte 8)
        kind = "a pickle file"
    else:
        return
    raise CheckpointError(
        f"{path} is {kind}, not a descent checkpoint. descent never unpickles (unpickling can "
        "run arbitrary code); if torch.save wrote it, descent.load (torch.load) reads its "
        "tensors without running code; otherwise convert it to safetensors "
        "(e.g. safetensors.torch.save_file) and load that"
    )


def json_depth(text: str) -> int:
    """The deepest nesting of `[` and `{` in JSON `text`, found without recursion.

    String literals are blanked first (brackets inside them do not nest), then the running sum
    of +1 per opening and -1 per closing bracket is taken with NumPy: linear time, no stack.
    """
    blanked = _JSON_STRING.sub('""', text).encode("utf-8", "replace")
    b = np.frombuffer(blanked, dtype=np.uint8)
    if b.size == 0:
        return 0
    step = np.zeros(b.size, dtype=np.int32)
    step[(b == ord("[")) | (b == ord("{"))] = 1
    step[(b == ord("]")) | (b == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed here (a number of the safetensors header)")


def loads_bounded(text: str, what: str, allow_nan: bool = True) -> Any:
    """`json.loads` that refuses nesting deeper than MAX_JSON_DEPTH (instead of recursing).

    Raises:
        ValueError: invalid JSON, too deep, or NaN/Infinity when `allow_nan` is False; the
            message starts with `what`.
    """
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{what} is nested {depth} levels deep (at most {MAX_JSON_DEPTH})")
    kwargs = {} if allow_nan else {"parse_constant": _refuse_constant}
    try:
        return json.loads(text, **kwargs)
    except RecursionError:  # cannot happen below MAX_JSON_DEPTH; kept as a last guard
        raise ValueError(f"{what} is nested too deeply") from None
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{what} is not valid JSON: {e}") from None


def _is_int(v: Any) -> bool:
    """A JSON integer: an int that is not a bool (True is an int in Python)."""
    return type(v) is int


def _parse(buf: bytes, path: Path) -> tuple[dict, dict, int]:
    """Validate the safetensors framing: returns (tensor entries, metadata, data start).

    Every field is type-checked (integers must be JSON integers: no strings, floats, booleans or
    Infinity), every tensor's byte span must match its shape and dtype, and the spans must tile
    the data section exactly, so no later step can be surprised by a crafted header.
    """
    if len(buf) < 8:
        raise CheckpointError(
            f"{path} is truncated: {len(buf)} bytes, fewer than the 8-byte safetensors header size"
        )
    _sniff_foreign(buf[:9], path)
    (n,) = struct.unpack("<Q", buf[:8])
    if n > _MAX_HEADER or 8 + n > len(buf):
        raise CheckpointError(
            f"{path} is truncated or not a safetensors file: its header claims {n} bytes but the "
            f"file has {len(buf) - 8} after the size field"
        )
    try:
        text = buf[8 : 8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path} has a corrupted header (not UTF-8: {e})") from None
    try:
        header = loads_bounded(text, "the header", allow_nan=False)
    except ValueError as e:
        raise CheckpointError(f"{path} has a corrupted header ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a corrupted header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise CheckpointError(f"{path} has corrupted metadata (must map str to str)")
    data_len = len(buf) - 8 - n
    spans = []
    for name, info in header.items():
        shape = info.get("shape") if isinstance(info, dict) else None
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("dtype"), str)
            or info["dtype"] not in _DTYPES
            or not isinstance(shape, list)
            or not all(_is_int(s) and s >= 0 for s in shape)
            or not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(v) and v >= 0 for v in offsets)
            or offsets[0] > offsets[1]
        ):
            raise CheckpointError(
                f"{path} has a corrupted entry for tensor {name!r} (needs a known dtype, a list "
                f"of non-negative integer sizes and two integer offsets): {str(info)[:120]}"
            )
        dtype = dtype_of_code(info["dtype"])
        begin, end = offsets
        if end - begin != math.prod(shape) * dtype.itemsize:
            raise CheckpointError(
                f"{path} is corrupted: tensor {name!r} of shape {tuple(shape)} and dtype "
                f"{dtype} needs {math.prod(shape) * dtype.itemsize} bytes but its offsets give "
                f"{end - begin}"
            )
        spans.append((begin, end, name))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise CheckpointError(f"{path} is corrupted: tensor {name!r} starts at byte {begin}, "
                                  f"expected {pos} (overlap or gap)")  # fmt: skip
        pos = end
    if pos != data_len:
        raise CheckpointError(
            f"{path} is truncated or has trailing bytes: the tensors need {pos} data bytes, "
            f"the file holds {data_len}"
        )
    return header, metadata, 8 + n


def _read_arrays(buf: bytes, header: dict, start: int) -> dict[str, np.ndarray]:
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = dtype_of_code(info["dtype"])
        count = (end - begin) // dtype.itemsize
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=start + begin)
        out[name] = arr.reshape(tuple(info["shape"])).copy()  # own, writable memory
    return out


def _doc_problem(doc: Any) -> str | None:
    """What is wrong with the `descent` JSON document's structure, or None when it is sound.

    Only the fields that loading relies on are checked; `meta` may hold anything JSON can.
    """
    if not isinstance(doc, dict):
        return f"the descent metadata is a {type(doc).__name__}, not a JSON object"
    version = doc.get("version", 1)
    if not _is_int(version) or version < 1:
        return f"format version {version!r} is not a positive integer"
    for key in ("model", "rng", "meta", "aliases"):
        if not isinstance(doc.get(key, {}), dict):
            return f"'{key}' is a {type(doc[key]).__name__}, not an object"
    model = doc.get("model", {})
    if not isinstance(model.get("config", {}), (dict, type(None))):
        return "'model.config' is not an object"
    if not isinstance(model.get("class", ""), (str, type(None))):
        return "'model.class' is not a string"
    rng = doc.get("rng", {}).get("default", {})  # a uint8 tensor (a dict before 2026-12-05)
    is_bytes = getattr(rng, "dtype", None) == np.uint8 and getattr(rng, "ndim", 0) == 1
    if not (is_bytes or isinstance(rng, (dict, type(None)))):
        return "'rng.default' is neither a generator state (uint8 bytes) nor an object"
    if not all(isinstance(v, str) for v in doc.get("aliases", {}).values()):
        return "'aliases' must map names to names"
    od = doc.get("optimizer")
    if od is None:
        return None
    if not isinstance(od, dict):
        return f"'optimizer' is a {type(od).__name__}, not an object"
    state, groups = od.get("state"), od.get("param_groups")
    if not isinstance(state, dict) or not all(
        isinstance(v, dict) and _int_text(k) is not None for k, v in state.items()
    ):
        return "'optimizer.state' must map parameter indices to objects"
    if not isinstance(groups, list) or not all(
        isinstance(g, dict)
        and isinstance(g.get("params"), list)
        and all(_is_int(i) and i >= 0 for i in g["params"])
        for g in groups
    ):
        return "'optimizer.param_groups' must be a list of objects with integer 'params' lists"
    if not isinstance(od.get("raw_arrays", []), list) or not isinstance(od.get("extra", {}), dict):
        return "'optimizer.raw_arrays' / 'optimizer.extra' have the wrong type"
    if not isinstance(od.get("class", ""), str):
        return "'optimizer.class' is not a string"
    dtypes = od.get("scalar_dtypes", {})  # (0-d state Tensors' dtypes, safetensors' codes)
    if not isinstance(dtypes, dict) or not all(
        isinstance(v, dict) and all(code in _DTYPES for code in v.values())
        for v in dtypes.values()
    ):
        return "'optimizer.scalar_dtypes' must map indices to objects of dtype codes"
    order = od.get("key_order", {})
    if not isinstance(order, dict) or not all(
        isinstance(v, list) and all(isinstance(k, str) for k in v) for v in order.values()
    ):
        return "'optimizer.key_order' must map indices to lists of keys"
    return None


def _int_text(text: str) -> int | None:
    """'12' -> 12; anything but a plain non-negative decimal -> None."""
    return int(text) if isinstance(text, str) and text.isdigit() and text.isascii() else None
