"""A training run's output folder, written safely.

Three promises, each a regression test in tests/test_adversarial_cli.py:

* **Never through a link.** Every run file (config.json, metrics.jsonl, the checkpoint, the write
  probe) is written as a fresh temporary file renamed over the name (`descent.io`'s atomic
  write), which replaces a planted symbolic link instead of writing into the file it points to;
  metrics.jsonl, appended line by line, is opened with O_NOFOLLOW, and a link there is refused.
* **Names are what they claim.** A directory (or a device) where a run file belongs is refused
  with a clear error before training starts, instead of `ckpt.safetensors/checkpoint...`.
* **One run per folder.** `RunLock` holds an advisory `flock` on OUT/.descent.lock for the whole
  run and writes the holder's PID into it; a second run into the same folder says which process
  holds it. The lock dies with the process (even by SIGKILL), so it never needs cleaning up.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not protected from each other
    fcntl = None  # type: ignore[assignment]

# The files of a run folder (`descent.train` re-exports the three names).
CHECKPOINT_NAME = "ckpt.safetensors"
METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"
LOCK_NAME = ".descent.lock"


class RunFolderError(ValueError):
    """The output folder cannot be used: a link or a directory in place of a run file, another
    run holding the folder, or no permission to write."""


def check_run_file(path: Path) -> None:
    """Refuse a run file's name when it is taken by something other than a regular file.

    A symbolic link is allowed here (it is replaced by the atomic write, never written through),
    but a directory, FIFO or device is not: writing 'into' it would put the file elsewhere.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise RunFolderError(f"cannot inspect {str(path)!r}: {e.strerror or e}") from e
    if stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode):
        return
    kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
    raise RunFolderError(
        f"{str(path)!r} is {kind}; descent writes a file of that name there: remove or rename "
        "it, or use another --out"
    )


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temporary file + rename: a link there is replaced)."""
    from .io import atomic_write_bytes

    check_run_file(path)
    atomic_write_bytes(path, text.encode("utf-8"))


def probe_writable(directory: Path) -> None:
    """Create and delete a uniquely named file (O_EXCL: never follows a planted link)."""
    fd, name = tempfile.mkstemp(prefix=".descent-write-test.", dir=directory)
    os.close(fd)
    os.unlink(name)


def open_append(path: Path):
    """metrics.jsonl opened for appending, line-buffered, refusing a symbolic link there."""
    check_run_file(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if os.path.islink(path):
            raise RunFolderError(
                f"{str(path)!r} is a symbolic link; descent does not write through links "
                "(remove it, or use another --out)"
            ) from e
        raise RunFolderError(f"cannot open {str(path)!r}: {e.strerror or e}") from e
    return os.fdopen(fd, "a", buffering=1, encoding="utf-8")


def read_records(path: Path) -> list[tuple[str, dict]]:
    """The JSON-object lines of a metrics.jsonl as (line, record); anything else is skipped.

    Lines cut short by a kill, lines that are not objects and bytes that are not UTF-8 are all
    dropped: the file is a log, and the resumed run writes its own records again.
    """
    check_run_file(path)
    if not path.is_file():
        return []
    out = []
    with open(path, "rb") as f:
        for raw in f:
            try:
                line = raw.decode("utf-8").strip()
                rec = json.loads(line) if line else None
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if isinstance(rec, dict):
                out.append((line, rec))
    return out


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the records of steps <= `step` (a resumed run writes the later ones again)."""
    if not os.path.lexists(path):
        return
    keep = []
    for line, rec in read_records(path):
        s = rec.get("step", 0)
        if type(s) is int and s <= step:
            keep.append(line)
    write_text(path, "".join(k + "\n" for k in keep))


class RunLock:
    """An advisory lock on a run folder, held from `acquire()` to `release()` (or exit).

    Raises:
        RunFolderError: from `acquire()` when another process holds the folder; the message
            names its PID.
    """

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if fcntl is None or self._fd is not None:
            return self
        check_run_file(self.path)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as e:
            raise RunFolderError(f"cannot open the lock file {str(self.path)!r}: "
                                 f"{e.strerror or e}") from e  # fmt: skip
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise RunFolderError(
                f"output folder {str(self.path.parent)!r} is in use by another descent run "
                f"({who} holds {LOCK_NAME}); wait for it to finish or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __del__(self) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# The checkpoint of a run


@dataclass
class RunCheckpoint:
    """A checkpoint written by `descent train`, read and validated, nothing built from it yet.

    Attributes:
        path: the file.
        meta: its metadata (step, tokenizer, rng, model_config, train_config, ...).
        model_config: the GPTConfig, checked against the tensors (safe to build).
        tokenizer: its CharTokenizer (as many characters as the model's vocabulary).
        step: the last completed step (an integer >= 0).
        state_dict: the model's tensors by name.
    """

    path: Path
    meta: dict
    model_config: Any
    tokenizer: Any
    step: int
    state_dict: dict = field(repr=False)


_NEEDED = ("model_config", "tokenizer", "step", "rng")


def read_run_checkpoint(path: Path, resume: bool = True) -> RunCheckpoint:
    """Read and validate everything `descent sample` and `descent train --resume` rely on.

    Sampling (`resume=False`) needs the model config and the tokenizer; resuming needs the step
    and the random streams as well.

    Raises:
        FileNotFoundError: no file there.
        RunFolderError: not a regular file, a damaged or foreign file, a checkpoint not written by
            `descent train` (e.g. by `descent.io.save`), or fields of the wrong type or size.
    """
    from . import io as dio
    from . import preflight
    from .data import tokenizer_from_dict

    path = Path(path)
    if path.is_dir():  # descent.io would look for a checkpoint.safetensors inside it
        raise RunFolderError(f"{str(path)!r} is a directory, not a checkpoint file")
    try:
        ck = dio.load(path)
    except dio.CheckpointError as e:
        raise RunFolderError(str(e)) from None
    except IsADirectoryError:
        raise RunFolderError(f"{str(path)!r} is a directory, not a checkpoint file") from None
    except PermissionError as e:
        raise RunFolderError(f"cannot read {str(path)!r}: {e.strerror or e}") from None
    meta = ck.meta
    missing = [k for k in (_NEEDED if resume else _NEEDED[:2]) if k not in meta]
    if missing:
        raise RunFolderError(
            f"{str(path)!r} is not a checkpoint written by `descent train`: its metadata has no "
            f"{', '.join(missing)} (descent.io.save keeps only what it is given); pass a run "
            "folder written by `descent train`"
        )

    def bad(what: str, why: str) -> RunFolderError:
        return RunFolderError(f"{str(path)!r} has a damaged {what}: {why}")

    step = meta.get("step", 0)
    if type(step) is not int or step < 0:
        raise bad("step", f"{step!r} is not an integer >= 0")
    why = preflight.tokenizer_problem(meta["tokenizer"])
    if why is not None:
        raise bad("tokenizer", why)
    if resume:
        rng = meta["rng"]
        if not isinstance(rng, dict):
            raise bad("rng", f"a {type(rng).__name__}, not an object")
        for stream in ("train", "eval", "dropout"):
            why = preflight.generator_state_problem(rng.get(stream))
            if why is not None:
                raise bad(f"rng[{stream!r}]", why)
    best = meta.get("best_val_loss")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        raise bad("best_val_loss", f"{best!r} is not a number")
    if not isinstance(meta.get("train_config", {}), dict):
        raise bad("train_config", "not an object")
    odd = [f"{k} ({v.dtype})" for k, v in ck.state_dict.items() if v.dtype != np.float32]
    if odd:
        raise bad("weights", f"{', '.join(odd[:3])} are not float32 as `descent train` writes")
    shapes = {k: tuple(v.shape) for k, v in ck.state_dict.items()}
    try:
        config = preflight.gpt_config_from_checkpoint(meta["model_config"], shapes)
    except ValueError as e:
        raise bad("model_config", str(e)) from None
    tokenizer = tokenizer_from_dict(meta["tokenizer"])
    if tokenizer.vocab_size != config.vocab_size:
        raise bad(
            "tokenizer",
            f"it has {tokenizer.vocab_size} characters but the model's vocabulary is "
            f"{config.vocab_size} tokens",
        )
    return RunCheckpoint(path, meta, config, tokenizer, step, ck.state_dict)
