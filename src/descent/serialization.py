"""descent.save / descent.load: torch.save / torch.load for what people save, without pickle.

The object (a state_dict, a dict of state_dicts and numbers, an optimizer's state_dict with
its int keys, lists, tuples, strings, tensors, NumPy arrays) is written as ONE safetensors
file: every tensor and array becomes a stored tensor `obj.<n>`, and the structure around them
is a JSON tree in the `descent` document (key "object"), where a tensor is
{"__tensor__": "obj.<n>"} (with "complex": true when it is stored as its (..., 2) real pairs:
safetensors has no complex dtype), a dict with non-str keys is
{"__items__": [[key, value], ...]} and an OrderedDict (a state_dict) is
{"__ordered__": [[key, value], ...]}, so it loads as an OrderedDict, as torch.load's does.
Tied tensors (one array under two names) are stored once; a tensor whose memory lies inside
another saved tensor (`b[2:5]` saved with `b`) is stored as a view of it and loads as one
(`_share_views`: torch.save keeps storages). The same header checks, checksum
and atomic write as `descent.io.save` apply (`checkpoint_write`, `checkpoint_read`,
`io.atomic_write_bytes`).
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict as _OrderedDict
from collections.abc import Mapping as _Mapping
from pathlib import Path as _Path
from typing import Any

import numpy as _np

from . import backend as _backend
from .checkpoint_format import FORMAT_VERSION as _FORMAT_VERSION
from .checkpoint_format import CheckpointError as _CheckpointError
from .checkpoint_read import _place, _read
from .checkpoint_safe_globals import (  # noqa: F401 - torch.serialization's names
    add_safe_globals,
    clear_safe_globals,
    get_safe_globals,
    safe_globals,
)
from .checkpoint_write import _dedupe, _jsonable, _serialize, _to_numpy
from .nn.parameter import Parameter as _Parameter
from .tensor import Tensor as _Tensor

_OBJ = "obj."


def _encode(value: Any, arrays: dict, where: str, memo: dict | None = None) -> Any:
    """The JSON tree for `value`, filling `arrays` with its tensors (an explicit stack: no
    recursion limit on deep structures is reached by normal state_dicts, but none is needed).

    `memo` maps id(tensor) to its node: one Tensor object met twice is stored once and loads
    as one object again (pickle's memo in torch.save: `load(...)["a"] is load(...)["b"]`)."""
    memo = {} if memo is None else memo
    if type(value).__name__ in ("QuantizedTensor", "QuantizedDType", "qscheme"):
        return _encode_quantized(value, arrays)  # descent.quantization (docs/quantization.md)
    if isinstance(value, _Tensor):
        if id(value) in memo:
            return memo[id(value)][1]
        key = f"{_OBJ}{len(arrays)}"
        arrays[key] = value
        node = {"__tensor__": key}
        memo[id(value)] = (value, node)  # (value: keeps the id from being reused meanwhile)
        if value._data.dtype.kind == "c":  # safetensors has no complex dtype: (..., 2) reals
            arrays[key] = _as_real(value._data)
            node["complex"] = True
        if value.requires_grad:
            node["requires_grad"] = True
        if type(value).__name__ == "Parameter":
            node["parameter"] = True
        return node
    if isinstance(value, _np.ndarray):
        key = f"{_OBJ}{len(arrays)}"
        if value.dtype.kind == "c":
            arrays[key] = _as_real(value)
            return {"__ndarray__": key, "complex": True}
        arrays[key] = value
        return {"__ndarray__": key}
    if isinstance(value, _OrderedDict):
        # a state_dict is an OrderedDict, and torch.load gives one back (pickle keeps the type)
        items = _encode(dict(value), arrays, where, memo)
        return {"__ordered__": items.get("__items__", list(map(list, items.items())))}
    if isinstance(value, _Mapping):
        if all(isinstance(k, str) for k in value):
            if any(k.startswith("__") and k.endswith("__") for k in value):
                return {"__items__": [[k, _encode(v, arrays, f"{where}[{k!r}]", memo)]
                                      for k, v in value.items()]}  # fmt: skip
            return {k: _encode(v, arrays, f"{where}[{k!r}]", memo) for k, v in value.items()}
        items = []
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool, type(None))):
                raise TypeError(f"save: {where} has a key of type {type(k).__name__}; keys must "
                                "be str, int, float, bool or None")  # fmt: skip
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]", memo)])
        return {"__items__": items}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, where, memo) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}[{i}]", memo) for i, v in enumerate(value)]
    if isinstance(value, _np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    hint = ""
    if hasattr(value, "state_dict"):
        hint = "; save its .state_dict() instead (descent.save never pickles objects)"
    raise TypeError(f"save: {where} is a {type(value).__name__}, which descent.save cannot "
                    f"store{hint}")  # fmt: skip


def _encode_quantized(value: Any, arrays: dict) -> dict:
    """A quantized tensor as its integer representation and affine parameters (per-channel
    scales and zero points as arrays); a quantized dtype or scheme by its name."""
    if type(value).__name__ != "QuantizedTensor":
        return {"__quantized__": value.name}
    st = value._data
    key = f"{_OBJ}{len(arrays)}"
    arrays[key] = st.ints
    node = {"__qtensor__": key, "dtype": st.qdtype.name, "qscheme": st.qscheme.name}
    if st.axis is None:
        node.update(scale=float(st.scale), zero_point=int(st.zero_point))
    else:
        arrays[f"{key}.scale"], arrays[f"{key}.zero_point"] = st.scale, st.zero_point
        node["axis"] = int(st.axis)
    return node


def _decode_quantized(node: dict, arrays: dict) -> Any:
    """The inverse of `_encode_quantized`, checking what a file may say: a known dtype and
    scheme name, integers of that dtype, parameters of the right shapes."""
    from .quantization import qtensor  # noqa: PLC0415 - loads with the first quantized value

    def bad(why: str):
        return _CheckpointError(f"load: a quantized entry {why}")

    if "__quantized__" in node:
        name = node["__quantized__"]
        found = qtensor._QDTYPES.get(name) or qtensor._QSCHEMES.get(name)
        if found is None:
            raise bad(f"names {name!r}, which is no quantized dtype or scheme")
        return found
    key, dt, sc = node.get("__qtensor__"), node.get("dtype"), node.get("qscheme")
    if key not in arrays or dt not in qtensor._QDTYPES or sc not in qtensor._QSCHEMES:
        raise bad(f"is malformed ({sorted(node)})")
    qdtype, scheme = qtensor._QDTYPES[dt], qtensor._QSCHEMES[sc]
    ints = _backend.as_numpy(arrays[key])
    if ints.dtype != qdtype.storage_dtype:
        raise bad(f"of dtype {dt} holds {ints.dtype} integers")
    if "axis" in node:
        axis = node["axis"]
        scale = _backend.as_numpy(arrays.get(f"{key}.scale", _np.zeros(0))).astype(_np.float64)
        zero_point = _backend.as_numpy(arrays.get(f"{key}.zero_point", _np.zeros(0)))
        fits = isinstance(axis, int) and 0 <= axis < ints.ndim
        if not fits or scale.shape != (ints.shape[axis],) or zero_point.shape != scale.shape:
            raise bad(f"has per-channel parameters that do not fit its shape {ints.shape}")
        storage = qtensor.QuantizedStorage(ints, qdtype, scheme, scale,
                                           zero_point.astype(_np.int64), axis)  # fmt: skip
    else:
        scale, zero_point = node.get("scale"), node.get("zero_point")
        if not isinstance(scale, (int, float)) or not isinstance(zero_point, int):
            raise bad("has no number scale and zero_point")
        storage = qtensor.QuantizedStorage(ints, qdtype, scheme, float(scale), zero_point)
    return _Tensor._wrap(storage)


def _decode(node: Any, arrays: dict, place, memo: dict | None = None) -> Any:
    memo = {} if memo is None else memo  # tensor key -> the Tensor made for it (see _encode)
    if isinstance(node, list):
        return [_decode(v, arrays, place, memo) for v in node]
    if isinstance(node, tuple):  # the reader already turned {"__tuple__": [...]} into tuples
        return tuple(_decode(v, arrays, place, memo) for v in node)
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node:
        key = node["__tensor__"]
        if key in memo:
            return memo[key]
        if "view_of" in node:  # a view of another saved tensor (_share_views)
            t = _view_of(_decode(node["view_of"], arrays, place, memo), node)
        else:
            a = arrays[key]
            t = place(_as_complex(a) if node.get("complex") else a)
        if node.get("parameter"):
            t = _Parameter(t, requires_grad=bool(node.get("requires_grad", True)))
        elif node.get("requires_grad"):
            t.requires_grad_(True)
        memo[key] = t
        return t
    if "__qtensor__" in node or "__quantized__" in node:
        return _decode_quantized(node, arrays)
    if "__ndarray__" in node:
        a = _backend.as_numpy(arrays[node["__ndarray__"]])
        return _as_complex(a) if node.get("complex") else a
    if "__tuple__" in node and len(node) == 1:
        return tuple(_decode(v, arrays, place, memo) for v in node["__tuple__"])
    if "__ordered__" in node and len(node) == 1:
        return _OrderedDict((_key(k), _decode(v, arrays, place, memo))
                            for k, v in node["__ordered__"])  # fmt: skip
    if "__items__" in node and len(node) == 1:
        return {_key(k): _decode(v, arrays, place, memo) for k, v in node["__items__"]}
    return {k: _decode(v, arrays, place, memo) for k, v in node.items()}


def _share_views(tensors: dict, memo: dict) -> None:
    """torch.save keeps storages, so a saved tensor that views another saved one (a slice and
    its base, `x` and `x.t()`) loads as a view of it again: a write through one shows in the
    other, and storage_offset() is kept. Here a tensor whose memory lies inside a C-contiguous
    host tensor of its dtype saved in the same object is stored as {"view_of": that tensor's
    node, "view": [offset, shape, strides]} (in elements) instead of its own array. Tensors
    that merely sit in one buffer side by side (parameters in an optimizer's flat buffer)
    stay separate, as torch's separate storages."""
    nodes = {node["__tensor__"]: node for _, node in memo.values()}
    found = []
    for key, t in tensors.items():
        node, a = nodes.get(key), getattr(t, "_data", None)
        if node is None or node.get("complex") or not isinstance(a, _np.ndarray) or not a.size:
            continue
        if type(t).__name__ == "QuantizedTensor" or any(st < 0 for st in a.strides):
            continue
        lo, hi = _byte_bounds(a)
        found.append((key, a, lo, hi))
    if len(found) < 2:
        return
    found.sort(key=lambda f: f[2] - f[3])  # the widest first: a base before its views
    bases: list = []
    for key, a, lo, hi in found:
        for bkey, b, blo, bhi in bases:
            if b.dtype != a.dtype or not (blo <= lo and hi <= bhi):
                continue
            item = a.itemsize
            if (lo - blo) % item or any(st % item for st in a.strides):
                continue
            node = nodes[key]
            node["view_of"] = nodes[bkey]
            node["view"] = [(lo - blo) // item, list(a.shape), [st // item for st in a.strides]]
            del tensors[key]
            break
        else:
            if a.flags.c_contiguous:
                bases.append((key, a, lo, hi))


def _byte_bounds(a) -> tuple[int, int]:
    """The first byte of an array (strides >= 0) and one past its last."""
    start = a.__array_interface__["data"][0]
    return start, start + sum((n - 1) * st for n, st in zip(a.shape, a.strides)) + a.itemsize


def _view_of(base: _Tensor, node: dict) -> _Tensor:
    """The tensor `_share_views` stored as a view: `base`'s memory, as torch's set_(storage,
    offset, size, stride) gives it (a tensor of its own, not an autograd view of base)."""
    offset, shape, strides = node["view"]
    return base.detach().as_strided(tuple(shape), tuple(strides), base.storage_offset() + offset)


def _as_real(a):
    """A complex array as its (..., 2) real pairs (view_as_real's layout), on the host."""
    a = _np.ascontiguousarray(_backend.as_numpy(a))
    return a.view(a.real.dtype).reshape(a.shape + (2,))


def _as_complex(a):
    """The inverse of `_as_real`: (..., 2) real pairs as a complex array of shape (...)."""
    a = _np.ascontiguousarray(_backend.as_numpy(a))
    return a.view(_np.complex64 if a.dtype == _np.float32 else _np.complex128).reshape(a.shape[:-1])


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def _placer(map_location):
    """A function array -> Tensor for torch.load's map_location (None/'cpu', a device, a dict
    {from: to}, or a callable fn(tensor, 'cpu') -> tensor)."""
    if callable(map_location) and not isinstance(map_location, str):
        return lambda a: map_location(_Tensor._wrap(a), "cpu")
    if isinstance(map_location, _Mapping):
        targets = set(map(str, map_location.values()))
        if len(targets) > 1:
            raise ValueError(f"load: map_location {dict(map_location)} maps to several devices; "
                             "descent files store CPU tensors, pass one device")  # fmt: skip
        map_location = targets.pop() if targets else None
    dev = None if map_location is None else str(map_location)
    return lambda a: _place(a, dev)


def _object_bytes(obj: Any, **kwargs: Any) -> bytes:
    """The file `descent.save(obj, f, **kwargs)` writes (see `descent.io.save_object`)."""
    unknown = set(kwargs) - {"pickle_module", "pickle_protocol", "_use_new_zipfile_serialization",
                             "_disable_byteorder_record"}  # fmt: skip
    if unknown:
        raise TypeError(f"save: unexpected arguments {sorted(unknown)}")
    tensors: dict = {}
    memo: dict = {}
    tree = _encode(obj, tensors, "obj", memo)
    _share_views(tensors, memo)
    named = {k: _to_numpy(k, v) for k, v in tensors.items()}
    # tied tensors: compare the source arrays, not the C-contiguous copies
    source = {k: (v._data if isinstance(v, _Tensor) else v) for k, v in tensors.items()}
    _, aliases = _dedupe(source)
    arrays = {k: v for k, v in named.items() if k not in aliases}
    doc = {"version": _FORMAT_VERSION, "object": _jsonable(tree, "obj"), "aliases": aliases,
           "order": list(named)}  # fmt: skip
    return _serialize(arrays, doc)


def get_unsafe_globals_in_checkpoint(f: Any) -> list[str]:
    """The "module.name" globals a torch.save file refers to that descent.load would refuse
    (neither descent's allow-list nor add_safe_globals'); nothing in the file is built."""
    from .checkpoint_torch import unsafe_globals  # noqa: PLC0415

    return unsafe_globals(f)


def _is_torch_file(f: Any) -> bool:
    """Whether f (a path or a seekable binary file) starts like a torch.save file."""
    from .checkpoint_torch import HEAD_BYTES, is_torch_file  # noqa: PLC0415

    if hasattr(f, "read"):
        if not hasattr(f, "seek"):
            return False
        start = f.tell()
        head = f.read(HEAD_BYTES)
        f.seek(start)
    else:
        try:
            with open(f, "rb") as fh:
                head = fh.read(HEAD_BYTES)
        except OSError:
            return False  # (a directory or a missing file: _read reports it)
    return is_torch_file(head)


def _load_object(
    f: Any, map_location: Any = None, weights_only: bool | None = None, **kwargs: Any
) -> Any:
    """descent.load: read what `descent.save` wrote (torch.load's call).

    Args:
        f: a path, or a binary file object with `read`.
        map_location: where tensors go: None/'cpu', 'cuda', a device, a {from: to} dict, or a
            callable fn(tensor, location) -> tensor.
        weights_only: accepted; every descent load is weights-only (nothing from a file is
            ever executed), so True and False behave alike.
        **kwargs: torch.load's pickle_module / encoding are accepted and ignored; mmap=True
            maps a torch.save zip's storages from the file (copy-on-write).

    A file written by torch.save (its zip or its legacy format) is read by
    `descent.checkpoint_torch.load_torch`: tensors, containers, numbers and strings only
    (docs/checkpoints.md, "Reading PyTorch's files").

    Raises:
        CheckpointError: a truncated, corrupted or foreign file (a plain pickle is refused,
            never executed; a torch.save file naming a global outside descent's allow-list
            too), or a descent checkpoint written by `descent.io.save` (load that with
            descent.io.load).
    """
    unknown = set(kwargs) - {"pickle_module", "mmap", "encoding"}
    if unknown:
        raise TypeError(f"load: unexpected arguments {sorted(unknown)}")
    if _is_torch_file(f):  # torch.save's zip or legacy file: checkpoint_torch, no pickle module
        from .checkpoint_torch import load_torch  # noqa: PLC0415 - only for torch's files

        return load_torch(f, map_location, weights_only, mmap=kwargs.get("mmap"))
    if hasattr(f, "read"):
        with tempfile.TemporaryDirectory() as tmp:
            path = _Path(tmp) / "object.safetensors"
            path.write_bytes(f.read())
            arrays, doc, p = _read(path, verify=True)
    else:
        arrays, doc, p = _read(f, verify=True)
    if "object" not in doc:
        raise _CheckpointError(
            f"{p} was not written by descent.save (it is a descent.io checkpoint or a plain "
            "safetensors file): read it with descent.io.load / descent.io.load_state_dict"
        )
    return _decode(doc["object"], arrays, _placer(map_location))
