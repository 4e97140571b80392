"""The speedrun options through `descent train`: TrainConfig's model options and optimizer='muon'
reach the model and the optimizer, Muon's lr follows the schedule scaled by muon_lr /
learning_rate, and a run stopped and resumed gives the same losses as a straight one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from descent.optim import MuonWithAdamW
from descent.train import ConfigError, TrainConfig, Trainer, train

TEXT = (
    "the quick brown fox jumps over the lazy dog. "
    "pack my box with five dozen liquor jugs! "
    "how vexingly quick daft zebras jump; "
) * 120

SPEEDRUN = dict(rope=True, qk_norm=True, relu2=True, logit_softcap=15.0, zero_init_proj=True,
                tie_weights=False, optimizer="muon", muon_lr=0.02)  # fmt: skip


def _config(data: Path, out: Path, **overrides) -> TrainConfig:
    cfg = dict(
        data=str(data), out_dir=str(out), seed=3, n_layer=1, n_head=2, n_embd=16, block_size=16,
        batch_size=4, max_iters=40, learning_rate=3e-3, min_lr=3e-4, warmup_iters=5,
        lr_decay_iters=40, eval_interval=20, eval_iters=2, checkpoint_interval=20,
        progress=False, sample_tokens=0, **SPEEDRUN,
    )  # fmt: skip
    cfg.update(overrides)
    return TrainConfig(**cfg)


def _losses(out: Path) -> dict[int, float]:
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if r["kind"] == "step"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(TEXT)
    return path


def test_speedrun_options_reach_model_and_optimizer(corpus, tmp_path):
    trainer = Trainer(_config(corpus, tmp_path, max_iters=6))
    cfg = trainer.raw_model.config
    assert (cfg.rope, cfg.qk_norm, cfg.relu2, cfg.zero_init_proj) == (True, True, True, True)
    assert cfg.logit_softcap == 15.0 and not cfg.tie_weights
    assert isinstance(trainer.optimizer, MuonWithAdamW)
    trainer.train()
    lr = trainer.get_lr(6)
    for group in trainer.optimizer.param_groups:
        want = lr * (0.02 / 3e-3) if group["use_muon"] else lr
        assert group["lr"] == pytest.approx(want, rel=1e-12)


def test_speedrun_run_learns_and_resumes_exactly(corpus, tmp_path):
    straight = tmp_path / "straight"
    train(_config(corpus, straight))
    ref = _losses(straight)
    assert ref[40] < ref[1] - 0.5  # it learns
    split = tmp_path / "split"
    train(_config(corpus, split, max_iters=20))
    trainer = Trainer(_config(corpus, split, resume=True))
    assert trainer.step == 20
    trainer.train()
    got = _losses(split)
    for step in range(21, 41):
        assert got[step] == ref[step], f"step {step}: {got[step]} != {ref[step]}"


def test_speedrun_config_errors(corpus, tmp_path):
    with pytest.raises(ConfigError, match="optimizer"):
        _config(corpus, tmp_path, optimizer="sgd").validate()
    with pytest.raises(ConfigError, match="even head width"):
        _config(corpus, tmp_path, n_embd=18, n_head=6).validate()
    with pytest.raises(ConfigError, match="muon_lr"):
        _config(corpus, tmp_path, muon_lr=-1.0).validate()


def test_speedrun_cpu_preset(corpus, tmp_path):
    """The preset: baby-gpt's shape, twice its batch, every option on, Muon; it validates and
    trains (a few steps on a tiny corpus here; the measured figures are in docs/speedrun.md)."""
    from descent.models import PRESETS

    p = PRESETS["speedrun-cpu"]
    baby = PRESETS["baby-gpt"]
    for key in ("n_head", "n_embd", "block_size", "dropout"):  # baby's width and context,
        assert p[key] == baby[key], key
    assert p["n_layer"] == 2 < baby["n_layer"]  # half its depth,
    assert p["batch_size"] == 2 * baby["batch_size"]  # twice its batch
    assert p["optimizer"] == "muon" and p["rope"] and p["qk_norm"] and p["relu2"]
    assert p["zero_init_proj"] and not p["tie_weights"] and p["logit_softcap"] > 0
    assert p["compile"]
    # the decay ends early (fast to 1.90), then the run goes on at min_lr
    assert p["warmup_iters"] < p["lr_decay_iters"] < p["max_iters"]
    cfg = TrainConfig.from_preset(
        "speedrun-cpu", data=str(corpus), out_dir=str(tmp_path), block_size=16, max_iters=5,
        lr_decay_iters=5, eval_interval=5, eval_iters=1, progress=False, sample_tokens=0,
    )  # fmt: skip
    cfg.validate()
    trainer = Trainer(cfg)
    assert isinstance(trainer.optimizer, MuonWithAdamW)
    trainer.train()
    assert trainer.step == 5


def test_speedrun_compiled_equals_eager(corpus, tmp_path):
    """--compile with every speedrun option and MuonWithAdamW: the forward/backward replays
    (the composite optimizer is found inside, no fallback), and a compiled run's losses and
    weights follow the eager run's (float32 replay kernels: rounding only)."""
    import warnings

    import numpy as np

    from descent.compiler import CompileWarning

    runs = {}
    for compiled in (False, True):
        out = tmp_path / f"c{int(compiled)}"
        with warnings.catch_warnings():
            warnings.simplefilter("error", CompileWarning)  # a fallback fails the test
            trainer = Trainer(_config(corpus, out, max_iters=12, compile=compiled))
            trainer.train()
        runs[compiled] = (_losses(out), trainer)
    stats = runs[True][1].compiled_step.stats
    assert stats["replays"] >= 9 and stats["fallbacks"] == 0, stats
    eager, comp = runs[False][0], runs[True][0]
    assert sorted(eager) == sorted(comp)
    for step in eager:
        assert comp[step] == pytest.approx(eager[step], rel=1e-4), step
    pe = dict(runs[False][1].raw_model.named_parameters())
    for name, p in runs[True][1].raw_model.named_parameters():
        np.testing.assert_allclose(p.numpy(), pe[name].numpy(), rtol=2e-3, atol=2e-5)


def test_compiled_whole_step_with_muon_with_adamw(corpus, tmp_path):
    """A whole training step (forward, backward, clipping, MuonWithAdamW's step, zero_grad)
    compiles: descent.compile finds the two optimizers inside the composite one and replays
    their steps for real, so the weights follow an eager twin's."""
    import warnings

    import numpy as np

    import descent
    from descent.compiler import CompileWarning
    from descent.optim import clip_grad_norm_

    trainers = [Trainer(_config(corpus, tmp_path / f"w{i}")) for i in range(2)]

    def make_step(tr):
        params = [p for p in tr.raw_model.parameters() if p.requires_grad]

        def step(x, y):
            _, loss = tr.raw_model(x, y)
            loss.backward()
            clip_grad_norm_(params, 1.0)
            tr.optimizer.step()
            tr.optimizer.zero_grad(set_to_none=True)
            return loss

        return step

    eager = make_step(trainers[0])
    compiled = descent.compile(make_step(trainers[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompileWarning)
        for _ in range(6):
            x, y = trainers[0].get_batch("train", trainers[0].train_gen)
            le, lc = eager(x, y).item(), compiled(x, y).item()
            assert lc == pytest.approx(le, rel=1e-4)
    assert compiled.stats["replays"] >= 3 and compiled.stats["fallbacks"] == 0
    pe = dict(trainers[0].raw_model.named_parameters())
    for name, p in trainers[1].raw_model.named_parameters():
        np.testing.assert_allclose(p.numpy(), pe[name].numpy(), rtol=2e-3, atol=2e-5)


# -- benchmarks/speedrun.py ---------------------------------------------------------------------

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _bench_module():
    import importlib
    import sys

    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("speedrun")
    finally:
        sys.path.remove(str(BENCH))


def test_speedrun_bench_crossing_and_val_at():
    sr = _bench_module()
    curve = [{"step": 100, "train_s": 10.0, "val": 2.10}, {"step": 200, "train_s": 20.0,
             "val": 1.95}, {"step": 300, "train_s": 30.0, "val": 1.85},
             {"step": 400, "train_s": 40.0, "val": 1.80}]  # fmt: skip
    c = sr.crossing(curve)
    assert c["step"] == 300 and c["train_s"] == 30.0
    assert c["step_interp"] == pytest.approx(250.0) and c["train_s_interp"] == pytest.approx(25.0)
    assert sr.crossing(curve[:2]) is None
    assert sr.val_at(curve, 35.0) == 1.85 and sr.val_at(curve, 40.0) == 1.80
    assert sr.val_at(curve, 5.0) is None
    assert sr.parse_overrides("rope:0,learning_rate:2e-3,optimizer:adamw,muon_ns_steps:3") == {
        "rope": False, "learning_rate": 2e-3, "optimizer": "adamw", "muon_ns_steps": 3}


def test_speedrun_bench_end_to_end(tmp_path):
    """All three rows, a variant row and the step-cost measurement, at a tiny size (a 24 KB
    corpus, 4 iterations): the table, the JSON and every run's curve come out."""
    import os
    import subprocess
    import sys

    text = Path(tmp_path / "tiny.txt")
    text.write_text(TEXT[:24000])
    out = tmp_path / "bench.json"
    # One round of the step-cost measurement: the table, the JSON keys and (a)'s ratio of 1.0
    # come out of one as of two (each round is 3 more steps of every row: 12 steps, 1/3 of it)
    env = dict(os.environ, DESCENT_DATA=str(text), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(BENCH / "speedrun.py"), "--seeds", "3", "--max-iters", "4",
         "--eval-interval", "2", "--cost-rounds", "1", "--variant", "no_rope=rope:0",
         "--in-process", "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for row in ("nanoGPT baby recipe, PyTorch", "descent baby-gpt", "descent speedrun-cpu",
                "speedrun-cpu no_rope", "training time excludes evaluation", "load average",
                "CPU time / wall time", "x (a)'s step"):  # fmt: skip
        assert row in proc.stdout, row
    data = json.loads(out.read_text())
    assert sorted(r["row"] for r in data["runs"]) == ["a", "b", "c", "no_rope"]
    for r in data["runs"]:
        assert [p["step"] for p in r["curve"]] == [2, 4] and r["train_s"] > 0
    assert set(data["costs"]) == {"a", "b", "c", "no_rope"} and data["costs"]["a"]["ratio"] == 1.0


def test_cli_max_iters_keeps_the_presets_decay_share(corpus, tmp_path):
    """`descent train --max-iters N` scales the decay horizon with the run: speedrun-cpu decays
    over 300 of its 1,800 steps, so a 12-step run decays over 2; baby-gpt's ends with the run."""
    from descent.cli import main

    for preset, want in (("speedrun-cpu", 2), ("baby-gpt", 12)):
        out = tmp_path / preset
        rc = main(["train", "--preset", preset, "--data", str(corpus), "--max-iters", "12",
                   "--out", str(out), "--block-size", "16", "--eval-interval", "12",
                   "--eval-iters", "1", "--no-progress", "--sample-tokens", "0"])  # fmt: skip
        assert rc == 0
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["max_iters"] == 12 and cfg["lr_decay_iters"] == want, preset
