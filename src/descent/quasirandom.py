"""torch.quasirandom: SobolEngine, low-discrepancy Sobol' sequences (BoTorch's quasi-Monte Carlo
samplers, Ax's initial designs, SobolEngine-drawn normal base samples).

The direction numbers are Joe and Kuo's D(6) set for up to 21201 dimensions (new-joe-kuo-6.21201,
https://web.maths.unsw.edu.au/~fkuo/sobol/), the same numbers PyTorch and SciPy use, stored in
sobol_direction_numbers.npz (per dimension: the primitive polynomial with both end coefficients,
and the initial m values). Unscrambled sequences equal PyTorch's bit for bit. Scrambled ones
(Owen's random linear matrix scrambling plus a digital shift, as PyTorch) draw their random bits
from descent's generator, which is not PyTorch's: same distribution, other values.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from . import creation, creation_random, dtypes
from .tensor import Tensor

__all__ = ["SobolEngine"]

_TABLES: tuple[np.ndarray, np.ndarray] | None = None


def _direction_tables() -> tuple[np.ndarray, np.ndarray]:
    """(poly, vinit) of Joe and Kuo's table, read once on first use."""
    global _TABLES
    if _TABLES is None:
        with resources.files("descent").joinpath("sobol_direction_numbers.npz").open("rb") as f:
            z = np.load(f)
            _TABLES = (z["poly"].astype(np.int64), z["vinit"].astype(np.int64))
    return _TABLES


def _initial_state(dimension: int, maxbit: int) -> np.ndarray:
    """The (dimension, maxbit) direction integers v[d, j] = m[d, j] << (maxbit - 1 - j), with
    m from the Bratley-Fox recurrence over each dimension's primitive polynomial."""
    poly, vinit = _direction_tables()
    state = np.zeros((dimension, maxbit), dtype=np.int64)
    shifts = np.int64(maxbit - 1) - np.arange(maxbit, dtype=np.int64)
    state[0] = np.left_shift(np.int64(1), shifts)  # the first dimension: every m is 1
    for d in range(1, dimension):
        p = int(poly[d])
        degree = p.bit_length() - 1
        m = [int(x) for x in vinit[d, :degree]]
        for j in range(degree, maxbit):
            new = m[j - degree] ^ (m[j - degree] << degree)
            for k in range(1, degree):
                if (p >> (degree - k)) & 1:
                    new ^= m[j - k] << k
            m.append(new)
        state[d] = np.left_shift(np.array(m[:maxbit], dtype=np.int64), shifts)
    return state


def _lowest_zero_bits(start: int, n: int) -> np.ndarray:
    """Index of the lowest 0 bit of each of start, start + 1, ..., start + n - 1 (the Gray-code
    step of point i + 1 flips that direction)."""
    k = np.arange(start, start + n, dtype=np.int64)
    low = ~k & (k + 1)  # the lowest 0 bit of k, alone
    return np.log2(low.astype(np.float64)).astype(np.int64)


def _scramble_state(state: np.ndarray, ltm: np.ndarray) -> np.ndarray:
    """Owen's linear matrix scrambling: each direction integer's bits (most significant first)
    multiplied over GF(2) by a lower-triangular matrix with a unit diagonal, one per dimension."""
    dimension, maxbit = state.shape
    ltm = ltm.astype(np.int64).copy()
    idx = np.arange(maxbit)
    ltm[:, idx, idx] = 1
    # v's bits, most significant first: bits[d, j, k] = bit (maxbit - 1 - k) of state[d, j]
    pos = np.int64(maxbit - 1) - np.arange(maxbit, dtype=np.int64)
    bits = (state[:, :, None] >> pos[None, None, :]) & 1
    # row p of the matrix, weighted by the bit it writes: new bit (maxbit - 1 - p)
    prod = np.einsum("dpk,djk->djp", ltm, bits) & 1
    return (prod << pos[None, None, :]).sum(-1)


class SobolEngine:
    r"""An engine for (scrambled) Sobol' sequences, as torch.quasirandom.SobolEngine.

    `draw(n)` returns the next n points of the sequence, shape (n, dimension), in [0, 1); the
    first point is 0 (the shift, when scrambled). `draw_base2(m)` draws 2**m points and checks
    that the total stays a power of 2 (the sequence's balance properties); `fast_forward(n)`
    skips n points; `reset()` restarts. Up to 21201 dimensions; 30 bits per coordinate.
    """

    MAXBIT = 30
    MAXDIM = 21201

    def __init__(self, dimension: int, scramble: bool = False, seed: int | None = None):
        if dimension > self.MAXDIM or dimension < 1:
            raise ValueError(
                f"Supported range of dimensionality for SobolEngine is [1, {self.MAXDIM}]"
            )
        self.seed = seed
        self.scramble = scramble
        self.dimension = dimension
        self._state = _initial_state(dimension, self.MAXBIT)
        if not scramble:
            self._shift = np.zeros(dimension, dtype=np.int64)
        else:
            self._scramble()
        self._quasi = self._shift.copy()
        self.num_generated = 0

    # PyTorch's attribute names, as tensors (read by code that inspects an engine)
    @property
    def sobolstate(self) -> Tensor:
        return creation.tensor(self._state, dtype=np.int64)

    @property
    def shift(self) -> Tensor:
        return creation.tensor(self._shift, dtype=np.int64)

    @property
    def quasi(self) -> Tensor:
        return creation.tensor(self._quasi, dtype=np.int64)

    def _scramble(self) -> None:
        g = None
        if self.seed is not None:
            g = creation_random.Generator()
            g.manual_seed(self.seed)
        maxbit = self.MAXBIT
        shift_bits = creation_random.randint(2, (self.dimension, maxbit), generator=g).numpy()
        self._shift = shift_bits.astype(np.int64) @ (np.int64(1) << np.arange(maxbit))
        ltm = creation_random.randint(2, (self.dimension, maxbit, maxbit), generator=g).numpy()
        self._state = _scramble_state(self._state, np.tril(ltm))

    def _advance(self, n: int, start: int) -> np.ndarray:
        """The next n integer points after Gray-code index `start` (rows), updating quasi."""
        flips = self._state[:, _lowest_zero_bits(start, n)].T  # (n, dimension)
        points = np.bitwise_xor.accumulate(flips, axis=0) ^ self._quasi[None, :]
        self._quasi = points[-1].copy()
        return points

    def draw(self, n: int = 1, out: Tensor | None = None, dtype=None) -> Tensor:
        """The next `n` points, (n, dimension), in `dtype` (default: the default dtype)."""
        if dtype is None:
            dtype = dtypes.get_default_dtype()
        scale = 1.0 / (1 << self.MAXBIT)
        if n < 0:
            raise ValueError(f"SobolEngine.draw: n must be non-negative, got {n}")
        if self.num_generated == 0:
            first = self._shift[None, :]
            rest = self._advance(n - 1, 0) if n > 1 else np.zeros((0, self.dimension), np.int64)
            ints = np.concatenate([first, rest], 0)[:n] if n > 0 else rest[:0]
        else:
            ints = self._advance(n, self.num_generated - 1) if n > 0 else self._quasi[None, :0]
        self.num_generated += n
        result = creation.tensor(ints.astype(np.float64) * scale, dtype=dtype)
        if out is not None:
            out.resize_as_(result).copy_(result)
            return out
        return result

    def draw_base2(self, m: int, out: Tensor | None = None, dtype=None) -> Tensor:
        """2**m points; the total drawn must stay a power of 2 (else ValueError)."""
        n = 2**m
        total_n = self.num_generated + n
        if total_n & (total_n - 1) != 0:
            raise ValueError(
                "The balance properties of Sobol' points require n to be a power of 2. "
                f"{self.num_generated} points have been previously generated, then: "
                f"n={self.num_generated}+2**{m}={total_n}. If you still want to do this, please "
                "use 'SobolEngine.draw()' instead."
            )
        return self.draw(n=n, out=out, dtype=dtype)

    def reset(self) -> SobolEngine:
        """Back to the first point."""
        self._quasi = self._shift.copy()
        self.num_generated = 0
        return self

    def fast_forward(self, n: int) -> SobolEngine:
        """Skip `n` points, as drawing them would."""
        if n > 0:
            if self.num_generated == 0:
                if n > 1:
                    self._advance(n - 1, 0)
            else:
                self._advance(n, self.num_generated - 1)
        self.num_generated += n
        return self

    def __repr__(self) -> str:
        fmt = [f"dimension={self.dimension}"]
        if self.scramble:
            fmt += ["scramble=True"]
        if self.seed is not None:
            fmt += [f"seed={self.seed}"]
        return f"{type(self).__name__}({', '.join(fmt)})"
