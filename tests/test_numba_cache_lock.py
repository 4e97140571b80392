"""numba's on-disk cache under two processes compiling at once (descent.kernels._numba_cache).

numba's `IndexDataCacheFile.save` reads the index, picks a free data-file name, writes the
index, then the data, unlocked. Two processes that compile two signatures of one `cache=True`
function at the same time can pick the same name; with the writes interleaved as

    f: read index {}        i: read index {}
    f: write index {f: 1}
                            i: write index {i: 1}, write data 1 (i's code)
    f: write data 1 (f's code)

the index maps the int64 signature to the float64 machine code, and every later process gets
silently wrong numbers (measured: [0, 1e-323, 2e-323, ...] for 2 * arange(5)). The test forces
that interleaving with sleeps inside numba's own steps, in two real processes, with and without
descent's lock, and checks what a third process then loads from the cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

pytest.importorskip("numba")
fcntl = pytest.importorskip("fcntl")

MODULE = """
from numba import njit

@njit(cache=True)
def twice(x):
    return x * 2
"""

# Each writer: widen numba's save so the interleaving of the module docstring happens. The
# sleeps run inside `IndexDataCacheFile.save` (so inside descent's lock when it is installed).
WRITER = """
import json, os, sys, time
sys.path.insert(0, os.environ["MODDIR"])
kind = sys.argv[1]
if os.environ["LOCK"] == "1":
    from descent.kernels import _numba_cache
    assert _numba_cache.install()
import numpy as np
from numba.core import caching

cls = caching.IndexDataCacheFile
load_index, save_index, save_data = cls._load_index, cls._save_index, cls._save_data
log = []

def _load_index(self):
    out = load_index(self)
    if getattr(self, "saving", False):
        time.sleep(1.0 if kind == "f" else 1.5)  # i writes its index after f's
    return out

def _save_index(self, overloads):
    save_index(self, overloads)
    log.append(("index", time.time()))

def _save_data(self, name, data):
    if kind == "f":
        time.sleep(1.0)  # ... and f writes its data last
    save_data(self, name, data)
    log.append(("data", time.time()))

locked = getattr(cls.save, "__wrapped__", None)
raw = locked if locked is not None else cls.save

def save(self, key, data):
    self.saving = True
    try:
        return raw(self, key, data)
    finally:
        self.saving = False

if locked is not None:
    from descent.kernels import _numba_cache

    def locked_save(self, key, data):
        with _numba_cache._flock(self):
            return save(self, key, data)

    cls.save = locked_save
else:
    cls.save = save
cls._load_index, cls._save_index, cls._save_data = _load_index, _save_index, _save_data
import racemod

while time.time() < float(os.environ["START"]):
    time.sleep(0.001)
x = np.arange(5, dtype=np.float64 if kind == "f" else np.int64)
assert racemod.twice(x).tolist() == [0, 2, 4, 6, 8]
print(json.dumps(log))
"""

READER = """
import json, os, sys
sys.path.insert(0, os.environ["MODDIR"])
import numpy as np, racemod
out = {}
for dt in ("float64", "int64"):
    r = racemod.twice(np.arange(5, dtype=dt))
    out[dt] = [r.tolist(), str(r.dtype)]
print(json.dumps(out))
"""


def _race(tmp_path, lock: bool):
    d = tmp_path / ("locked" if lock else "unlocked")
    d.mkdir()
    (d / "racemod.py").write_text(MODULE)
    (d / "writer.py").write_text(textwrap.dedent(WRITER))
    (d / "reader.py").write_text(textwrap.dedent(READER))
    env = dict(os.environ, MODDIR=str(d), NUMBA_CACHE_DIR=str(d / "cache"),
               LOCK="1" if lock else "0", START=str(time.time() + 2.0))  # fmt: skip
    procs = [subprocess.Popen([sys.executable, str(d / "writer.py"), k], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in ("f", "i")]  # fmt: skip
    logs = {}
    for k, p in zip(("f", "i"), procs, strict=True):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        logs[k] = dict(json.loads(out.strip().splitlines()[-1]))
    r = subprocess.run([sys.executable, str(d / "reader.py")], env=env, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    return logs, json.loads(r.stdout.strip().splitlines()[-1])


def test_locked_cache_survives_two_writers(tmp_path):
    _, loaded = _race(tmp_path, lock=True)
    assert loaded == {"float64": [[0.0, 2.0, 4.0, 6.0, 8.0], "float64"],
                      "int64": [[0, 2, 4, 6, 8], "int64"]}  # fmt: skip


def test_unlocked_cache_is_corrupted_by_that_interleaving(tmp_path):
    """The control: without the lock the forced interleaving corrupts the cache (so the test
    above can fail). Checked only when the writes did interleave as intended (timestamps)."""
    logs, loaded = _race(tmp_path, lock=False)
    f, i = logs["f"], logs["i"]
    if not (f["index"] < i["index"] <= i["data"] < f["data"]):
        pytest.skip(f"the processes did not interleave as forced (load?): {logs}")
    assert loaded["int64"] != [[0, 2, 4, 6, 8], "int64"], loaded


def test_install_is_idempotent_and_marks_numba():
    from numba.core import caching

    from descent.kernels import _numba_cache

    assert _numba_cache.install() and _numba_cache.install()
    assert getattr(caching.IndexDataCacheFile.save, "_descent_flock", False)
    assert getattr(caching.IndexDataCacheFile.save.__wrapped__, "_descent_flock", False) is False
