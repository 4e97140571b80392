"""Text corpora: tinyshakespeare (downloaded once, SHA-256 checked) and the Python standard library.

`shakespeare()` looks for the text in this order: the `path` argument, the `DESCENT_DATA`
environment variable, the cache directory (`cache_dir`, else `DESCENT_CACHE`, else
`~/.cache/descent`), and only then downloads it. A download is written atomically and verified
against a pinned SHA-256; a mismatching file is deleted and reported.

`python_stdlib()` needs no network at all: it reads the Python source of the standard library
installed next to the running interpreter, chosen by a fixed rule so the same machine always
gets the same text.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
import tempfile
import urllib.request
from pathlib import Path

from .. import settings

SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_FILE = "tinyshakespeare.txt"

# The URL opener; tests replace it to serve a local file instead of the network.
_urlopen = urllib.request.urlopen


class ChecksumError(ValueError):
    """A downloaded or cached file does not have the expected SHA-256."""


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The download cache: `path`, else `$DESCENT_CACHE`, else `~/.cache/descent`."""
    if path is not None:
        return Path(path).expanduser()
    env = settings.cache_path()  # $DESCENT_CACHE, read now
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "descent"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such file: {path}")
    return path.read_text(encoding="utf-8")


def download(url: str, dest: str | os.PathLike, sha256: str, timeout: float = 60.0) -> Path:
    """Download `url` to `dest` atomically, verifying its SHA-256.

    The bytes go to a temporary file in the destination directory, are checked, fsynced and
    then renamed over `dest`, so `dest` is either absent or complete and verified.

    Raises:
        ChecksumError: when the downloaded bytes do not match `sha256` (nothing is kept).
        OSError: when the download fails.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, _urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != sha256:
            raise ChecksumError(
                f"download of {url} has SHA-256 {h.hexdigest()}, expected {sha256}; the file "
                "was deleted (a proxy or a changed upstream file?). Download it by hand and "
                "pass its path, or set DESCENT_DATA"
            )
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return dest


def shakespeare(
    path: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> str:
    """The tinyshakespeare corpus (1,115,394 characters) as a string.

    Args:
        path: read this file (no checksum: it is yours). A directory is searched for
            `tinyshakespeare.txt` or `input.txt`.
        cache_dir: where the download is cached (default `$DESCENT_CACHE` or `~/.cache/descent`).

    Without `path`, `$DESCENT_DATA` is used the same way when set; otherwise the cached copy
    (verified) or a fresh download from the char-rnn repository.

    Raises:
        FileNotFoundError: `path` or `$DESCENT_DATA` names nothing readable.
        ChecksumError: the download does not have the pinned SHA-256.
    """
    if path is None and settings.data_path():  # $DESCENT_DATA, read now
        path = settings.data_path()
        what = "shakespeare (from DESCENT_DATA)"
    else:
        what = "shakespeare"
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            for name in (SHAKESPEARE_FILE, "input.txt"):
                if (p / name).is_file():
                    return _read_text(p / name, what)
            raise FileNotFoundError(f"{what}: no {SHAKESPEARE_FILE} or input.txt in {p}")
        return _read_text(p, what)
    return _cached_shakespeare(_cache_dir_arg(cache_dir))


def _cache_dir_arg(path: str | os.PathLike | None) -> Path:
    return cache_dir(path)


def _cached_shakespeare(directory: Path) -> str:
    dest = directory / SHAKESPEARE_FILE
    if dest.is_file() and sha256_file(dest) != SHAKESPEARE_SHA256:
        dest.unlink()  # a damaged cache entry is replaced by a fresh download
    if not dest.is_file():
        download(SHAKESPEARE_URL, dest, SHAKESPEARE_SHA256)
    return dest.read_text(encoding="utf-8")


# Directory names never taken into the stdlib corpus: test suites (huge, repetitive data),
# installed third-party packages, byte code and IDLE's own tests.
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def stdlib_files(root: str | os.PathLike | None = None) -> list[Path]:
    """The candidate files of the stdlib corpus, in selection order.

    Rule: top-level public modules (`argparse.py`, not `_pyio.py`) sorted by name, then every
    other `.py` file under the library sorted by relative path; directories named test/tests/
    idle_test/site-packages/__pycache__ are skipped.
    """
    root = Path(root or sysconfig.get_paths()["stdlib"])
    top, rest = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        rel = Path(dirpath).relative_to(root)
        for name in sorted(filenames):
            if not name.endswith(".py") or name.startswith("test_"):
                continue
            if rel == Path(".") and not name.startswith("_"):
                top.append(root / name)
            else:
                rest.append(root / rel / name)
    key = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    return sorted(top, key=key) + sorted(rest, key=key)


def python_stdlib(max_bytes: int = 2_000_000, root: str | os.PathLike | None = None) -> str:
    """About `max_bytes` of Python source from the standard library: a corpus needing no network.

    Files are taken whole in `stdlib_files()` order; a file that would overflow `max_bytes` is
    skipped and the next is tried; files that are not valid UTF-8 are skipped. Each file is
    preceded by a `# file: <relative path>` comment line. On one machine the result is always
    the same text; other Python versions give other (similar) text.

    Args:
        max_bytes: the size limit in UTF-8 bytes.
        root: the library directory (default `sysconfig.get_paths()["stdlib"]`).
    """
    if max_bytes <= 0:
        raise ValueError(f"python_stdlib: max_bytes must be positive, got {max_bytes}")
    root = Path(root or sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise FileNotFoundError(f"python_stdlib: the standard library directory {root} is missing")
    parts: list[str] = []
    total = 0
    for f in stdlib_files(root):
        try:
            src = f.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        src = src.replace("\r\n", "\n").replace("\r", "\n")
        block = f"# file: {f.relative_to(root).as_posix()}\n{src.rstrip()}\n\n\n"
        size = len(block.encode("utf-8"))
        if total + size > max_bytes:
            continue
        parts.append(block)
        total += size
        if max_bytes - total < 200:  # close enough: nothing useful fits any more
            break
    if not parts:
        raise ValueError(f"python_stdlib: no source file of {root} fits in {max_bytes} bytes")
    return "".join(parts)


_NAMES = {
    "shakespeare": shakespeare,
    "tinyshakespeare": shakespeare,
    "shakespeare_char": shakespeare,
    "python": python_stdlib,
    "stdlib": python_stdlib,
    "python_stdlib": python_stdlib,
    "default": python_stdlib,
}


def load_corpus(name_or_path: str | os.PathLike | None = None) -> str:
    """A corpus by name ('shakespeare', 'python'/'stdlib') or the text of a file.

    `None` or 'default' gives the embedded default, `python_stdlib()`.

    Raises:
        FileNotFoundError: when the argument is neither a known name nor an existing file.
    """
    if name_or_path is None:
        return python_stdlib()
    key = str(name_or_path)
    if key.lower() in _NAMES and not Path(key).is_file():
        return _NAMES[key.lower()]()
    p = Path(key).expanduser()
    if p.is_file():
        return p.read_text(encoding="utf-8")
    names = ", ".join(sorted(_NAMES))
    raise FileNotFoundError(f"load_corpus: {key!r} is neither a corpus name ({names}) nor a file")
