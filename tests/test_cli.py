"""The `descent` command line: user errors are one line on stderr and exit status 2 (never a
traceback); train -> sample works end to end on a tiny model; explain dispatches."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from descent import backend
from descent.cli import main

TEXT = "to be, or not to be, that is the question: whether 'tis nobler in the mind. " * 100

# A model small enough to train 30 steps in a second or two.
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
        "--batch-size", "4", "--eval-interval", "10", "--eval-iters", "2", "--warmup-iters", "5",
        "--lr-decay-iters", "30", "--no-progress"]  # fmt: skip


@pytest.fixture()
def corpus(tmp_path) -> Path:
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return path


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "descent", *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def assert_usage_error(capsys, args: list[str], *needles: str) -> str:
    """main(args) exits 2 with one line on stderr containing every needle."""
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors leave through parser.exit
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    return err


def test_unknown_flag(capsys):
    assert_usage_error(capsys, ["train", "--no-such-flag"], "unrecognized arguments",
                       "--no-such-flag")  # fmt: skip


def test_bad_flag_value(capsys):
    assert_usage_error(capsys, ["train", "--n-layer", "four"], "--n-layer", "four")


def test_unknown_preset(capsys):
    assert_usage_error(capsys, ["train", "--preset", "grok-1"], "--preset")


def test_impossible_model_shape(capsys, tmp_path, corpus):
    assert_usage_error(capsys, ["train", "--data", str(corpus), "--out", str(tmp_path / "o"),
                                "--n-embd", "10", "--n-head", "3"], "divisible")  # fmt: skip


def test_negative_setting(capsys, tmp_path, corpus):
    assert_usage_error(capsys, ["train", "--data", str(corpus), "--out", str(tmp_path / "o"),
                                "--max-iters", "-5"], "max_iters")  # fmt: skip


def test_missing_data_file(capsys, tmp_path):
    missing = str(tmp_path / "nope.txt")
    assert_usage_error(capsys, ["train", "--data", missing, "--out", str(tmp_path / "o")],
                       "not found", missing)  # fmt: skip


def test_unwritable_output_directory(capsys, tmp_path, corpus):
    # A path below a regular file can never be created, even by root (chmod does not stop root).
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_usage_error(capsys, ["train", "--data", str(corpus), "--out", str(blocker / "out")],
                       "not writable")  # fmt: skip


@pytest.mark.skipif(backend.cuda_available(), reason="checks the error shown without a GPU")
def test_cuda_without_gpu(capsys, tmp_path, corpus):
    assert_usage_error(capsys, ["train", "--data", str(corpus), "--out", str(tmp_path / "o"),
                                "--device", "cuda"], "cuda", "--device cpu")  # fmt: skip


def test_resume_without_checkpoint(capsys, tmp_path, corpus):
    assert_usage_error(capsys, ["train", "--data", str(corpus), "--out", str(tmp_path / "o"),
                                "--resume"], "no checkpoint")  # fmt: skip


def test_sample_missing_checkpoint(capsys, tmp_path):
    assert_usage_error(capsys, ["sample", "--checkpoint", str(tmp_path / "none")],
                       "no checkpoint")  # fmt: skip


def test_sample_bad_tokens(capsys, tmp_path):
    assert_usage_error(capsys, ["sample", "--checkpoint", str(tmp_path), "--tokens", "0"],
                       "--tokens")  # fmt: skip


def test_no_command(capsys):
    try:
        code = main([])
    except SystemExit as e:
        code = e.code
    assert code == 2


def test_explain_dispatches_to_explain_cli(monkeypatch):
    seen = []
    fake = types.ModuleType("descent.explain.cli")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "descent.explain.cli", fake)
    assert main(["explain", "out/run", "--flag"]) == 0
    assert seen == [["out/run", "--flag"]]


def test_train_then_sample_end_to_end(tmp_path, corpus):
    out = tmp_path / "run"
    proc = run_cli(["train", "--data", str(corpus), "--out", str(out), "--max-iters", "30",
                    "--sample-tokens", "40", "--prompt", "to be", *TINY])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "to be" in proc.stdout  # the sample starts with the prompt
    assert str(out / "ckpt.safetensors") in proc.stdout  # says what it wrote
    for name in ("ckpt.safetensors", "metrics.jsonl", "config.json"):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in steps] == list(range(1, 31))
    assert [r["step"] for r in evals] == [0, 10, 20, 30]
    assert {"loss", "lr", "grad_norm", "ms_per_iter", "tokens_per_sec"} <= set(steps[0])
    assert {"train_loss", "val_loss", "lr"} <= set(evals[0])
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert json.loads((out / "config.json").read_text())["n_embd"] == 16

    # Sampling: same seed, same text; it continues the prompt; bad prompt characters explained.
    args = ["sample", "--checkpoint", str(out), "--prompt", "whether", "--tokens", "25",
            "--seed", "3", "--temperature", "0.9", "--top-k", "5"]  # fmt: skip
    a, b = run_cli(args), run_cli(args)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    text = a.stdout.rstrip("\n")
    assert text.startswith("whether") and len(text) == len("whether") + 25
    assert set(text) <= set(TEXT)
    bad = run_cli(["sample", "--checkpoint", str(out), "--prompt", "XYZ§"])
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "--prompt" in bad.stderr

    # --resume continues the same run to a larger --max-iters.
    more = run_cli(["train", "--data", str(corpus), "--out", str(out), "--max-iters", "40",
                    "--resume", "--sample-tokens", "0", *TINY])  # fmt: skip
    assert more.returncode == 0, more.stderr
    assert "resuming at step 30" in more.stdout
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "step"]  # fmt: skip
    assert steps == list(range(1, 41))


def test_train_prompt_with_unknown_characters_fails_before_training(capsys, tmp_path, corpus):
    out = tmp_path / "o"
    assert_usage_error(capsys, ["train", "--data", str(corpus), "--out", str(out), "--prompt",
                                "§§", *TINY], "--prompt")  # fmt: skip
    assert not (out / "ckpt.safetensors").exists()
