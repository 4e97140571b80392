"""torch.hub for descent: download (and cache) weight files, and a local `hubconf.py`'s models.

* `load_state_dict_from_url` downloads a torch.save file (or a descent.save file) into
  `<hub dir>/checkpoints` once, checks the SHA-256 prefix in its name when asked
  (`resnet18-f37072fd.pth`: the digest starts with f37072fd, as torch.hub does), and reads it
  with `descent.load`, which builds tensors only (docs/checkpoints.md: nothing from the file runs).
* `list` / `help` / `load` with `source="local"` import a directory's `hubconf.py`. That file is
  *your* Python code: importing it runs it, exactly like `import hubconf`. Only do this with a
  directory you trust. Fetching a GitHub repository's code (torch's `source="github"`) is not
  done: clone it yourself, read it, and pass its directory with `source="local"`.

The hub directory is torch's: `$TORCH_HOME/hub`, else `$XDG_CACHE_HOME/torch/hub`, else
`~/.cache/torch/hub`, so files PyTorch already downloaded are found; `set_dir` overrides it.
Network URLs are fetched with urllib (no dependency); `file://` URLs and local paths work too.
"""

from __future__ import annotations

import hashlib
import importlib.util as _importlib_util
import os
import re
import shutil
import sys
import tempfile
import urllib.parse as _urlparse
import urllib.request as _urlrequest
from pathlib import Path
from typing import Any

__all__ = [
    "download_url_to_file",
    "get_dir",
    "help",
    "list",
    "load",
    "load_state_dict_from_url",
    "set_dir",
]

# torch.hub's pattern: the hex digits after the last '-' before the extension
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
_CHUNK = 1 << 20
_hub_dir: str | None = None


def get_dir() -> str:
    """The hub cache directory: set_dir's, else $TORCH_HOME/hub, else
    $XDG_CACHE_HOME/torch/hub, else ~/.cache/torch/hub (torch.hub.get_dir's rule)."""
    if _hub_dir is not None:
        return _hub_dir
    home = os.environ.get("TORCH_HOME")
    if home is None:
        cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
        home = os.path.join(cache, "torch")
    return os.path.join(os.path.expanduser(home), "hub")


def set_dir(d: str | os.PathLike) -> None:
    """Use `d` as the hub directory from now on (torch.hub.set_dir)."""
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def download_url_to_file(
    url: str, dst: str | os.PathLike, hash_prefix: str | None = None, progress: bool = True
) -> None:
    """Download `url` to `dst` atomically: into a temporary file next to it, checked, renamed.

    Args:
        url: an http(s)://, ftp:// or file:// URL, or a local path.
        dst: the file to write.
        hash_prefix: when given, the SHA-256 hex digest of the content must start with it.
        progress: print the byte count to stderr while downloading.

    Raises:
        RuntimeError: the digest does not start with `hash_prefix` (the temporary file is
            deleted and `dst` is untouched).
        urllib.error.URLError / OSError: the download failed.
    """
    dst = os.path.expanduser(os.fspath(dst))
    source = url if "://" in url else Path(url).resolve().as_uri()
    request = _urlrequest.Request(source, headers={"User-Agent": "descent.hub"})
    folder = os.path.dirname(os.path.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(delete=False, dir=folder, prefix=".hub-", suffix=".partial")
    try:
        sha = hashlib.sha256()
        done = 0
        with _urlrequest.urlopen(request) as response, tmp:  # noqa: S310 - a user's URL
            total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            while chunk := response.read(_CHUNK):
                tmp.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress:
                    of = f" of {int(total)}" if total else ""
                    sys.stderr.write(f"\r{done} bytes{of}")
        if progress:
            sys.stderr.write("\n")
        digest = sha.hexdigest()
        if hash_prefix is not None and digest[: len(hash_prefix)] != hash_prefix:
            raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "{digest}")')
        shutil.move(tmp.name, dst)
    finally:
        if os.path.exists(tmp.name):
            os.remove(tmp.name)


def load_state_dict_from_url(
    url: str,
    model_dir: str | os.PathLike | None = None,
    map_location: Any = None,
    progress: bool = True,
    check_hash: bool = False,
    file_name: str | None = None,
    weights_only: bool = True,
) -> Any:
    """The object in the file at `url` (usually a state_dict), downloaded once and cached.

    Args:
        url: where the torch.save (or descent.save) file is.
        model_dir: the cache directory (default `<get_dir()>/checkpoints`).
        map_location: as in `descent.load`.
        progress: print the download's progress.
        check_hash: the file name's `-<hex>.` part must start its SHA-256 digest (checked on
            download, as torch.hub does; a cached file is trusted).
        file_name: the cached file's name (default: the URL's last path component).
        weights_only: accepted: descent.load always reads weights only.

    Raises:
        RuntimeError: a hash mismatch. CheckpointError: a file descent cannot read safely.
    """
    from .io import load_object  # noqa: PLC0415 - descent.load

    if model_dir is None:
        model_dir = os.path.join(get_dir(), "checkpoints")
    model_dir = os.path.expanduser(os.fspath(model_dir))
    os.makedirs(model_dir, exist_ok=True)
    filename = file_name or os.path.basename(_urlparse.urlparse(url).path)
    cached = os.path.join(model_dir, filename)
    if not os.path.exists(cached):
        sys.stderr.write(f'Downloading: "{url}" to {cached}\n')
        hash_prefix = None
        if check_hash:
            match = HASH_REGEX.search(filename)
            hash_prefix = match.group(1) if match else None
        download_url_to_file(url, cached, hash_prefix, progress=progress)
    return load_object(cached, map_location=map_location, weights_only=weights_only)


# ---- hubconf.py entry points (source="local") ----------------------------------------------
def _hubconf(repo_or_dir: str | os.PathLike, source: str):
    """Import `<repo_or_dir>/hubconf.py` (runs the user's code, as `import hubconf` would)."""
    if source != "local":
        raise ValueError(
            f"descent.hub reads source='local' only, not {source!r}: descent does not download "
            "and run a repository's code. Clone it, read its hubconf.py, and pass the "
            "directory with source='local'"
        )
    folder = os.path.abspath(os.path.expanduser(os.fspath(repo_or_dir)))
    path = os.path.join(folder, "hubconf.py")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist: a hub directory needs a hubconf.py")
    sys.path.insert(0, folder)  # hubconf.py may import its neighbours, as in torch.hub
    try:
        spec = _importlib_util.spec_from_file_location("hubconf", path)
        module = _importlib_util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    missing = [
        d for d in getattr(module, "dependencies", []) if _importlib_util.find_spec(d) is None
    ]
    if missing:
        raise RuntimeError(f"Missing dependencies: {', '.join(missing)}")
    return module


def _entry(module, model: str):
    fn = getattr(module, model, None) if isinstance(model, str) else None
    if fn is None or not callable(fn) or model.startswith("_"):
        raise RuntimeError(f"Cannot find callable {model} in hubconf")
    return fn


def list(
    github: str | os.PathLike,
    force_reload: bool = False,
    skip_validation: bool = False,  # noqa: A001
    trust_repo: Any = None,
    verbose: bool = True,
    source: str = "github",
) -> Any:
    """The entry points (public callables) of a directory's hubconf.py (torch.hub.list).
    Pass source="local": this imports, i.e. runs, that hubconf.py."""
    module = _hubconf(github, source)
    return [
        name for name in dir(module) if callable(getattr(module, name)) and not name.startswith("_")
    ]


def help(
    github: str | os.PathLike,
    model: str,
    force_reload: bool = False,  # noqa: A001
    skip_validation: bool = False,
    trust_repo: Any = None,
    source: str = "github",
) -> Any:
    """The docstring of entry point `model` of a directory's hubconf.py (torch.hub.help)."""
    return _entry(_hubconf(github, source), model).__doc__


def load(
    repo_or_dir: str | os.PathLike,
    model: str,
    *args: Any,
    source: str = "github",
    trust_repo: Any = None,
    force_reload: bool = False,
    verbose: bool = True,
    skip_validation: bool = False,
    **kwargs: Any,
) -> Any:
    """`hubconf.<model>(*args, **kwargs)` of a directory with source="local" (torch.hub.load).
    It runs that directory's hubconf.py: your code, like an import."""
    return _entry(_hubconf(repo_or_dir, source), model)(*args, **kwargs)
