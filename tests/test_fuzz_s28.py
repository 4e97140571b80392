"""The session-28 differential fuzz (tests/fuzz_s28.py) at CI length: a fixed range of programs
of each mode (second-order gradients, complex dtypes and the fft family, nn.functional with
random configurations, torch.func transforms, integer / bool / float tensors through scatter,
gather, index_*, take, bincount, searchsorted, unique and the reductions) against torch 2.13,
and the known mismatches
(strict xfails: when one is fixed, its xfail fails and the entry must go). Longer runs:
`python tests/fuzz_s28.py MODE SECONDS FIRST` (docs/fuzz_long_run.md, "Session 28")."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import fuzz_s28 as fz  # noqa: E402

# programs per mode from program 0 (each mode ~2-4 s here); index (session 29): 256 and 259
# are open (docs/fuzz_long_run.md, "Session 29 (helper-218)")
COUNTS = {"grad2": 120, "complex": 40, "nn": 500, "func": 150, "index": 250}


@pytest.mark.parametrize("mode", sorted(COUNTS))
def test_fuzz_s28(mode):
    count, _known, bad = fz.fuzz(mode, 0, COUNTS[mode])
    report = "\n".join(f"{mode} {s}: {m}\n{p.source()}" for s, m, p in bad[:3])
    assert count == COUNTS[mode]
    assert not bad, f"{len(bad)} of {count} {mode} programs differ from torch:\n{report}"


@pytest.mark.parametrize(
    "key",
    [pytest.param(k, id=f"{k[0]}-{k[1]}", marks=pytest.mark.xfail(strict=k not in fz.NOT_STRICT,
                                                                  reason=r))
     for k, r in fz.KNOWN.items()],
)  # fmt: skip
def test_known(key):
    mode, seed = key
    assert fz.compare(fz.generate(mode, seed)) is None, fz.KNOWN[key]
