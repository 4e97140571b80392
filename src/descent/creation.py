"""Tensor creation and random numbers (seeded, reproducible).

`manual_seed(n)` seeds the default `Generator`; every random function also takes `generator=`.
Random floats are drawn directly in the requested dtype (float32 by default).
"""

from __future__ import annotations

import numpy as np

from . import autograd, backend
from .tensor import Tensor, _check_grad_dtype, as_dtype, get_default_dtype

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
        return tuple(shape[0])
    return tuple(shape)


def _xp(device):
    if device is None:
        return np
    return backend.xp_for_device(backend.normalize_device(device))


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
    t = Tensor(data, dtype=dtype, requires_grad=requires_grad, device=device)
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
    return Tensor(data, dtype=dtype, device=device)


def _own_dtype(data):
    """The dtype torch.tensor keeps: that of a NumPy/CuPy array or scalar (or a Tensor); None
    (descent's defaults) for Python data."""
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, (np.ndarray, np.generic)) or backend.is_cupy_array(data):
        if data.dtype.kind in "biuf":
            return data.dtype
    return None


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array, keeping its dtype (float64 stays float64)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array)


def zeros(*shape, dtype=None, requires_grad=False, device=None) -> Tensor:
    arr = _xp(device).zeros(_shape(shape), dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def ones(*shape, dtype=None, requires_grad=False, device=None) -> Tensor:
    arr = _xp(device).ones(_shape(shape), dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def empty(*shape, dtype=None, requires_grad=False, device=None) -> Tensor:
    arr = _xp(device).empty(_shape(shape), dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def full(shape, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    if isinstance(shape, int):
        shape = (shape,)
    if dtype is None:
        dtype = (
            np.bool_ if isinstance(fill_value, bool)
            else np.int64 if isinstance(fill_value, (int, np.integer))
            else get_default_dtype()
        )  # fmt: skip
    arr = _xp(device).full(tuple(shape), fill_value, dtype=dtype)
    return _finish(arr, dtype, requires_grad, None)


def _like(x: Tensor, dtype, device):
    return (dtype or x.dtype), (device or x.device)


def zeros_like(x, dtype=None, requires_grad=False, device=None) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return zeros(x.shape, dtype=dt, requires_grad=requires_grad, device=dev)


def ones_like(x, dtype=None, requires_grad=False, device=None) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return ones(x.shape, dtype=dt, requires_grad=requires_grad, device=dev)


def empty_like(x, dtype=None, requires_grad=False, device=None) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return empty(x.shape, dtype=dt, requires_grad=requires_grad, device=dev)


def full_like(x, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    dt, dev = _like(x, dtype, device)
    return full(x.shape, fill_value, dtype=dt, requires_grad=requires_grad, device=dev)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Values from start (inclusive) to end (exclusive); int64 for integer arguments."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else get_default_dtype()
    arr = _xp(device).arange(start, end, step).astype(dtype)
    return _finish(arr, dtype, requires_grad, None)


def linspace(start, end, steps: int, dtype=None, requires_grad=False, device=None) -> Tensor:
    arr = _xp(device).linspace(start, end, steps).astype(_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def eye(n: int, m: int | None = None, dtype=None, requires_grad=False, device=None) -> Tensor:
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


_default_generator = Generator(0)


def default_generator() -> Generator:
    return _default_generator


def manual_seed(seed: int) -> Generator:
    """Seed the default generator, every GPU's default generator (as torch.manual_seed does)
    and NumPy's legacy global one, so results repeat."""
    _default_generator.manual_seed(seed)
    for g in _device_generators.values():  # created on first GPU use, from this seed
        g.manual_seed(seed)
    np.random.seed(seed % (2**32))
    return _default_generator


def seed(seed: int) -> Generator:
    return manual_seed(seed)


def _rng(generator, device):
    gen = generator or _default_generator
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


def rand(*shape, dtype=None, requires_grad=False, device=None, generator=None) -> Tensor:
    """Uniform samples in [0, 1)."""
    dt = _float_dtype(dtype)
    rng = _rng(generator, device)
    if dt in (np.float32, np.float64):
        arr = rng.random(_shape(shape), dtype=dt)
    else:
        arr = rng.random(_shape(shape), dtype=np.float32).astype(dt)
    return _finish(arr, dt, requires_grad, None)


def randn(*shape, dtype=None, requires_grad=False, device=None, generator=None) -> Tensor:
    """Standard normal samples."""
    dt = _float_dtype(dtype)
    rng = _rng(generator, device)
    if dt in (np.float32, np.float64):
        arr = rng.standard_normal(_shape(shape), dtype=dt)
    else:
        arr = rng.standard_normal(_shape(shape), dtype=np.float32).astype(dt)
    return _finish(arr, dt, requires_grad, None)


def randint(low, high=None, size=(), dtype=np.int64, device=None, generator=None) -> Tensor:
    """Integers in [low, high) (PyTorch's argument order: randint(low, high, size))."""
    if high is None:
        low, high = 0, low
    if isinstance(size, int):
        size = (size,)
    rng = _rng(generator, device)
    arr = rng.integers(low, high, size=tuple(size)).astype(dtype)
    return _finish(arr, dtype, False, None)


def randperm(n: int, device=None, generator=None) -> Tensor:
    rng = _rng(generator, device)
    return _finish(backend.random_permutation(rng, n), np.int64, False, None)


def rand_like(x, dtype=None, requires_grad=False, generator=None) -> Tensor:
    return rand(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad, device=x.device,
                generator=generator)  # fmt: skip


def randn_like(x, dtype=None, requires_grad=False, generator=None) -> Tensor:
    return randn(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad, device=x.device,
                 generator=generator)  # fmt: skip


def randint_like(x, low, high=None, generator=None) -> Tensor:
    return randint(low, high, x.shape, dtype=x.dtype, device=x.device, generator=generator)
