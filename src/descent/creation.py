"""Tensor creation and random numbers (seeded, reproducible).

`manual_seed(n)` seeds the default `Generator`; every random function also takes `generator=`.
Random floats are drawn directly in the requested dtype (float32 by default).
"""

from __future__ import annotations

import math

import numpy as np

from . import autograd, backend, devices, memory_layout, tensor_methods
from .creation_integer import integer_arange, integer_space
from .dtypes import complex_of
from .errors import DescentError, DtypeError
from .inplace_unary import write_values
from .ops._common import fill_int, promote_types
from .ops.out_arg import creation_out
from .tensor import Tensor, _check_grad_dtype, as_dtype, device, get_default_dtype

float16 = np.float16
float32 = np.float32
float64 = np.float64
bfloat16 = None  # not a NumPy dtype; see descent.autocast on the GPU
int8 = np.int8
int16 = np.int16
int32 = np.int32
int64 = np.int64
uint8 = np.uint8
bool_ = np.bool_



def _float_dtype(dtype):
    """`dtype` as a NumPy dtype; the default float dtype when None (see set_default_dtype)."""
    return get_default_dtype() if dtype is None else as_dtype(dtype)


def _finish(arr, dtype, requires_grad: bool, device) -> Tensor:
    if device is not None:
        arr = backend.to_device(arr, backend.normalize_device(device))
    if requires_grad:
        _check_grad_dtype(arr)
    return autograd.new_tensor(arr, bool(requires_grad))


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return _nonnegative(tuple(shape))


def _nonnegative(shape: tuple) -> tuple:
    """PyTorch's RuntimeError for a negative size (NumPy's ValueError leaked before)."""
    for n in shape:
        if n < 0:
            raise DescentError(
                f"Trying to create tensor with negative dimension {n}: {list(shape)}"
            )
    return shape


# Where new tensors go when no device= is given (torch.set_default_device); None is the CPU.
_default_device = None


def set_default_device(device) -> None:
    """Make creation functions (`tensor`, `zeros`, `randn`, ...) put new tensors on `device`
    when they get no `device=` (torch.set_default_device; None restores the CPU)."""
    global _default_device
    _default_device = None if device is None else backend.normalize_device(device)
    if _default_device == "cpu":
        _default_device = None


def get_default_device():
    """The device new tensors go to (`device('cpu')` unless set_default_device changed it)."""
    return device(_default_device or "cpu")


devices.register_default_device_switch(lambda: _default_device, set_default_device)


def _xp(dev):
    if dev is None:
        dev = _default_device
        if dev is None:
            return np
    return backend.xp_for_device(backend.normalize_device(dev))


def tensor(data, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    """A new tensor from data (lists, scalars, arrays), as torch.tensor.

    dtype when not given: a NumPy array or NumPy scalar keeps its dtype (float64 stays
    float64, as in PyTorch); Python floats and lists of them get the default float dtype
    (float32, see `set_default_dtype`), Python ints int64, bools bool.

    Always copies, as torch.tensor does: changing `data` afterwards never changes the tensor
    (use `from_numpy` to share memory with a NumPy array).
    """
    if dtype is None:
        dtype = _own_dtype(data)
    if device is None:
        device = _default_device
    t = Tensor._from_data(data, dtype, device)
    if requires_grad:
        t.requires_grad_(True)
    src = data._data if isinstance(data, Tensor) else data
    if t._data is src or (
        isinstance(src, np.ndarray)
        and isinstance(t._data, np.ndarray)
        and np.shares_memory(t._data, src)
    ):
        t._data = t._data.copy()
    elif backend.is_cupy_array(src) and t._data is src:
        t._data = t._data.copy()
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """`data` as a tensor, without a copy where possible (torch.as_tensor): a Tensor is
    returned as it is; NumPy arrays keep their dtype (and share memory when no conversion is
    needed); lists follow `tensor`'s dtype rules."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if dtype is None:
        dtype = _own_dtype(data)
    return Tensor._from_data(data, dtype, device if device is not None else _default_device)


def _own_dtype(data):
    """The dtype torch.tensor keeps: that of a NumPy/CuPy array or scalar (or a Tensor), or of
    the NumPy scalars and arrays in a list (see `_sequence_dtype`); None (descent's defaults)
    for Python data."""
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, (np.ndarray, np.generic)) or backend.is_cupy_array(data):
        if data.dtype.kind in "biufc":
            return data.dtype
    if isinstance(data, (list, tuple)):
        return _sequence_dtype(data)
    return None


def _first_leaf(data):
    """The first non-sequence element of a nested list/tuple (None when there is none)."""
    while isinstance(data, (list, tuple)):
        if not data:
            return None
        data = data[0]
    return data


def _sequence_dtype(data):
    """torch.tensor's inference over a list holding NumPy scalars or arrays
    (`[arr.mean(), arr.std()]` is float64, `[np.int32(1), np.int32(2)]` int32): every element's
    own dtype, Python floats counting as the default float dtype, ints as int64, bools as bool,
    promoted as torch.promote_types. None when the first element is a Python number: such a
    list is taken as all Python numbers (descent's defaults), which spares a Python-level walk
    of long lists of floats."""
    if not isinstance(_first_leaf(data), (np.ndarray, np.generic)):
        return None
    out = None
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
            continue
        if isinstance(x, (np.ndarray, np.generic, Tensor)):
            d = x._data.dtype if isinstance(x, Tensor) else x.dtype
        elif isinstance(x, bool):
            d = np.dtype(np.bool_)
        elif isinstance(x, int):
            d = np.dtype(np.int64)
        elif isinstance(x, float):
            d = np.dtype(get_default_dtype())
        elif isinstance(x, complex):
            d = complex_of(np.dtype(get_default_dtype()))
        else:
            return None  # something else: leave it to the conversion to judge
        if d.kind not in "biufcV":
            return None
        out = d if out is None else promote_types(out, d)
    return out


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array, keeping its dtype (float64 stays float64)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array)


class _Capsule:
    """A bare DLPack capsule (of CPU memory) as the exporter object NumPy's from_dlpack wants:
    consumed once, as DLPack requires."""

    def __init__(self, capsule) -> None:
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU: descent's to_dlpack exports NumPy (CPU) memory


def from_dlpack(ext_tensor) -> Tensor:
    """A tensor sharing memory with any DLPack exporter (a NumPy, CuPy or JAX array, a torch
    tensor on the CPU, a descent tensor), as torch.from_dlpack: CPU memory becomes a NumPy
    array, CUDA memory a CuPy one."""
    if isinstance(ext_tensor, Tensor):
        return Tensor._wrap(ext_tensor._data)
    if type(ext_tensor).__name__ == "PyCapsule":  # torch.utils.dlpack.to_dlpack's capsule
        ext_tensor = _Capsule(ext_tensor)
    has_device = hasattr(ext_tensor, "__dlpack_device__")
    device_type = ext_tensor.__dlpack_device__()[0] if has_device else 1
    if device_type == 1:  # kDLCPU
        return Tensor._wrap(np.from_dlpack(ext_tensor))
    cp = backend.cupy_module()
    if cp is None:
        raise RuntimeError(
            "from_dlpack: the array lives on a GPU (DLPack device type "
            f"{device_type}), and CuPy is not installed; pip install cupy-cuda12x"
        )
    return Tensor._wrap(cp.from_dlpack(ext_tensor))


def zeros(*shape, size=None, dtype=None, layout=None, requires_grad=False, device=None,
          out=None) -> Tensor:  # fmt: skip
    if layout is not None and _sparse_layout(layout, "zeros"):  # PyTorch's empty sparse tensor
        return _empty_sparse(_shape(shape if size is None else (size,)), dtype, requires_grad,
                             device)  # fmt: skip
    if out is not None:  # PyTorch's out= (ops/out_arg.py): made in out's dtype
        kw = dict(size=size, dtype=dtype, requires_grad=requires_grad, device=device)
        return creation_out(zeros, shape, kw, out, "zeros")
    arr = _xp(device).zeros(_shape(shape if size is None else (size,)), dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def ones(*shape, size=None, dtype=None, layout=None, requires_grad=False, device=None,
         out=None) -> Tensor:  # fmt: skip
    _check_layout(layout, "ones")
    if out is not None:  # PyTorch's out= (ops/out_arg.py): made in out's dtype
        kw = dict(size=size, dtype=dtype, requires_grad=requires_grad, device=device)
        return creation_out(ones, shape, kw, out, "ones")
    arr = _xp(device).ones(_shape(shape if size is None else (size,)), dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def empty(*shape, size=None, dtype=None, layout=None, requires_grad=False, device=None,
          out=None) -> Tensor:  # fmt: skip
    if layout is not None and _sparse_layout(layout, "empty"):  # PyTorch's empty sparse tensor
        return _empty_sparse(_shape(shape if size is None else (size,)), dtype, requires_grad,
                             device)  # fmt: skip
    if out is not None:  # PyTorch's out= (ops/out_arg.py): made in out's dtype
        kw = dict(size=size, dtype=dtype, requires_grad=requires_grad, device=device)
        return creation_out(empty, shape, kw, out, "empty")
    arr = _xp(device).empty(_shape(shape if size is None else (size,)), dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def full(shape, fill_value, dtype=None, requires_grad=False, device=None, *, layout=None
         ) -> Tensor:  # fmt: skip
    _check_layout(layout, "full")
    if isinstance(shape, int):
        shape = (shape,)
    if dtype is None:
        dtype = (
            np.bool_ if isinstance(fill_value, bool)
            else np.int64 if isinstance(fill_value, (int, np.integer))
            else complex_of(get_default_dtype()) if isinstance(fill_value, complex)
            else get_default_dtype()
        )  # fmt: skip
    # PyTorch's range check; uint8 -1 wraps to 255, float16 refuses 1e9
    if type(fill_value) is int or (type(fill_value) is float and not -65504 <= fill_value <= 65504):
        fill_value = fill_int(fill_value, np.dtype(as_dtype(dtype)))
    arr = _xp(device).full(_nonnegative(tuple(shape)), fill_value, dtype=dtype)
    return _finish(arr, dtype, requires_grad, None)


def _like(x: Tensor, dtype, device):
    return (dtype or x.dtype), (device or x.device)


def _sparse_like(x, op: str, dtype, requires_grad, device):
    """A sparse x's own answer (descent.sparse: zeros_like/empty_like give an empty sparse
    tensor, a fill raises, as PyTorch's), or None for a dense x."""
    like = getattr(type(x), "_like", None)
    return None if like is None else like(x, op, dtype, requires_grad, device)


def zeros_like(x, dtype=None, requires_grad=False, device=None) -> Tensor:
    if type(x) is not Tensor and (s := _sparse_like(x, "zeros_like", dtype, requires_grad,
                                                     device)) is not None:  # fmt: skip
        return s
    dt, dev = _like(x, dtype, device)
    return zeros(x.shape, dtype=dt, requires_grad=requires_grad, device=dev)


def ones_like(x, dtype=None, requires_grad=False, device=None) -> Tensor:
    if type(x) is not Tensor:
        _sparse_like(x, "ones_like", dtype, requires_grad, device)
    dt, dev = _like(x, dtype, device)
    return ones(x.shape, dtype=dt, requires_grad=requires_grad, device=dev)


def empty_like(x, dtype=None, requires_grad=False, device=None) -> Tensor:
    if type(x) is not Tensor and (s := _sparse_like(x, "empty_like", dtype, requires_grad,
                                                     device)) is not None:  # fmt: skip
        return s
    dt, dev = _like(x, dtype, device)
    return empty(x.shape, dtype=dt, requires_grad=requires_grad, device=dev)


def full_like(x, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    if type(x) is not Tensor:
        _sparse_like(x, "full_like", dtype, requires_grad, device)
    dt, dev = _like(x, dtype, device)
    return full(x.shape, fill_value, dtype=dt, requires_grad=requires_grad, device=dev)


def arange(start=0, end=None, step=1, dtype=None, requires_grad=False, device=None, *,
           layout=None) -> Tensor:  # fmt: skip
    """Values from start (inclusive) to end (exclusive); int64 for integer arguments."""
    _check_layout(layout, "arange")
    if end is None:
        start, end = 0, start
    # 0-d tensors as bounds (arange(t.max())) count as their Python numbers, as in PyTorch
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    # PyTorch's checks (NumPy returns an empty range, or divides by zero)
    if step == 0:
        raise DescentError("arange: step must be nonzero")
    if not all(np.isfinite(v) for v in (start, end)):  # NumPy: "Maximum allowed size exceeded"
        raise DescentError(f"arange: unsupported range {start} to {end}; the bounds must be finite")
    if (end - start) * step < 0:
        raise DescentError(
            f"arange: upper bound {end} and lower bound {start} inconsistent with step sign "
            f"({step}), as PyTorch refuses"
        )
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else get_default_dtype()
    _no_bool_range("arange", dtype)
    dt = np.dtype(as_dtype(dtype))
    if dt.kind in "iu" and not all(isinstance(v, (int, np.integer)) for v in (start, end, step)):
        # Non-integer bounds for an integer dtype: PyTorch truncates them first
        arr = _xp(device).asarray(integer_arange(start, end, step, dt))
        return _finish(arr, dtype, requires_grad, None)
    arr = _xp(device).arange(start, end, step).astype(dtype)
    return _finish(arr, dtype, requires_grad, None)


def _no_bool_range(op: str, dtype) -> None:
    """PyTorch has no bool kernel for the ranges (NotImplementedError, a RuntimeError): NumPy
    would return a mask of nonzero values."""
    if dtype is not None and np.dtype(as_dtype(dtype)) == np.bool_:
        raise DtypeError(f'"{op}" not implemented for \'Bool\'')


def _check_space_args(op: str, start, end, steps) -> None:
    """PyTorch's argument checks of linspace/logspace: 0-d bounds, an integer step count."""
    for v in (start, end):
        if isinstance(v, Tensor) and v.ndim != 0:
            raise DescentError(
                f"{op}: only supports 0-dimensional start and end tensors, got shape "
                f"{tuple(v.shape)}; pass numbers or 0-d tensors"
            )
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool):
        if not (isinstance(steps, Tensor) and steps.ndim == 0 and steps._data.dtype.kind in "iu"):
            raise TypeError(f"{op}: steps must be an int, got {type(steps).__name__} {steps!r}")


def linspace(start, end, steps: int, dtype=None, requires_grad=False, device=None) -> Tensor:
    _check_space_args("linspace", start, end, steps)
    _no_bool_range("linspace", dtype)
    if steps < 0:
        raise DescentError(f"linspace: number of steps must be non-negative, got {steps}")
    # 0-d tensor bounds count as their Python numbers (a float32 one must not make NumPy
    # compute a float64 range in float32), as PyTorch's tensor overload (start.item())
    start, end = (v.item() if isinstance(v, Tensor) else v for v in (start, end))
    dt = _float_dtype(dtype)
    if np.dtype(dt).kind in "iu":  # PyTorch's kernel: bounds truncated to the dtype first
        arr = _xp(device).asarray(integer_space(start, end, int(steps), np.dtype(dt)))
        return _finish(arr, dtype, requires_grad, None)
    arr = _xp(device).linspace(start, end, steps).astype(dt)
    return _finish(arr, dtype, requires_grad, None)


def eye(n: int, m: int | None = None, dtype=None, requires_grad=False, device=None) -> Tensor:
    for name, k in (("n", n), ("m", m)):
        if k is not None and k < 0:
            raise DescentError(f"eye: {name} must be greater or equal to 0, got {k}")
    arr = _xp(device).eye(n, m, dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


# ---------------------------------------------------------------------------------------------
# Random numbers


class Generator:
    """A seeded source of random numbers (NumPy's PCG64 on the CPU, CuPy's on the GPU).

    Args:
        seed: an int; a fresh entropy-based seed when None.
        device: 'cpu' or 'cuda'.
    """

    def __init__(self, seed: int | None = None, device: str = "cpu") -> None:
        self.device = backend.normalize_device(device)
        self.manual_seed(backend.default_generator_seed() if seed is None else seed)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        xp = backend.xp_for_device(self.device)
        if xp is np:
            self._rng = np.random.Generator(np.random.PCG64(self._seed))
        else:
            self._rng = xp.random.Generator(xp.random.XORWOW(self._seed))
        return self

    def initial_seed(self) -> int:
        return self._seed

    def seed(self) -> int:
        """Re-seed from fresh entropy and return the new seed (torch.Generator.seed), which
        `initial_seed()` reports from then on."""
        new = backend.default_generator_seed()
        self.manual_seed(new)
        return new

    def get_state(self) -> dict:
        """The generator's state as a JSON-serialisable dict (for checkpoints)."""
        if self.device != "cpu":
            raise RuntimeError("get_state: saving a GPU generator's state is not supported")
        st = self._rng.bit_generator.state
        return {"bit_generator": st["bit_generator"],
                "state": {k: str(v) for k, v in st["state"].items()},
                "has_uint32": st["has_uint32"], "uinteger": st["uinteger"]}  # fmt: skip

    def set_state(self, state: dict) -> None:
        st = {
            "bit_generator": state["bit_generator"],
            "state": {k: int(v) for k, v in state["state"].items()},
            "has_uint32": state["has_uint32"],
            "uinteger": state["uinteger"],
        }
        self._rng.bit_generator.state = st

    @property
    def numpy_rng(self):
        return self._rng


class _DefaultGenerator(Generator):
    """The default generator: `descent.default_generator` is this object, as
    torch.default_generator is a Generator; calling it returns itself (descent's older
    spelling `default_generator()`)."""

    def __call__(self) -> Generator:
        return self


_default_generator = _DefaultGenerator(0)
default_generator = _default_generator


def manual_seed(seed: int) -> Generator:
    """Seed the default generator, every GPU's default generator (as torch.manual_seed does)
    and NumPy's legacy global one, so results repeat."""
    _default_generator.manual_seed(seed)
    for g in _device_generators.values():  # created on first GPU use, from this seed
        g.manual_seed(seed)
    np.random.seed(seed % (2**32))
    return _default_generator


def initial_seed() -> int:
    """The seed of the default generator (torch.initial_seed)."""
    return _default_generator.initial_seed()


def seed(seed: int) -> Generator:
    return manual_seed(seed)


# The default generator's state as bytes (torch.get_rng_state's uint8 tensor): a tag, then NumPy
# PCG64's 128-bit state and increment and its cached 32-bit half-draw, little-endian.
_RNG_TAG = b"PCG64v1\0"


def get_rng_state() -> Tensor:
    """The default CPU generator's state as a uint8 tensor (torch.get_rng_state).

    Every CPU random function without `generator=` draws from this generator;
    `set_rng_state(get_rng_state())` later makes the same draws come again. (The bytes are
    NumPy PCG64's state, not PyTorch's Mersenne Twister: states do not move between the two.)
    """
    st = _default_generator._rng.bit_generator.state
    if st["bit_generator"] != "PCG64":  # pragma: no cover - Generator always makes PCG64
        raise RuntimeError(f"get_rng_state: unexpected bit generator {st['bit_generator']}")
    raw = (
        _RNG_TAG
        + int(st["state"]["state"]).to_bytes(16, "little")
        + int(st["state"]["inc"]).to_bytes(16, "little")
        + bytes([int(st["has_uint32"])])
        + int(st["uinteger"]).to_bytes(4, "little")
    )
    return autograd.new_tensor(np.frombuffer(raw, dtype=np.uint8).copy())


def set_rng_state(new_state) -> None:
    """Restore the default CPU generator from `get_rng_state()`'s uint8 tensor.

    Raises:
        RuntimeError: the tensor is not a state made by `get_rng_state` (wrong dtype, size or
            tag), e.g. one of PyTorch's.
    """
    arr = new_state._data if isinstance(new_state, Tensor) else np.asarray(new_state)
    arr = backend.as_numpy(arr)
    n = len(_RNG_TAG) + 37
    if arr.dtype != np.uint8 or arr.shape != (n,) or bytes(arr[: len(_RNG_TAG)]) != _RNG_TAG:
        raise RuntimeError(
            f"set_rng_state: expected the uint8 tensor of {n} bytes that descent.get_rng_state() "
            f"returns, got dtype {arr.dtype} and shape {tuple(arr.shape)} (PyTorch's states do "
            "not fit descent's PCG64 generator)"
        )
    raw = bytes(arr[len(_RNG_TAG) :])
    _default_generator._rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": int.from_bytes(raw[:16], "little"),
                  "inc": int.from_bytes(raw[16:32], "little")},
        "has_uint32": raw[32],
        "uinteger": int.from_bytes(raw[33:37], "little"),
    }  # fmt: skip


def _rng(generator, device):
    gen = generator or _default_generator
    if device is None:
        device = _default_device
    dev = backend.normalize_device(device) if device is not None else "cpu"
    if gen.device != dev:
        if generator is not None:
            raise RuntimeError(f"the generator is on {gen.device} but device={dev} was requested")
        gen = _device_generator(dev)
    return gen._rng


_device_generators: dict[str, Generator] = {}


def _device_generator(dev: str) -> Generator:
    g = _device_generators.get(dev)
    if g is None:
        g = _device_generators[dev] = Generator(_default_generator.initial_seed(), dev)
    return g


def _check_random_float(dt, op: str) -> None:
    """PyTorch's uniform and normal kernels exist for floating and complex dtypes only (before,
    rand(3, dtype=int64) gave silent zeros)."""
    if dt.kind not in "fV":
        raise NotImplementedError(f"{op}: not implemented for dtype {dt} (as in PyTorch); "
                                  f"draw a floating tensor, or use randint for integers")


def rand(
    *shape, size=None, dtype=None, requires_grad=False, device=None, generator=None, out=None,
    layout=None,
) -> Tensor:
    """Uniform samples in [0, 1) (complex dtypes: real and imaginary parts each, as PyTorch);
    `out=` as PyTorch's."""
    _check_layout(layout, "rand")
    if out is not None:
        kw = dict(size=size, dtype=dtype, requires_grad=requires_grad, device=device,
                  generator=generator)  # fmt: skip
        return creation_out(rand, shape, kw, out, "rand")
    if size is not None:  # PyTorch's keyword: rand(size=(2, 3))
        shape = (size,)
    dt = _float_dtype(dtype)
    rng = _rng(generator, device)
    if dt.kind == "c":
        pairs = rng.random(_shape(shape) + (2,), dtype=dt.type(0).real.dtype)
        return _finish(pairs.view(dt)[..., 0], dt, requires_grad, None)
    if dt in (np.float32, np.float64):
        arr = rng.random(_shape(shape), dtype=dt)
    else:  # float16/bfloat16: a float32 sample rounded to the dtype reaches 1.0 (1 draw in 4,096
        # for float16, 1 in 512 for bfloat16); PyTorch's kernel gives those draws 0, so do we
        _check_random_float(dt, "rand")
        arr = rng.random(_shape(shape), dtype=np.float32).astype(dt)
        arr[arr == 1] = 0
    return _finish(arr, dt, requires_grad, None)


def randn(
    *shape, size=None, dtype=None, requires_grad=False, device=None, generator=None, out=None,
    layout=None,
) -> Tensor:
    """Standard normal samples (complex dtypes: E|z|^2 = 1, the real and imaginary parts each
    normal with variance 1/2, as PyTorch); `out=` as PyTorch's."""
    _check_layout(layout, "randn")
    if out is not None:
        kw = dict(size=size, dtype=dtype, requires_grad=requires_grad, device=device,
                  generator=generator)  # fmt: skip
        return creation_out(randn, shape, kw, out, "randn")
    if size is not None:  # PyTorch's keyword: randn(size=(2, 3))
        shape = (size,)
    dt = _float_dtype(dtype)
    rng = _rng(generator, device)
    if dt.kind == "c":
        part = dt.type(0).real.dtype
        pairs = rng.standard_normal(_shape(shape) + (2,), dtype=part) * part.type(0.5**0.5)
        return _finish(pairs.view(dt)[..., 0], dt, requires_grad, None)
    if dt in (np.float32, np.float64):
        arr = rng.standard_normal(_shape(shape), dtype=dt)
    else:
        if dt.kind not in "fV" and math.prod(_shape(shape)):  # torch: an empty one is made
            _check_random_float(dt, "randn")
        arr = rng.standard_normal(_shape(shape), dtype=np.float32).astype(dt)
    return _finish(arr, dt, requires_grad, None)


def randint(*args, size=None, high=None, low=None, dtype=np.int64, device=None, generator=None,
            requires_grad: bool = False) -> Tensor:
    """Integers in [low, high), as torch.randint: `randint(high, size)` or
    `randint(low, high, size)` (size a tuple; `size=`, `high=` and `low=` may be keywords)."""
    args = list(args)
    if size is None and args and isinstance(args[-1], (tuple, list)):
        size = args.pop()
    if low is not None:
        args.insert(0, low)
    if high is not None:
        args.append(high)
    if len(args) == 1:
        low, high = 0, args[0]
    elif len(args) == 2:
        low, high = args
    else:
        raise TypeError(
            "randint(): expected randint(high, size) or randint(low, high, size), got "
            f"{len(args)} bounds"
        )
    if size is None:
        size = ()
    if isinstance(size, int):
        size = (size,)
    if int(high) <= int(low):
        raise RuntimeError(f"randint(): expected low < high, got low={low}, high={high}")
    dt = as_dtype(dtype)
    if dt.kind == "c":
        raise RuntimeError(f"randint(): check_random_bounds handles only integral, "
                           f"floating-point and boolean types, got {dt}")
    if dt.kind in "biu":  # PyTorch's check: [low, high - 1] must fit the dtype (bool: {0, 1})
        lo, hi = (0, 1) if dt.kind == "b" else (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
        if int(low) < lo or int(high) - 1 > hi:
            raise RuntimeError(f"randint(): the range [{low}, {high}) is out of bounds for {dt}")
    rng = _rng(generator, device)
    arr = rng.integers(int(low), int(high), size=tuple(size)).astype(dt)
    return _finish(arr, dt, requires_grad, None)


def randperm(n: int, *, dtype=np.int64, device=None, generator=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of 0 .. n-1 (int64)."""
    rng = _rng(generator, device)
    arr = backend.random_permutation(rng, int(n))
    dt = as_dtype(dtype)
    return _finish(arr if arr.dtype == dt else arr.astype(dt), dt, requires_grad, None)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, layout=None,
           device=None, pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    """Normal samples with the given mean and std (torch.normal): numbers with a `size`, or
    tensors (broadcast together) for elementwise means/stds. The samples carry no gradient.
    `layout` is strided only; `pin_memory` changes nothing on the CPU, as in PyTorch."""
    _check_layout(layout, "normal")
    tm, ts = isinstance(mean, Tensor), isinstance(std, Tensor)
    if ts and std._data.dtype.kind == "c":
        raise RuntimeError("normal expects standard deviation to be non-complex")
    if tm and mean._data.dtype.kind == "c" and mean._rg and autograd.is_grad_enabled():
        raise RuntimeError("normal does not support automatic differentiation for outputs with "
                           "complex dtype (a complex mean that requires grad); detach it")
    if tm or ts:
        if size is not None:
            raise TypeError("normal(): size= is only for number mean and std")
        m = mean._data if tm else mean
        s_ = std._data if ts else std
        shape = np.broadcast_shapes(np.shape(m), np.shape(s_))
        like = mean if tm else std
        dt = like.dtype if dtype is None else as_dtype(dtype)
        z = randn(shape, dtype=dt, device=like.device, generator=generator)._data
    else:
        if size is None:
            raise TypeError("normal(): pass size= with number mean and std")
        dt = _float_dtype(dtype)
        z = randn(*((size,) if isinstance(size, int) else (tuple(size),)), dtype=dt,
                  device=device, generator=generator)._data  # fmt: skip
        m, s_ = mean, std
    if (np.asarray(backend.as_numpy(s_)) < 0).any():
        raise RuntimeError("normal(): std must be >= 0")
    arr = (z * s_ + m).astype(dt, copy=False)
    return _finish(arr, dt, requires_grad, None)


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """0/1 samples, 1 with probability `input` (or the number `p`), in input's dtype."""
    x = input if isinstance(input, Tensor) else Tensor._from_data(input)
    probs = x._data if p is None else p
    pn = backend.as_numpy(probs) if hasattr(probs, "shape") else np.asarray(probs)
    if (pn < 0).any() or (pn > 1).any():
        raise RuntimeError("bernoulli(): probabilities must lie in [0, 1]")
    rng = _rng(generator, x.device)
    u = rng.random(x.shape, dtype=np.float64)
    dt = x.dtype if x.dtype.kind in "fV" else get_default_dtype()
    return autograd.new_tensor((u < probs).astype(dt))


def multinomial(input, num_samples: int, replacement: bool = False, *,
                generator=None) -> Tensor:
    """Indices drawn from the categorical distributions in the rows of `input` (1-D or 2-D,
    non-negative weights, not necessarily normalised), as torch.multinomial (int64)."""
    x = input if isinstance(input, Tensor) else Tensor._from_data(input)
    if x.ndim not in (1, 2):
        raise RuntimeError(f"multinomial(): input must be 1-D or 2-D, got shape {tuple(x.shape)}")
    if x._data.dtype.kind not in "fV":
        raise DescentError(
            f"multinomial(): only supports floating-point dtypes for input, got {x.dtype}; "
            f"convert the weights with .float()"
        )
    if int(num_samples) <= 0:
        raise DescentError(f"multinomial(): cannot sample n_sample <= 0 samples ({num_samples})")
    xp = backend.get_array_module(x._data)
    w = x._data.astype(np.float64).reshape(-1, x.shape[-1])  # (R, K)
    if (w < 0).any() or not xp.isfinite(w).all():
        raise RuntimeError("multinomial(): probabilities must be finite and non-negative")
    total = w.sum(-1, keepdims=True)
    if (total <= 0).any():
        raise RuntimeError("multinomial(): every row needs a positive total probability")
    n = int(num_samples)
    rng = _rng(generator, x.device)
    if replacement:
        cdf = xp.cumsum(w / total, axis=-1)  # (R, K)
        u = rng.random((w.shape[0], n))  # (R, n)
        idx = (u[:, :, None] >= cdf[:, None, :]).sum(-1)  # inverse CDF: (R, n)
        idx = xp.minimum(idx, w.shape[1] - 1)
    else:
        if n > w.shape[1]:
            raise RuntimeError(
                "cannot sample n_sample > prob_dist.size(-1) samples without replacement "
                f"(multinomial(): {n} samples from {w.shape[1]} categories)"
            )
        # Gumbel top-k: the n largest log w + Gumbel noise are a sample without replacement.
        # Zero weights get key -inf, so when n exceeds a row's nonzero count they come last,
        # as in PyTorch (in ascending index order here; PyTorch's order among them differs).
        u = rng.random(w.shape)
        with np.errstate(divide="ignore"):
            keys = xp.log(w) - xp.log(-xp.log(u))
        idx = xp.argsort(-keys, axis=-1, kind="stable")[:, :n]
    idx = idx.astype(np.int64)
    return autograd.new_tensor(idx.reshape(n) if x.ndim == 1 else idx)


def _check_layout(layout, op: str) -> None:
    """A factory that fills values makes strided tensors only: a sparse layout raises, naming
    the op (PyTorch has no sparse fill either; zeros and empty make sparse tensors)."""
    if layout is not None and str(layout).rpartition(".")[2] != "strided":
        raise NotImplementedError(
            f"{op}: makes tensors of only the strided layout (dense), got layout={layout}; build "
            "a sparse one with descent.sparse_coo_tensor, or x.to_sparse()"
        )


def _sparse_layout(layout, op: str) -> bool:
    """zeros/empty's layout=: True for sparse_coo (an empty sparse tensor), False for strided;
    another layout raises."""
    name = str(layout).rpartition(".")[2]
    if name == "strided":
        return False
    if name != "sparse_coo":
        raise NotImplementedError(f"{op}: layout={layout} is not supported by descent "
                                  "(strided and sparse_coo are)")  # fmt: skip
    return True


def _empty_sparse(shape, dtype, requires_grad, device) -> Tensor:
    from .sparse.tensor import empty_sparse  # noqa: PLC0415 - descent.sparse, on first use

    return empty_sparse(shape, dtype, device, requires_grad)


def _layout_like(out: Tensor, x: Tensor, memory_format) -> Tensor:
    """A fresh `*_like` result in x's memory format (preserve_format, PyTorch's default) or in
    the one asked for; relaid in place, as nothing else holds `out` yet."""
    name = "preserve_format" if memory_format is None else memory_layout.format_name(memory_format)
    if name == "preserve_format":
        name = memory_layout.layout_of(x._data)
    if name != "contiguous_format":
        memory_layout.check_rank(out._data, name)
        out._data = memory_layout.copy_as(out._data, name)
    return out


def rand_like(x, dtype=None, requires_grad=False, generator=None, *, layout=None, device=None,
              memory_format=None) -> Tensor:
    """Uniform samples in [0, 1) of x's shape, and of x's dtype, device and memory format
    unless given (torch.rand_like; integer dtypes raise, as there)."""
    _check_layout(layout, "rand_like")
    if type(x) is not Tensor:
        _sparse_like(x, "rand_like", dtype, requires_grad, device)
    out = rand(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad,
               device=device or x.device, generator=generator)  # fmt: skip
    return _layout_like(out, x, memory_format)


def randn_like(x, dtype=None, requires_grad=False, generator=None, *, layout=None, device=None,
               memory_format=None) -> Tensor:
    """Standard normal samples of x's shape, and of x's dtype, device and memory format unless
    given (torch.randn_like; integer dtypes raise, as there)."""
    _check_layout(layout, "randn_like")
    if type(x) is not Tensor:
        _sparse_like(x, "randn_like", dtype, requires_grad, device)
    out = randn(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad,
                device=device or x.device, generator=generator)  # fmt: skip
    return _layout_like(out, x, memory_format)


def randint_like(x, low=0, high=None, generator=None, *, dtype=None, layout=None, device=None,
                 requires_grad=False, memory_format=None) -> Tensor:
    """randint with x's shape, and x's dtype, device and memory format unless given:
    randint_like(x, high), (x, low, high) or PyTorch's keywords (input=x, high=5)."""
    _check_layout(layout, "randint_like")
    bounds = (low,) if high is None else (low, high)
    out = randint(*bounds, size=x.shape, dtype=dtype or x.dtype, device=device or x.device,
                  generator=generator, requires_grad=requires_grad)  # fmt: skip
    return _layout_like(out, x, memory_format)


# ---------------------------------------------------------------------------------------------
# In-place random fills, Tensor methods through the ops table (`x.normal_()`, `p.data.uniform_()`)


def _fill_inplace(t: Tensor, arr, op: str) -> Tensor:
    if t._rg and t._node is None and autograd.is_grad_enabled():
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (shape {tuple(t.shape)}) is being modified "
            "in place while grad mode is on; use `with descent.no_grad():` or `p.data.{op}(...)`"
        )
    write_values(t, arr)  # in place; a saved output overwritten makes backward raise
    t._version += 1
    return t


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """Fill t with normal samples in place (torch.Tensor.normal_)."""
    if not std >= 0.0:
        raise DescentError(f"normal_: expects std >= 0.0, but found std {std}")
    z = randn(t.shape, dtype=t.dtype, device=t.device, generator=generator)._data
    return _fill_inplace(t, z * std + mean, "normal_")


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """Fill t with uniform samples in [a, b) in place (torch.Tensor.uniform_)."""
    if a > b:
        raise DescentError(
            f"uniform_: expects to return a [from, to) range, but found from={a} > to={b}"
        )
    u = rand(t.shape, dtype=t.dtype, device=t.device, generator=generator)._data
    return _fill_inplace(t, u * (b - a) + a, "uniform_")


def bernoulli_(t: Tensor, p=0.5, *, generator=None) -> Tensor:
    """Fill t with 0/1 samples (1 with probability p) in place."""
    probs = p._data if isinstance(p, Tensor) else p
    u = _rng(generator, t.device).random(t.shape)
    return _fill_inplace(t, (u < probs).astype(t.dtype), "bernoulli_")


def random_(t: Tensor, low: int = 0, high: int | None = None, *, generator=None) -> Tensor:
    """Fill t with integers in [low, high) in place (when not given, PyTorch's default range:
    [0, 2**digits] for floats, where every integer is exact (2**11 for float16, 2**24 for
    float32, 2**53 for float64), {0, 1} for bool, the dtype's max for integers)."""
    if high is None:  # random_(to) draws from [0, to); random_() from the default range
        dt = np.dtype(t._data.dtype)
        if dt.kind in "fV":
            default = 2 ** (np.finfo(dt).nmant + 1) + 1  # float16's 2**24 was inf
        elif dt.kind == "b":
            default = 2
        else:
            default = int(np.iinfo(dt).max)
        low, high = 0, (low if low else default)
    r = _rng(generator, t.device).integers(int(low), int(high), size=t.shape)
    return _fill_inplace(t, r.astype(t.dtype), "random_")


def exponential_(t: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    """Fill t with exponential samples of rate lambd in place."""
    if not lambd > 0.0:
        raise DescentError(f"exponential_: expects lambda > 0.0, but found lambda={lambd}")
    u = _rng(generator, t.device).random(t.shape)
    xp = backend.get_array_module(t._data)
    return _fill_inplace(t, (-xp.log1p(-u) / lambd).astype(t.dtype), "exponential_")


tensor_methods.register_ops(
    {"normal_": normal_, "uniform_": uniform_, "bernoulli_": bernoulli_, "random_": random_,
     "exponential_": exponential_, "bernoulli": bernoulli, "multinomial": multinomial}
)  # fmt: skip
