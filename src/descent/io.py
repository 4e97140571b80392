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

This module is the public API and the one place that writes files. The work is in:

    checkpoint_format  the file format: names, header parsing (defensive), checksum
    checkpoint_write   model / optimizer / state_dict -> bytes
    checkpoint_read    file -> validated arrays -> load into a model and an optimizer
    serialization      descent.save / descent.load of nested state (torch.save's call)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# descent.io is where users and tests find the whole checkpoint API, the format's limits and
# its parser (the fuzz tests drive `_parse` / `_read_arrays`): re-exported here.
from .checkpoint_format import (  # noqa: F401 - re-exported
    _CODES,
    _DTYPES,
    CHECKPOINT_NAME,
    FORMAT_VERSION,
    MAX_JSON_DEPTH,
    CheckpointError,
    _checksum,
    _doc_problem,
    _int_text,
    _parse,
    _read_arrays,
    _resolve,
    json_depth,
    loads_bounded,
)
from .checkpoint_read import Checkpoint, load, load_state_dict, read_metadata  # noqa: F401
from .checkpoint_write import checkpoint_bytes, state_dict_bytes
from .serialization import _load_object as load_object  # noqa: F401 - descent.load
from .serialization import _object_bytes as object_bytes


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
    return atomic_write_bytes(_resolve(path), checkpoint_bytes(model, optimizer, meta))


def save_state_dict(
    path: str | os.PathLike, state_dict: Mapping[str, Any], metadata: Mapping | None = None
) -> Path:
    """Save a plain dict name -> Tensor/array (plus JSON `metadata`) atomically as safetensors."""
    return atomic_write_bytes(_resolve(path), state_dict_bytes(state_dict, metadata))


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
    data = object_bytes(obj, **kwargs)
    if hasattr(f, "write"):
        f.write(data)
    else:
        atomic_write_bytes(f, data)
