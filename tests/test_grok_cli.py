"""`descent train --model grok` / `--preset tiny-grok` and `descent sample` end to end: subword
tokens saved in the checkpoint, sampling decodes them, bits per character reported, and an
interrupted run resumed to the same weights as a straight one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tokenizers")

from descent import io as dio

TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 60  # fmt: skip

TINY = ["--preset", "tiny-grok", "--n-layer", "1", "--n-head", "2", "--n-kv-head", "1",
        "--head-dim", "8", "--n-embd", "16", "--num-experts", "2", "--num-selected-experts", "1",
        "--block-size", "16", "--batch-size", "4", "--vocab-size", "300", "--eval-interval",
        "10", "--eval-iters", "2", "--warmup-iters", "5", "--lr-decay-iters", "20",
        "--no-progress", "--sample-tokens", "0"]  # fmt: skip


def run_cli(args):
    return subprocess.run([sys.executable, "-m", "descent", *args], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_train_sample_resume_grok(tmp_path):
    corpus = tmp_path / "text.txt"
    corpus.write_text(TEXT)
    straight, split = tmp_path / "straight", tmp_path / "split"
    proc = run_cli(["train", "--data", str(corpus), "--out", str(straight), "--max-iters", "20",
                    *TINY])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Grok" in proc.stdout and "Traceback" not in proc.stderr
    assert " val tokens, vocabulary 300" in proc.stdout  # subword: counts are tokens
    meta = dio.read_metadata(straight / "ckpt.safetensors")
    assert meta["tokenizer"]["type"] == "subword" and meta["model_config"]["num_experts"] == 2
    evals = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in evals if r["kind"] == "step"]
    for r in steps:  # the training loss and its parts, each logged (weights 0.01 and 0.001)
        total = r["lm_loss"] + 0.01 * r["load_balance"] + 0.001 * r["router_z"]
        assert r["loss"] == pytest.approx(total, rel=1e-5) and r["load_balance"] > 0
    evals = [r for r in evals if r["kind"] == "eval"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert 0 < evals[-1]["val_bits_per_char"] < evals[0]["val_bits_per_char"]

    # Sampling decodes subword ids back to text; same seed, same text.
    args = ["sample", "--checkpoint", str(straight), "--prompt", "First", "--tokens", "12",
            "--seed", "3"]  # fmt: skip
    a, b = run_cli(args), run_cli(args)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("First")

    # 10 steps, then --resume to 20: the same weights as the straight 20 steps.
    first = run_cli(["train", "--data", str(corpus), "--out", str(split), "--max-iters", "10",
                     *TINY])  # fmt: skip (TINY fixes lr_decay_iters at 20: the same schedule)
    assert first.returncode == 0, first.stderr
    more = run_cli(["train", "--data", str(corpus), "--out", str(split), "--max-iters", "20",
                    "--resume", *TINY])  # fmt: skip
    assert more.returncode == 0, more.stderr
    sa = dio.load_state_dict(straight / "ckpt.safetensors")
    sb = dio.load_state_dict(split / "ckpt.safetensors")
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(np.asarray(sa[k]), np.asarray(sb[k]), err_msg=k)


def test_report_shows_expert_load(tmp_path):
    pytest.importorskip("matplotlib")
    corpus = tmp_path / "text.txt"
    corpus.write_text(TEXT)
    out = tmp_path / "run"
    proc = run_cli(["train", "--data", str(corpus), "--out", str(out), "--max-iters", "6",
                    "--report", *TINY])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(line) for line in (out / "gradients.jsonl").read_text().splitlines()]
    assert recs and all(len(r["moe"]) == 1 for r in recs)  # one MoE layer per record
    assert {"token_share", "router_entropy", "expert_grad_norms"} <= set(recs[-1]["moe"][0])
    html = (out / "report.html").read_text()
    assert 'id="experts"' in html and '<img alt="expert load per MoE layer"' in html


def test_compile_replays_data_dependent_routing(tmp_path):
    """--compile records a step once and replays it; an MoE's routing depends on the data (the
    token counts per expert), which the fused experts' op (ops/moe.py) keeps inside one op of
    fixed shapes: the step replays, routes every batch afresh, and gives eager's losses."""
    corpus = tmp_path / "text.txt"
    corpus.write_text(TEXT)
    losses = []
    for extra in ([], ["--compile"]):
        out = tmp_path / ("compiled" if extra else "eager")
        proc = run_cli(["train", "--data", str(corpus), "--out", str(out), "--max-iters", "5",
                        *TINY, *extra])  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        losses.append([r["loss"] for r in recs if r["kind"] == "step"])
        if extra:
            assert "runs eagerly" not in proc.stderr, proc.stderr
    assert losses[0] == losses[1] and len(losses[0]) == 5
