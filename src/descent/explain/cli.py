"""`descent explain OUT`: turn a training run's folder into OUT/report.html."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of `descent explain`; returns the exit code (2 for a bad folder)."""
    parser = argparse.ArgumentParser(
        prog="descent explain",
        description="Write OUT/report.html (self-contained: summary in words, loss curves, "
        "gradients, loss landscape, and the sharpness against the edge of stability when "
        "recorded with --curvature-every) from a run folder written by `descent train --report`.",
    )
    parser.add_argument("out", metavar="OUT", help="the run's output folder")
    args = parser.parse_args(argv)
    from pathlib import Path

    from .report import write_report

    out = Path(args.out)
    if not out.is_dir():
        print(f"descent explain: no run folder at {str(out)!r}", file=sys.stderr)
        return 2
    if not (out / "metrics.jsonl").is_file() and not (out / "gradients.jsonl").is_file():
        print(
            f"descent explain: {str(out)!r} has no metrics.jsonl or gradients.jsonl; "
            "point it at a folder written by `descent train`",
            file=sys.stderr,
        )
        return 2
    try:
        path = write_report(out)
    except OSError as e:
        print(f"descent explain: cannot write the report: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        # load_run drops damaged records; this is the last line of defence for a run folder
        # damaged in a way it did not foresee: one line, not a traceback.
        print(f"descent explain: cannot read the run in {str(out)!r} "
              f"({type(e).__name__}: {' '.join(str(e).split())})", file=sys.stderr)  # fmt: skip
        return 2
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
