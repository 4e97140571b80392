"""The command-line report every database harness prints (tests/*_harness.py).

`report(cases, title, verbose)` runs each case's check and prints one FAIL line per case that
differs from PyTorch (every finding with `verbose`), then a count line on stderr. A case is
`(name, check)`: `check()` returns None (not run: the sample needs what the harness cannot
translate), an empty list (agrees) or a list of findings (strings). A check that raises counts
as a finding ("harness crash ..."), so a crash is never read as agreement.
"""

from __future__ import annotations

import sys


def short(e: BaseException) -> str:
    """An exception as one line: its class and the first line of its message."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg[:160]}"


def run_case(check):
    """check()'s findings, or one "harness crash" finding when it raises."""
    try:
        return check()
    except Exception as e:  # noqa: BLE001 - a crash is a finding, reported with its class
        return [f"harness crash {short(e)}"]


def report(cases, title: str, verbose: bool = False) -> tuple[int, int, int]:
    """Print the FAIL lines and the count line; returns (agree, differ, not run)."""
    nok = nbad = nskip = 0
    for name, check in cases:
        res = run_case(check)
        if res is None:
            nskip += 1
        elif res:
            nbad += 1
            print(f"FAIL {name}: {len(res)} findings; first: {res[0]}")
            if verbose:
                for r in res[1:]:
                    print("     ", r)
        else:
            nok += 1
    print(f"{title}: {nok} agree, {nbad} differ, {nskip} not run", file=sys.stderr)
    return nok, nbad, nskip
