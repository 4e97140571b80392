"""descent.compile's fused chains on a GPU, checked without one: the CUDA operation a chain
becomes (CuPy ElementwiseKernel, round-to-nearest intrinsics) is evaluated here with NumPy
definitions of those intrinsics and must give the numba kernel's bits on the same operands, and
`fusion.run` routes CuPy arrays to that kernel (a stand-in CuPy module records the kernel it is
asked for). tests/test_gpu.py runs the real kernel where CuPy and a GPU are."""

from __future__ import annotations

import re

import numpy as np
import pytest

import descent
from descent.compiler import fusion

pytest.importorskip("numba")


def _fn(x, y):  # every fusable op: + - * / neg, x + c, x * c, c - x, x / c
    return (-(((x * 0.5 + y) * 3.0 - y) / (x + 2.0)) / 1.5 - x) * (1.0 - y)


def _chains(dtype):
    g = descent.compile(_fn)
    rng = np.random.default_rng(0)
    with descent.no_grad():
        for _ in range(3):
            x = descent.tensor(rng.standard_normal(1000).astype(dtype))
            y = descent.tensor(rng.standard_normal(1000).astype(dtype))
            np.testing.assert_array_equal(g(x, y)._data, _fn(x, y)._data)
    (program,) = g.programs()
    assert program.fused
    return program.fused


def _intrinsics(dtype):
    """NumPy versions of CUDA's __[fd]{add,sub,mul,div}_rn: one correctly rounded operation
    in the dtype (NumPy's float32 ops round once to float32, as CUDA's do)."""
    p = "f" if dtype == np.float32 else "d"
    ops = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
    return {f"__{p}{name}_rn": f for name, f in ops.items()}


def _operands(chain, rng):
    t = chain.dtype.type
    arrays = [rng.standard_normal(1000).astype(chain.dtype) for _ in range(chain.n_arrays)]
    scalars = [t(rng.uniform(0.5, 3.0)) for _ in range(chain.n_scalars)]
    return arrays, scalars


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_operation_gives_the_numba_kernels_bits(dtype):
    chains = _chains(dtype)
    assert sum(len(c.ops) for c in chains) >= 8
    p = "f" if dtype == np.float32 else "d"
    rng = np.random.default_rng(1)
    for chain in chains:
        # Only intrinsics (never contracted into an FMA), negation, operands and parentheses.
        assert set(re.findall(r"__\w+", chain.cuda_expr)) <= {
            f"__{p}{op}_rn" for op in ("add", "sub", "mul", "div")}, chain.cuda_expr  # fmt: skip
        assert not set("+*/") & set(chain.cuda_expr), chain.cuda_expr
        arrays, scalars = _operands(chain, rng)
        ref = np.empty(1000, dtype)
        fusion.kernel(chain)(*arrays, *scalars, ref)
        scope = dict(_intrinsics(dtype))
        scope.update({f"a{i}": a for i, a in enumerate(arrays)})
        scope.update({f"s{i}": s for i, s in enumerate(scalars)})
        got = eval(chain.cuda_expr, {"__builtins__": {}}, scope)  # noqa: S307 - our expression
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, ref)


class _FakeCupyArray(np.ndarray):
    """A NumPy array that `backend.is_cupy_array` takes for a CuPy one."""


_FakeCupyArray.__module__ = "cupy._core.core"


class _FakeCupy:
    """Records each ElementwiseKernel and runs its operation with NumPy's intrinsics."""

    def __init__(self, dtype):
        self.made = []
        self.scope = _intrinsics(dtype)

    def ElementwiseKernel(self, in_params, out_params, operation, name):  # noqa: N802
        self.made.append((in_params, out_params, operation, name))

        def call(*args):
            names = [p.split()[1] for p in in_params.split(", ")]
            scope = dict(self.scope, **dict(zip(names, args)))
            out = eval(operation.split("=", 1)[1], {"__builtins__": {}}, scope)  # noqa: S307
            return out.view(_FakeCupyArray)

        return call


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_run_sends_cupy_arrays_to_the_elementwise_kernel(monkeypatch, dtype):
    from descent import backend

    fake = _FakeCupy(dtype)
    monkeypatch.setattr(backend, "cupy_module", lambda: fake)
    rng = np.random.default_rng(2)
    for chain in _chains(dtype):
        fake.made.clear()
        slots = [r for k, r in chain.leaves if k == "array"]  # a slot read twice: twice
        env: list = [None] * (max(slots + [chain.out]) + 1)
        for r in set(slots):
            env[r] = rng.standard_normal(1000).astype(dtype).view(_FakeCupyArray)
        arrays = [np.asarray(env[r]) for r in slots]
        scalars = [chain.ops[r].op.ca for k, r in chain.leaves if k == "ca"]
        assert all(k != "scalar" for k, _ in chain.leaves)  # no 0-d operands in this function
        ref = np.empty(1000, dtype)
        fusion.kernel(chain)(*arrays, *[chain.dtype.type(s[()]) for s in scalars], ref)
        fusion.run(chain, env, pool=None)
        ((in_params, out_params, operation, name),) = fake.made
        assert (out_params, name) == ("T out", "descent_fused")
        assert operation == f"out = {chain.cuda_expr}"
        assert in_params.count("T a") == chain.n_arrays
        assert in_params.count("T s") == chain.n_scalars
        assert type(env[chain.out]) is _FakeCupyArray  # the kernel's output, not a pool buffer
        np.testing.assert_array_equal(np.asarray(env[chain.out]), ref)
        fusion.run(chain, env, pool=None)  # made once per chain, then reused
        assert len(fake.made) == 1
