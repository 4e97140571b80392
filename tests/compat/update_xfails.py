"""Refresh the strict-xfail tables of tests/compat after descent changes.

    .venv/bin/python tests/compat/update_xfails.py            # rewrite test_idioms.XFAIL
    .venv/bin/python tests/compat/update_xfails.py --programs # also report every program

Idioms: evaluates every idiom with torch and with descent and rewrites the XFAIL table of
test_idioms.py with one reason per idiom that still differs (review the diff: an idiom that
leaves the table is fixed; one that enters it is a regression). Programs: runs each program in
both libraries and prints whether it agrees or the first error, so the reasons in
test_programs.CASES can be brought up to date by hand (they name what is missing, which only a
person can judge from the error).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import test_idioms as ti  # noqa: E402

MISSING_MODULE = re.compile(r"module 'descent(\.?[\w.]*)' has no attribute '(\w+)'")
MISSING_METHOD = re.compile(r"'(?:Tensor|Parameter)' object has no attribute '(\w+)'")


def idiom_reason(code: str) -> str | None:
    """Why descent's answer to `code` differs from torch's; None when it agrees."""
    their_warnings, our_warnings = [], []
    theirs, their_err = ti.evaluate(code, ti.torch, their_warnings)
    ours, our_err = ti.evaluate(code, ti.descent, our_warnings)
    if our_warnings and not their_warnings:
        return f"descent warns where torch is silent: {our_warnings[0]}"[:110]
    if their_err is not None:
        if our_err is None:
            return f"descent answers where torch raises {type(their_err).__name__}"
        if not isinstance(our_err, type(their_err)):
            return (
                f"descent raises {type(our_err).__name__} where torch raises "
                f"{type(their_err).__name__}"
            )
        return None
    if our_err is not None:
        msg = str(our_err).split("\n")[0]
        if m := MISSING_MODULE.match(msg):
            return f"descent{m.group(1)}.{m.group(2)} is missing"
        if m := MISSING_METHOD.match(msg):
            return f"Tensor.{m.group(1)} is missing"
        return f"descent raises {type(our_err).__name__}: {msg}"[:110]
    try:
        ti.same(ti.normalize(ours), ti.normalize(theirs), "")
    except AssertionError as e:
        return ("different answer" + str(e).strip().split("\n")[0])[:110]
    except TypeError:
        return f"descent answers a {type(ours).__name__}"
    return None


def rewrite_idiom_table() -> int:
    lines = ["XFAIL: dict[str, str] = {"]
    for code in ti.IDIOMS:
        reason = idiom_reason(code)
        if reason:
            lines.append(f"    {code!r}: {reason!r},")
    lines.append("}")
    path = HERE / "test_idioms.py"
    text = path.read_text()
    pattern = r"XFAIL: dict\[str, str\] = \{(\}|.*?\n\})"
    text = re.sub(pattern, lambda _: "\n".join(lines), text, count=1, flags=re.S)
    path.write_text(text)
    subprocess.run([sys.executable, "-m", "ruff", "format", str(path)], check=False)
    # Entries longer than the line limit are the idioms' own text: mark them, do not wrap them.
    out = path.read_text().split("\n")
    if "XFAIL: dict[str, str] = {" not in out:  # an empty table: formatted as `{}`
        return len(lines) - 2
    start = out.index("XFAIL: dict[str, str] = {")
    for k in range(start, len(out)):
        if out[k] == "}":
            break
        if len(out[k]) > 100 and "noqa" not in out[k]:
            out[k] += "  # noqa: E501 - the idiom's own text"
    path.write_text("\n".join(out))
    return len(lines) - 2


def report_programs() -> None:
    import test_programs as tp

    for name in sorted(tp.CASES):
        (rtol, atol), listed = tp.CASES[name]
        source = (tp.PROGRAMS / f"{name}.py").read_text()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                theirs = tp.run_program(source, Path(tmp) / "torch", name)
                ours = tp.run_program(tp.to_descent(source), Path(tmp) / "descent", name)
                tp.compare(ours, theirs, rtol, atol)
                status = "PASSES"
            except AssertionError as e:
                status = "fails: " + str(e).strip().split("\n")[-1][:200]
        print(f"{name:24s} {status}\n{'':24s} listed as: {listed or 'passing'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programs", action="store_true", help="also run every program")
    args = parser.parse_args()
    n = rewrite_idiom_table()
    print(f"test_idioms.py: {n} of {len(ti.IDIOMS)} idioms listed in XFAIL")
    if args.programs:
        report_programs()


if __name__ == "__main__":
    main()
