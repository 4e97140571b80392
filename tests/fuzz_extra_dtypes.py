"""The differential fuzz (tests/test_fuzz_differential.py) over more dtypes than its CI run:
int8, uint8 and int16 inputs (`ints`), or float16 ones (`half`), beside the usual ones.

    python tests/fuzz_extra_dtypes.py ints 150 777     # seconds, seed
    python tests/fuzz_extra_dtypes.py half 90 5

Not collected by pytest (no test_ prefix): the small dtypes meet PyTorch's own overflow checks
and float16 rounding in many places, listed in docs/pytorch.md ("Edge cases that still
differ"); the run prints every mismatch class with a reproducer, for a person to sort. It found
the fixes of tests/test_fuzz_regressions_3.py marked "found by the differential fuzz".
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import fuzz_ops as fz  # noqa: E402
import test_fuzz_differential as tfd  # noqa: E402

MODES = {
    "ints": (["float32", "float64", "int32", "int64", "bool", "uint8", "int8", "int16"],
             [0.3, 0.1, 0.08, 0.1, 0.1, 0.12, 0.12, 0.08]),
    "half": (["float32", "float16", "int64", "bool"], [0.3, 0.5, 0.1, 0.1]),
}  # fmt: skip


def main(mode: str, seconds: float, seed: int) -> None:
    fz.DTYPES, fz.DTYPE_P = MODES[mode]
    fz.INT_EDGES.update({"uint8": [0, 1, 255, 128], "int8": [0, -1, 127, -128],
                         "int16": [0, -1, 32767, -32768]})  # fmt: skip
    tfd.SEED = seed
    n, _ops, _missing, new, known, secs = tfd.fuzz(seconds, 10**9, 0)
    print(f"{n} cases in {secs:.1f} s; known classes: {known}")
    for cls, (count, case, m) in sorted(new.items(), key=lambda kv: -kv[1][0]):
        print(f"{count:5d}  {cls}  {m.detail[:200]}")
        print("      " + case.source().replace("\n", "\n      "))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ints",
         float(sys.argv[2]) if len(sys.argv) > 2 else 60.0,
         int(sys.argv[3]) if len(sys.argv) > 3 else 777)  # fmt: skip
