"""torch.UntypedStorage / TypedStorage: the memory under tensors, as PyTorch's storage API.

A tensor's array views memory owned by a root array (the last array on NumPy's `.base` chain:
`ops.view_rules.storage_root`); its storage is that memory as bytes. `x.untyped_storage()` is
an `UntypedStorage` over it, the same object for every tensor viewing that memory while one is
alive (PyTorch returns one Python object per storage too), so the idioms that find shared
memory work: `a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()` (safetensors',
Hugging Face's tied-weight checks), `.nbytes()`, `storage_offset()`. Writes through a storage
(`fill_`, `copy_`, `s[i] = v`) reach every tensor over it, and `Tensor.set_(storage, offset,
size, stride)` makes a tensor over a storage, reinterpreting its bytes in the tensor's dtype
as PyTorch does.

`x.storage()` is the deprecated `TypedStorage` (PyTorch's warning, once), and
`torch.FloatStorage(n)` etc. its legacy typed constructors.

Resizing (`storage.resize_(nbytes)`, and `Tensor.resize_` past its storage's end) moves the
bytes to a new allocation, as PyTorch's realloc does, and rebinds the tensors that follow the
storage to the same layout over it: every tensor that asked for it (`x.untyped_storage()`, or
`x.resize_`) and the views of those tensors that the engine tracks (made under grad mode). A
view made under no_grad, or a tensor never tied to the storage, keeps the old memory (PyTorch's
would follow: they share one StorageImpl). Shrinking frees the memory: a tensor that no longer
fits reads zeros from a read-only placeholder until the storage grows again (PyTorch reads
freed memory: undefined, often a crash), which FSDP's `p.untyped_storage().resize_(0)` ...
`resize_(n)` + `copy_` relies on. What else differs: shared memory (`share_memory_`) is the
tensor module's business (descent.multiprocessing), `pin_memory` a no-op copy on the CPU, as in a
CPU-only PyTorch.
"""

from __future__ import annotations

import sys
import warnings
import weakref

import numpy as np

from . import backend, tensor_methods
from .devices import device as _device
from .dtypes import as_dtype, scalar_type, wrap_dtype

# (and the legacy typed classes, FloatStorage ..., made on first use by __getattr__ below)
__all__ = ["UntypedStorage", "TypedStorage"]

_CACHE: dict[int, weakref.ref] = {}  # id(root array) -> the UntypedStorage over it


def tensor_storage(x) -> UntypedStorage:
    """x.untyped_storage(): the storage of x's memory; x follows it through resize_."""
    link = x.__dict__.get("_untyped_storage")
    s = link.storage if link is not None else None
    if s is None or s._root is None or not _views_root(x._data, s._root):
        s = storage_of(x._data)
    s._follow(x)
    return s


class _Link:
    """A tensor's link to its storage object (in its __dict__): it keeps the object alive with
    the tensor, and is neither copied nor pickled (copy.deepcopy / pickle of a tensor give a
    tensor with memory of its own, which finds its own storage)."""

    __slots__ = ("storage",)

    def __init__(self, storage) -> None:
        self.storage = storage

    def __deepcopy__(self, memo):
        return None

    def __reduce__(self):
        return (_no_link, ())


def _no_link():
    return None


def _views_root(a, root) -> bool:
    from .ops.view_rules import storage_root  # noqa: PLC0415

    return storage_root(a) is root


def storage_of(a) -> UntypedStorage:
    """The UntypedStorage of the memory the array `a` views (one object per memory)."""
    from .meta import MetaArray  # noqa: PLC0415 - only here

    if isinstance(a, MetaArray) or type(getattr(a, "base", None)) is MetaArray:
        raise NotImplementedError("Cannot access storage of a tensor on the meta device "
                                  "(it has no memory), as in PyTorch")  # fmt: skip
    from .ops.view_rules import storage, storage_root  # noqa: PLC0415 - ops imports this package

    root = storage_root(a)
    ref = _CACHE.get(id(root))
    s = ref() if ref is not None else None
    if s is not None and s._root is root:
        return s
    s = UntypedStorage._wrap(storage(root, "untyped_storage")[0].view(np.uint8), root)
    if len(_CACHE) > 4096:  # drop the entries of storages that are gone
        for k in [k for k, r in _CACHE.items() if r() is None]:
            del _CACHE[k]
    _CACHE[id(root)] = weakref.ref(s)
    return s


def _index(i: int, n: int) -> int:
    if not -n <= i < n:
        raise IndexError(f"index {i} out of range for storage of size {n}")
    return i % n


class UntypedStorage:
    """Bytes of memory (PyTorch's untyped storage): `UntypedStorage(n)` (zeros), from a
    sequence of byte values, or a tensor's `x.untyped_storage()`."""

    # _tensors: id -> (weak reference, layout) of the tensors that follow this storage when
    # resize_ moves it (the layout is kept while a shrink leaves a tensor on the placeholder)
    __slots__ = ("_bytes", "_root", "_tensors", "__weakref__")
    is_sparse = False
    is_cuda = False

    def __init__(self, *args, device=None):
        if len(args) == 1 and isinstance(args[0], int):
            data = np.zeros(args[0], np.uint8)  # PyTorch's are uninitialised: zeros here
        elif len(args) == 1:
            data = np.array(list(args[0]), dtype=np.int64)
            if data.size and (data.min() < 0 or data.max() > 255):
                raise RuntimeError("UntypedStorage: byte values must be in [0, 255]")
            data = data.astype(np.uint8)
        elif not args:
            data = np.zeros(0, np.uint8)
        else:
            raise TypeError(f"UntypedStorage(): expected a size or a sequence, got {args!r}")
        self._bytes, self._root, self._tensors = data, None, {}

    @classmethod
    def _wrap(cls, data, root):
        s = cls.__new__(cls)
        s._bytes, s._root, s._tensors = data, root, {}
        return s

    # -- what it is ------------------------------------------------------------------------
    def nbytes(self) -> int:
        return int(self._bytes.size)

    def size(self) -> int:
        return self.nbytes()

    def __len__(self) -> int:
        return self.nbytes()

    def element_size(self) -> int:
        return 1

    def data_ptr(self) -> int:
        from .ops.view_rules import address  # noqa: PLC0415

        return address(self._bytes)

    @property
    def device(self):
        return _device("cuda" if backend.is_cupy_array(self._bytes) else "cpu")

    def get_device(self) -> int:
        return 0 if self.device.type == "cuda" else -1

    def type(self, dtype=None, non_blocking=False):
        return "torch.storage.UntypedStorage" if dtype is None else self

    def untyped(self) -> UntypedStorage:
        return self

    def is_shared(self) -> bool:
        return False

    def share_memory_(self) -> UntypedStorage:
        return self

    def is_pinned(self, device="cuda") -> bool:
        return False

    def pin_memory(self, device="cuda") -> UntypedStorage:
        return self.clone()

    def resizable(self) -> bool:
        return self._root is None

    # -- values ----------------------------------------------------------------------------
    def __getitem__(self, i):
        if isinstance(i, slice):
            return UntypedStorage._wrap(self._bytes[i], self._root)
        return int(self._bytes[_index(int(i), self.nbytes())])

    def __setitem__(self, i, v) -> None:
        if not isinstance(v, int):  # PyTorch's rule (a slice is filled with one value)
            raise RuntimeError(f"can only set storage content with a int types, but got "
                               f"{type(v).__name__} instead")  # fmt: skip
        if isinstance(i, slice):
            self._bytes[i] = v
        else:
            self._bytes[_index(int(i), self.nbytes())] = v

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self) -> list:
        return backend.as_numpy(self._bytes).tolist()

    def fill_(self, value) -> UntypedStorage:
        self._bytes[...] = value
        return self

    def copy_(self, source, non_blocking=None) -> UntypedStorage:
        src = source._bytes if isinstance(source, UntypedStorage) else source.untyped()._bytes
        if src.size != self._bytes.size:
            raise RuntimeError(f"copy_: storages of {src.size} and {self._bytes.size} bytes; "
                               "they must have the same size")  # fmt: skip
        self._bytes[...] = src
        return self

    def clone(self) -> UntypedStorage:
        return UntypedStorage._wrap(self._bytes.copy(), None)

    def cpu(self) -> UntypedStorage:
        if backend.is_cupy_array(self._bytes):
            return UntypedStorage._wrap(backend.as_numpy(self._bytes), None)
        return self

    def resize_(self, size: int) -> UntypedStorage:
        """Resize to `size` bytes, keeping the first min(old, new) bytes (new ones are 0:
        PyTorch's are uninitialised). The memory moves; the tensors following this storage
        (the module docstring) are rebound to their layout over the new memory."""
        size = int(size)
        if size < 0:
            raise RuntimeError(f"UntypedStorage.resize_({size}): the size in bytes must be >= 0")
        xp = backend.get_array_module(self._bytes)
        # (a few spare bytes: a tensor that no longer fits reads its placeholder from them)
        buf = xp.zeros(max(size, 16), np.uint8)
        n = min(size, self._bytes.size)
        buf[:n] = self._bytes[:n]
        old_root, old_ptr = self._root, self.data_ptr()
        self._bytes = buf[:size]
        if old_root is None:  # a storage of its own (UntypedStorage(n)): nothing views it
            return self
        self._root = buf
        _CACHE[id(buf)] = weakref.ref(self)
        for t, layout in self._followers(old_root, old_ptr):
            self._rebind(t, layout, buf)
        return self

    # -- the tensors that follow this storage when it moves ---------------------------------
    def _follow(self, t) -> None:
        """Let tensor t follow this storage through resize_ (and find it again after)."""
        if id(t) not in self._tensors:
            if len(self._tensors) >= 64:  # drop the dead ones now and then
                for k in [k for k, (r, _) in self._tensors.items() if r() is None]:
                    del self._tensors[k]
            self._tensors[id(t)] = (weakref.ref(t), None)
        t.__dict__["_untyped_storage"] = _Link(self)  # the tensor keeps its storage alive

    def _followers(self, old_root, old_ptr):
        """(tensor, layout) for the tensors over the old memory: the followers and the views
        the engine tracks of them (autograd_views), or the layout a shrink left them."""
        from .ops.view_rules import address, storage_root  # noqa: PLC0415

        seen: dict[int, object] = {}
        for r, _ in list(self._tensors.values()):
            t = r()
            if t is None:
                continue
            base = getattr(t, "_view_base", None)
            base = base() if isinstance(base, weakref.ref) else base
            for u in (t, base):
                if u is None:
                    continue
                seen.setdefault(id(u), u)
                for vr in list((getattr(u, "_views", None) or {}).values()):
                    v = vr()
                    if v is not None:
                        seen.setdefault(id(v), v)
        for t in seen.values():
            a = t._data
            if storage_root(a) is not old_root:
                continue  # moved elsewhere since (set_, a copy)
            kept = self._tensors.get(id(t), (None, None))[1]
            # (offset in bytes, shape, strides in bytes, dtype); a placeholder's is the kept one
            yield t, kept if kept is not None else (address(a) - old_ptr, a.shape, a.strides,
                                                    a.dtype)  # fmt: skip

    def _rebind(self, t, layout, buf) -> None:
        """t's array: its layout over the new memory, or (when it no longer fits) a read-only
        zero placeholder over the storage's spare bytes, its layout kept for a later grow."""
        off, shape, strides, dtype = layout
        item = np.dtype(dtype).itemsize
        lo = off + sum(min(0, (n - 1) * s) for n, s in zip(shape, strides, strict=True))
        hi = off + item + sum(max(0, (n - 1) * s) for n, s in zip(shape, strides, strict=True))
        xp = backend.get_array_module(buf)
        fits = 0 in shape or (lo >= 0 and hi <= self._bytes.size)
        if fits and off % item == 0:
            flat = buf[: buf.size - buf.size % item].view(dtype)
            t._data = xp.lib.stride_tricks.as_strided(flat[off // item:], shape, strides)
            layout = None
        else:
            cell = buf[buf.size - item:].view(dtype)  # one zero element, broadcast
            t._data = xp.broadcast_to(cell.reshape(()), shape)
        self._follow(t)
        self._tensors[id(t)] = (weakref.ref(t), layout)
        t._version += 1

    @classmethod
    def from_buffer(cls, buffer, byte_order="native", count=-1, offset=0, dtype=None):
        data = np.frombuffer(buffer, dtype=np.uint8, count=-1, offset=offset).copy()
        if dtype is not None and count >= 0:
            data = data[: count * np.dtype(as_dtype(dtype)).itemsize]
        elif count >= 0:
            data = data[:count]
        return cls._wrap(data, None)

    def __copy__(self):
        return self.clone()

    def __deepcopy__(self, memo):
        return self.clone()

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + self.nbytes()

    def __repr__(self) -> str:
        body = "\n".join(f" {v}" for v in self.tolist())
        head = f"{body}\n" if body else ""
        return f"{head}[torch.storage.UntypedStorage(device={self.device.type}) of size " \
               f"{self.nbytes()}]"  # fmt: skip

    __str__ = __repr__


_warned = False


def _warn_typed_storage() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "TypedStorage is deprecated. It will be removed in the future and UntypedStorage "
            "will be the only storage class. This should only matter to you if you are using "
            "storages directly.  To access UntypedStorage directly, use "
            "tensor.untyped_storage() instead of tensor.storage()",
            UserWarning,
            stacklevel=3,
        )


class TypedStorage:
    """A storage seen as elements of one dtype (PyTorch's deprecated typed storage):
    `x.storage()`, `TypedStorage(n, dtype=...)`, `torch.FloatStorage(n)`."""

    __slots__ = ("_untyped_storage", "dtype")
    is_sparse = False
    _fixed_dtype = None

    def __init__(self, *args, dtype=None, device=None, wrap_storage=None, _internal=False):
        if not _internal:
            _warn_typed_storage()
        dtype = self._fixed_dtype or (as_dtype(dtype) if dtype is not None else
                                      np.dtype(np.float32))  # fmt: skip
        self.dtype = _torch_dtype(dtype)
        item = np.dtype(dtype).itemsize
        if wrap_storage is not None:
            self._untyped_storage = wrap_storage
        elif len(args) == 1 and isinstance(args[0], int):
            self._untyped_storage = UntypedStorage(args[0] * item)
        elif len(args) == 1:
            arr = np.asarray(list(args[0]), dtype=dtype)
            self._untyped_storage = UntypedStorage._wrap(arr.view(np.uint8).copy(), None)
        elif not args:
            self._untyped_storage = UntypedStorage(0)
        else:
            raise TypeError(f"TypedStorage(): expected a size or a sequence, got {args!r}")

    def _np_dtype(self):
        return np.dtype(as_dtype(self.dtype))

    def _values(self):
        b = self._untyped_storage._bytes
        item = self._np_dtype().itemsize
        return b[: b.size - b.size % item].view(self._np_dtype())

    def untyped(self) -> UntypedStorage:
        return self._untyped_storage

    def size(self) -> int:
        return self._untyped_storage.nbytes() // self._np_dtype().itemsize

    def __len__(self) -> int:
        return self.size()

    def nbytes(self) -> int:
        return self._untyped_storage.nbytes()

    def element_size(self) -> int:
        return self._np_dtype().itemsize

    def data_ptr(self) -> int:
        return self._untyped_storage.data_ptr()

    @property
    def device(self):
        return self._untyped_storage.device

    def get_device(self) -> int:
        return self._untyped_storage.get_device()

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def type(self, dtype=None, non_blocking=False):
        if dtype is None:
            return f"torch.{_LEGACY_NAMES.get(self._np_dtype().name, 'TypedStorage')}"
        return self

    def is_shared(self) -> bool:
        return False

    def share_memory_(self) -> TypedStorage:
        return self

    def is_pinned(self, device="cuda") -> bool:
        return False

    def __getitem__(self, i):
        if isinstance(i, slice):
            raise RuntimeError("slices are only supported in UntypedStorage.__getitem__")
        return self._values()[_index(int(i), self.size())].item()

    def __setitem__(self, i, v) -> None:
        vals = self._values()
        if isinstance(i, slice):
            vals[i] = v
        else:
            vals[_index(int(i), self.size())] = v

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self) -> list:
        return backend.as_numpy(self._values()).tolist()

    def fill_(self, value) -> TypedStorage:
        self._values()[...] = value
        return self

    def copy_(self, source, non_blocking=None) -> TypedStorage:
        src = source._values() if isinstance(source, TypedStorage) else None
        if src is None:
            self._untyped_storage.copy_(source)
        else:
            self._values()[...] = src
        return self

    def clone(self) -> TypedStorage:
        return TypedStorage(wrap_storage=self._untyped_storage.clone(), dtype=self.dtype,
                            _internal=True)  # fmt: skip

    def cpu(self) -> TypedStorage:
        return self

    def pin_memory(self, device="cuda") -> TypedStorage:
        return self.clone()

    def resize_(self, size: int) -> TypedStorage:
        self._untyped_storage.resize_(int(size) * self.element_size())
        return self

    def _to(self, dtype) -> TypedStorage:
        arr = backend.as_numpy(self._values()).astype(as_dtype(dtype))
        return TypedStorage(wrap_storage=UntypedStorage._wrap(arr.view(np.uint8), None),
                            dtype=dtype, _internal=True)  # fmt: skip

    def float(self):
        return self._to("float32")

    def double(self):
        return self._to("float64")

    def half(self):
        return self._to("float16")

    def long(self):
        return self._to("int64")

    def int(self):
        return self._to("int32")

    def short(self):
        return self._to("int16")

    def char(self):
        return self._to("int8")

    def byte(self):
        return self._to("uint8")

    def bool(self):
        return self._to("bool")

    def __copy__(self):
        return self.clone()

    def __deepcopy__(self, memo):
        return self.clone()

    def __repr__(self) -> str:
        body = "\n".join(f" {v}" for v in self.tolist())
        head = f"{body}\n" if body else ""
        return (f"{head}[torch.storage.TypedStorage(dtype=torch.{self._np_dtype().name}"
                f", device={self.device.type}) of size {self.size()}]")  # fmt: skip

    __str__ = __repr__


def _torch_dtype(np_dtype):
    """descent's dtype object for a NumPy dtype."""
    return wrap_dtype(np.dtype(np_dtype))


_LEGACY = {"bool": "BoolStorage", "uint8": "ByteStorage", "int8": "CharStorage",
           "int16": "ShortStorage", "int32": "IntStorage", "int64": "LongStorage",
           "float16": "HalfStorage", "float32": "FloatStorage", "float64": "DoubleStorage",
           "complex64": "ComplexFloatStorage", "complex128": "ComplexDoubleStorage",
           "bfloat16": "BFloat16Storage"}  # fmt: skip
_LEGACY_NAMES = dict(_LEGACY)


class _LegacyStorageMeta(type):
    """`isinstance(x.storage(), torch.FloatStorage)` holds for a float32 TypedStorage."""

    def __instancecheck__(cls, instance) -> bool:
        if type(instance) is cls:
            return True
        return isinstance(instance, TypedStorage) and cls._fixed_dtype is not None and \
            instance._np_dtype() == np.dtype(as_dtype(cls._fixed_dtype))  # fmt: skip


def _legacy_class(dtype_name: str, cls_name: str):
    def init(self, *args, device=None, **kw):
        TypedStorage.__init__(self, *args, device=device, **kw)

    return _LegacyStorageMeta(cls_name, (TypedStorage,), {
        "__slots__": (), "_fixed_dtype": dtype_name, "__init__": init,
        "__module__": "descent", "__doc__": f"A {dtype_name} TypedStorage (PyTorch's legacy "
                                            f"torch.{cls_name})"})  # fmt: skip


def __getattr__(name: str):
    """The legacy classes, made on first use (bfloat16's needs ml_dtypes, loaded lazily)."""
    for dt, cls_name in _LEGACY.items():
        if cls_name == name:
            cls = _legacy_class(dt, cls_name)
            setattr(sys.modules[__name__], name, cls)
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_UNSET = object()


def resize_tensor(x, size: tuple) -> None:
    """Tensor.resize_'s memory: x becomes the contiguous `size` elements at its storage offset,
    the storage growing (in PyTorch's place: the same storage object, x the same tensor) when
    they pass its end. Elements already in the storage keep their values, in memory order."""
    a = x._data
    item = a.dtype.itemsize
    n = 1
    for d in size:
        n *= d
    from .ops.view_rules import address  # noqa: PLC0415

    st = tensor_storage(x)
    kept = st._tensors[id(x)][1]  # x's layout, while a shrunk storage left it on a placeholder
    off = kept[0] if kept is not None else address(a) - st.data_ptr()
    if off + n * item > st.nbytes():
        st.resize_(off + n * item)  # x follows: it is rebound over the new memory
    b = st._bytes
    x._data = b[off: off + n * item].view(a.dtype).reshape(size)
    st._tensors[id(x)] = (weakref.ref(x), None)  # (off the placeholder, if it was on it)


def _view(st, dtype, storage_offset, size, stride):
    """The array over storage `st` read as `dtype`: (size, stride) at storage_offset elements;
    the whole storage as a 1-d array when size is None."""
    item = np.dtype(dtype).itemsize
    off = 0 if storage_offset is _UNSET else int(storage_offset)
    if size is None:
        size, stride = (st.nbytes() // item - off,), (1,)
    size = tuple(int(s) for s in size)
    if stride is None:  # contiguous, as Tensor.stride() reports it
        from .tensor_torch_methods import _contiguous_strides  # noqa: PLC0415

        stride = _contiguous_strides(size)
    stride = tuple(int(s) for s in stride)
    need = off + 1 + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) \
        if all(size) else off  # fmt: skip
    if off < 0:
        raise RuntimeError(f"set_: Tensor: invalid storage offset {off}")
    if need * item > st.nbytes():  # PyTorch grows the storage (uninitialised memory: 0 here)
        st.resize_(need * item)
    b = st._bytes
    flat = b[: b.size - b.size % item].view(dtype)
    xp = backend.get_array_module(b)
    return xp.lib.stride_tricks.as_strided(flat[off:], size, tuple(s * item for s in stride))


def set_(x, source=None, storage_offset=_UNSET, size=None, stride=None):
    """Tensor.set_: x becomes a view of `source` (a tensor: its memory, shape and strides; a
    storage: its bytes read as x's dtype at storage_offset with size/stride, contiguous by
    default), or an empty tensor. In place: refused on a leaf that requires grad while grad
    mode is on, as in PyTorch (torch.no_grad(): p.set_(...) works)."""
    from . import grad_mode  # noqa: PLC0415
    from .tensor import Tensor  # noqa: PLC0415

    if x._rg and grad_mode.is_grad_enabled():
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                           f"operation (set_ on a tensor of shape {tuple(x.shape)}); call it "
                           "under torch.no_grad()")  # fmt: skip
    a = x._data
    xp = backend.get_array_module(a)
    if source is None:
        new = xp.empty(0, dtype=a.dtype)
    elif size is not None and isinstance(source, Tensor):  # set_(t, offset, size, stride)
        new = _view(tensor_storage(source), a.dtype, storage_offset, size, stride)
    elif storage_offset is not _UNSET and size is None:
        raise TypeError(
            "set_() received an invalid combination of arguments: a storage "
            "offset needs a size, as in set_(source, storage_offset, size, stride)"
        )
    elif isinstance(source, Tensor):
        if np.dtype(source._data.dtype) != np.dtype(a.dtype):
            raise RuntimeError(
                f"set_: the source tensor's dtype {scalar_type(source._data.dtype)}"
                f" differs from this tensor's {scalar_type(a.dtype)} (PyTorch: "
                "Expected object of scalar type ...); cast one of them first"
            )
        new = source._data
    else:
        st = source.untyped() if isinstance(source, TypedStorage) else source
        if not isinstance(st, UntypedStorage):
            raise TypeError(f"set_(): expected a Tensor or a storage, got {type(source).__name__}")
        new = _view(st, a.dtype, storage_offset, size, stride)
    x._data = new
    x._version += 1
    if x._inference is True:  # an inference tensor outside inference_mode: PyTorch's set_
        grad_mode.check_inference_inplace(x)  # takes the new memory, then raises (grad_mode.py)
    return x


def typed_storage(x) -> TypedStorage:
    """Tensor.storage(): the deprecated typed view of x's storage (PyTorch's warning, once)."""
    _warn_typed_storage()
    return TypedStorage(wrap_storage=tensor_storage(x), dtype=x._data.dtype, _internal=True)


def storage_type(x):
    """Tensor.storage_type(): the legacy typed storage class of x's dtype (torch.FloatStorage)."""
    return __getattr__(_LEGACY[np.dtype(x._data.dtype).name])


tensor_methods.register_ops({
    "storage_type": storage_type,
    "untyped_storage": tensor_storage,
    "typed_storage": typed_storage,
    "storage_set_": set_,
})  # fmt: skip
