"""GradientMonitor / ReportCallback with the Trainer; run analysis in words; `descent explain`."""

import json
import math

import numpy as np
import pytest

import descent as ds
import descent.nn.functional as F
import descent.optim as optim
from descent.explain import GradientMonitor, ReportCallback, analyze_run, write_report
from descent.explain.cli import main as explain_main
from descent.explain.report import RunData, load_run
from descent.models import MLP


def test_gradient_monitor_manual_loop():
    ds.manual_seed(0)
    model = MLP([4, 8, 2])
    opt = optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    x = ds.tensor(rng.standard_normal((16, 4)).astype(np.float32))
    y = ds.tensor(rng.integers(0, 2, 16))
    mon = GradientMonitor(model, every=5)
    for step in range(1, 21):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
        before = {n: p._data.copy() for n, p in model.named_parameters()}
        mon.before_step(step)
        opt.step()
        rep = mon.after_step(step)
        if step in (1, 5, 10, 15, 20):
            assert rep is not None and rep.step == step
            for s in rep.params:
                assert np.isclose(s.norm, np.linalg.norm(grads[s.name]), rtol=1e-5)
                w0 = before[s.name]
                expect = np.linalg.norm(dict(model.named_parameters())[s.name].data - w0)
                assert np.isclose(s.update_ratio, expect / np.linalg.norm(w0), rtol=1e-4)
        else:
            assert rep is None
    assert [r.step for r in mon.history] == [1, 5, 10, 15, 20]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from descent.train import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("run")
    data = out / "text.txt"
    import descent.train

    with open(descent.train.__file__) as f:  # any text will do: descent's own source
        data.write_text(f.read()[:20000])
    cfg = TrainConfig(
        out_dir=str(out), data=str(data), n_layer=1, n_head=2, n_embd=16, block_size=16,
        batch_size=4, max_iters=30, eval_interval=10, eval_iters=2, progress=False,
        sample_tokens=0, warmup_iters=5, lr_decay_iters=30,
    )  # fmt: skip
    Trainer(cfg, [ReportCallback(out, every=5, curvature_every=15)]).train()
    return out


def test_report_callback_files(run_dir):
    recs = [json.loads(line) for line in (run_dir / "gradients.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 5, 10, 15, 20, 25, 30]
    names = {p["name"] for p in recs[0]["params"]}
    assert "transformer.wte.weight" in names
    assert all(p["update_ratio"] is not None and p["update_ratio"] > 0 for p in recs[-1]["params"])
    land = json.loads((run_dir / "landscape.json").read_text())
    assert "error" not in land, land
    assert land["slices"][0]["direction"] == "negative gradient"
    assert len(land["trajectory"]["coords"]) == 4  # snapshots at steps 0, 10, 20, 30
    assert np.asarray(land["grid"]["losses"]).shape == (9, 9)
    snaps = np.load(run_dir / "snapshots.npz")
    assert list(snaps["steps"]) == [0, 10, 20, 30] and snaps["projected"].shape == (4, 256)
    run = load_run(run_dir)
    assert len(run.steps) == 30 and [e["step"] for e in run.evals] == [0, 10, 20, 30]
    # curvature_every=15: AdamW's preconditioned sharpness against its edge of stability
    assert [r["step"] for r in run.curvature] == [15, 30]
    rec = run.curvature[-1]
    assert rec["optimizer"] == "AdamW" and rec["preconditioned"] and rec["measured"] > 0
    assert rec["threshold"] == pytest.approx(2 * 1.9 / (0.1 * rec["lr"]))  # beta1 = 0.9


def test_write_report_and_cli(run_dir, capsys):
    path = write_report(run_dir)
    assert path.endswith("report.html")
    html = open(path).read()
    for sec in ("summary", "loss", "lr", "gradients", "updates", "curvature", "table",
                "landscape"):  # fmt: skip
        assert f'<section id="{sec}">' in html
    assert html.count("data:image/png;base64,") == 7
    assert "edge of stability" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert explain_main([str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == path
    assert explain_main([str(run_dir / "missing")]) == 2


def _run(losses, evals=(), grads=()):
    steps = [{"step": i + 1, "loss": v, "lr": 1e-3, "grad_norm": 1.0} for i, v in enumerate(losses)]
    ev = [{"step": s, "train_loss": t, "val_loss": v, "lr": 1e-3} for s, t, v in evals]
    return RunData("x", steps, ev, list(grads))


def _texts(analysis):
    return " | ".join(f.text for f in analysis.findings)


def test_analysis_healthy():
    a = analyze_run(_run(list(np.linspace(4.0, 1.5, 100))))
    assert a.verdict == "healthy" and "healthy: loss fell from" in _texts(a)


def test_analysis_plateau_and_divergence_and_nan():
    flat = analyze_run(_run([2.3 + 0.001 * math.sin(i) for i in range(100)]))
    assert flat.verdict == "warning" and "plateaued" in _texts(flat)
    late = analyze_run(_run(list(np.linspace(4, 2, 60)) + [2.0] * 60))
    assert "then plateaued from about step" in _texts(late)
    up = analyze_run(_run(list(np.linspace(2, 5, 50))))
    assert up.verdict == "problem" and "diverged" in _texts(up)
    nan = analyze_run(_run([3.0, 2.9, 2.8, float("nan"), float("nan")]))
    assert "non-finite (NaN/Inf) at step 4" in _texts(nan)


def test_analysis_overfitting():
    evals = [(0, 4.0, 4.0), (100, 2.0, 2.1), (200, 1.5, 1.9), (300, 1.2, 2.0), (400, 1.0, 2.2)]
    a = analyze_run(_run(list(np.linspace(4, 1, 400)), evals))
    assert "val loss rising from step 200" in _texts(a) and "overfitting" in _texts(a)


def test_analysis_vanishing_and_dead_gradients():
    def rec(step, first_flags, dead_flags=("dead",)):
        return {"step": step, "params": [
            {"name": "layer1.weight", "flags": list(first_flags)},
            {"name": "layer2.weight", "flags": []},
            {"name": "layer3.bias", "flags": list(dead_flags)},
        ]}  # fmt: skip

    grads = [rec(10, []), rec(20, []), rec(30, ["vanishing"]), rec(40, ["vanishing"])]
    a = analyze_run(_run(list(np.linspace(4, 3, 40)), grads=grads))
    t = _texts(a)
    assert "gradients of layer1.weight vanished after step 30" in t
    assert "gradients of layer3.bias were always zero (dead)" in t
    assert "layer2" not in t and a.verdict == "problem"
    # a flag that came and went is not a persistent condition
    grads = [rec(10, ["vanishing"], ()), rec(20, [], ()), rec(30, [], ())]
    t = _texts(analyze_run(_run(list(np.linspace(4, 3, 30)), grads=grads)))
    assert "no vanishing, exploding, dead or non-finite" in t


def test_descent_train_report_end_to_end(tmp_path, capsys):
    """`descent train --report` records what the report needs and writes it at the end."""
    import descent.train
    from descent.cli import main as descent_main

    data = tmp_path / "text.txt"
    with open(descent.train.__file__) as f:
        data.write_text(f.read()[:20000])
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(out), "--max-iters", "20",
            "--eval-interval", "10", "--eval-iters", "1", "--n-layer", "1", "--n-head", "2",
            "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--sample-tokens", "0",
            "--no-progress", "--report"]  # fmt: skip
    assert descent_main(argv) == 0
    printed = capsys.readouterr().out
    assert str(out / "report.html") in printed
    for name in ("gradients.jsonl", "landscape.json", "snapshots.npz", "report.html"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert '<section id="summary">' in html and html.count("data:image/png;base64,") >= 5
    assert descent_main(["explain", str(out)]) == 0
