"""Exact resume: 200 steps in one go, or 100 steps + resume for 100 more, give identical losses.

The checkpoint holds weights, AdamW state, step, tokenizer and the three random streams (training
batches, evaluation batches, dropout), so the resumed run cannot tell it was interrupted. Dropout
is on to make the dropout stream matter. The SIGKILL variant kills a training subprocess from
inside (after its checkpoint at step 100, mid-way to the next one) and resumes from what it left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from descent.train import TrainConfig, Trainer, train

TEXT = (
    "the quick brown fox jumps over the lazy dog. "
    "pack my box with five dozen liquor jugs! "
    "how vexingly quick daft zebras jump; "
) * 120  # ~15,000 characters, 40-odd distinct


def tiny_config(data: Path, out: Path, **overrides) -> TrainConfig:
    cfg = dict(
        data=str(data), out_dir=str(out), seed=7, n_layer=1, n_head=2, n_embd=16, block_size=16,
        dropout=0.1, batch_size=4, max_iters=200, learning_rate=3e-3, min_lr=3e-4,
        warmup_iters=10, lr_decay_iters=200, eval_interval=50, eval_iters=2,
        checkpoint_interval=50, progress=False, sample_tokens=0,
    )  # fmt: skip
    cfg.update(overrides)
    return TrainConfig(**cfg)


def step_losses(out: Path) -> dict[int, float]:
    """step -> training loss, from metrics.jsonl; fails on a duplicated step."""
    losses: dict[int, float] = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["kind"] == "step":
            assert rec["step"] not in losses, f"step {rec['step']} logged twice"
            losses[rec["step"]] = rec["loss"]
    return losses


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> dict[int, float]:
    """The uninterrupted 200-step run."""
    out = tmp_path_factory.mktemp("straight")
    train(tiny_config(corpus, out))
    losses = step_losses(out)
    assert sorted(losses) == list(range(1, 201))
    assert losses[200] < losses[1] - 0.5  # it does learn
    return losses


def test_stop_at_100_and_resume_gives_identical_losses(corpus, reference, tmp_path):
    train(tiny_config(corpus, tmp_path, max_iters=100))
    assert (tmp_path / "ckpt.safetensors").is_file()
    trainer = Trainer(tiny_config(corpus, tmp_path, resume=True))
    assert trainer.step == 100
    trainer.train()
    losses = step_losses(tmp_path)
    assert sorted(losses) == list(range(1, 201))
    for step in range(101, 201):
        assert losses[step] == reference[step], f"step {step}: {losses[step]} != {reference[step]}"


def _run_child(body: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `body` in a fresh Python process with this test module importable."""
    script = f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n" + body
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def test_sigkill_after_checkpoint_then_resume_gives_identical_losses(corpus, tmp_path):
    # Every run compared here starts in a fresh process (the straight run, the killed run, the
    # resume), so what earlier tests left in this pytest process cannot enter the comparison.
    # The killed child trains the same 200-step run and kills itself at step 130: the checkpoint
    # of step 100 is on disk, steps 101-130 were logged and are lost with the process.
    straight_dir, run_dir = tmp_path / "straight", tmp_path / "killed"
    common = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from test_resume import tiny_config
        from descent.train import Trainer, train
        corpus = Path({str(corpus)!r})
        """
    )
    proc = _run_child(common + f"train(tiny_config(corpus, Path({str(straight_dir)!r})))\n")
    assert proc.returncode == 0, proc.stderr
    straight_losses = step_losses(straight_dir)
    assert sorted(straight_losses) == list(range(1, 201))

    kill = textwrap.dedent(
        f"""
        class KillAt130:
            def on_step(self, trainer, step, metrics):
                if step == 130:
                    os.kill(os.getpid(), signal.SIGKILL)

        train(tiny_config(corpus, Path({str(run_dir)!r})), [KillAt130()])
        """
    )
    proc = _run_child(common + kill)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    logged = step_losses(run_dir)
    assert max(logged) == 130  # the metrics got past the checkpoint before the kill

    resume = textwrap.dedent(
        f"""
        trainer = Trainer(tiny_config(corpus, Path({str(run_dir)!r}), resume=True))
        assert trainer.step == 100, trainer.step
        trainer.train()
        """
    )
    proc = _run_child(common + resume)
    assert proc.returncode == 0, proc.stderr
    losses = step_losses(run_dir)  # steps 101-130 of the killed run were dropped, not doubled
    assert sorted(losses) == list(range(1, 201))
    resumed = np.array([losses[s] for s in range(101, 201)])
    straight = np.array([straight_losses[s] for s in range(101, 201)])
    np.testing.assert_array_equal(resumed, straight)


def test_resume_restores_optimizer_and_generators(corpus, tmp_path):
    first = train(tiny_config(corpus, tmp_path, max_iters=20, eval_interval=10))
    again = Trainer(tiny_config(corpus, tmp_path, max_iters=20, eval_interval=10, resume=True))
    assert again.step == 20
    assert again.train_gen.get_state().equal(first.train_gen.get_state())
    assert again.eval_gen.get_state().equal(first.eval_gen.get_state())
    for (na, pa), (nb, pb) in zip(first.raw_model.named_parameters(),
                                  again.raw_model.named_parameters()):  # fmt: skip
        assert na == nb
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    sa, sb = first.optimizer.state_dict(), again.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for key, st in sa["state"].items():
        for name, value in st.items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(sb["state"][key][name]))


def test_resume_refuses_a_different_model_shape(corpus, tmp_path):
    from descent.train import ConfigError

    train(tiny_config(corpus, tmp_path, max_iters=2, eval_interval=2))
    with pytest.raises(ConfigError, match="n_embd"):
        Trainer(tiny_config(corpus, tmp_path, n_embd=32, resume=True))
    with pytest.raises(ConfigError, match="no checkpoint"):
        Trainer(tiny_config(corpus, tmp_path / "elsewhere", resume=True))


def test_only_the_main_process_writes(corpus, tmp_path):
    trainer = train(tiny_config(corpus, tmp_path / "rank1", max_iters=3, eval_interval=3),
                    is_main=False)  # fmt: skip
    assert trainer.step == 3
    assert not (tmp_path / "rank1").exists()
    assert os.listdir(tmp_path) == []


def test_callbacks_see_every_step_in_order(corpus, tmp_path):
    calls = []

    class Recorder:
        def on_train_start(self, trainer):
            calls.append(("start", trainer.step))

        def on_after_backward(self, trainer, step):
            # gradients are there, the update is not yet applied
            assert all(p.grad is not None for p in trainer.raw_model.parameters())
            calls.append(("backward", step))

        def on_step(self, trainer, step, metrics):
            assert metrics["step"] == step and metrics["kind"] == "step"
            calls.append(("step", step))

        def on_eval(self, trainer, step, metrics):
            assert metrics["val_loss"] > 0
            calls.append(("eval", step))

        def on_train_end(self, trainer):
            calls.append(("end", trainer.step))

    class OnlyStep:  # hooks are optional: an object with one method is a callback
        def __init__(self):
            self.n = 0

        def on_step(self, trainer, step, metrics):
            self.n += 1

    only = OnlyStep()
    train(tiny_config(corpus, tmp_path, max_iters=4, eval_interval=2), [Recorder(), only])
    assert calls == [
        ("start", 0), ("eval", 0),
        ("backward", 1), ("step", 1), ("backward", 2), ("step", 2), ("eval", 2),
        ("backward", 3), ("step", 3), ("backward", 4), ("step", 4), ("eval", 4),
        ("end", 4),
    ]  # fmt: skip
    assert only.n == 4


def test_a_fresh_run_in_an_old_folder_starts_a_fresh_log(corpus, tmp_path):
    train(tiny_config(corpus, tmp_path, max_iters=3, eval_interval=3))
    train(tiny_config(corpus, tmp_path, max_iters=2, eval_interval=2))
    assert sorted(step_losses(tmp_path)) == [1, 2]
