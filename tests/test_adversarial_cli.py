"""Issue 14, case by case: nothing a user or a file can do makes descent clobber a file, half-load,
exhaust memory, sample garbage silently, or print a traceback. Each test is one case of the
issue; the CLI runs in this process (main()), on a tiny model."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import descent
from adversarial_helpers import (
    TINY,
    assert_one_line_error,
    copy_run,
    make_run,
    rewrite_doc,
    run_main,
)
from descent import io as dio
from descent.explain.cli import main as explain_main
from descent.models.gpt import GPT, GPTConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(corpus, run folder at step 4) shared by the tests; copy before changing."""
    return make_run(tmp_path_factory.mktemp("adv"))


def train_args(corpus, out, *more):
    return ["train", "--data", corpus, "--out", out, "--max-iters", "2", *TINY, *more]


# ---------------------------------------------------------------------------------------------
# Data loss


@pytest.mark.parametrize("name", ["config.json", "metrics.jsonl", "ckpt.safetensors"])
def test_planted_symlinks_are_replaced_never_written_through(capsys, trained, tmp_path, name):
    corpus, _ = trained
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / name).symlink_to(victim)
    for probe in (".descent-write-test", "metrics.jsonl.tmp"):  # old fixed names: links too
        if not (out / probe).exists():
            (out / probe).symlink_to(victim)
    code, _, err = run_main(capsys, train_args(corpus, out))
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert not (out / name).is_symlink() and (out / name).is_file()


@pytest.mark.parametrize("name", ["gradients.jsonl", "landscape.json"])
def test_monitor_files_never_written_through_links(capsys, trained, tmp_path, name):
    """The gradient monitor's run files (written with --report) replace a planted link too."""
    corpus, _ = trained
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / name).symlink_to(victim)
    code, _, err = run_main(capsys, train_args(corpus, out, "--report"))
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert not (out / name).is_symlink() and (out / name).is_file()


def test_symlinked_metrics_on_resume_is_refused_or_replaced(capsys, trained, tmp_path):
    corpus, run = trained
    out = copy_run(run, tmp_path / "run")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "metrics.jsonl").unlink()
    (out / "metrics.jsonl").symlink_to(victim)
    code, _, err = run_main(capsys, ["train", "--resume", "--out", out, "--data", corpus,
                                     "--max-iters", "5", *TINY])  # fmt: skip
    assert victim.read_text() == "precious"
    assert code in (0, 2) and "Traceback" not in err


def test_a_directory_named_like_the_checkpoint_is_refused(capsys, trained, tmp_path):
    corpus, _ = trained
    out = tmp_path / "out"
    (out / "ckpt.safetensors").mkdir(parents=True)
    code, _, err = run_main(capsys, train_args(corpus, out))
    assert_one_line_error(code, err, "ckpt.safetensors", "directory")
    assert not (out / "ckpt.safetensors" / "checkpoint.safetensors").exists()
    code, _, err = run_main(capsys, ["sample", "--checkpoint", out])
    assert_one_line_error(code, err, "directory")


def test_a_second_run_into_a_locked_folder_names_the_holder(capsys, trained, tmp_path):
    from descent.runfolder import RunLock

    corpus, _ = trained
    out = tmp_path / "out"
    out.mkdir()
    lock = RunLock(out).acquire()  # another run, as far as the folder can tell
    try:
        code, _, err = run_main(capsys, train_args(corpus, out))
        assert_one_line_error(code, err, "in use", str(os.getpid()))
        assert not (out / "metrics.jsonl").exists()
    finally:
        lock.release()
    code, _, err = run_main(capsys, train_args(corpus, out))  # released: the run goes ahead
    assert code == 0, err


def test_full_disk_while_saving_keeps_the_previous_checkpoint(capsys, trained, tmp_path,
                                                              monkeypatch):  # fmt: skip
    corpus, run = trained
    out = copy_run(run, tmp_path / "run")
    before = (out / "ckpt.safetensors").read_bytes()

    real = dio._write_bytes

    def full(f, data):  # the disk fills up when the checkpoint (the big file) is written
        if len(data) > 4096:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, data)

    monkeypatch.setattr(dio, "_write_bytes", full)
    code, _, err = run_main(capsys, ["train", "--resume", "--out", out, "--data", corpus,
                                     "--max-iters", "6", *TINY])  # fmt: skip
    assert_one_line_error(code, err, "No space left", "previous checkpoint is kept")
    assert (out / "ckpt.safetensors").read_bytes() == before
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------
# Half-loaded models (the API)


def _model_and_opt(cfg):
    model = GPT(cfg)
    return model, model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))


def _state(model, opt):
    return ([p.numpy().copy() for p in model.parameters()],
            json.dumps(opt.state_dict()["param_groups"], default=str), len(opt.state))  # fmt: skip


@pytest.mark.parametrize("case", ["sgd", "float64", "negative step"])
def test_load_is_all_or_nothing(trained, tmp_path, case):
    _, run = trained
    src = run / "ckpt.safetensors"
    cfg = GPTConfig.from_dict(dio.read_metadata(src)["model_config"])
    bad = tmp_path / "bad.safetensors"

    def mutate(doc, arrays):
        if case == "sgd":
            doc["optimizer"]["class"] = "descent.optim.sgd.SGD"
        elif case == "negative step":
            doc["optimizer"]["state"]["0"]["step"] = -3
        else:
            name = next(k for k in arrays if k.startswith("optimizer.state."))
            arrays[name] = arrays[name].astype(np.float64)

    rewrite_doc(src, bad, mutate)
    descent.manual_seed(123)
    model, opt = _model_and_opt(cfg)
    before = _state(model, opt)
    with pytest.raises(dio.CheckpointError, match="SGD|float64|step"):
        dio.load(bad, model, opt)
    after = _state(model, opt)
    assert all(np.array_equal(a, b) for a, b in zip(before[0], after[0]))
    assert before[1:] == after[1:]
    dio.load(src, model, opt)  # the good file still loads completely


def test_a_real_other_optimizer_is_refused(tmp_path):
    from descent import optim

    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    sgd = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = dio.save(tmp_path / "sgd.safetensors", model, sgd)
    adam = optim.AdamW(model.parameters(), lr=1e-3)
    with pytest.raises(dio.CheckpointError, match="SGD"):
        dio.load(path, model, adam)


# ---------------------------------------------------------------------------------------------
# Memory exhaustion from a small file or a flag


@pytest.mark.parametrize("field,value", [("n_layer", 10**6), ("n_embd", 10**6),
                                         ("vocab_size", 10**9), ("block_size", 10**9)])  # fmt: skip
def test_a_forged_model_config_is_refused_before_building(capsys, trained, tmp_path, field,
                                                          value):  # fmt: skip
    corpus, run = trained
    out = copy_run(run, tmp_path / "run")
    ck = out / "ckpt.safetensors"
    rewrite_doc(ck, ck, lambda d, a: d["meta"]["model_config"].__setitem__(field, value))
    code, _, err = run_main(capsys, ["sample", "--checkpoint", out, "--tokens", "2"])
    assert_one_line_error(code, err, field)


@pytest.mark.parametrize("flags", [["--n-embd", "1000000", "--n-head", "1"],
                                   ["--batch-size", "1000000000"],
                                   ["--n-layer", "100000", "--n-embd", "1024"]])  # fmt: skip
def test_huge_flags_give_a_memory_estimate(capsys, tmp_path, flags):
    corpus = tmp_path / "big.txt"
    corpus.write_text("abcdefgh " * 6000)
    code, _, err = run_main(capsys, ["train", "--data", corpus, "--out", tmp_path / "o",
                                     "--max-iters", "1", "--no-progress", *flags])  # fmt: skip
    assert_one_line_error(code, err, "needs about", "GiB", "available")


# ---------------------------------------------------------------------------------------------
# Tracebacks: --resume on foreign or damaged checkpoints


def test_resume_on_a_checkpoint_saved_by_descent_io_save(capsys, trained, tmp_path):
    corpus, run = trained
    out = copy_run(run, tmp_path / "run")
    cfg = GPTConfig.from_dict(dio.read_metadata(out / "ckpt.safetensors")["model_config"])
    model, opt = _model_and_opt(cfg)
    dio.save(out / "ckpt.safetensors", model, opt, step=3)
    code, _, err = run_main(capsys, ["train", "--resume", "--out", out, "--data", corpus,
                                     "--max-iters", "6", *TINY])  # fmt: skip
    assert_one_line_error(code, err, "not a checkpoint written by `descent train`", "tokenizer")


def test_resume_on_a_checkpoint_of_another_width(capsys, trained, tmp_path):
    corpus, run = trained
    out = copy_run(run, tmp_path / "run")
    wide = make_run(tmp_path / "wide")[1]
    ck = out / "ckpt.safetensors"
    shutil.copy(wide / "ckpt.safetensors", ck)
    # the file claims the narrow run's config but holds different tensors
    def widen(doc, arrays):
        for k, v in list(arrays.items()):
            if k.endswith("wte.weight"):
                arrays[k] = np.zeros((v.shape[0], 16), "f4")

    rewrite_doc(ck, ck, widen)
    code, _, err = run_main(capsys, ["train", "--resume", "--out", out, "--data", corpus,
                                     "--max-iters", "6", *TINY])  # fmt: skip
    assert_one_line_error(code, err, "--resume")


@pytest.mark.parametrize("where,value", [
    (("step",), -1), (("step",), "4"), (("tokenizer",), {"type": "char", "chars": "ab"}),
    (("tokenizer",), 7), (("rng", "train"), {"state": {}}), (("rng",), None),
    (("train_config", "n_layer"), "1"), (("train_config", "beta1"), "0.9"),
    (("train_config",), [1]), (("model_config", "n_head"), "2"), (("model_config",), "x"),
])  # fmt: skip
def test_resume_and_sample_on_damaged_fields(capsys, trained, tmp_path, where, value):
    corpus, run = trained
    out = copy_run(run, tmp_path / "run")
    ck = out / "ckpt.safetensors"
    before_metrics = (out / "metrics.jsonl").read_bytes()

    def mutate(doc, arrays):
        node = doc["meta"]
        for k in where[:-1]:
            node = node[k]
        node[where[-1]] = value

    rewrite_doc(ck, ck, mutate)
    raw = ck.read_bytes()
    code, _, err = run_main(capsys, ["train", "--resume", "--out", out, "--data", corpus,
                                     "--max-iters", "6", *TINY])  # fmt: skip
    assert_one_line_error(code, err)
    assert ck.read_bytes() == raw and (out / "metrics.jsonl").read_bytes() == before_metrics
    code, _, err = run_main(capsys, ["sample", "--checkpoint", out, "--tokens", "2"])
    assert code in (0, 2) and "Traceback" not in err and len(err.strip().splitlines()) <= 1


def test_header_types_infinity_and_deep_nesting_are_one_line_errors(capsys, trained, tmp_path):
    import struct

    _, run = trained
    body = (run / "ckpt.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", body[:8])
    header = json.loads(body[8 : 8 + n])
    name = next(k for k in header if k != "__metadata__")
    cases = []
    for field, value in (("shape", ["8", 8]), ("shape", [8.0, 8]), ("data_offsets", [0, 1e3])):
        h = dict(header, **{name: dict(header[name], **{field: value})})
        cases.append(json.dumps(h))
    cases.append(json.dumps(header).replace(str(header[name]["data_offsets"][1]), "Infinity", 1))
    cases.append("[" * 5000 + "]" * 5000)
    for i, text in enumerate(cases):
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        raw = text.encode()
        (folder / "ckpt.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw
                                                  + body[8 + n :])  # fmt: skip
        code, _, err = run_main(capsys, ["sample", "--checkpoint", folder])
        assert_one_line_error(code, err, "corrupted")


def test_deep_nesting_is_refused_without_recursion():
    assert dio.json_depth('{"a": "[[[[", "b": [[1]]}') == 3
    with pytest.raises(ValueError, match="nested"):
        dio.loads_bounded("[" * 100_000 + "]" * 100_000, "x")


# ---------------------------------------------------------------------------------------------
# Flags: silent wrong results and unclear messages


@pytest.mark.parametrize("flags,needle", [
    (["--seed", "-1"], "seed"), (["--data", ""], "data"), (["--lr-decay-iters", "-1"],
                                                           "lr_decay_iters"),
])  # fmt: skip
def test_bad_train_flags(capsys, trained, tmp_path, flags, needle):
    corpus, _ = trained
    args = train_args(corpus, tmp_path / "o")
    if flags[0] == "--data":
        args = args[:1] + args[3:]
    code, _, err = run_main(capsys, [*args, *flags])
    assert_one_line_error(code, err, needle)


def test_data_that_is_not_a_regular_file_is_named(capsys, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for data, needle in ((tmp_path, "directory"), (fifo, "FIFO"), ("/dev/null", "device"),
                         (tmp_path / "nope.txt", "not found")):  # fmt: skip
        code, _, err = run_main(capsys, ["train", "--data", data, "--out", tmp_path / "o",
                                         "--max-iters", "1", *TINY])  # fmt: skip
        assert_one_line_error(code, err, needle)


def test_resume_with_max_iters_below_the_saved_step(capsys, trained, tmp_path):
    corpus, run = trained
    out = copy_run(run, tmp_path / "run")
    raw = (out / "ckpt.safetensors").read_bytes()
    code, stdout, err = run_main(capsys, ["train", "--resume", "--out", out, "--data", corpus,
                                          "--max-iters", "2", *TINY])  # fmt: skip
    assert_one_line_error(code, err, "step 4", "--max-iters")
    assert "wrote" not in stdout and (out / "ckpt.safetensors").read_bytes() == raw
    code, stdout, err = run_main(capsys, ["train", "--resume", "--out", out, "--data", corpus,
                                          "--max-iters", "4", *TINY])  # fmt: skip
    assert code == 0 and "nothing to train" in stdout and "wrote" not in stdout


@pytest.mark.parametrize("temp", ["nan", "inf", "-1"])
def test_sample_refuses_non_finite_temperatures(capsys, trained, temp):
    _, run = trained
    code, _, err = run_main(capsys, ["sample", "--checkpoint", run, "--temperature", temp])
    assert_one_line_error(code, err, "--temperature")


def test_a_tiny_temperature_is_greedy(capsys, trained):
    _, run = trained
    outs = []
    for temp in ("1e-320", "0"):
        code, stdout, err = run_main(capsys, ["sample", "--checkpoint", run, "--tokens", "20",
                                              "--temperature", temp, "--prompt", "to"])  # fmt: skip
        assert code == 0, err
        outs.append(stdout)
    assert outs[0] == outs[1]


def test_sample_seed_minus_one_blames_the_seed(capsys, trained):
    _, run = trained
    code, _, err = run_main(capsys, ["sample", "--checkpoint", run, "--seed", "-1"])
    assert_one_line_error(code, err, "--seed")
    assert "--prompt" not in err


def test_nan_weights_are_refused_not_sampled(capsys, trained, tmp_path):
    _, run = trained
    out = copy_run(run, tmp_path / "run")
    ck = out / "ckpt.safetensors"
    rewrite_doc(ck, ck, lambda d, a: a["model.transformer.ln_f.weight"].__setitem__(..., np.nan))
    code, _, err = run_main(capsys, ["sample", "--checkpoint", out])
    assert_one_line_error(code, err, "NaN")


def test_generate_api_refuses_nan_temperature_nan_logits_and_empty_prompts():
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    idx = descent.tensor(np.zeros((1, 2), dtype=np.int64))
    for temp in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="temperature"):
            model.generate(idx, 3, temperature=temp)
    with pytest.raises(ValueError, match="at least one"):
        model.generate(descent.tensor(np.zeros((1, 0), dtype=np.int64)), 3)
    with pytest.raises(ValueError, match="token ids"):
        model.generate(descent.tensor(np.array([[-1]], dtype=np.int64)), 3)
    tiny = model.generate(idx, 5, temperature=1e-320)
    greedy = model.generate(idx, 5, temperature=0)
    assert np.array_equal(tiny.numpy(), greedy.numpy())
    model.lm_head.weight.data[...] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.generate(idx, 3)


# ---------------------------------------------------------------------------------------------
# Damaged run files: train --resume and descent explain


def _damage(out: Path, case: str) -> None:
    m = out / "metrics.jsonl"
    if case == "non-object lines":
        m.write_text(m.read_text() + "[1, 2]\n3\n\"text\"\nnull\n{\"step\": \"x\", \"loss\": []}\n")
    elif case == "non-UTF-8 bytes":
        m.write_bytes(m.read_bytes() + b"\xff\xfe\x00garbage\n")
    elif case == "metrics is a directory":
        m.unlink()
        m.mkdir()
    elif case == "config is a directory":
        (out / "config.json").unlink()
        (out / "config.json").mkdir()
    elif case == "gradients damaged":
        (out / "gradients.jsonl").write_text('{"step": "s", "params": 5}\n{"params": [1]}\n[]\n')
    elif case == "landscape not an object":
        (out / "landscape.json").write_text("[1, 2, 3]")
    elif case == "report.html is a directory":
        (out / "report.html").mkdir()


DAMAGE = ["non-object lines", "non-UTF-8 bytes", "metrics is a directory", "config is a directory",
          "gradients damaged", "landscape not an object", "report.html is a directory"]  # fmt: skip


@pytest.mark.parametrize("case", DAMAGE)
def test_explain_on_damaged_run_files(capsys, trained, tmp_path, case):
    _, run = trained
    out = copy_run(run, tmp_path / "run")
    _damage(out, case)
    code = explain_main([str(out)])
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err and len(err.strip().splitlines()) <= 1
    if case == "report.html is a directory":
        assert code == 2


@pytest.mark.parametrize("case", DAMAGE[:4])
def test_resume_on_damaged_run_files(capsys, trained, tmp_path, case):
    corpus, run = trained
    out = copy_run(run, tmp_path / "run")
    _damage(out, case)
    code, _, err = run_main(capsys, ["train", "--resume", "--out", out, "--data", corpus,
                                     "--max-iters", "6", *TINY])  # fmt: skip
    if case.endswith("directory"):
        assert_one_line_error(code, err, "directory")
    else:
        assert code == 0, err
        recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in recs if r["kind"] == "step"] == list(range(1, 7))


def test_a_tokenizer_larger_than_the_vocabulary_is_refused(capsys, trained, tmp_path):
    corpus, run = trained
    out = copy_run(run, tmp_path / "run")
    ck = out / "ckpt.safetensors"
    big = {"type": "char", "chars": "".join(map(chr, range(40, 140)))}  # 100 > the model's 21
    rewrite_doc(ck, ck, lambda d, a: d["meta"].__setitem__("tokenizer", big))
    code, _, err = run_main(capsys, ["sample", "--checkpoint", out, "--tokens", "2"])
    assert_one_line_error(code, err, "tokenizer", "100 characters")
    code, _, err = run_main(capsys, ["train", "--resume", "--out", out, "--data", corpus,
                                     "--max-iters", "6", *TINY])  # fmt: skip
    assert_one_line_error(code, err, "tokenizer")


def test_explain_replaces_a_planted_report_link(capsys, trained, tmp_path):
    _, run = trained
    out = copy_run(run, tmp_path / "run")
    victim = tmp_path / "victim.html"
    victim.write_text("precious")
    (out / "report.html").symlink_to(victim)
    (out / "report.html.tmp").symlink_to(victim)  # the old fixed temporary name
    assert explain_main([str(out)]) == 0, capsys.readouterr().err
    assert victim.read_text() == "precious"
    assert (out / "report.html").is_file() and not (out / "report.html").is_symlink()


# ---------------------------------------------------------------------------------------------
# Negative indices: PyTorch refuses them in embeddings and gather; NumPy-style wrapping would
# silently train or read the last row.


def test_negative_indices_are_refused_like_pytorch():
    import descent
    import descent.nn as nn
    import descent.nn.functional as F

    emb = nn.Embedding(5, 3)
    for bad in ([-1], [5], [[0, -2]]):
        with pytest.raises(IndexError, match="out of range"):
            emb(descent.tensor(bad))
        with pytest.raises(IndexError, match="out of range"):
            F.embedding(descent.tensor(bad), emb.weight)
    x = descent.randn(2, 3)
    for bad in ([[-1], [0]], [[3], [0]]):
        with pytest.raises(IndexError, match="out of bounds"):
            descent.gather(x, 1, descent.tensor(bad))
        with pytest.raises(RuntimeError, match="out of bounds"):  # PyTorch's class for gather
            x.gather(1, descent.tensor(bad))
    assert x.gather(1, descent.tensor([[2], [0]])).tolist() == [[x[0, 2].item()], [x[1, 0].item()]]


def test_gpt_refuses_negative_token_ids():
    import descent
    from descent.models import GPT, GPTConfig

    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(IndexError, match="out of range"):
        model(descent.tensor([[1, 2, -1]]))
