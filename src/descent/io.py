"""Checkpoints: tensors in the safetensors format, everything else as JSON. No pickle anywhere.

File layout (one `.safetensors` file, readable by any safetensors reader):

- tensors: `model.<name>` for the model's state_dict, `optimizer.state.<i>.<key>` for the
  optimizer's per-parameter tensors (PyTorch's layout), or the plain names of `save_state_dict`;
- metadata (safetensors allows only str -> str): `descent` holds one JSON document with the
  format version, the optimizer's param_groups and non-tensor state, the default generator's
  state, the model class and config, and the user's `**meta`; `descent.sha256` is a SHA-256 over
  every tensor's name, dtype, shape and bytes and over the other metadata, so any flipped bit in
  the header or the data is detected on load.

Writes are atomic: the bytes go to a temporary file in the same directory, are flushed and
fsynced, renamed over the target with `os.replace`, and the directory is fsynced. A crash or a
SIGKILL at any moment leaves either the previous checkpoint or the new one, never a mix.

Loading parses the header itself first (sizes, offsets, JSON: `descent.checkpoint_format`) and
raises `CheckpointError` with the reason for a truncated, corrupted or foreign file (a pickle or
a `torch.save` zip is refused, never executed), then verifies the checksum and the document, and
only then hands tensors to the model and the optimizer, after checking every name, shape and
dtype (and the optimizer's class, state dtypes and steps), so a bad file never loads halfway.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import backend
from .checkpoint_format import (  # noqa: F401 - the file format, read defensively; re-exported
    _CODES,
    _DTYPES,
    MAX_JSON_DEPTH,
    CheckpointError,
    _doc_problem,
    _int_text,
    _parse,
    _read_arrays,
    json_depth,
    loads_bounded,
)
from .creation import default_generator
from .nn.parameter import Parameter
from .tensor import Tensor

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.safetensors"  # the file used when `path` is a directory
_META_KEY = "descent"
_SUM_KEY = "descent.sha256"
_MODEL = "model."
_OPT = "optimizer.state."

# ---------------------------------------------------------------------------------------------
# Writing


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; some platforms (Windows) cannot open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_bytes(f, data: bytes) -> None:
    """Write all of `data` to the open file `f` (a seam for the crash tests)."""
    f.write(data)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` so that `path` is either its old content or all of `data`.

    Temporary file in the same directory (same filesystem, so the rename is atomic), flush,
    fsync, `os.replace`, fsync of the directory. On any error the temporary file is removed and
    the old file is untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_bytes(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(directory)
    return path


def _resolve(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    return p / CHECKPOINT_NAME if p.is_dir() else p


def _to_numpy(name: str, value: Any) -> np.ndarray:
    arr = value._data if isinstance(value, Tensor) else value
    if backend.is_cupy_array(arr):
        arr = backend.as_numpy(arr)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"save: {name!r} is a {type(value).__name__}, expected a Tensor or array")
    if arr.dtype not in _CODES:
        raise TypeError(f"save: {name!r} has dtype {arr.dtype}, which safetensors cannot store")
    # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


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


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _checksum(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    """SHA-256 over the tensors (sorted by name: name, dtype, shape, bytes) and the metadata."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(json.dumps([name, _CODES[a.dtype], list(a.shape)]).encode())
        h.update(a.reshape(-1).view(np.uint8))  # a is C-contiguous (_to_numpy)
    h.update(json.dumps(dict(metadata), sort_keys=True).encode())
    return h.hexdigest()


def _serialize(arrays: dict[str, np.ndarray], doc: dict) -> bytes:
    """The safetensors bytes, with the JSON document and the checksum in the metadata."""
    from safetensors.numpy import save as st_save  # the `io` extra; numpy-only path

    metadata = {_META_KEY: json.dumps(doc, allow_nan=True)}
    metadata[_SUM_KEY] = _checksum(arrays, metadata)
    return st_save(arrays, metadata=metadata)


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


def save(path: str | os.PathLike, model: Any, optimizer: Any = None, **meta: Any) -> Path:
    """Save a model (and optionally its optimizer) to one safetensors file, atomically.

    Args:
        path: the file (conventionally `*.safetensors`); a directory means
            `<dir>/checkpoint.safetensors`.
        model: a Module (its `state_dict()` is saved; a dataclass `config` attribute is saved as
            JSON too) or a plain dict name -> Tensor.
        optimizer: an optimizer with `state_dict()` in PyTorch's layout, or None.
        **meta: JSON-serialisable values to keep with the checkpoint: step, config, tokenizer
            dict (`tok.to_dict()`), RNG states (`gen.get_state()`), data state, ...

    Returns:
        The path written.

    Raises:
        TypeError: for a value that is neither a tensor nor JSON-serialisable.
    """
    path = _resolve(path)
    named = {_MODEL + k: _to_numpy(k, v) for k, v in _model_state(model).items()}
    doc: dict[str, Any] = {
        "format": "descent-checkpoint",
        "version": FORMAT_VERSION,
        "model": _model_info(model),
        "rng": {"default": default_generator().get_state()},
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
    return atomic_write_bytes(path, _serialize(arrays, doc))


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
    for idx, entry in sd["state"].items():
        scalars = {}
        for key, value in entry.items():
            if isinstance(value, Tensor) or isinstance(value, np.ndarray) or \
                    backend.is_cupy_array(value):  # fmt: skip
                name = f"{_OPT}{int(idx)}.{key}"
                arrays[name] = _to_numpy(name, value)
                if not isinstance(value, Tensor):
                    raw.append(name)
            else:
                scalars[key] = _jsonable(value, f"optimizer state[{idx}][{key!r}]")
        json_state[str(int(idx))] = scalars
    doc = {
        "state": json_state,
        "param_groups": _jsonable(list(sd["param_groups"]), "optimizer param_groups"),
        "raw_arrays": raw,
        "extra": _jsonable({k: v for k, v in sd.items() if k not in ("state", "param_groups")},
                           "optimizer state_dict"),
    }  # fmt: skip
    return doc, arrays


def save_state_dict(
    path: str | os.PathLike, state_dict: Mapping[str, Any], metadata: Mapping | None = None
) -> Path:
    """Save a plain dict name -> Tensor/array (plus JSON `metadata`) atomically as safetensors."""
    named = {str(k): _to_numpy(str(k), v) for k, v in state_dict.items()}
    arrays, aliases = _dedupe(named)
    doc = {
        "format": "descent-state-dict",
        "version": FORMAT_VERSION,
        "meta": _jsonable(dict(metadata or {}), "metadata"),
        "aliases": aliases,
        "order": list(named),
    }
    return atomic_write_bytes(_resolve(path), _serialize(arrays, doc))


# ---------------------------------------------------------------------------------------------
# Reading


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
        self.rng_state: dict | None = doc.get("rng", {}).get("default")
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
    state: dict[int, dict] = {int(k): dict(v) for k, v in od["state"].items()}
    for name, arr in arrays.items():
        if not name.startswith(_OPT):
            continue
        idx, key = name[len(_OPT) :].split(".", 1)  # the form was checked by _read
        if name in raw:  # the optimizer kept raw arrays: give it arrays on the right device
            value = backend.to_device(arr, backend.normalize_device(map_location or "cpu"))
        else:
            value = _place(arr, map_location)
        state.setdefault(int(idx), {})[key] = value
    out = dict(od.get("extra", {}))
    out["state"] = dict(sorted(state.items()))
    out["param_groups"] = od["param_groups"]
    return out


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
                if tuple(value.shape) != tuple(p.shape):
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


# ---------------------------------------------------------------------------------------------
# descent.save / descent.load: torch.save / torch.load for what people save, without pickle
#
# The object (a state_dict, a dict of state_dicts and numbers, an optimizer's state_dict with
# its int keys, lists, tuples, strings, tensors, NumPy arrays) is written as ONE safetensors
# file: every tensor and array becomes a stored tensor `obj.<n>`, and the structure around them
# is a JSON tree in the `descent` document (key "object"), where a tensor is
# {"__tensor__": "obj.<n>"} and a dict with non-str keys is {"__items__": [[key, value], ...]}.
# Tied tensors (one array under two names) are stored once. The same header checks, checksum
# and atomic write as `save` apply.

_OBJ = "obj."


def _encode(value: Any, arrays: dict, where: str) -> Any:
    """The JSON tree for `value`, filling `arrays` with its tensors (an explicit stack: no
    recursion limit on deep structures is reached by normal state_dicts, but none is needed)."""
    if isinstance(value, Tensor):
        key = f"{_OBJ}{len(arrays)}"
        arrays[key] = value
        node = {"__tensor__": key}
        if value.requires_grad:
            node["requires_grad"] = True
        if type(value).__name__ == "Parameter":
            node["parameter"] = True
        return node
    if isinstance(value, np.ndarray):
        key = f"{_OBJ}{len(arrays)}"
        arrays[key] = value
        return {"__ndarray__": key}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            if any(k.startswith("__") and k.endswith("__") for k in value):
                return {"__items__": [[k, _encode(v, arrays, f"{where}[{k!r}]")]
                                      for k, v in value.items()]}  # fmt: skip
            return {k: _encode(v, arrays, f"{where}[{k!r}]") for k, v in value.items()}
        items = []
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool, type(None))):
                raise TypeError(f"save: {where} has a key of type {type(k).__name__}; keys must "
                                "be str, int, float, bool or None")  # fmt: skip
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]")])
        return {"__items__": items}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    hint = ""
    if hasattr(value, "state_dict"):
        hint = "; save its .state_dict() instead (descent.save never pickles objects)"
    raise TypeError(f"save: {where} is a {type(value).__name__}, which descent.save cannot "
                    f"store{hint}")  # fmt: skip


def _decode(node: Any, arrays: dict, place) -> Any:
    if isinstance(node, list):
        return [_decode(v, arrays, place) for v in node]
    if isinstance(node, tuple):  # the reader already turned {"__tuple__": [...]} into tuples
        return tuple(_decode(v, arrays, place) for v in node)
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node:
        t = place(arrays[node["__tensor__"]])
        if node.get("parameter"):
            return Parameter(t, requires_grad=bool(node.get("requires_grad", True)))
        if node.get("requires_grad"):
            t.requires_grad_(True)
        return t
    if "__ndarray__" in node:
        return backend.as_numpy(arrays[node["__ndarray__"]])
    if "__tuple__" in node and len(node) == 1:
        return tuple(_decode(v, arrays, place) for v in node["__tuple__"])
    if "__items__" in node and len(node) == 1:
        return {_key(k): _decode(v, arrays, place) for k, v in node["__items__"]}
    return {k: _decode(v, arrays, place) for k, v in node.items()}


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def _placer(map_location):
    """A function array -> Tensor for torch.load's map_location (None/'cpu', a device, a dict
    {from: to}, or a callable fn(tensor, 'cpu') -> tensor)."""
    if callable(map_location) and not isinstance(map_location, str):
        return lambda a: map_location(Tensor._wrap(a), "cpu")
    if isinstance(map_location, Mapping):
        targets = set(map(str, map_location.values()))
        if len(targets) > 1:
            raise ValueError(f"load: map_location {dict(map_location)} maps to several devices; "
                             "descent files store CPU tensors, pass one device")  # fmt: skip
        map_location = targets.pop() if targets else None
    dev = None if map_location is None else str(map_location)
    return lambda a: _place(a, dev)


def save_object(obj: Any, f: Any, **kwargs: Any) -> None:
    """descent.save: torch.save's call for state_dicts, dicts of them, tensors, numbers,
    strings, lists and tuples (optimizer state included), as safetensors + JSON; never pickle.

    Args:
        obj: what to save (see above); a Module or an optimizer itself is refused with a hint
            to save its state_dict().
        f: a path, or a binary file object with `write` (e.g. io.BytesIO).
        **kwargs: torch.save's pickle_module / pickle_protocol / _use_new_zipfile_serialization
            are accepted and ignored (nothing is pickled).
    """
    unknown = set(kwargs) - {"pickle_module", "pickle_protocol", "_use_new_zipfile_serialization",
                             "_disable_byteorder_record"}  # fmt: skip
    if unknown:
        raise TypeError(f"save: unexpected arguments {sorted(unknown)}")
    tensors: dict = {}
    tree = _encode(obj, tensors, "obj")
    named = {k: _to_numpy(k, v) for k, v in tensors.items()}
    # tied tensors: compare the source arrays, not the C-contiguous copies
    source = {k: (v._data if isinstance(v, Tensor) else v) for k, v in tensors.items()}
    _, aliases = _dedupe(source)
    arrays = {k: v for k, v in named.items() if k not in aliases}
    doc = {"version": FORMAT_VERSION, "object": _jsonable(tree, "obj"), "aliases": aliases,
           "order": list(named)}  # fmt: skip
    data = _serialize(arrays, doc)
    if hasattr(f, "write"):
        f.write(data)
    else:
        atomic_write_bytes(f, data)


def load_object(f: Any, map_location: Any = None, weights_only: bool | None = None,
                **kwargs: Any) -> Any:
    """descent.load: read what `descent.save` wrote (torch.load's call).

    Args:
        f: a path, or a binary file object with `read`.
        map_location: where tensors go: None/'cpu', 'cuda', a device, a {from: to} dict, or a
            callable fn(tensor, location) -> tensor.
        weights_only: accepted; every descent load is weights-only (nothing is unpickled), so
            True and False behave alike.
        **kwargs: torch.load's pickle_module / mmap are accepted and ignored.

    Raises:
        CheckpointError: a truncated, corrupted or foreign file (a torch.save zip or a pickle
            is refused, never executed), or a descent checkpoint written by `descent.io.save`
            (load that with descent.io.load).
    """
    del weights_only
    unknown = set(kwargs) - {"pickle_module", "mmap", "encoding"}
    if unknown:
        raise TypeError(f"load: unexpected arguments {sorted(unknown)}")
    if hasattr(f, "read"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "object.safetensors"
            path.write_bytes(f.read())
            arrays, doc, p = _read(path, verify=True)
    else:
        arrays, doc, p = _read(f, verify=True)
    if "object" not in doc:
        raise CheckpointError(
            f"{p} was not written by descent.save (it is a descent.io checkpoint or a plain "
            "safetensors file): read it with descent.io.load / descent.io.load_state_dict"
        )
    return _decode(doc["object"], arrays, _placer(map_location))
