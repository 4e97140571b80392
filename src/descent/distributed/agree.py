"""Start-up agreement between ranks: one error ends every rank, and every rank runs one config.

A data-parallel job hangs whenever one rank leaves while the others wait in a collective: a
missing data file on one node, or `--max-iters 5` on one rank and 6 on another (the first
finishes, the second waits for an all-reduce that never comes). `start_check` is the one
collective every rank reaches before the first training collective: each rank brings its
configuration, its error (or None) and a checksum of its corpus, and every rank gets the same
verdict, so the job either starts everywhere or ends everywhere with the same one-line error.

After start-up, an error on one rank cannot be agreed on (the others are inside collectives of
the training step): `abort` ends the whole job through MPI_Abort, within seconds.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from typing import Any

from . import comm


def checksum(*arrays: Any) -> str:
    """A short SHA-256 of arrays' bytes (the corpus as token ids), to compare across ranks."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(memoryview(a).cast("B") if a.flags.c_contiguous else a.tobytes())
    return h.hexdigest()[:16]


def _flag(name: str) -> str:
    return "--out" if name == "out_dir" else "--" + name.replace("_", "-")


def differences(configs: list[dict], keys: Iterable[str]) -> list[str]:
    """For each key whose value is not the same on every rank: 'FLAG is A on rank 0 but B on
    rank r' (naming the first rank that differs from rank 0)."""
    out = []
    for key in keys:
        ref = configs[0].get(key)
        for r, cfg in enumerate(configs[1:], start=1):
            if cfg.get(key) != ref:
                out.append(f"{_flag(key)} is {ref!r} on rank 0 but {cfg.get(key)!r} on rank {r}")
                break
    return out


def start_check(
    config: dict,
    error: str | None,
    corpus: str | None,
    ignore: Iterable[str] = (),
    warn_only: Iterable[str] = (),
) -> tuple[str | None, list[str]]:
    """Compare every rank's start-up state; the same answer on every rank.

    Args:
        config: this rank's run configuration (a flat dict).
        error: this rank's start-up error message, or None.
        corpus: a checksum of this rank's training data (None when it was not read).
        ignore: keys that may differ freely (e.g. a progress bar shown on rank 0 only).
        warn_only: keys that may differ but deserve a warning (learning rate, seed).

    Returns:
        (message, warnings): the error every rank must raise (the first failing rank's own
        error, or the flags that differ), or None to go on; and warnings for rank 0 to print.
    """
    records = comm.all_gather_object({"config": config, "error": error, "corpus": corpus})
    failed = [(r, rec["error"]) for r, rec in enumerate(records) if rec["error"] is not None]
    if failed:
        r, message = failed[0]
        others = f" (rank(s) {', '.join(str(f[0]) for f in failed[1:])} failed too)" if len(
            failed) > 1 else ""  # fmt: skip
        return f"rank {r}: {message}{others}", []
    configs = [rec["config"] for rec in records]
    skip = set(ignore) | set(warn_only)
    keys = [k for k in configs[0] if k not in skip]
    keys += sorted({k for c in configs[1:] for k in c} - set(configs[0]) - skip)
    strict = differences(configs, keys)
    if strict:
        return ("ranks disagree on the run configuration: " + "; ".join(strict)
                + "; start every rank with the same flags"), []  # fmt: skip
    warnings = differences(configs, warn_only)
    sums = [rec["corpus"] for rec in records]
    if any(s != sums[0] for s in sums):
        r = next(i for i, s in enumerate(sums) if s != sums[0])
        warnings.append(
            f"the training text differs between ranks (checksum {sums[0]} on rank 0, "
            f"{sums[r]} on rank {r}): each rank trains on its own corpus"
        )
    return None, [f"ranks differ: {w}" for w in warnings]


def abort(code: int = 1) -> None:
    """End the whole MPI job now (every rank), with exit status `code`; a no-op without MPI.

    For errors that only one rank sees once training runs: its peers are inside collectives
    and would wait forever for it.
    """
    if not comm.is_initialized() or comm.get_world_size() < 2:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    comm.mpi_module().COMM_WORLD.Abort(int(code) or 1)
