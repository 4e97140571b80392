"""Writing checkpoints: model and optimizer state -> the bytes of one safetensors file.

`descent.io.save` / `save_state_dict` / `descent.save` turn their arguments into bytes here and
write them with `io.atomic_write_bytes`. Tensors become C-contiguous NumPy arrays (`_to_numpy`),
tied ones are stored once (`_dedupe`), everything else becomes JSON (`_jsonable`; tuples are
tagged so that they come back as tuples), and `_serialize` adds the JSON document and the
checksum to safetensors' metadata. The file layout is described in `descent.io`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import backend
from .checkpoint_format import _META_KEY, _MODEL, _OPT, _SUM_KEY, FORMAT_VERSION, _checksum, code_of
from .creation import default_generator
from .tensor import Tensor


def _to_numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, Tensor) and value.layout.name == "jagged":
        raise TypeError(
            f"save: {name!r} is a jagged nested tensor (shape {tuple(value.shape)}); "
            "checkpoints store dense tensors only: save x.values() and x.offsets() as two "
            "tensors (descent.nested.nested_tensor_from_jagged rebuilds it)"
        )
    if isinstance(value, Tensor) and value.layout.name != "strided":
        raise TypeError(
            f"save: {name!r} is a sparse tensor (layout={value.layout}, shape "
            f"{tuple(value.shape)}); checkpoints store dense tensors only: save x.to_dense(), "
            "or x.coalesce().indices() and .values() as two tensors"
        )
    arr = value._data if isinstance(value, Tensor) else value
    if backend.is_cupy_array(arr):
        arr = backend.as_numpy(arr)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"save: {name!r} is a {type(value).__name__}, expected a Tensor or array")
    if code_of(arr.dtype) is None:
        raise TypeError(f"save: {name!r} has dtype {arr.dtype}, which safetensors cannot store")
    # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


# the largest 1-D uint8 tensor kept in the JSON metadata (PyTorch's CPU generator state is 5056
# bytes, descent's 45); larger tensors belong in the model or optimizer state
_MAX_BYTE_STATE = 8192


def _jsonable(value: Any, where: str) -> Any:
    """`value` with tuples tagged (so they come back as tuples) and NumPy scalars unwrapped."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_jsonable(v, where) for v in value]}
    if isinstance(value, list):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, Tensor) and value.numel() <= 1 and value.dtype.kind in "fiub":
        # a tensor hyperparameter (PyTorch's `lr=torch.tensor(1e-3)`, tensor betas): its number
        arr = backend.as_numpy(value._data)
        return {"__tensor__": arr.tolist(), "dtype": str(arr.dtype)}
    if isinstance(value, Tensor) and value.ndim == 1 and value.dtype == np.uint8 and \
            value.numel() <= _MAX_BYTE_STATE:  # fmt: skip
        # a generator state (`gen.get_state()`, `torch.get_rng_state()`: 1-D uint8) in the JSON
        # metadata as its byte values: a checkpoint resumes its draws without pickle
        return {"__tensor__": backend.as_numpy(value._data).tolist(), "dtype": "uint8"}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"save: {where} has a non-str key {k!r}; JSON needs str keys")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    hint = " (use .to_dict() / .get_state() / .state_dict())" if hasattr(value, "__dict__") else ""
    raise TypeError(
        f"save: {where} is a {type(value).__name__}, which is not JSON-serialisable{hint}"
    )


def _serialize(arrays: dict[str, np.ndarray], doc: dict) -> bytes:
    """The safetensors bytes, with the JSON document and the checksum in the metadata."""
    from safetensors.numpy import save as st_save  # the `io` extra; numpy-only path

    metadata = {_META_KEY: json.dumps(doc, allow_nan=True)}
    metadata[_SUM_KEY] = _checksum(arrays, metadata)
    low = {k: code_of(a.dtype) for k, a in arrays.items() if a.dtype.num >= 256}
    if not low:
        return st_save(arrays, metadata=metadata)
    # safetensors.numpy cannot write ml_dtypes' bfloat16 and float8: their bits go in as uint16
    # or uint8 and the header is rewritten to say BF16 / F8_* (same sizes, so the data offsets
    # stand).
    bits = {1: np.uint8, 2: np.uint16}
    raw = st_save({k: a.view(bits[a.itemsize]) if k in low else a for k, a in arrays.items()},
                  metadata=metadata)  # fmt: skip
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    for k, code in low.items():
        header[k]["dtype"] = code
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data to 8 bytes
    return len(text).to_bytes(8, "little") + text + raw[8 + n :]


def _dedupe(named: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Store tied tensors (one array under several names) once; return the aliases."""
    seen: dict[int, str] = {}
    arrays, aliases = {}, {}
    for name, arr in named.items():
        key = id(arr)
        if key in seen and arrays[seen[key]].shape == arr.shape:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            arrays[name] = arr
    return arrays, aliases


def _model_state(model: Any) -> dict[str, Any]:
    if isinstance(model, Mapping):
        return dict(model)
    if not hasattr(model, "state_dict"):
        raise TypeError(f"save: model must have state_dict(), got {type(model).__name__}")
    return dict(model.state_dict())


def _model_info(model: Any) -> dict:
    info: dict[str, Any] = {}
    if not isinstance(model, Mapping):
        info["class"] = f"{type(model).__module__}.{type(model).__qualname__}"
        cfg = getattr(model, "config", None)
        if cfg is not None:
            import dataclasses

            if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
                cfg = dataclasses.asdict(cfg)
            if isinstance(cfg, Mapping):
                try:
                    info["config"] = _jsonable(cfg, "model.config")
                except TypeError:
                    pass  # an exotic config is skipped; pass it in **meta if it matters
    return info


def checkpoint_bytes(model: Any, optimizer: Any, meta: Mapping[str, Any]) -> bytes:
    """The file `descent.io.save(path, model, optimizer, **meta)` writes (see its docstring)."""
    named = {_MODEL + k: _to_numpy(k, v) for k, v in _model_state(model).items()}
    doc: dict[str, Any] = {
        "format": "descent-checkpoint",
        "version": FORMAT_VERSION,
        "model": _model_info(model),
        "rng": {"default": _jsonable(default_generator().get_state(), "rng")},
        "meta": _jsonable(meta, "meta"),
    }
    if optimizer is not None:
        sd = optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer
        opt_doc, opt_arrays = _split_optimizer_state(sd)
        if hasattr(optimizer, "state_dict"):  # refused on load into another optimizer class
            opt_doc["class"] = f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"
        named.update(opt_arrays)
        doc["optimizer"] = opt_doc
    arrays, aliases = _dedupe(named)
    doc["aliases"] = aliases
    doc["order"] = list(named)  # safetensors sorts its header; keep the state_dict's order
    return _serialize(arrays, doc)


def _split_optimizer_state(sd: Mapping) -> tuple[dict, dict[str, np.ndarray]]:
    """PyTorch-layout optimizer state -> (JSON part, tensors by prefixed name)."""
    if not isinstance(sd, Mapping) or "state" not in sd or "param_groups" not in sd:
        raise TypeError(
            "save: optimizer.state_dict() must be a dict with 'state' and 'param_groups' "
            "(PyTorch's layout)"
        )
    arrays: dict[str, np.ndarray] = {}
    json_state: dict[str, dict] = {}
    raw: list[str] = []  # entries that were raw arrays, not Tensors: restored as arrays
    scalar_dtypes: dict[str, dict[str, str]] = {}  # the dtype of each 0-d Tensor written as a
    key_order: dict[str, list[str]] = {}  # JSON number (read back as a 0-d Tensor of it)
    for idx, entry in sd["state"].items():
        scalars = {}
        for key, value in entry.items():
            if isinstance(value, Tensor) and value.ndim == 0 and \
                    code_of(value.dtype) is not None and value.dtype.kind != "c":  # fmt: skip
                # "step" and other per-parameter numbers (0-d Tensors, PyTorch's layout) are
                # written as JSON numbers, as descent always wrote them: the file format stays,
                # `_step_problem` checks them, and the reader makes 0-d Tensors of their dtype
                # again (older files: load_state_dict does, in the scalar dtype).
                scalars[key] = _number_of(value, key)
                scalar_dtypes.setdefault(str(int(idx)), {})[key] = code_of(value.dtype)
            elif isinstance(value, Tensor) or isinstance(value, np.ndarray) or \
                    backend.is_cupy_array(value):  # fmt: skip
                name = f"{_OPT}{int(idx)}.{key}"
                arrays[name] = _to_numpy(name, value)
                if not isinstance(value, Tensor):
                    raw.append(name)
            else:
                scalars[key] = _state_value(value, f"{_OPT}{int(idx)}.{key}", arrays,
                                            f"optimizer state[{idx}][{key!r}]")  # fmt: skip
        json_state[str(int(idx))] = scalars
        if len(scalars) < len(entry):  # (tensors and numbers mixed: the entry's key order)
            key_order[str(int(idx))] = [str(k) for k in entry]
    doc = {
        "scalar_dtypes": scalar_dtypes,
        "key_order": key_order,
        "state": json_state,
        "param_groups": _jsonable(list(sd["param_groups"]), "optimizer param_groups"),
        "raw_arrays": raw,
        "extra": _jsonable({k: v for k, v in sd.items() if k not in ("state", "param_groups")},
                           "optimizer state_dict"),
    }  # fmt: skip
    return doc, arrays


def _state_value(value: Any, name: str, arrays: dict[str, np.ndarray], where: str) -> Any:
    """An optimizer state value that is not a Tensor itself (LBFGS's lists of direction
    vectors and 0-d Tensors, a tuple, a dict): JSON, with every Tensor inside it stored as a
    tensor of the file under `name.<position>` and referred to as {"__array__": its name}, so
    that it comes back with its dtype, shape and bits (never pickled)."""
    if isinstance(value, Tensor):
        arrays[name] = _to_numpy(name, value)
        return {"__array__": name}
    if isinstance(value, list):
        return [_state_value(v, f"{name}.{i}", arrays, where) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [_state_value(v, f"{name}.{i}", arrays, where)
                              for i, v in enumerate(value)]}  # fmt: skip
    if isinstance(value, Mapping) and all(isinstance(k, str) and k.isidentifier() for k in value):
        return {k: _state_value(v, f"{name}.{k}", arrays, f"{where}[{k!r}]")
                for k, v in value.items()}  # fmt: skip
    return _jsonable(value, where)


def _number_of(value: Tensor, key: str) -> int | float | bool:
    """A 0-d Tensor's number; a whole "step" count as an int (the format's, and JSON's exact)."""
    number = backend.as_numpy(value._data).item()
    if key == "step" and isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def state_dict_bytes(state_dict: Mapping[str, Any], metadata: Mapping | None) -> bytes:
    """The file `descent.io.save_state_dict` writes: the tensors under their own names."""
    named = {str(k): _to_numpy(str(k), v) for k, v in state_dict.items()}
    arrays, aliases = _dedupe(named)
    doc = {
        "format": "descent-state-dict",
        "version": FORMAT_VERSION,
        "meta": _jsonable(dict(metadata or {}), "metadata"),
        "aliases": aliases,
        "order": list(named),
    }
    return _serialize(arrays, doc)
