"""Start-up cost: what a fresh process imports before its first result (kernels/_numba_startup).

`import descent` must not import numba, llvmlite or SciPy (numba loads with the first kernel
call). A first kernel call that finds its machine code in numba's on-disk cache must load it
without numba's registry refresh (which imports numba.np.arraymath and ~200 other modules) and
without scipy.linalg; a compilation afterwards (numba's own path) must still not import
scipy.linalg for numba's BLAS probe, whose answer stays numba's. The checks run in one fresh
interpreter (this process has long imported all of these), after this process has put the
kernel in the cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

# The first kernel call of a fresh process (GELU's float32 forward-with-derivative, as a
# training step calls it), then a compilation (numba's own path: registry refresh, BLAS probe).
FIRST_KERNEL = """
import importlib.util, json, sys
import numpy as np
import descent as t
before = sorted(m for m in ("numba", "llvmlite", "scipy") if m in sys.modules)
from descent.kernels import _cpu_fast
x = t.tensor(np.linspace(-3, 3, 8, dtype=np.float32), requires_grad=True)
t.nn.functional.gelu(x).sum().backward()
k = _cpu_fast.gelu_fwd_d32
loaded = {
    "hits": sum(k._cache_hits.values()), "misses": sum(k._cache_misses.values()),
    "arraymath": "numba.np.arraymath" in sys.modules,
    "scipy_linalg": "scipy.linalg" in sys.modules,
}
import numba
numba.njit(lambda a: a + 1)(np.zeros(2))  # compiles: numba refreshes its registries
import numba.np.arraymath as am
print(json.dumps({
    "before": before, "loaded": loaded, "grad": x.grad.numpy().tolist(),
    "compiled": {
        "scipy_linalg": "scipy.linalg" in sys.modules, "have_blas": am._HAVE_BLAS,
        "scipy": importlib.util.find_spec("scipy") is not None,
    },
}))
"""


def test_first_kernel_call_skips_numba_registry_and_scipy():
    from descent.kernels import _cpu_fast

    # This process puts GELU's kernel in numba's cache (compiling it where the cache is cold).
    x = np.linspace(-3, 3, 8, dtype=np.float32)
    out, d = np.empty_like(x), np.empty_like(x)
    _cpu_fast.gelu_fwd_d32(x, out, d)

    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
    proc = subprocess.run([sys.executable, "-c", FIRST_KERNEL], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["before"] == [], "import descent loaded numba, llvmlite or SciPy"
    loaded = got["loaded"]
    assert loaded["hits"] >= 1 and loaded["misses"] == 0, loaded
    assert not loaded["arraymath"], "a cached kernel's load ran numba's registry refresh"
    assert not loaded["scipy_linalg"]
    assert got["grad"] == d.tolist()  # the loaded kernel's bits (d/dx sum gelu(x) = d)
    compiled = got["compiled"]
    assert not compiled["scipy_linalg"], "numba's BLAS probe imported scipy.linalg"
    assert compiled["have_blas"] == compiled["scipy"]  # the probe's answer is numba's
