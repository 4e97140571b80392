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

numba keys a cached kernel on its own source file only (a hash of that file's bytes): a kernel
of `_cpu_jit.py` that inlines `_cpu_simd.py`'s intrinsics (or `_cpu_fast.py`'s `_cpu_jit`
helpers) kept loading the machine code cached before an edit of the inlined module, in a
developer's tree (a fresh install compiles everything anew). `install_source_stamps()` makes
the stamp of a descent kernel file (`descent/kernels/*.py`) cover the sibling modules it imports
(`from . import _cpu_simd`, `from ._cpu_jit import _exp32`; transitively): an edit of any of them
invalidates its cache index, and its kernels compile again (tests/test_fidelity_s31.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re

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


# -- the source stamp of descent's kernel files covers the sibling modules they import ----------

_STAMP_MARK = "_descent_deps"
# `from . import a as b, c` and `from .mod import names` at any indentation (lazy imports too)
_SIBLING = re.compile(r"^[ \t]*from \.(\w*) import \(?([\w ,]+)", re.MULTILINE)


def install_source_stamps() -> bool:
    """Make numba's source stamp of a descent kernel file cover its sibling imports (once).
    True when installed (now or before); False where numba's class has changed."""
    try:
        from numba.core import caching  # noqa: PLC0415 - only where numba is used
    except ImportError:
        return False
    mixin = getattr(caching, "_SourceFileBackedLocatorMixin", None)
    stamp = getattr(mixin, "get_source_stamp", None)
    hash_file = getattr(caching, "_hash_source_file", None)
    if not (callable(stamp) and callable(hash_file)):
        return False
    if getattr(stamp, _STAMP_MARK, False):
        return True

    def get_source_stamp(self):
        own = stamp(self)
        path = getattr(self, "_py_file", None)
        if not isinstance(own, bytes) or not _is_kernel_file(path):
            return own
        deps = _siblings(os.path.abspath(path))
        if not deps:
            return own
        h = hashlib.sha256(own)
        for dep in deps:
            st = os.stat(dep)
            h.update(os.path.basename(dep).encode() + hash_file(dep, st.st_mtime, st.st_size))
        return h.digest()

    get_source_stamp.__doc__, get_source_stamp.__wrapped__ = stamp.__doc__, stamp
    setattr(get_source_stamp, _STAMP_MARK, True)
    mixin.get_source_stamp = get_source_stamp
    return True


def _is_kernel_file(path) -> bool:
    """Whether `path` is a module of a `descent/kernels` folder (this one or a copy)."""
    if not isinstance(path, str) or not path.endswith(".py"):
        return False
    folder = os.path.dirname(os.path.abspath(path))
    return (os.path.basename(folder) == "kernels"
            and os.path.basename(os.path.dirname(folder)) == "descent")  # fmt: skip


def _siblings(path: str) -> tuple:
    """The sibling modules `path` imports, transitively (itself excluded), sorted."""
    seen, todo = {path}, [path]
    while todo:
        for dep in _direct_siblings(*_file_key(todo.pop())):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    seen.discard(path)
    return tuple(sorted(seen))


def _file_key(path: str) -> tuple:
    st = os.stat(path)
    return path, st.st_mtime_ns, st.st_size


@functools.cache
def _direct_siblings(path: str, mtime_ns: int, size: int) -> tuple:
    """The sibling modules one file imports (memoized on its mtime and size, as numba's hash)."""
    folder = os.path.dirname(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found = []
    for mod, names in _SIBLING.findall(text):
        candidates = [mod] if mod else [n.split(" as ")[0].strip() for n in names.split(",")]
        for name in candidates:
            dep = os.path.join(folder, name + ".py")
            if name and os.path.isfile(dep):
                found.append(dep)
    return tuple(found)
