"""Reading checkpoints: validate a whole file, then hand its tensors to a model and optimizer.

`_read` parses and checks a file (framing and header through `checkpoint_format`, then the
checksum, the JSON document, aliases and tensor names) and returns its arrays in the saved
order; nothing is loaded anywhere until that has passed. `load` then checks every name, shape
and dtype against the model, and the optimizer's class, groups, shapes, dtypes and step counts
(`_check_optimizer`), and applies both all or nothing (`_apply`). `descent.io` re-exports the
public functions; the file layout is described there.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import backend
from .checkpoint_format import (
    _META_KEY,
    _MODEL,
    _OPT,
    _SUM_KEY,
    FORMAT_VERSION,
    CheckpointError,
    _checksum,
    _doc_problem,
    _int_text,
    _parse,
    _read_arrays,
    _resolve,
    dtype_of_code,
    loads_bounded,
)
from .creation import default_generator
from .tensor import Tensor


class Checkpoint(Mapping):
    """What `load` returns: `state_dict`, `optimizer` state, `meta`, and more.

    Also a read-only mapping with the keys 'model' (= state_dict), 'optimizer' and 'meta'.

    Attributes:
        state_dict: the model's tensors, name -> Tensor.
        optimizer: the optimizer's state_dict in PyTorch's layout, or None.
        meta: the `**meta` given to `save` (tuples come back as tuples).
        model_config: the model's config dict when it had a dataclass `config`, else None.
        model_class: 'module.ClassName' of the saved model, or None.
        rng_state: descent's default generator state at save time (see `restore_rng`).
        path: the file read.
    """

    def __init__(self, state_dict, optimizer, meta, doc, path) -> None:
        self.state_dict: dict[str, Tensor] = state_dict
        self.optimizer: dict | None = optimizer
        self.meta: dict = meta
        model = doc.get("model", {})
        self.model_config: dict | None = model.get("config")
        self.model_class: str | None = model.get("class")
        # a uint8 Tensor; a dict in checkpoints written before 2026-12-05 (set_state takes both)
        self.rng_state: Any = doc.get("rng", {}).get("default")
        self.path: Path = path

    def _as_dict(self) -> dict:
        return {"model": self.state_dict, "optimizer": self.optimizer, "meta": self.meta}

    def __getitem__(self, key: str) -> Any:
        return self._as_dict()[key]

    def __iter__(self):
        return iter(self._as_dict())

    def __len__(self) -> int:
        return 3

    def restore_rng(self) -> None:
        """Set descent's default generator to its state at save time (for exact resume)."""
        if self.rng_state is not None:
            default_generator().set_state(self.rng_state)

    def __repr__(self) -> str:
        opt = "yes" if self.optimizer is not None else "no"
        return (f"Checkpoint({self.path}, tensors={len(self.state_dict)}, optimizer={opt}, "
                f"meta keys={sorted(self.meta)})")  # fmt: skip


# the dtypes a tensor hyperparameter comes back in (never an arbitrary NumPy dtype string)
_TENSOR_DTYPES = ("float16", "float32", "float64", "int32", "int64", "uint8", "int8", "bool")


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        if set(value) == {"__tensor__", "dtype"} and str(value["dtype"]) in _TENSOR_DTYPES:
            # a tensor hyperparameter (checkpoint_write._jsonable): a 0-d or 1-element Tensor
            return Tensor._wrap(np.asarray(value["__tensor__"], dtype=str(value["dtype"])))
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _read(path: str | os.PathLike, verify: bool) -> tuple[dict[str, np.ndarray], dict, Path]:
    """Read and validate a file: arrays by stored name (aliases expanded) and the JSON doc."""
    p = _resolve(path)
    if not p.is_file():
        if p.exists():
            raise CheckpointError(f"{p} is not a regular file (a directory or a device)")
        raise FileNotFoundError(f"load: no checkpoint at {p}")
    buf = p.read_bytes()
    header, metadata, start = _parse(buf, p)
    arrays = _read_arrays(buf, header, start)
    if verify:
        stored = metadata.get(_SUM_KEY)
        if stored is None:
            raise CheckpointError(
                f"{p} has no descent checksum: it was not written by descent.io, or its header "
                "is corrupted. Pass verify=False to read a foreign safetensors file"
            )
        rest = {k: v for k, v in metadata.items() if k != _SUM_KEY}
        if _checksum(arrays, rest) != stored:
            raise CheckpointError(
                f"{p} is corrupted: its SHA-256 does not match the one stored when it was saved "
                "(a flipped bit or a partial overwrite); use an earlier checkpoint"
            )
    doc: dict = {}
    if _META_KEY in metadata:
        try:
            doc = _from_json(loads_bounded(metadata[_META_KEY], "the descent metadata"))
        except ValueError as e:
            raise CheckpointError(f"{p} has corrupted descent metadata ({e})") from None
        problem = _doc_problem(doc)
        if problem is not None:
            raise CheckpointError(f"{p} has corrupted descent metadata: {problem}")
        if doc.get("version", 1) > FORMAT_VERSION:
            raise CheckpointError(
                f"{p} was written by a newer descent (format {doc.get('version')}); "
                f"this one reads format {FORMAT_VERSION}"
            )
    for alias, target in doc.get("aliases", {}).items():
        if target not in arrays:
            raise CheckpointError(f"{p} is corrupted: alias {alias!r} -> missing {target!r}")
        arrays[alias] = arrays[target]
    for name in arrays:
        if name.startswith(_OPT):
            idx, _, key = name[len(_OPT) :].partition(".")
            if _int_text(idx) is None or not key:
                raise CheckpointError(
                    f"{p} is corrupted: optimizer tensor {name!r} is not named "
                    f"'{_OPT}<index>.<key>'"
                )
    order = doc.get("order")
    if (
        isinstance(order, list)
        and all(isinstance(n, str) for n in order)
        and sorted(order) == sorted(arrays)
    ):
        arrays = {name: arrays[name] for name in order}
    return arrays, doc, p


def _place(arr: np.ndarray, map_location: str | None) -> Tensor:
    t = Tensor._wrap(arr)
    if map_location not in (None, "cpu"):
        t = t.to(map_location)
    return t


def load_state_dict(
    path: str | os.PathLike, map_location: str | None = "cpu", verify: bool = True
) -> dict[str, Tensor]:
    """Read a dict name -> Tensor saved by `save_state_dict` (or any safetensors file).

    Args:
        path: the file.
        map_location: 'cpu' or 'cuda'.
        verify: check descent's SHA-256; `False` reads foreign safetensors files (no checksum).

    Raises:
        CheckpointError: truncated, corrupted or non-safetensors file.
    """
    arrays, _, _ = _read(path, verify)
    return {k: _place(v, map_location) for k, v in arrays.items()}


def read_metadata(path: str | os.PathLike, verify: bool = True) -> dict:
    """The JSON metadata of a descent file (the `meta` of `save`/`save_state_dict`)."""
    _, doc, _ = _read(path, verify)
    return doc.get("meta", {})


def _describe_mismatch(
    loaded: Mapping[str, np.ndarray], expected: Mapping[str, Any], strict: bool, what: str
) -> list[str]:
    """Human-readable list of everything that does not fit: names, shapes, dtypes."""
    problems = []
    missing = [k for k in expected if k not in loaded]
    unexpected = [k for k in loaded if k not in expected]
    if strict and missing:
        problems.append(f"missing from the checkpoint: {', '.join(missing)}")
    if strict and unexpected:
        problems.append(f"in the checkpoint but not in the {what}: {', '.join(unexpected)}")
    for k, v in expected.items():
        if k not in loaded:
            continue
        a = loaded[k]
        shape, dtype = tuple(v.shape), np.dtype(v.dtype)
        if tuple(a.shape) != shape:
            problems.append(f"{k}: checkpoint shape {tuple(a.shape)}, {what} shape {shape}")
        elif a.dtype != dtype:
            problems.append(f"{k}: checkpoint dtype {a.dtype}, {what} dtype {dtype}")
    return problems


def _optimizer_state(arrays: dict[str, np.ndarray], doc: dict, map_location) -> dict | None:
    od = doc.get("optimizer")
    if od is None:
        return None
    raw = set(od.get("raw_arrays", []))
    used: set[str] = set()  # the tensors the JSON state refers to (LBFGS's lists of vectors)
    dtypes = od.get("scalar_dtypes", {})
    state: dict[int, dict] = {}
    for k, v in od["state"].items():
        entry = {key: _with_arrays(val, arrays, used, map_location) for key, val in v.items()}
        for key, code in dtypes.get(k, {}).items():  # (a 0-d Tensor written as a number)
            if key in entry and isinstance(entry[key], (int, float)):
                arr = np.asarray(entry[key], dtype=dtype_of_code(code))
                entry[key] = _place(arr, map_location)
        state[int(k)] = entry
    for name, arr in arrays.items():
        if not name.startswith(_OPT) or name in used:
            continue
        idx, key = name[len(_OPT) :].split(".", 1)  # the form was checked by _read
        if name in raw:  # the optimizer kept raw arrays: give it arrays on the right device
            value = backend.to_device(arr, backend.normalize_device(map_location or "cpu"))
        else:
            value = _place(arr, map_location)
        state.setdefault(int(idx), {})[key] = value
    for k, keys in od.get("key_order", {}).items():  # (the saved entry's order of keys)
        entry = state.get(int(k))
        if entry is not None and sorted(keys) == sorted(entry):
            state[int(k)] = {key: entry[key] for key in keys}
    out = dict(od.get("extra", {}))
    out["state"] = dict(sorted(state.items()))
    out["param_groups"] = od["param_groups"]
    return out


def _with_arrays(value: Any, arrays: dict[str, np.ndarray], used: set, map_location) -> Any:
    """A JSON state value with each {"__array__": name} replaced by that tensor of the file
    (checkpoint_write._state_value); the names are noted in `used`."""
    if isinstance(value, list):
        return [_with_arrays(v, arrays, used, map_location) for v in value]
    if isinstance(value, tuple):
        return tuple(_with_arrays(v, arrays, used, map_location) for v in value)
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            name = value["__array__"]
            if not isinstance(name, str) or name not in arrays:
                raise CheckpointError(
                    f"the optimizer state refers to a tensor {name!r} the file does not hold "
                    "(a corrupted or edited file)"
                )
            used.add(name)
            return _place(arrays[name], map_location)
        return {k: _with_arrays(v, arrays, used, map_location) for k, v in value.items()}
    return value


def _step_problem(value: Any) -> str | None:
    """Why an optimizer's `step` count is unusable (negative, fractional, not a number)."""
    if hasattr(value, "shape") and tuple(value.shape) == ():
        value = backend.as_numpy(value._data if isinstance(value, Tensor) else value).item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is a {type(value).__name__}, not a number"
    if not math.isfinite(value) or value != int(value) or value < 0:
        return f"is {value!r}, not a whole number >= 0"
    return None


def _check_optimizer(opt_sd: dict, optimizer: Any, path: Path, saved_class: str | None) -> None:
    """The saved state must fit the optimizer: same class, groups, sizes, shapes and dtypes."""
    problems = []
    cls = f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"
    if saved_class is not None and saved_class != cls:
        problems.append(f"it was saved from a {saved_class}, not a {cls}")
    current = optimizer.state_dict()
    saved_groups, groups = opt_sd["param_groups"], current["param_groups"]
    if len(saved_groups) != len(groups):
        problems.append(f"{len(saved_groups)} param groups in the checkpoint, {len(groups)} in "
                        "the optimizer")  # fmt: skip
    else:
        for g, (sg, cg) in enumerate(zip(saved_groups, groups)):
            if len(sg["params"]) != len(cg["params"]):
                problems.append(f"param group {g}: {len(sg['params'])} parameters in the "
                                f"checkpoint, {len(cg['params'])} in the optimizer")  # fmt: skip
            # Another optimizer's settings (SGD's momentum in an Adam) name another class.
            foreign = sorted(set(sg) - set(cg))
            if foreign and isinstance(cg, Mapping) and len(cg) > 1:
                problems.append(f"param group {g} has settings {foreign} that "
                                f"{type(optimizer).__name__} does not know")  # fmt: skip
    if not problems:
        params = _optimizer_params(optimizer)
        # Saved ids map to the optimizer's parameters in group order, as in PyTorch.
        saved_ids = [i for g in saved_groups for i in g["params"]]
        if len(set(saved_ids)) != len(saved_ids):
            problems.append("a parameter index appears twice in the param groups")
        param_of = dict(zip(saved_ids, params)) if params else {}
        total = sum(int(np.prod(p.shape)) for p in params)  # (LBFGS's flat vectors)
        for idx, entry in opt_sd["state"].items():
            if saved_ids and idx not in saved_ids:
                problems.append(f"state[{idx}] belongs to no parameter of the param groups")
                continue
            if "step" in entry and (why := _step_problem(entry["step"])) is not None:
                problems.append(f"state[{idx}]['step'] {why}")
            p = param_of.get(idx)
            for key, value in entry.items():
                if p is None or not hasattr(value, "shape") or tuple(value.shape) == ():
                    continue
                if not _state_shape_fits(tuple(value.shape), tuple(p.shape), total):
                    problems.append(f"state[{idx}][{key!r}]: checkpoint shape "
                                    f"{tuple(value.shape)}, parameter shape "
                                    f"{tuple(p.shape)}")  # fmt: skip
                elif np.dtype(value.dtype) != np.dtype(p.dtype):
                    problems.append(f"state[{idx}][{key!r}]: checkpoint dtype "
                                    f"{np.dtype(value.dtype)}, parameter dtype "
                                    f"{np.dtype(p.dtype)} (no silent casts)")  # fmt: skip
    if problems:
        raise CheckpointError(
            f"{path}: the optimizer state does not fit the optimizer: " + "; ".join(problems)
        )


def _state_shape_fits(shape: tuple, param_shape: tuple, total: int) -> bool:
    """A state tensor's shape an optimizer can keep for a parameter: the parameter's; the
    parameter's with some dims reduced to 1 (Adafactor's factored row and column moments); or
    one flat vector over all the parameters (LBFGS's directions and gradients)."""
    if shape == param_shape:
        return True
    if len(shape) == len(param_shape) and all(a in (b, 1) for a, b in zip(shape, param_shape)):
        return True
    return shape == (total,)


def _optimizer_params(optimizer: Any) -> list:
    groups = getattr(optimizer, "param_groups", None)
    if not groups:
        return []
    return [p for g in groups for p in g["params"] if hasattr(p, "shape")]


def load(
    path: str | os.PathLike,
    model: Any = None,
    optimizer: Any = None,
    map_location: str | None = "cpu",
    strict: bool = True,
    verify: bool = True,
) -> Checkpoint:
    """Read a checkpoint written by `save`, and load it into `model` and `optimizer` if given.

    All or nothing: the whole file (framing, checksum, metadata, every name, shape and dtype,
    the optimizer's class, settings and step counts) is validated before anything is changed,
    and should applying still fail, what was applied is rolled back. With a bad file or a
    mismatch the model and the optimizer are left exactly as they were.

    Args:
        path: the file, or a directory holding `checkpoint.safetensors`.
        model: a Module to load the weights into (its `load_state_dict`), or None.
        optimizer: an optimizer to load the state into, or None.
        map_location: 'cpu' or 'cuda' for the returned tensors.
        strict: with False, missing and unexpected names are ignored (shapes and dtypes of the
            names both have must still agree), as in PyTorch.
        verify: check the SHA-256 stored at save time.

    Returns:
        A `Checkpoint` (state_dict, optimizer, meta, model_config, rng_state, ...).

    Raises:
        CheckpointError: truncated/corrupted/foreign file, or names, shapes or dtypes that do not
            fit the model or optimizer (all of them are listed).
        FileNotFoundError: no such file.
    """
    arrays, doc, p = _read(path, verify)
    model_arrays = {k[len(_MODEL) :]: v for k, v in arrays.items() if k.startswith(_MODEL)}
    if not doc and not model_arrays:
        model_arrays = dict(arrays)  # a foreign safetensors file: every tensor is a weight
    expected: dict[str, Any] = {}
    if model is not None:
        expected = dict(model.state_dict())
        problems = _describe_mismatch(model_arrays, expected, strict, "model")
        if problems:
            raise CheckpointError(
                f"{p} does not fit the model {type(model).__name__}: " + "; ".join(problems)
            )
    opt_sd = _optimizer_state(arrays, doc, map_location)
    if optimizer is not None:
        if opt_sd is None:
            raise CheckpointError(f"{p} holds no optimizer state (saved without optimizer=)")
        _check_optimizer(opt_sd, optimizer, p, doc["optimizer"].get("class"))
    state_dict = {k: _place(v, map_location) for k, v in model_arrays.items()}
    _apply(p, model, optimizer, state_dict, opt_sd, expected, strict)
    return Checkpoint(state_dict, opt_sd, doc.get("meta", {}), doc, p)


def _apply(p: Path, model, optimizer, state_dict, opt_sd, expected, strict: bool) -> None:
    """Load validated state into the optimizer, then the model; undo the first if the second
    fails. Each `load_state_dict` of descent checks everything before it changes anything."""
    before = optimizer.state_dict() if optimizer is not None and model is not None else None
    if optimizer is not None:
        try:
            optimizer.load_state_dict(opt_sd)
        except (ValueError, TypeError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"{p}: the optimizer refused the saved state: {e}") from None
    if model is None:
        return
    try:
        if strict:
            model.load_state_dict(state_dict)
        else:
            model.load_state_dict({k: v for k, v in state_dict.items() if k in expected},
                                  strict=False)  # fmt: skip
    except BaseException as e:
        if before is not None:
            optimizer.load_state_dict(before)  # all or nothing: undo the optimizer's half
        if isinstance(e, (ValueError, TypeError, KeyError, RuntimeError)):
            raise CheckpointError(f"{p}: the model refused the saved weights: {e}") from None
        raise
