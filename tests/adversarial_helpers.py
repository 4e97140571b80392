"""Shared pieces of the adversarial tests: a tiny trained run, and ways to rewrite its checkpoint.

`rewrite_doc` changes the JSON document (or the tensors) of a checkpoint and stores a fresh,
valid SHA-256, so the damage reaches the checks behind the checksum (a crafted file, not a
corrupted one). `rewrite_header` edits the raw safetensors header (types, offsets, nesting).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np

from descent import io as dio
from descent.cli import main

TEXT = "to be, or not to be, that is the question: whether 'tis nobler in the mind. " * 40

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "8", "--block-size", "8",
        "--batch-size", "2", "--eval-interval", "2", "--eval-iters", "1", "--warmup-iters", "1",
        "--lr-decay-iters", "4", "--no-progress", "--sample-tokens", "0"]  # fmt: skip


def run_main(capsys, args: list[str]) -> tuple[int, str, str]:
    """main(args) in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, f"exit {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"


def make_run(root: Path, steps: int = 4) -> tuple[Path, Path]:
    """A trained tiny run: (corpus file, run folder holding ckpt.safetensors at step `steps`)."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "text.txt"
    corpus.write_text(TEXT)
    out = root / "run"
    code = main(["train", "--data", str(corpus), "--out", str(out), "--max-iters", str(steps),
                 *TINY])  # fmt: skip
    assert code == 0
    return corpus, out


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    lock = dst / ".descent.lock"
    if lock.exists():
        lock.unlink()
    return dst


def split_file(path: Path) -> tuple[dict, dict[str, np.ndarray], dict]:
    """(raw header, stored arrays, descent document) of a checkpoint."""
    buf = Path(path).read_bytes()
    header, metadata, start = dio._parse(buf, Path(path))
    arrays = dio._read_arrays(buf, header, start)
    return header, arrays, json.loads(metadata["descent"])


def write_file(path: Path, arrays: dict[str, np.ndarray], doc, sum_override=None) -> Path:
    """A safetensors file of `arrays` with `doc` as the descent document and a valid checksum."""
    from safetensors.numpy import save as st_save

    metadata = {"descent": doc if isinstance(doc, str) else json.dumps(doc)}
    metadata["descent.sha256"] = sum_override or dio._checksum(arrays, metadata)
    Path(path).write_bytes(st_save(arrays, metadata=metadata))
    return Path(path)


def rewrite_doc(src: Path, dst: Path, mutate) -> Path:
    """Copy a checkpoint with `mutate(doc, arrays)` applied (it may return a new doc)."""
    _, arrays, doc = split_file(src)
    new = mutate(doc, arrays)
    return write_file(dst, arrays, doc if new is None else new)


def header_bytes(path: Path) -> tuple[dict, bytes]:
    """(parsed JSON header, data bytes) of a safetensors file."""
    buf = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", buf[:8])
    return json.loads(buf[8 : 8 + n]), buf[8 + n :]


def pack(header_text: str | bytes, data: bytes) -> bytes:
    raw = header_text.encode() if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(raw)) + raw + data
