"""descent.load for files written by torch.save: tensors, containers and numbers, no code.

Two layouts are read (PyTorch 2.13's torch/serialization.py writes them):

* the zip archive (torch.save's default): `<top>/data.pkl` (the pickled object), one record
  `<top>/data/<key>` per storage (raw bytes, stored uncompressed, 64-byte aligned),
  `<top>/byteorder` ("little" or "big"), `<top>/version`, `<top>/.data/serialization_id`;
  `<top>` is the file's stem ("archive" for a file object);
* the legacy stream (`_use_new_zipfile_serialization=False`): pickles of the magic number, the
  protocol version 1001 and a sys-info dict, the object pickle, the pickled list of storage
  keys, then per key an int64 element count and the raw little-endian bytes.

In both, the object pickle names storages through persistent ids
`("storage", <storage type>, key, location, numel[, view])` and tensors through
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`.

Safety: the pickles are interpreted by checkpoint_pickle.unpickle (no `pickle` module), and a
global resolves only through the allow-list of checkpoint_torch_objects.py, a fixed table of
descent's own builders. Every storage record's size is checked against data.pkl before it is
read, and every tensor's (offset, size, stride) against its storage.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint_format import CheckpointError
from .checkpoint_pickle import Builder, unpickle
from .checkpoint_torch_objects import Reader, Storage, place_storages, python3_name

ZIP_MAGIC = b"PK\x03\x04"
# torch.serialization.MAGIC_NUMBER (0x1950A86A20F9469CFC6C) as protocol-2 pickle: PROTO 2, LONG1
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
MAGIC_NUMBER = 0x1950A86A20F9469CFC6C


# What zipfile raises on damaged, crafted or unsupported archives (NotImplementedError: an
# unknown compression; RuntimeError: encryption; zlib.error: a broken deflate stream).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
)


# ---- the two layouts ---------------------------------------------------------------------
def _raw_to_array(raw, dtype: np.dtype, byteorder: str) -> np.ndarray:
    """Bytes of little- or big-endian elements as a writable native array."""
    if byteorder == "big" and dtype.itemsize > 1 and dtype.kind in "iufcb":
        return np.frombuffer(raw, dtype=dtype.newbyteorder(">")).astype(dtype)
    if byteorder == "big" and dtype.itemsize > 1:  # bfloat16 / float16-likes: swap bytes
        a = np.frombuffer(raw, dtype=np.dtype(f">u{dtype.itemsize}"))
        return a.astype(f"<u{dtype.itemsize}").view(dtype)
    return np.frombuffer(raw if isinstance(raw, bytearray) else bytearray(raw), dtype=dtype)


def _load_zip(f: Any, where: str, mmap_path: str | None) -> tuple[Reader, bytes]:
    try:
        zf = zipfile.ZipFile(f)
        names = zf.namelist()
        archive_size = zf.fp.seek(0, os.SEEK_END)
    except _ZIP_ERRORS as e:
        raise CheckpointError(
            f"{where} is a damaged or truncated zip archive ({e}); save it again with torch.save"
        ) from None
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if not pkl:
        kind = (
            "a TorchScript archive (torch.jit.save); load it in PyTorch and save its state_dict()"
            if any(n.endswith("constants.pkl") for n in names)
            else "a zip archive without <top>/data.pkl"
        )
        raise CheckpointError(f"{where} is {kind}: not a torch.save file descent can read")
    top = pkl[0][: -len("data.pkl")]
    byteorder = "little"
    if f"{top}byteorder" in names:
        try:
            byteorder = zf.read(f"{top}byteorder").decode("ascii", "replace")
        except _ZIP_ERRORS as e:
            raise CheckpointError(f"{where}: the byteorder record is damaged ({e})") from None
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{where}: unknown byteorder {byteorder!r}")

    def read_storage(key: str, dtype: np.dtype, numel: int):
        try:
            return _read_record(key, dtype, numel)
        except CheckpointError:
            raise
        except _ZIP_ERRORS as e:
            raise CheckpointError(f"{where}: storage record {key!r} is damaged ({e})") from None

    def _read_record(key: str, dtype: np.dtype, numel: int):
        name = f"{top}data/{key}"
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise CheckpointError(
                f"{where} has no storage record {name!r} (data.pkl refers to it): the archive "
                "is incomplete; save the file again with torch.save"
            ) from None
        nbytes = numel * dtype.itemsize
        if info.file_size != nbytes:
            raise CheckpointError(
                f"{where}: storage record {name!r} has {info.file_size} bytes,"
                f" data.pkl says {numel} x {dtype.itemsize} = {nbytes}"
            )
        if (
            mmap_path is not None
            and info.compress_type == zipfile.ZIP_STORED
            and (byteorder == "little" or dtype.itemsize == 1)
        ):
            return _mmap_record(mmap_path, info, dtype, numel, where)
        _check_size(info, archive_size, where)
        raw = bytearray(nbytes)  # read straight into it (zipfile checks the CRC at the end)
        with zf.open(info) as member:
            got = member.readinto(raw)
        if got != nbytes:
            raise CheckpointError(f"{where}: storage record {name!r} is truncated")
        return _raw_to_array(raw, dtype, byteorder)

    try:
        _check_size(zf.getinfo(pkl[0]), archive_size, where)
        data = zf.read(pkl[0])
    except CheckpointError:
        raise
    except _ZIP_ERRORS as e:
        raise CheckpointError(f"{where}: {pkl[0]} is damaged ({e})") from None
    return Reader(f"{where} ({pkl[0]})", read_storage, byteorder), data


def _check_size(info: zipfile.ZipInfo, archive_size: int, where: str) -> None:
    """Refuse a record whose declared size the archive cannot hold: more than the archive
    when stored, or past deflate's ~1032:1 ratio when compressed (a zip bomb), before any
    memory is allocated for it."""
    limit = (
        archive_size
        if info.compress_type == zipfile.ZIP_STORED
        else 1100 * max(info.compress_size, 1)
    )
    if info.file_size > limit or info.compress_size > archive_size:
        raise CheckpointError(
            f"{where}: record {info.filename!r} claims {info.file_size} bytes, more than the "
            f"archive of {archive_size} bytes can hold; the file is damaged or crafted"
        )


def _mmap_record(path: str, info: zipfile.ZipInfo, dtype, numel: int, where: str):
    """np.memmap (copy-on-write, as torch's MAP_PRIVATE) over an uncompressed zip member."""
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
    if len(local) != 30 or local[:4] != ZIP_MAGIC:
        raise CheckpointError(f"{where}: the local header of {info.filename!r} is damaged")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    if numel == 0:
        return np.empty(0, dtype)
    if start + numel * dtype.itemsize > os.path.getsize(path):
        raise CheckpointError(f"{where} is truncated inside {info.filename!r}")
    return np.memmap(path, dtype=dtype, mode="c", offset=start, shape=(numel,))


def _load_legacy(buf: bytes, where: str) -> Any:
    """The pre-zip stream: magic, protocol, sys info, object, storage keys, raw storages."""
    reader = Reader(where, lambda key, dtype, numel: None)
    pos = 0
    header = []
    for _ in range(3):
        value, pos = unpickle(
            buf, reader.find_global, reader.persistent_load, reader.build, where, pos
        )
        header.append(value)
    if header[0] != MAGIC_NUMBER or header[1] != 1001:
        raise CheckpointError(
            f"{where}: not a torch.save legacy file (bad magic number or protocol {header[1]!r})"
        )
    pending: dict[str, tuple] = {}

    def later(key: str, dtype: np.dtype, numel: int):
        # the data follow the object pickle: allocate now, fill below (views see the fill)
        if numel * dtype.itemsize > len(buf):
            raise CheckpointError(
                f"{where}: storage {key!r} claims {numel} elements, more than the file holds"
            )
        pending[key] = (dtype, numel)
        return np.empty(numel, dtype)

    reader.read_storage = later
    obj, pos = unpickle(buf, reader.find_global, reader.persistent_load, reader.build, where, pos)
    keys, pos = unpickle(buf, reader.find_global, reader.persistent_load, reader.build, where, pos)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{where}: the storage key list is damaged")
    for key in keys:
        if key not in pending:
            raise CheckpointError(
                f"{where}: storage {key!r} is in the data section but no tensor uses it"
            )
        dtype, numel = pending.pop(key)
        if pos + 8 > len(buf):
            raise CheckpointError(f"{where} is truncated before storage {key!r}")
        (count,) = struct.unpack("<q", buf[pos : pos + 8])
        nbytes = numel * dtype.itemsize
        if count != numel or pos + 8 + nbytes > len(buf):
            raise CheckpointError(
                f"{where} is truncated or damaged at storage {key!r} "
                f"({count} elements recorded, {numel} expected)"
            )
        arr = reader.storages[key].array
        arr[...] = _raw_to_array(buf[pos + 8 : pos + 8 + nbytes], dtype, "little")
        pos += 8 + nbytes
    if pending:
        raise CheckpointError(
            f"{where}: no data for storage(s) {sorted(pending)} (a missing "
            "storage record); the file is incomplete"
        )
    return reader, obj


HEAD_BYTES = 32  # enough for the zip magic and the legacy magic pickle in protocols 2-5


def is_torch_file(head: bytes) -> bool:
    """Whether `head` (the first HEAD_BYTES bytes) starts a torch.save file: a zip, or the
    legacy stream, whose first pickle is MAGIC_NUMBER (protocol 2: LEGACY_MAGIC; 4 and 5 add
    a FRAME), decoded here by the restricted interpreter with no global allowed."""
    if head[:4] == ZIP_MAGIC or head[: len(LEGACY_MAGIC)] == LEGACY_MAGIC:
        return True
    if head[:1] != b"\x80":
        return False

    def refuse(*args: Any) -> Any:
        raise CheckpointError("not the magic number")

    try:
        value, _ = unpickle(head, refuse, refuse, refuse, "head")
    except CheckpointError:
        return False
    return type(value) is int and value == MAGIC_NUMBER


def load_torch(
    f: Any, map_location: Any = None, weights_only: bool | None = None, mmap: bool | None = None
) -> Any:
    """Read a torch.save file (zip or legacy) into descent objects. See docs/checkpoints.md,
    "Reading PyTorch's files".

    Args:
        f: a path, or a binary file object (seekable, e.g. io.BytesIO).
        map_location: None (each storage's saved device), a device name or device, a dict
            {saved: target}, or a callable fn(storage, location) -> Tensor or None.
        weights_only: accepted; loading is always weights-only.
        mmap: map uncompressed storage records from the file (copy-on-write) instead of
            reading them; needs a path, as in torch.

    Raises:
        CheckpointError: a damaged file, an unknown opcode, a missing storage, or a global
            outside the allow-list (nothing from the file is ever executed).
    """
    del weights_only
    path = None if hasattr(f, "read") else os.fspath(f)
    where = path if path is not None else f"<{type(f).__name__}>"
    if mmap and path is None:
        raise ValueError("load: mmap=True needs a file path, not a file object (as torch.load)")
    if path is not None:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    else:
        start = f.tell()
        head = f.read(HEAD_BYTES)
        f.seek(start)
    if head[:4] == ZIP_MAGIC:
        reader, data = _load_zip(path if path is not None else f, where, path if mmap else None)
        obj, _ = unpickle(
            data, reader.find_global, reader.persistent_load, reader.build, reader.where
        )
    else:
        buf = Path(path).read_bytes() if path is not None else f.read()
        reader, obj = _load_legacy(buf, where)
    _refuse_bare_storages(obj, where)
    place_storages(reader.storages, map_location, where)
    return obj


def unsafe_globals(f: Any) -> list[str]:
    """The globals a torch.save file names that descent would refuse (torch's
    get_unsafe_globals_in_checkpoint). The pickle is walked with the same interpreter, but
    every global becomes a placeholder builder: nothing is built, read or called."""
    names: list[str] = []
    reader = Reader("", None)
    placeholder = object()

    def find_global(module: str, name: str) -> Any:
        try:
            reader.find_global(module, name)
        except CheckpointError:
            full = ".".join(python3_name(module, name))
            if full not in names:
                names.append(full)
        return Builder(f"{module}.{name}", lambda *a, **k: placeholder, newobj=True)

    def ignore(*args: Any) -> Any:
        return placeholder

    path = None if hasattr(f, "read") else os.fspath(f)
    where = path if path is not None else f"<{type(f).__name__}>"
    buf = Path(path).read_bytes() if path is not None else f.read()
    if buf[:4] == ZIP_MAGIC:
        _, data = _load_zip(io.BytesIO(buf), where, None)
        unpickle(data, find_global, ignore, ignore, where)
    else:
        pos = 0
        for _ in range(4):  # magic, protocol, sys info, the object
            _, pos = unpickle(buf, find_global, ignore, ignore, where, pos)
    return names


def _refuse_bare_storages(obj: Any, where: str) -> None:
    """A storage outside a tensor (torch.save(t.untyped_storage())) would reach the user as
    descent's internal record: refuse it by name. An explicit stack (no recursion) over the
    containers; tensors are leaves."""
    stack, seen = [obj], set()
    while stack:
        value = stack.pop()
        if isinstance(value, Storage):
            raise CheckpointError(
                f"{where} holds a bare storage (torch.save of a tensor's .untyped_storage() or "
                ".storage()); descent reads storages only as tensors' memory: save the tensor"
            )
        if isinstance(value, (dict, list, tuple, set, frozenset)) and id(value) not in seen:
            seen.add(id(value))
            stack.extend(value.values() if isinstance(value, dict) else value)
            if isinstance(value, dict):
                stack.extend(value)


__all__ = ["load_torch", "is_torch_file", "unsafe_globals"]
