"""Start-up cost: what a fresh process imports before its first result (kernels/_numba_startup).

`import descent` must not import numba, llvmlite or SciPy (numba loads with the first kernel
call). A first kernel call that finds its machine code in numba's on-disk cache must load it
without numba's registry refresh (which imports numba.np.arraymath and ~200 other modules) and
without scipy.linalg (numba's BLAS probe); a call that compiles still must not import
scipy.linalg. Each check runs in a fresh interpreter: a test process has long imported all of
these.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

IMPORT_ONLY = """
import json, sys
import descent
print(json.dumps(sorted(m for m in ("numba", "llvmlite", "scipy") if m in sys.modules)))
"""

# GELU's float32 kernels (forward with derivative, as a training step calls them).
FIRST_KERNEL = """
import json, sys
import numpy as np
import descent as t
from descent.kernels import _cpu_fast
x = t.tensor(np.linspace(-3, 3, 8, dtype=np.float32).reshape(2, 4), requires_grad=True)
t.nn.functional.gelu(x).sum().backward()
k = _cpu_fast.gelu_fwd_d32
print(json.dumps({
    "hits": sum(k._cache_hits.values()), "misses": sum(k._cache_misses.values()),
    "arraymath": "numba.np.arraymath" in sys.modules,
    "scipy_linalg": "scipy.linalg" in sys.modules,
    "grad": x.grad.numpy().tolist(),
}))
"""


def _run(code: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_descent_loads_no_numba_or_scipy():
    assert _run(IMPORT_ONLY) == []


def test_first_kernel_call_skips_numba_registry_and_scipy():
    first = _run(FIRST_KERNEL)  # compiles GELU's kernel where the cache is cold
    assert not first["scipy_linalg"], "numba's BLAS probe imported scipy.linalg"
    second = _run(FIRST_KERNEL)  # now the cache holds it
    assert second["hits"] >= 1 and second["misses"] == 0, second
    assert not second["arraymath"], "a cached kernel's load ran numba's registry refresh"
    assert not second["scipy_linalg"]
    assert second["grad"] == first["grad"]  # the compiled and the loaded kernel agree bitwise
