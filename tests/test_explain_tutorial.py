"""examples/tutorial.py (the script behind docs/tutorial.md) runs and shows what it says."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_tutorial_runs(tmp_path):
    out = tmp_path / "tutorial"
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tutorial.py"), str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = r.stdout
    for marker in ("1. the loss is a scorecard", "dL/dw: nudging", "magnitude",
                   "4. gradient descent", "all parameters passed", "accuracy 100%",
                   "all gradients healthy", "slice along negative gradient",
                   "Tanh", "forward anomaly in op 'Log'", "done"):  # fmt: skip
        assert marker in text, marker
    assert "tutorial.py" in text.split("forward anomaly")[1]  # the user's line is named
    for name in ("descent_2d.png", "net_slices.png", "net_trajectory.png", "net_gradients.png"):
        png = (out / name).read_bytes()
        assert png[:4] == b"\x89PNG" and len(png) > 10_000, name
    assert (out / "graph.dot").read_text().startswith("digraph")
