"""Random numbers: `Generator`, the default generator and seeding (`manual_seed`,
`get_rng_state` / `set_rng_state`), the sampling factories (`rand`, `randn`, `randint`,
`randperm`, `normal`, `bernoulli`, `multinomial`, `rand_like`, `randn_like`, `randint_like`)
and the in-place fills (`normal_`, `uniform_`, `bernoulli_`, `random_`, `exponential_`).

Split from `creation.py` (which re-exports every name, so `descent.creation.rand` and
`from .creation import _rng` keep working): the same layer, imported at the end of creation.py.
"""

from __future__ import annotations

import functools
import math
import sys

import numpy as np

from . import autograd, backend, creation, tensor_methods
from .creation import (
    _check_layout,
    _finish,
    _float_dtype,
    _layout_like,
    _shape,
    _sparse_like,
)
from .errors import DescentError, DtypeError
from .grad_mode import check_inference_inplace
from .inplace_unary import write_values
from .ops import view_write
from .ops.out_arg import creation_out
from .tensor import Tensor, as_dtype, get_default_dtype

# ---------------------------------------------------------------------------------------------
# Random numbers

#: Called as `fn(generator, what)`, only while one is registered: `what` is "seed" when a
#: generator is re-seeded or its state set (manual_seed, seed, set_state, set_rng_state) and
#: "draw" when a random function takes a generator's NumPy generator (`_rng`). descent.compile's
#: recording listens: a replay neither re-seeds nor draws outside dropout, so it would keep the
#: recording's draws (and `poisson(x)`'s, made from x's values) and leave the generator where
#: the call found it; such a call runs eagerly.
rng_observers: list = []


def _observed(gen, what: str) -> None:
    for fn in rng_observers:
        fn(gen, what)


#: descent.compile's recording of the sampling functions marked `_replayable` below: while one
#: is registered, a call is `recorder(draw, args, kwargs, caller)` instead, `draw` the function
#: and `caller` the calling frame's code. The recording runs the draw and keeps it as a `Draw`
#: op, which each replay runs again on the same generator in eager's order, so the samples and
#: the generator's state after the call are eager's. It does so only where the caller is user
#: code or one of the `draws_through_ops` functions: a descent function that computed on a
#: draw's array outside the ops (`rand(...)._data >= p`) would freeze that array in the replay.
draw_recorders: list = []

#: Code objects of the descent functions that use their draws through ops only (see above).
ops_callers: set = set()


def draws_through_ops(fn):
    """Mark `fn` (a descent function) as using the samples it draws through ops only, so that
    descent.compile replays its draws (`draw_recorders`). Returns fn."""
    ops_callers.add(fn.__code__)
    return fn


def _replayable(draw):
    """`draw` (a sampling function returning a new Tensor) as one that descent.compile's
    recording can keep as a `Draw` op (`draw_recorders`)."""

    @functools.wraps(draw)
    def call(*args, **kwargs):
        if draw_recorders:
            return draw_recorders[-1](draw, args, kwargs, sys._getframe(1))
        return draw(*args, **kwargs)

    # (torch_keywords renames the parameters of the function inside and wraps it again: the
    # protocol of ops/nested_values.on_values; not `__wrapped_for_out__`, which tells
    # out_functions that the function takes out= already)
    call.__values_self__ = call
    call.__values_rewrap__ = _replayable
    return call


class _Input:
    """A tensor argument of a recorded draw: the Draw op's input `k` (compared by position
    between descent.compile's two recordings)."""

    __slots__ = ("k",)

    def __init__(self, k: int) -> None:
        self.k = k

    def __eq__(self, other) -> bool:
        return type(other) is _Input and other.k == self.k

    def __hash__(self) -> int:
        return hash(("_Input", self.k))

    def __repr__(self) -> str:
        return f"_Input({self.k})"


class Draw(autograd.Function):
    """A sampling function's result, `fn(*args, **kwargs)` with its tensor arguments (`_Input`
    markers) rebuilt from the op's input arrays: descent.compile records a draw as this op and
    its replay calls `fn` again, on the same generator in the recorded order. Never a graph
    node (samples carry no gradient); made by the recorder only, never applied."""

    __slots__ = ("fn", "args", "kwargs")

    def forward(self, *arrays):
        args = [Tensor._wrap(arrays[a.k]) if type(a) is _Input else a for a in self.args]
        kwargs = {k: Tensor._wrap(arrays[v.k]) if type(v) is _Input else v
                  for k, v in self.kwargs.items()}  # fmt: skip
        return self.fn(*args, **kwargs)._data

    def backward(self, gy, ops):  # pragma: no cover - never a graph node
        raise RuntimeError(f"{self.fn.__name__}: random samples have no gradient")


class Generator:
    """A seeded source of random numbers (NumPy's PCG64 on the CPU, CuPy's on the GPU).

    Args:
        seed: an int; a fresh entropy-based seed when None.
        device: 'cpu' or 'cuda'.
    """

    def __init__(self, seed: int | None = None, device: str = "cpu") -> None:
        self._device = backend.normalize_device(device)
        self.manual_seed(backend.default_generator_seed() if seed is None else seed)

    @property
    def device(self):
        """The generator's device, a `descent.device` (equal to its name, 'cpu')."""
        from .devices import device

        return device(self._device)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        xp = backend.xp_for_device(self._device)
        rng = getattr(self, "_rng", None)
        if xp is np and rng is not None:
            # in place (the same draws as a new Generator): descent.compile's recording watches
            # this object, and puts it back after the call
            rng.bit_generator.state = np.random.PCG64(self._seed).state
        elif xp is np:
            self._rng = np.random.Generator(np.random.PCG64(self._seed))
        else:
            self._rng = xp.random.Generator(xp.random.XORWOW(self._seed))
        if rng_observers:
            _observed(self, "seed")
        return self

    def initial_seed(self) -> int:
        return self._seed

    def seed(self) -> int:
        """Re-seed from fresh entropy and return the new seed (torch.Generator.seed), which
        `initial_seed()` reports from then on."""
        new = backend.default_generator_seed()
        self.manual_seed(new)
        return new

    def get_state(self) -> Tensor:
        """The generator's state as a new 1-D uint8 tensor (torch.Generator.get_state's
        ByteTensor): `set_state(get_state())` later makes the same draws come again. Its bytes
        are NumPy PCG64's state (45 bytes, `_state_bytes`), not PyTorch's Mersenne Twister
        (5056 bytes): states do not move between the two libraries."""
        if self._device != "cpu":
            raise RuntimeError("get_state: saving a GPU generator's state is not supported")
        return autograd._new_tensor(_state_bytes(self._rng))

    def set_state(self, new_state) -> Generator:
        """Restore a state from `get_state()` (torch.Generator.set_state); returns the generator.

        Also takes the dict that descent's get_state returned before 2026-12-05, so checkpoints
        written then still resume.

        Raises:
            TypeError: not a uint8 tensor (PyTorch's "RNG state must be a torch.ByteTensor").
            RuntimeError: a uint8 tensor that is not such a state: the wrong number of bytes (a
                PyTorch state), not contiguous, or not tagged as descent's.
        """
        if isinstance(new_state, dict):  # the older JSON form (old checkpoints)
            self._rng.bit_generator.state = {
                "bit_generator": new_state["bit_generator"],
                "state": {k: int(v) for k, v in new_state["state"].items()},
                "has_uint32": new_state["has_uint32"],
                "uinteger": new_state["uinteger"],
            }
        else:
            self._rng.bit_generator.state = _state_from_bytes(new_state, "set_state")
        if rng_observers:
            _observed(self, "seed")
        return self

    def clone_state(self) -> Generator:
        """A new Generator with this one's seed and current state: both then draw the same
        numbers (torch.Generator.clone_state)."""
        new = Generator(self._seed, self._device)
        new._rng.bit_generator.state = self._rng.bit_generator.state
        return new

    def get_offset(self) -> int:
        """Philox generators' offset; a CPU generator has none and raises, as PyTorch's."""
        raise RuntimeError(f"{self._device.split(':')[0].upper()} Generator does not use offset")

    def set_offset(self, offset: int) -> Generator:
        """See `get_offset`: raises for a CPU generator, as PyTorch's."""
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise RuntimeError(f"manual_offset expected a long, but got {type(offset).__name__}")
        raise RuntimeError(f"{self._device.split(':')[0].upper()} Generator does not use offset")

    def graphsafe_get_state(self):
        """CUDA-graph-safe state (PyTorch's CUDA generator only): NotImplementedError here, as
        PyTorch's CPU generator raises."""
        raise NotImplementedError("graphsafe_get_state is not supported in this Generator")

    def graphsafe_set_state(self, state) -> Generator:
        """See `graphsafe_get_state`: refuses a non-Generator with TypeError, else raises
        NotImplementedError, as PyTorch's CPU generator."""
        if not isinstance(state, Generator):
            raise TypeError(f"expected a Generator, but got {type(state).__name__}")
        raise NotImplementedError("graphsafe_set_state is not supported in this Generator")

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


# A generator's state as bytes (torch.get_rng_state's uint8 tensor): a tag, then NumPy PCG64's
# 128-bit state and increment and its cached 32-bit half-draw, little-endian.
_RNG_TAG = b"PCG64v1\0"
_RNG_NBYTES = len(_RNG_TAG) + 37


def _state_bytes(rng) -> np.ndarray:
    """The (45,) uint8 state of the NumPy generator `rng` (a PCG64 one)."""
    st = rng.bit_generator.state
    if st["bit_generator"] != "PCG64":  # pragma: no cover - Generator always makes PCG64
        raise RuntimeError(f"get_state: unexpected bit generator {st['bit_generator']}")
    raw = (
        _RNG_TAG
        + int(st["state"]["state"]).to_bytes(16, "little")
        + int(st["state"]["inc"]).to_bytes(16, "little")
        + bytes([int(st["has_uint32"])])
        + int(st["uinteger"]).to_bytes(4, "little")
    )
    return np.frombuffer(raw, dtype=np.uint8).copy()


def _state_from_bytes(new_state, op: str) -> dict:
    """NumPy's bit-generator state from `_state_bytes`' tensor, checked as PyTorch checks its
    own: a uint8 Tensor (TypeError otherwise), contiguous, of the right size (RuntimeError)."""
    if not isinstance(new_state, Tensor):
        raise TypeError(f"expected a torch.ByteTensor, but got {type(new_state).__name__} "
                        f"({op}: pass the uint8 tensor that get_state()/get_rng_state() "
                        "returned)")  # fmt: skip
    arr = backend.as_numpy(new_state._data)
    if arr.dtype != np.uint8:
        raise TypeError(f"RNG state must be a torch.ByteTensor ({op}: got a tensor of dtype "
                        f"{arr.dtype}; pass the uint8 tensor get_rng_state() made)")  # fmt: skip
    if not (arr.flags.c_contiguous or arr.size <= 1):
        raise RuntimeError(f"RNG state must be contiguous ({op}: call .contiguous() first)")
    if arr.size != _RNG_NBYTES:
        raise RuntimeError(
            f"Expected a descent PCG64 generator state of size {_RNG_NBYTES} but found the "
            f"input RNG state size to be {arr.size} ({op}: pass the uint8 tensor that "
            "get_state()/get_rng_state() returned; PyTorch's Mersenne Twister states, 5056 "
            "bytes, do not fit descent's generator)"
        )
    raw = arr.reshape(-1).tobytes()
    if raw[: len(_RNG_TAG)] != _RNG_TAG or raw[len(_RNG_TAG) + 32] > 1:
        raise RuntimeError(f"Invalid PCG64 state ({op}: these {_RNG_NBYTES} bytes were not "
                           "made by get_state()/get_rng_state())")  # fmt: skip
    raw = raw[len(_RNG_TAG) :]
    return {
        "bit_generator": "PCG64",
        "state": {"state": int.from_bytes(raw[:16], "little"),
                  "inc": int.from_bytes(raw[16:32], "little")},
        "has_uint32": raw[32],
        "uinteger": int.from_bytes(raw[33:37], "little"),
    }  # fmt: skip


def get_rng_state() -> Tensor:
    """The default CPU generator's state as a new uint8 tensor (torch.get_rng_state).

    Every CPU random function without `generator=` draws from this generator;
    `set_rng_state(get_rng_state())` later makes the same draws come again. (The bytes are
    NumPy PCG64's state, not PyTorch's Mersenne Twister: states do not move between the two.)
    """
    return _default_generator.get_state()


def set_rng_state(new_state) -> None:
    """Restore the default CPU generator from `get_rng_state()`'s uint8 tensor (its argument is
    not changed).

    Raises:
        TypeError: not a uint8 tensor, as PyTorch's.
        RuntimeError: a uint8 tensor that is not a state made by `get_rng_state` (wrong size,
            e.g. one of PyTorch's, or tag).
    """
    _default_generator._rng.bit_generator.state = _state_from_bytes(new_state, "set_rng_state")
    if rng_observers:
        _observed(_default_generator, "seed")


def _rng(generator, device):
    gen = generator or _default_generator
    if device is None:
        device = creation._default_device  # set_default_device rebinds it there
    dev = backend.normalize_device(device) if device is not None else "cpu"
    if gen._device != dev:
        if generator is not None:
            raise RuntimeError(f"the generator is on {gen._device} but device={dev} was requested")
        gen = _device_generator(dev)
    if rng_observers:
        _observed(gen, "draw")
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


@_replayable
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


@_replayable
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


@_replayable
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
    creation._nonnegative(tuple(size))  # PyTorch's RuntimeError (NumPy's ValueError leaked)
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


@_replayable
def randperm(n: int, *, dtype=np.int64, device=None, generator=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of 0 .. n-1 (int64)."""
    rng = _rng(generator, device)
    arr = backend.random_permutation(rng, int(n))
    dt = as_dtype(dtype)
    return _finish(arr if arr.dtype == dt else arr.astype(dt), dt, requires_grad, None)


@_replayable
def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, layout=None,
           device=None, pin_memory: bool = False, requires_grad: bool = False) -> Tensor:
    """Normal samples with the given mean and std (torch.normal): numbers with a `size`, or
    tensors (broadcast together) for elementwise means/stds. The samples carry no gradient.
    `layout` is strided only; `pin_memory` changes nothing on the CPU, as in PyTorch."""
    _check_layout(layout, "normal")
    tm, ts = isinstance(mean, Tensor), isinstance(std, Tensor)
    if ts and std._data.dtype.kind == "c":
        raise RuntimeError("normal expects standard deviation to be non-complex")
    if tm and mean._data.dtype.kind == "c" and mean._rg and autograd._is_grad_enabled():
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


@_replayable
def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """0/1 samples, 1 with probability `input` (or the number `p`), in input's dtype."""
    x = input if isinstance(input, Tensor) else Tensor._from_data(input)
    if p is None and x._data.dtype.kind in "iub" and x._data.size:
        # PyTorch: "bernoulli_tensor_cpu_p_" not implemented for 'Long'
        raise DtypeError(
            f"bernoulli: not implemented for {x._data.dtype} probabilities (shape "
            f"{tuple(x.shape)}), as in PyTorch; convert first with .float()"
        )
    probs = x._data if p is None else p
    pn = backend.as_numpy(probs) if hasattr(probs, "shape") else np.asarray(probs)
    if (pn < 0).any() or (pn > 1).any():
        raise RuntimeError("bernoulli(): probabilities must lie in [0, 1]")
    rng = _rng(generator, x.device)
    u = rng.random(x.shape, dtype=np.float64)
    dt = x.dtype if x.dtype.kind in "fV" else get_default_dtype()
    return autograd._new_tensor((u < probs).astype(dt))


@_replayable
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
    return autograd._new_tensor(idx.reshape(n) if x.ndim == 1 else idx)


@_replayable
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


@_replayable
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


@_replayable
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
    if t._rg and t._node is None and autograd._is_grad_enabled():
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (shape {tuple(t.shape)}) is being modified "
            "in place while grad mode is on; use `with descent.no_grad():` or `p.data.{op}(...)`"
        )
    write_values(t, arr)  # in place; a saved output overwritten makes backward raise
    t._version += 1
    for fn in view_write.write_observers:  # (descent.compile: a write of the drawn values,
        fn(t, (view_write.redo_assign, arr))  # which its replay repeats from the Draw's slot)
    if t._inference:  # outside inference_mode: PyTorch's error, after the write (grad_mode.py)
        check_inference_inplace(t)
    return t


# The values of each fill are drawn by a `_replayable` function of t's shape, dtype and device
# (not of t: its values play no part), so descent.compile keeps the draw as an op and the fill
# as a write of its result.


@_replayable
def _normal_values(shape, dtype, device, mean, std, generator) -> Tensor:
    z = randn(shape, dtype=dtype, device=device, generator=generator)._data
    return Tensor._wrap(z * std + mean)


@_replayable
def _uniform_values(shape, dtype, device, a, b, generator) -> Tensor:
    u = rand(shape, dtype=dtype, device=device, generator=generator)._data
    return Tensor._wrap(u * (b - a) + a)


@_replayable
def _bernoulli_values(shape, dtype, device, p, generator) -> Tensor:
    probs = p._data if isinstance(p, Tensor) else p
    u = _rng(generator, device).random(shape)
    return Tensor._wrap((u < probs).astype(dtype))


@_replayable
def _random_values(shape, dtype, device, low, high, generator) -> Tensor:
    r = _rng(generator, device).integers(low, high, size=shape)
    return Tensor._wrap(r.astype(dtype))


@_replayable
def _exponential_values(shape, dtype, device, lambd, generator) -> Tensor:
    u = _rng(generator, device).random(shape)
    xp = backend.get_array_module(u)
    return Tensor._wrap((-xp.log1p(-u) / lambd).astype(dtype))


@draws_through_ops
def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """Fill t with normal samples in place (torch.Tensor.normal_)."""
    if not std >= 0.0:
        raise DescentError(f"normal_: expects std >= 0.0, but found std {std}")
    z = _normal_values(tuple(t.shape), t._data.dtype, t.device, mean, std, generator)._data
    return _fill_inplace(t, z, "normal_")


@draws_through_ops
def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """Fill t with uniform samples in [a, b) in place (torch.Tensor.uniform_)."""
    if a > b:
        raise DescentError(
            f"uniform_: expects to return a [from, to) range, but found from={a} > to={b}"
        )
    u = _uniform_values(tuple(t.shape), t._data.dtype, t.device, a, b, generator)._data
    return _fill_inplace(t, u, "uniform_")


@draws_through_ops
def bernoulli_(t: Tensor, p=0.5, *, generator=None) -> Tensor:
    """Fill t with 0/1 samples (1 with probability p) in place."""
    if t._data.dtype.kind == "c" and t._data.size:  # "bernoulli_scalar_cpu_" (not empty)
        raise DtypeError(f"bernoulli_: not implemented for complex tensors ({t.dtype}, shape "
                         f"{tuple(t.shape)}); fill a real tensor")  # fmt: skip
    u = _bernoulli_values(tuple(t.shape), t._data.dtype, t.device, p, generator)._data
    return _fill_inplace(t, u, "bernoulli_")


@draws_through_ops
def random_(t: Tensor, low: int = 0, high: int | None = None, *, generator=None) -> Tensor:
    """Fill t with integers in [low, high) in place (when not given, PyTorch's default range:
    [0, 2**digits] for floats, where every integer is exact (2**11 for float16, 2**24 for
    float32, 2**53 for float64), {0, 1} for bool, the dtype's max for integers)."""
    if t._data.dtype.kind == "c":
        raise DescentError(
            f"random_: check_random_bounds handles only integral, floating-point and boolean "
            f"types, got {t.dtype} (shape {tuple(t.shape)})"
        )
    if high is None:  # random_(to) draws from [0, to); random_() from the default range
        dt = np.dtype(t._data.dtype)
        if dt.kind in "fV":
            default = 2 ** (np.finfo(dt).nmant + 1) + 1  # float16's 2**24 was inf
        elif dt.kind == "b":
            default = 2
        else:
            default = int(np.iinfo(dt).max)
        low, high = 0, (low if low else default)
    r = _random_values(tuple(t.shape), t._data.dtype, t.device, int(low), int(high),
                       generator)._data  # fmt: skip
    return _fill_inplace(t, r, "random_")


@draws_through_ops
def exponential_(t: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    """Fill t with exponential samples of rate lambd in place."""
    if not lambd > 0.0:
        raise DescentError(f"exponential_: expects lambda > 0.0, but found lambda={lambd}")
    if t._data.dtype.kind not in "fV" and t._data.size:  # PyTorch's RuntimeError (integers
        # were filled with zeros here); an empty tensor is returned unchecked, as PyTorch's
        raise DescentError(f"exponential_: Exponential distribution is a continuous probability "
                           f"distribution. dtype must be a floating point but you specified "
                           f"{t.dtype} (shape {tuple(t.shape)}); fill a float tensor")  # fmt: skip
    u = _exponential_values(tuple(t.shape), t._data.dtype, t.device, lambd, generator)._data
    return _fill_inplace(t, u, "exponential_")


tensor_methods.register_ops(
    {"normal_": normal_, "uniform_": uniform_, "bernoulli_": bernoulli_, "random_": random_,
     "exponential_": exponential_, "bernoulli": bernoulli, "multinomial": multinomial}
)  # fmt: skip
