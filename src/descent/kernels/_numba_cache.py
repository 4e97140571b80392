"""numba's on-disk cache, made safe for several processes at once.

descent's CPU kernels are compiled with `cache=True`: the first process to need a kernel for a
signature compiles it and writes it under `__pycache__` (an index file mapping each signature
to a data file, plus the data files), later processes load it. numba's `IndexDataCacheFile.save`
reads the index, picks the first free data-file name, writes the index, then the data, with no
lock between processes. Two processes compiling two signatures of one kernel at the same time
(MPI ranks or DataLoader workers on a fresh install, the test suite's pytest-xdist workers) can
both pick the same name: the index then maps one signature to the other's machine code, and
every later process that loads it gets a kernel of the wrong signature ("No matching
definition" errors, until the cache is deleted).

`install()` (run when `descent.kernels` is first imported, before any kernel compiles) wraps
that class's `save` and `load` in an exclusive `flock` on a lock file beside the index, so
each read-modify-write of the index and its data file is atomic with respect to other
processes. Where `fcntl` is missing (Windows), the lock file cannot be created (a read-only
cache folder) or numba's class has changed, nothing is wrapped and numba behaves as before.
The wrapper applies to every `cache=True` function in the process, not only descent's.
"""

from __future__ import annotations

import contextlib
import os

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

_MARK = "_descent_flock"


def install() -> bool:
    """Wrap numba's cache index save/load in an inter-process lock (once). True when
    installed (now or before)."""
    if fcntl is None:
        return False
    try:
        from numba.core import caching  # noqa: PLC0415 - only where numba is used
    except ImportError:
        return False
    cls = getattr(caching, "IndexDataCacheFile", None)
    save, load = getattr(cls, "save", None), getattr(cls, "load", None)
    if not (callable(save) and callable(load)):
        return False
    if getattr(save, _MARK, False):
        return True

    def locked_save(self, key, data):
        with _flock(self):
            return save(self, key, data)

    def locked_load(self, key):
        with _flock(self):
            return load(self, key)

    for f, orig in ((locked_save, save), (locked_load, load)):
        f.__doc__, f.__wrapped__ = orig.__doc__, orig
        setattr(f, _MARK, True)
    cls.save, cls.load = locked_save, locked_load
    return True


@contextlib.contextmanager
def _flock(cache_file):
    """An exclusive lock on `<index>.lock` for the duration of the block (no lock when the
    file cannot be opened: the cache folder is read-only, so nothing is written there)."""
    index = getattr(cache_file, "_index_path", None)
    fd = None
    if index is not None:
        try:
            fd = os.open(f"{index}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            fd = None
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
