"""The objects inside a torch.save file, built by descent: the allow-list, storages, tensors.

checkpoint_torch.py reads the file's layout; this module says what its pickle may build.
A GLOBAL resolves only through `_ALLOWED`, a fixed table of descent's own builders (torch's
`weights_only=True` allow-list is the guide); REDUCE/NEWOBJ can call only those builders
(checkpoint_pickle.Builder) and BUILD only sets what `Reader.build` allows. Anything else
(`posix.system`, `builtins.eval`, a model class) is refused before anything is called.

Tensors: a storage (persistent id `("storage", <storage type>, key, location, numel[, view])`)
is one 1-D array per key; `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, hooks)` makes a view of it, checked to stay inside the storage, so tied weights
and slices share memory as after torch.load and a crafted stride cannot read foreign memory.
map_location places each storage once and re-points its views (`place_storages`).
"""

from __future__ import annotations

import _compat_pickle
import collections
from typing import Any

import numpy as np

from . import backend
from .checkpoint_format import CheckpointError
from .checkpoint_numpy import allowed as numpy_allowed
from .checkpoint_numpy import build_numpy
from .checkpoint_pickle import Builder
from .checkpoint_safe_globals import build_user, user_global
from .devices import device as _device
from .dtypes import bfloat16_dtype, float8_dtype
from .dtypes import dtype as descent_dtype
from .nn.parameter import Parameter
from .tensor import Size, Tensor

_NEVER = (
    "descent never runs code from a file: only tensors, containers, numbers and strings "
    "are read (weights_only=False cannot change that)"
)


def _dtypes() -> dict[str, Any]:
    """PyTorch storage class name -> NumPy dtype (ml_dtypes for bfloat16 and float8)."""
    table = {
        "FloatStorage": np.float32,
        "DoubleStorage": np.float64,
        "HalfStorage": np.float16,
        "ByteStorage": np.uint8,
        "CharStorage": np.int8,
        "ShortStorage": np.int16,
        "IntStorage": np.int32,
        "LongStorage": np.int64,
        "BoolStorage": np.bool_,
        "ComplexFloatStorage": np.complex64,
        "ComplexDoubleStorage": np.complex128,
        "UInt16Storage": np.uint16,
        "UInt32Storage": np.uint32,
        "UInt64Storage": np.uint64,
        "UntypedStorage": np.uint8,
    }
    table = {k: np.dtype(v) for k, v in table.items()}
    table["BFloat16Storage"] = np.dtype(bfloat16_dtype())
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
        table[f"Float8_{name[6:]}Storage"] = np.dtype(float8_dtype(name))
    return table


_DTYPE_NAMES = (
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
    "float",
    "double",
    "half",
    "long",
    "int",
    "short",
    "cfloat",
    "cdouble",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
)


class StorageType:
    """What a storage class GLOBAL (torch.FloatStorage, ...) means here: only its dtype.
    It is not a Builder, so a pickle cannot call it."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name, self.dtype = name, dtype


class Storage:
    """One storage of the file: a 1-D array of `numel` elements that every tensor of this key
    views, so tied weights and slices share memory as after torch.load. `views` lists
    (tensor, offset, size, stride, conj/neg ops) to re-point them if map_location moves the
    array."""

    __slots__ = ("key", "dtype", "numel", "location", "array", "views")

    def __init__(self, key: str, dtype: np.dtype, numel: int, location: str, array) -> None:
        self.key, self.dtype, self.numel, self.location = key, dtype, numel, location
        self.array = array
        self.views: list = []


class _TensorType:
    """torch.Tensor / torch.nn.Parameter as the `new_type` of _rebuild_from_type_v2."""

    __slots__ = ("parameter",)

    def __init__(self, parameter: bool) -> None:
        self.parameter = parameter


def _view(storage: Any, offset: Any, size: Any, stride: Any, where: str) -> np.ndarray:
    """storage's elements at offset + sum(i_k * stride_k) as an array of shape `size`: a view,
    checked to stay inside the storage (a crafted stride must not read foreign memory)."""
    if not isinstance(storage, Storage):
        raise CheckpointError(
            f"{where}: a tensor is built on {type(storage).__name__}, not a storage record"
        )
    ints = [offset, *size, *stride] if isinstance(size, tuple) and isinstance(stride, tuple) else 0
    if not ints or not all(type(v) is int and v >= 0 for v in ints) or len(size) != len(stride):
        raise CheckpointError(
            f"{where}: tensor geometry offset={offset!r} size={size!r} "
            f"stride={stride!r} is not non-negative integers of one rank"
        )
    if all(size):
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.numel:
            raise CheckpointError(
                f"{where}: a tensor of size {size}, stride {stride}, offset {offset} reaches "
                f"element {last} of storage {storage.key!r}, which has {storage.numel}; the "
                "file is corrupted"
            )
    a = storage.array
    xp = backend.get_array_module(a)
    isz = a.itemsize
    if a.dtype.isbuiltin == 2:  # ml_dtypes (bfloat16, float8): as_strided's array interface
        # loses them ('<f1' is not understood), so stride unsigned ints of the same size
        v = xp.lib.stride_tricks.as_strided(
            a.view(f"u{isz}")[offset:], size, tuple(s * isz for s in stride)
        )
        return v.view(a.dtype)
    return xp.lib.stride_tricks.as_strided(a[offset:], size, tuple(s * isz for s in stride))


def python3_name(module: str, name: str) -> tuple[str, str]:
    """A global's Python 3 name: protocol-2 pickles write Python 2's (__builtin__.set,
    commands.call); the standard library's own tables map them (_compat_pickle holds data
    only, no unpickler)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return {"torch.tensor": "torch._tensor"}.get(module, module), name


def _bit_ops(metadata: Any, where: str) -> tuple[str, ...]:
    """torch's tensor metadata (_rebuild_tensor_v2's last argument): the conjugate and
    negative bits of a lazy x.conj() / torch._neg_view(x); the stored bytes are the
    underlying values. Anything else is refused."""
    if not metadata:
        return ()
    if not isinstance(metadata, dict) or not set(metadata) <= {"conj", "neg"}:
        raise CheckpointError(f"{where}: tensor metadata {metadata!r:.100} is refused. {_NEVER}")
    return tuple(k for k in ("conj", "neg") if metadata.get(k) is True)


def _apply(ops: tuple[str, ...], a):
    """The value of a conj/neg-bit tensor over the view `a`: descent has no lazy bits, so
    it is computed (a new array, no longer sharing the storage's memory)."""
    if "conj" in ops:
        a = backend.get_array_module(a).conj(a)
    if "neg" in ops:
        a = -a
    return a


class Reader:
    """The builders of one load: storages by key and the tensors built over them."""

    def __init__(self, where: str, read_storage, byteorder: str = "little") -> None:
        self.where = where
        self.read_storage = read_storage  # (key, dtype, numel) -> 1-D array, or None (later)
        self.byteorder = byteorder
        self.storages: dict[str, Storage] = {}
        # id(tensor) -> (storage, tensor, geometry) of the tensors built, for Parameters
        self.made: dict[int, tuple] = {}

    # ---- pickle hooks ------------------------------------------------------------------
    def find_global(self, module: str, name: str) -> Any:
        module, name = python3_name(module, name)
        full = f"{module}.{name}"
        if full in _ALLOWED:
            return _ALLOWED[full](self)
        storage_dtypes = _storage_dtypes()
        if module in ("torch", "torch.storage", "torch.cuda") and name in storage_dtypes:
            return StorageType(name, storage_dtypes[name])
        if module == "torch" and name in _DTYPE_NAMES:
            import descent  # noqa: PLC0415 - the dtype objects live on the package

            return getattr(descent, name)
        user = user_global(full)  # descent.serialization.add_safe_globals: the user's choice
        if user is not None:
            return user
        hint = ""
        if "sparse" in name or "qtensor" in name or "quantize" in name or "nested" in module:
            hint = " (descent does not read sparse, quantized or nested tensors from torch files)"
        raise CheckpointError(
            f"{self.where} refers to the Python global {full!r}, which is not allowed{hint}. "
            f"{_NEVER}. If this is a pickled model object rather than a state_dict, load it in "
            "PyTorch and save model.state_dict() instead; if it is a class of yours that you "
            "trust, allow it with descent.serialization.add_safe_globals"
        )

    def persistent_load(self, pid: Any) -> Storage:
        if (
            not isinstance(pid, tuple)
            or len(pid) not in (5, 6)
            or pid[0] not in ("storage", b"storage")
        ):
            raise CheckpointError(f"{self.where}: persistent id {pid!r:.100} is not a storage")
        stype, key, location, numel = pid[1:5]
        key = key.decode("ascii") if isinstance(key, bytes) else key
        location = location.decode("ascii") if isinstance(location, bytes) else location
        if not isinstance(stype, StorageType) or not isinstance(key, str):
            raise CheckpointError(f"{self.where}: storage {pid!r:.100} has no storage type")
        if type(numel) is not int or numel < 0 or not isinstance(location, str):
            raise CheckpointError(f"{self.where}: storage {key!r} has a bad size or location")
        storage = self.storages.get(key)
        if storage is None:
            array = self.read_storage(key, stype.dtype, numel)
            storage = self.storages[key] = Storage(key, stype.dtype, numel, location, array)
        elif storage.dtype != stype.dtype or storage.numel != numel:
            raise CheckpointError(
                f"{self.where}: storage {key!r} is used as {stype.name} of "
                f"{numel} and as another type or size"
            )
        view = pid[5] if len(pid) == 6 else None
        if view is not None:  # the legacy format's storage views (old files only)
            if not isinstance(view, tuple) or len(view) != 3 or not isinstance(view[0], str):
                raise CheckpointError(f"{self.where}: storage view {view!r:.100} is damaged")
            vkey, off, vsize = view
            if not all(type(v) is int and v >= 0 for v in (off, vsize)) or off + vsize > numel:
                raise CheckpointError(f"{self.where}: storage view {vkey!r} is out of range")
            sub = Storage(
                f"{key}[{off}:{off + vsize}]",
                storage.dtype,
                vsize,
                location,
                storage.array[off : off + vsize],
            )
            return self.storages.setdefault(str(vkey), sub)
        return storage

    def build(self, inst: Any, state: Any) -> None:
        """BUILD: what torch's weights_only allows. An OrderedDict gets attributes (a
        state_dict's `_metadata`), a tensor its requires_grad (with empty hooks)."""
        if type(inst) is collections.OrderedDict and isinstance(state, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in state):
                inst.__dict__.update(state)
                return
        if build_user(inst, state):  # an instance of a class the user allowed
            return
        try:
            if build_numpy(inst, state):  # a numeric NumPy dtype or array (checked there)
                return
        except ValueError as e:
            raise CheckpointError(f"{self.where}: {e}. {_NEVER}") from None
        if isinstance(inst, Tensor):
            if isinstance(state, tuple) and len(state) == 3 and not state[2]:
                if state[0] is True and (inst.dtype.is_floating_point or inst.dtype.is_complex):
                    inst.requires_grad_(True)
                    return
                if state[0] in (False, None):
                    return
            if isinstance(state, dict) and not state:
                return
        raise CheckpointError(
            f"{self.where}: the pickle sets the state of a {type(inst).__name__} to "
            f"{state!r:.100}, which is refused. {_NEVER}"
        )

    # ---- builders ----------------------------------------------------------------------
    def rebuild_tensor(
        self, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None
    ) -> Tensor:
        """torch._utils._rebuild_tensor_v2 (and v1, without the last three)."""
        if hooks:
            raise CheckpointError(
                f"{self.where}: a tensor with backward hooks ({hooks!r:.100}) is refused. {_NEVER}"
            )
        ops = _bit_ops(metadata, self.where)
        size, stride = tuple(size), tuple(stride)
        t = Tensor._wrap(_apply(ops, _view(storage, offset, size, stride, self.where)))
        storage.views.append((t, offset, size, stride, ops))
        self.made[id(t)] = (storage, t, (offset, size, stride, ops))
        if requires_grad:
            t.requires_grad_(True)
        return t

    def rebuild_tensor_v3(
        self, storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None
    ) -> Tensor:
        """torch._utils._rebuild_tensor_v3: a tensor of `dtype` over an untyped (byte) storage,
        used for the dtypes without a storage class (float8, uint16/32/64)."""
        if not isinstance(storage, Storage) or storage.dtype != np.uint8:
            raise CheckpointError(f"{self.where}: _rebuild_tensor_v3 needs an untyped storage")
        try:
            np_dtype = np.dtype(dtype.dtype if isinstance(dtype, descent_dtype) else dtype)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{self.where}: unknown dtype {dtype!r} ({e})") from None
        key = f"{storage.key}:{np_dtype.name}"
        typed = self.storages.get(key)
        if typed is None:
            if storage.numel % np_dtype.itemsize:
                raise CheckpointError(
                    f"{self.where}: storage {storage.key!r} of "
                    f"{storage.numel} bytes is not whole {np_dtype.name}s"
                )
            # one typed view of the bytes, placed as its own storage (torch forbids saving one
            # storage under two dtypes)
            typed = self.storages[key] = Storage(
                key,
                np_dtype,
                storage.numel // np_dtype.itemsize,
                storage.location,
                storage.array.view(np_dtype),
            )
            storage.location = "cpu"  # the byte storage itself is not moved
        return self.rebuild_tensor(typed, offset, size, stride, requires_grad, hooks, metadata)

    def rebuild_parameter(self, data, requires_grad, hooks=None, state=None) -> Parameter:
        """torch._utils._rebuild_parameter(_with_state): descent's Parameter over data's memory."""
        if not isinstance(data, Tensor) or hooks or state:
            raise CheckpointError(
                f"{self.where}: a Parameter with backward hooks or Python "
                f"attributes ({state!r:.100}) is refused. {_NEVER}"
            )
        p = Parameter(data, requires_grad=bool(requires_grad))
        made = self.made.get(id(data))
        if made is not None and made[1] is data:  # re-pointed with its data if moved
            storage, _, geometry = made
            storage.views.append((p, *geometry))
            self.made[id(p)] = (storage, p, geometry)
        return p

    def rebuild_from_type(self, func, new_type, args, state) -> Tensor:
        """torch._tensor._rebuild_from_type_v2: a tensor built by func, as Tensor/Parameter."""
        if not isinstance(func, Builder) or not isinstance(new_type, _TensorType) or state:
            raise CheckpointError(
                f"{self.where}: a tensor subclass or a tensor with Python "
                f"attributes ({state!r:.100}) is refused. {_NEVER}"
            )
        t = func.fn(*args)
        if new_type.parameter and not isinstance(t, Parameter):
            t = self.rebuild_parameter(t, t.requires_grad)
        return t


def _encode(text, encoding="latin1") -> bytes:
    """_codecs.encode as protocol-2 pickles use it for bytes: only latin-1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("only _codecs.encode(str, 'latin1') is read (protocol-2 bytes)")
    return text.encode("latin1")


def _bytearray(source=b"", *encoding) -> bytearray:
    """builtins.bytearray for its pickled forms (bytes, or str + encoding); bytearray(n)
    would allocate n bytes on a file's word, so an integer is refused."""
    if not isinstance(source, (bytes, bytearray, str, list)):
        raise TypeError(f"bytearray({type(source).__name__}) is not a pickled bytearray")
    return bytearray(source, *encoding) if isinstance(source, str) else bytearray(source)


def _bytes(*source) -> bytes:
    """builtins.bytes: protocol 2 writes b"" as bytes(); an integer (an allocation) is refused."""
    if source and not (len(source) == 1 and isinstance(source[0], (bytes, bytearray))):
        raise TypeError("only bytes() or bytes(<bytes>) is read")
    return bytes(*source)


def _layout(name: str):
    import descent  # noqa: PLC0415

    if name not in ("torch.strided", "torch.sparse_coo", "torch.sparse_csr"):
        raise ValueError(f"unknown layout {name!r}")
    return getattr(descent, name.split(".")[1])


def _builtin(fn, name):
    return lambda r: Builder(name, fn, newobj=True)


# The allow-list: dotted name -> (reader -> value). Values are descent's builders or constants.
_ALLOWED = {
    "collections.OrderedDict": _builtin(collections.OrderedDict, "collections.OrderedDict"),
    "collections.Counter": _builtin(collections.Counter, "collections.Counter"),
    "builtins.set": _builtin(set, "builtins.set"),
    "builtins.frozenset": _builtin(frozenset, "builtins.frozenset"),
    "builtins.complex": _builtin(complex, "builtins.complex"),
    "builtins.slice": _builtin(slice, "builtins.slice"),
    "builtins.bytearray": _builtin(_bytearray, "builtins.bytearray"),
    "builtins.bytes": _builtin(_bytes, "builtins.bytes"),
    "_codecs.encode": lambda r: Builder("_codecs.encode", _encode),
    "torch.Size": lambda r: Builder(
        "torch.Size", lambda dims=(): Size(tuple(int(d) for d in dims))
    ),
    "torch.device": lambda r: Builder("torch.device", _device),
    "torch.serialization._get_layout": lambda r: Builder("torch._get_layout", _layout),
    "torch._utils._rebuild_tensor_v2": lambda r: Builder("_rebuild_tensor_v2", r.rebuild_tensor),
    "torch._utils._rebuild_tensor_v3": lambda r: Builder("_rebuild_tensor_v3", r.rebuild_tensor_v3),
    "torch._utils._rebuild_tensor": lambda r: Builder("_rebuild_tensor", r.rebuild_tensor),
    "torch._utils._rebuild_parameter": lambda r: Builder("_rebuild_parameter", r.rebuild_parameter),
    "torch._utils._rebuild_parameter_with_state": lambda r: Builder(
        "_rebuild_parameter_with_state", r.rebuild_parameter
    ),
    "torch._tensor._rebuild_from_type_v2": lambda r: Builder(
        "_rebuild_from_type_v2", r.rebuild_from_type
    ),
    "torch._tensor.Tensor": lambda r: _TensorType(False),
    "torch.Tensor": lambda r: _TensorType(False),
    "torch.nn.parameter.Parameter": lambda r: _TensorType(True),
}
_ALLOWED.update(numpy_allowed())  # numeric NumPy scalars and arrays (checkpoint_numpy.py)
_STORAGE_DTYPES: dict | None = None  # built on first use: bfloat16 loads ml_dtypes (2 s cold)


def _storage_dtypes() -> dict[str, Any]:
    """`_dtypes()`, once: descent.load asks checkpoint_torch whether a file is torch's on
    every call, and building the table at import cost every load of a descent file 2 s."""
    global _STORAGE_DTYPES
    if _STORAGE_DTYPES is None:
        _STORAGE_DTYPES = _dtypes()
    return _STORAGE_DTYPES


# ---- map_location ------------------------------------------------------------------------
def _target(map_location: Any, location: str) -> Any:
    """torch.load's map_location rules for one storage saved at `location`: the device name
    to place it on, or a callable's result (a Tensor or None)."""
    if map_location is None:
        return location
    if isinstance(map_location, dict):
        return str(map_location.get(location, location))
    if isinstance(map_location, (str, bytes)):
        return map_location.decode() if isinstance(map_location, bytes) else map_location
    if isinstance(map_location, _device):
        return str(map_location)
    if callable(map_location):
        return map_location
    raise TypeError(
        f"load: map_location must be None, a str, a device, a dict or a callable, "
        f"not {type(map_location).__name__}"
    )


def place_storages(storages: dict[str, Storage], map_location: Any, where: str) -> None:
    """Move each storage's array once to its device and re-point its tensors at views of the
    moved array (one buffer per storage on every device, as in torch)."""
    for s in storages.values():
        target = _target(map_location, s.location)
        if callable(target):
            whole = Tensor._wrap(s.array)
            moved = target(whole, s.location)
            if moved is None:
                target = s.location
            elif not isinstance(moved, Tensor) or tuple(moved.shape) != (s.numel,):
                raise TypeError(
                    f"load: map_location({where} storage, {s.location!r}) returned "
                    f"{type(moved).__name__}, not the storage as a Tensor"
                )
            else:
                new = moved._data
        if not callable(target):
            dev = str(target)
            if dev.split(":")[0] == "cpu" or dev == "":
                continue  # descent's CPU arrays are NumPy's: nothing to move
            if dev == "meta":  # shapes and dtypes only, as torch's meta tensors: no memory
                for t, *_ in s.views:
                    t._data = t.to("meta")._data
                continue
            try:
                new = Tensor._wrap(s.array).to(dev)._data
            except (RuntimeError, ValueError, ImportError) as e:
                raise CheckpointError(
                    f"{where} holds a storage saved on {s.location!r} and cannot put it on "
                    f"{dev!r} ({e}); pass map_location='cpu' (or torch.device('cpu'))"
                ) from None
        if new is s.array:
            continue
        s.array = new
        for t, offset, size, stride, ops in s.views:
            t._data = _apply(ops, _view(s, offset, size, stride, where))
