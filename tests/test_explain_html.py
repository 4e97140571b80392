"""The HTML report in a real browser: headless Chromium opens it, screenshots it, and a probe
copy of the page checks every image decoded and nothing was logged to the console.

Needs Debian's `chromium` (.ci/run installs it); without it the test skips and says so.
"""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import descent as ds
import descent.nn.functional as F
import descent.optim as optim
from descent.explain import (
    GradientMonitor,
    flatten_parameters,
    loss_landscape,
    trajectory_landscape,
    trajectory_projection,
    write_report,
)
from descent.models import MLP

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install chromium; .ci/run installs it)",
)

SECTIONS = ("summary", "loss", "lr", "gradients", "updates", "table", "landscape", "files")


def _make_run(out):
    """A real small run written by hand: a deep MLP (a heat map of 18 gradient rows)."""
    ds.manual_seed(0)
    model = MLP([6] + [12] * 8 + [3], activation="tanh")
    opt = optim.SGD(model.parameters(), lr=0.2)
    rng = np.random.default_rng(0)
    x = ds.tensor(rng.standard_normal((64, 6)).astype(np.float32))
    y = ds.tensor(rng.integers(0, 3, 64))

    def loss_fn(m, b):
        return F.cross_entropy(m(b[0]), b[1])

    mon = GradientMonitor(model, every=5)
    metrics, snaps = [], [flatten_parameters(model)]
    for step in range(1, 41):
        opt.zero_grad()
        loss = loss_fn(model, (x, y))
        loss.backward()
        mon.before_step(step)
        opt.step()
        mon.after_step(step)
        metrics.append({"kind": "step", "step": step, "loss": loss.item(), "lr": 0.2})
        if step % 10 == 0:
            v = loss_fn(model, (x, y)).item()
            metrics.append({"kind": "eval", "step": step, "train_loss": v, "val_loss": v * 1.1})
            snaps.append(flatten_parameters(model))
    (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    (out / "gradients.jsonl").write_text(
        "".join(json.dumps(r.to_dict()) + "\n" for r in mon.history)
    )
    land = loss_landscape(model, loss_fn, (x, y), steps=9, num_random=1).to_dict()
    traj = trajectory_projection(snaps)
    land["grid"] = trajectory_landscape(model, loss_fn, (x, y), traj, grid_steps=7).grid.to_dict()
    land["trajectory"] = traj.to_dict()
    (out / "landscape.json").write_text(json.dumps(land))
    return write_report(out)


def _chromium(args, tmp_path, timeout=120):
    profile = tmp_path / f"profile{len(os.listdir(tmp_path))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = document.images, bad = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) {
      bad++; console.error("broken image " + i);
    }
  }
  document.body.setAttribute("data-probe", "images=" + imgs.length + ";broken=" + bad);
});
</script></body>"""


def test_report_in_headless_chromium(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    path = _make_run(run)
    page = open(path, encoding="utf-8").read()
    assert "<script" not in page  # readable without JavaScript
    assert not re.search(r"""(src|href)=["']https?:""", page)  # nothing from the network

    # 1. the screenshot of the page itself
    shot = tmp_path / "report.png"
    r = _chromium([f"--screenshot={shot}", "--window-size=1000,3600", f"file://{path}"], tmp_path)
    assert shot.is_file() and shot.stat().st_size > 50_000, r.stderr[-2000:]
    assert _console_messages(r.stderr) == []
    import matplotlib.image as mpimg

    img = mpimg.imread(str(shot))
    assert img.shape[0] == 3600 and img.shape[1] == 1000
    assert img[:, :, :3].std() > 0.05  # not a blank page

    # 2. the DOM after load, through a probe copy that checks every image decoded
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE), encoding="utf-8")
    r = _chromium(["--virtual-time-budget=10000", "--dump-dom", f"file://{probe}"], tmp_path)
    dom = r.stdout
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in dom, sec
    assert 'data-probe="images=6;broken=0"' in dom, (dom[-500:], r.stderr[-2000:])
    assert _console_messages(r.stderr) == []
    assert "Verdict:" in dom and "loss" in dom


def test_console_error_detection_works(tmp_path):
    """The console check is real: a page with an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("planted")</script></body></html>')
    r = _chromium(["--dump-dom", f"file://{bad}"], tmp_path)
    assert any("planted" in m for m in _console_messages(r.stderr))
