"""Tests for descent.io: safetensors checkpoints with JSON metadata, atomic writes, corruption."""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import descent
from descent import io as dio
from descent.data import CharTokenizer
from descent.io import CheckpointError

ALL_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
              np.uint8, np.uint16, np.uint32, np.bool_]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Stand-ins for a Module and an optimizer (the real ones are tested below as well)


class TinyModel:
    """Just the Module API that descent.io relies on."""

    def __init__(self, seed=0, width=4):
        rng = np.random.default_rng(seed)
        self.params = OrderedDict(
            [
                # float32 like descent's parameters (tensor() keeps a float64 array's dtype)
                ("layer.weight", descent.tensor(rng.standard_normal((width, 3)), dtype=np.float32)),
                ("layer.bias", descent.tensor(rng.standard_normal(width), dtype=np.float32)),
                ("steps", descent.tensor(np.array(seed, dtype=np.int64))),
            ]
        )

    def state_dict(self):
        return OrderedDict((k, descent.Tensor._wrap(v._data)) for k, v in self.params.items())

    def load_state_dict(self, sd, strict=True):
        for k, v in sd.items():
            self.params[k]._data[...] = v._data

    def snapshot(self):
        return {k: v.numpy().copy() for k, v in self.params.items()}


class TinyOptimizer:
    """PyTorch's optimizer state_dict layout, with tensor and scalar state."""

    def __init__(self, model, lr=1e-3):
        shapes = [v.shape for k, v in model.params.items() if k != "steps"]
        self.param_groups = [
            {"params": [descent.zeros(s) for s in shapes], "lr": lr, "betas": (0.9, 0.99),
             "weight_decay": 0.1, "amsgrad": False, "foreach": None}
        ]  # fmt: skip
        self.state = {}

    def fake_steps(self, n):
        rng = np.random.default_rng(n)
        for i, p in enumerate(self.param_groups[0]["params"]):
            self.state[i] = {
                "step": n,
                # the parameter's dtype: float64 state for float32 parameters is refused
                "exp_avg": descent.tensor(rng.standard_normal(p.shape).astype(p.dtype)),
                "exp_avg_sq": descent.tensor(rng.random(p.shape).astype(p.dtype)),
            }

    def state_dict(self):
        groups = []
        for g in self.param_groups:
            d = {k: v for k, v in g.items() if k != "params"}
            d["params"] = list(range(len(g["params"])))
            groups.append(d)
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, sd):
        self.state = {i: dict(s) for i, s in sd["state"].items()}
        for g, sg in zip(self.param_groups, sd["param_groups"]):
            g.update({k: v for k, v in sg.items() if k != "params"})


def assert_sd_equal(a, b):
    assert list(a) == list(b) or sorted(a) == sorted(b)
    for k in a:
        x = a[k].numpy() if hasattr(a[k], "numpy") else np.asarray(a[k])
        y = b[k].numpy() if hasattr(b[k], "numpy") else np.asarray(b[k])
        assert x.dtype == y.dtype and x.shape == y.shape, k
        np.testing.assert_array_equal(x, y)


def saved_checkpoint(tmp_path, name="ck.safetensors"):
    model = TinyModel(1)
    opt = TinyOptimizer(model)
    opt.fake_steps(5)
    path = dio.save(tmp_path / name, model, opt, step=5, note="hello")
    return path, model, opt


# ---------------------------------------------------------------------------------------------
# Round trips


def test_state_dict_round_trip_all_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    sd = {f"t_{np.dtype(dt).name}": (rng.standard_normal((3, 2)) * 50).astype(dt)
          for dt in ALL_DTYPES}  # fmt: skip
    sd["scalar"] = np.array(3.5, dtype=np.float64)
    sd["empty"] = np.zeros((0, 4), dtype=np.float32)
    sd["strided"] = np.arange(12, dtype=np.int32).reshape(3, 4).T  # not C-contiguous
    sd["tensor"] = descent.randn(2, 5, generator=descent.Generator(0))
    path = dio.save_state_dict(tmp_path / "sd.safetensors", sd, metadata={"pair": (1, 2.5)})
    back = dio.load_state_dict(path)
    assert all(isinstance(v, descent.Tensor) for v in back.values())
    assert_sd_equal(back, sd)
    assert back["scalar"].shape == ()
    assert dio.read_metadata(path) == {"pair": (1, 2.5)}
    back["tensor"].data[0, 0] = 1.0  # loaded arrays are writable and own their memory


def test_files_are_plain_safetensors(tmp_path):
    """Any safetensors reader opens our files; we open foreign ones with verify=False."""
    from safetensors.numpy import load_file, save_file

    sd = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, dtype=np.int64)}
    path = dio.save_state_dict(tmp_path / "x.safetensors", sd)
    assert_sd_equal(load_file(str(path)), sd)
    save_file(sd, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="no descent checksum.*verify=False"):
        dio.load_state_dict(tmp_path / "foreign.safetensors")
    assert_sd_equal(dio.load_state_dict(tmp_path / "foreign.safetensors", verify=False), sd)
    ck = dio.load(tmp_path / "foreign.safetensors", verify=False)
    assert sorted(ck.state_dict) == ["a", "b"] and ck.optimizer is None


def test_checkpoint_round_trip_model_optimizer_meta(tmp_path):
    descent.manual_seed(42)
    tok = CharTokenizer("hello world")
    model = TinyModel(1)
    opt = TinyOptimizer(model, lr=3e-4)
    opt.fake_steps(7)
    gen = descent.Generator(9)
    gen.numpy_rng.random(3)
    path = dio.save(tmp_path / "ck.safetensors", model, opt, step=7, tokenizer=tok.to_dict(),
                    rng=gen.get_state(), config={"n_layer": 2, "betas": (0.9, 0.95)},
                    loss=float("inf"))  # fmt: skip
    descent.randn(10)  # move the default generator on; the checkpoint remembers the old state
    expected_next = None
    ck = dio.load(path)
    assert isinstance(ck, dio.Checkpoint) and ck.path == path
    assert_sd_equal(ck.state_dict, model.state_dict())
    assert ck["model"] is ck.state_dict and set(ck) == {"model", "optimizer", "meta"}
    assert ck.meta["step"] == 7 and ck.meta["config"]["betas"] == (0.9, 0.95)
    assert ck.meta["loss"] == float("inf")
    assert CharTokenizer.from_dict(ck.meta["tokenizer"]) == tok
    g2 = descent.Generator(0)
    g2.set_state(ck.meta["rng"])
    np.testing.assert_array_equal(g2.numpy_rng.random(4), gen.numpy_rng.random(4))
    # optimizer state in PyTorch's layout: int keys, tensors back as Tensors, tuples as tuples
    osd, ref = ck.optimizer, opt.state_dict()
    assert list(osd["state"]) == [0, 1] and osd["param_groups"] == ref["param_groups"]
    assert osd["param_groups"][0]["betas"] == (0.9, 0.99)
    for i in (0, 1):
        assert osd["state"][i]["step"] == 7
        assert_sd_equal({k: v for k, v in osd["state"][i].items() if k != "step"},
                        {k: v for k, v in ref["state"][i].items() if k != "step"})  # fmt: skip
    # the default generator's state at save time can be restored
    ck.restore_rng()
    descent.manual_seed(42)
    expected_next = descent.randn(3).numpy()
    ck.restore_rng()
    np.testing.assert_array_equal(descent.randn(3).numpy(), expected_next)
    assert "Checkpoint(" in repr(ck)


def test_load_into_model_and_optimizer(tmp_path):
    path, model, opt = saved_checkpoint(tmp_path)
    fresh, fresh_opt = TinyModel(2), TinyOptimizer(TinyModel(2), lr=0.5)
    assert not np.array_equal(fresh.snapshot()["layer.weight"], model.snapshot()["layer.weight"])
    ck = dio.load(path, model=fresh, optimizer=fresh_opt)
    assert_sd_equal(fresh.state_dict(), model.state_dict())
    assert fresh_opt.param_groups[0]["lr"] == 1e-3 and fresh_opt.state[0]["step"] == 5
    assert ck.meta == {"step": 5, "note": "hello"}


def test_directory_path_and_missing_file(tmp_path):
    model = TinyModel(0)
    written = dio.save(tmp_path, model, step=1)
    assert written == tmp_path / dio.CHECKPOINT_NAME
    assert dio.load(tmp_path).meta["step"] == 1
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        dio.load(tmp_path / "nope.safetensors")


def test_tied_tensors_are_stored_once(tmp_path):
    w = descent.randn(50, 40, generator=descent.Generator(0))
    sd = {
        "wte.weight": descent.Tensor._wrap(w._data),
        "lm_head.weight": descent.Tensor._wrap(w._data),
    }
    path = dio.save_state_dict(tmp_path / "tied.safetensors", sd)
    assert path.stat().st_size < 50 * 40 * 4 * 1.5  # one copy of the 8 kB weight
    back = dio.load_state_dict(path)
    assert_sd_equal(back, sd)


def test_save_rejects_values_json_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match=r"meta\['tok'\] is a CharTokenizer.*to_dict"):
        dio.save(tmp_path / "x.safetensors", TinyModel(), tok=CharTokenizer("ab"))
    with pytest.raises(TypeError, match="non-str key"):
        dio.save(tmp_path / "x.safetensors", TinyModel(), table={1: 2})
    with pytest.raises(TypeError, match="expected a Tensor or array"):
        dio.save_state_dict(tmp_path / "x.safetensors", {"w": [1, 2]})
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# Mismatches: every problem is named, nothing is loaded halfway


def test_mismatch_lists_names_shapes_dtypes_and_loads_nothing(tmp_path):
    path, _, _ = saved_checkpoint(tmp_path)
    target = TinyModel(3, width=5)  # weight (5, 3), bias (5,)
    target.params["extra.weight"] = descent.zeros(2)
    target.params["steps"] = descent.Tensor._wrap(np.array(0, dtype=np.int32))
    del target.params["layer.bias"]
    target.params["layer.bias"] = descent.zeros(4)
    before = target.snapshot()
    with pytest.raises(CheckpointError) as info:
        dio.load(path, model=target)
    msg = str(info.value)
    assert "missing from the checkpoint: extra.weight" in msg
    assert "layer.weight: checkpoint shape (4, 3), model shape (5, 3)" in msg
    assert "steps: checkpoint dtype int64, model dtype int32" in msg
    assert "layer.bias" not in msg  # it fits
    assert_sd_equal(target.snapshot(), before)  # untouched
    # strict=False ignores missing and unexpected names, never wrong shapes
    with pytest.raises(CheckpointError, match="layer.weight: checkpoint shape"):
        dio.load(path, model=target, strict=False)
    ok = TinyModel(3)
    ok.params["extra.weight"] = descent.zeros(2)
    dio.load(path, model=ok, strict=False)
    np.testing.assert_array_equal(ok.snapshot()["extra.weight"], [0, 0])
    with pytest.raises(CheckpointError, match="in the checkpoint but not in the model: steps"):
        small = TinyModel(0)
        del small.params["steps"]
        dio.load(path, model=small)


def test_optimizer_mismatch_is_reported(tmp_path):
    path, model, _ = saved_checkpoint(tmp_path)
    other = TinyOptimizer(model)
    other.param_groups[0]["params"].append(descent.zeros(7))
    with pytest.raises(CheckpointError, match="param group 0: 2 parameters in the checkpoint, 3"):
        dio.load(path, model=TinyModel(0), optimizer=other)
    wrong = TinyOptimizer(TinyModel(0, width=6))
    with pytest.raises(
        CheckpointError, match=r"state\[0\]\['exp_avg'\]: checkpoint shape \(4, 3\)"
    ):
        dio.load(path, optimizer=wrong)
    assert wrong.state == {}
    model_only = dio.save(tmp_path / "m.safetensors", model)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        dio.load(model_only, optimizer=TinyOptimizer(model))


# ---------------------------------------------------------------------------------------------
# Corrupted, truncated and foreign files


def header_length(path: Path) -> int:
    return 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]


def test_truncation_at_every_kind_of_offset(tmp_path):
    path, _, _ = saved_checkpoint(tmp_path)
    raw = path.read_bytes()
    h = header_length(path)
    offsets = sorted({0, 1, 4, 7, 8, 9, 20, h // 2, h - 1, h, h + 1, (h + len(raw)) // 2,
                      len(raw) - 4, len(raw) - 1})  # fmt: skip
    bad = tmp_path / "bad.safetensors"
    for n in offsets:
        bad.write_bytes(raw[:n])
        with pytest.raises(CheckpointError, match="truncated|corrupted"):
            dio.load(bad)
    bad.write_bytes(raw + b"\x00")  # trailing garbage is not silently ignored either
    with pytest.raises(CheckpointError, match="trailing"):
        dio.load(bad)


def test_every_bit_flip_in_the_header_is_detected(tmp_path):
    path, model, _ = saved_checkpoint(tmp_path)
    raw = path.read_bytes()
    h = header_length(path)
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.safetensors"
    target = TinyModel(9)
    before = target.snapshot()
    n_checked = 0
    for pos in range(h):
        bits = range(8) if pos < 8 else [int(rng.integers(8))]  # all bits of the size field
        for bit in bits:
            flipped = bytearray(raw)
            flipped[pos] ^= 1 << bit
            bad.write_bytes(bytes(flipped))
            with pytest.raises(CheckpointError):
                dio.load(bad, model=target)
            n_checked += 1
    assert n_checked > 500
    assert_sd_equal(target.snapshot(), before)


def test_bit_flips_in_the_data_are_detected(tmp_path):
    path, _, _ = saved_checkpoint(tmp_path)
    raw = path.read_bytes()
    h = header_length(path)
    bad = tmp_path / "bad.safetensors"
    for pos in range(h, len(raw), 7):
        flipped = bytearray(raw)
        flipped[pos] ^= 0x10
        bad.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match="SHA-256 does not match"):
            dio.load(bad)


class _Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_and_torch_files_are_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    for proto in (2, 4, 5):
        evil.write_bytes(pickle.dumps(_Exploit(marker), protocol=proto))
        with pytest.raises(CheckpointError, match="pickle file.*never unpickles"):
            dio.load(evil)
        with pytest.raises(CheckpointError, match="pickle"):
            dio.load_state_dict(evil)
    assert not marker.exists()
    import torch

    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="zip archive.*torch.save"):
        dio.load(tmp_path / "model.pt")
    (tmp_path / "text.txt").write_text("definitely not a checkpoint, but long enough")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        dio.load(tmp_path / "text.txt")


# ---------------------------------------------------------------------------------------------
# Atomic writes


def test_failure_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path, model, _ = saved_checkpoint(tmp_path)
    good = path.read_bytes()

    def half_then_fail(f, data):
        f.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dio, "_write_bytes", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        dio.save(path, TinyModel(8), step=6)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left
    assert dio.load(path).meta["step"] == 5

    def failing_replace(src, dst):
        raise PermissionError("rename refused")

    monkeypatch.setattr(dio.os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        dio.save(path, TinyModel(8), step=6)
    monkeypatch.undo()
    assert path.read_bytes() == good and len(list(tmp_path.iterdir())) == 1


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import descent
    from descent import io as dio

    path = sys.argv[1]
    step = 0
    while True:
        step += 1
        w = np.full((1_000_000,), step, dtype=np.float32)  # 4 MB, so a write takes a while
        dio.save_state_dict(path, {"w": w, "b": np.full(3, step)}, metadata={"step": step})
        print(step, flush=True)
    """
)


def test_sigkill_while_saving_never_leaves_a_broken_checkpoint(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT)
    path = tmp_path / "ck.safetensors"
    steps_seen = []
    for delay in (0.0, 0.013, 0.047, 0.11):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
        try:
            first = proc.stdout.readline()  # one checkpoint exists
            assert first.strip(), "the writer died before its first save"
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)  # mid-write, most likely
        finally:
            proc.wait(timeout=30)
            proc.stdout.close()
        sd = dio.load_state_dict(path)  # never truncated, never corrupted
        step = dio.read_metadata(path)["step"]
        assert (sd["w"].numpy() == step).all() and (sd["b"].numpy() == step).all()
        steps_seen.append(step)
    assert all(s >= 1 for s in steps_seen)


# ---------------------------------------------------------------------------------------------
# The real Module (and optimizer, where it exists)


def test_real_module_round_trip(tmp_path):
    import descent.nn as nn

    descent.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Linear(8, 2))
    path = dio.save(tmp_path / "m.safetensors", model, step=3)
    other = nn.Sequential(nn.Linear(3, 8), nn.Linear(8, 2))
    ck = dio.load(path, model=other)
    assert_sd_equal(other.state_dict(), model.state_dict())
    assert ck.model_class.endswith("Sequential")
    with pytest.raises(CheckpointError, match=r"0.weight: checkpoint shape \(8, 3\), model shape"):
        dio.load(path, model=nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))


def _train(model, opt, x, y, batch_gen, steps):
    """Plain training loop: mean squared error on random mini-batches drawn from `batch_gen`."""
    losses = []
    for _ in range(steps):
        idx = batch_gen.numpy_rng.integers(0, len(x), size=16)
        xb, yb = descent.Tensor._wrap(x[idx]), descent.Tensor._wrap(y[idx])
        loss = ((model(xb) - yb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _linear_model():
    import descent.nn as nn

    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 3))


def test_linear_adamw_round_trip_and_exact_resume(tmp_path):
    """Train 20 steps, or 10 + save + load into fresh objects + 10: identical losses and weights."""
    from descent.optim.adam import AdamW

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4)).astype(np.float32)
    y = np.tanh(x[:, :3] * 2).astype(np.float32)

    descent.manual_seed(1)
    model = _linear_model()
    opt = AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    gen = descent.Generator(5)
    full = _train(model, opt, x, y, gen, 20)

    descent.manual_seed(1)
    model = _linear_model()
    opt = AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    gen = descent.Generator(5)
    first = _train(model, opt, x, y, gen, 10)
    path = dio.save(tmp_path / "ck.safetensors", model, opt, step=10, data_rng=gen.get_state())
    del model, opt, gen

    descent.manual_seed(999)  # a different process state; the checkpoint must restore it
    model = _linear_model()
    opt = AdamW(model.parameters(), lr=0.5)  # hyperparameters come from the checkpoint
    ck = dio.load(path, model=model, optimizer=opt)
    ck.restore_rng()  # dropout draws from the default generator
    gen = descent.Generator(0)
    gen.set_state(ck.meta["data_rng"])
    assert opt.param_groups[0]["lr"] == 1e-2 and tuple(opt.param_groups[0]["betas"]) == (0.9, 0.99)
    assert ck.optimizer["state"][0]["step"] == 10
    rest = _train(model, opt, x, y, gen, 10)
    assert first + rest == full  # bit-identical losses of steps 11-20


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import descent
    from descent import io as dio
    from descent.optim.adam import AdamW
    sys.path.insert(0, sys.argv[2])
    from test_io import _linear_model, _train

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4)).astype(np.float32)
    y = np.tanh(x[:, :3] * 2).astype(np.float32)
    descent.manual_seed(1)
    model = _linear_model()
    opt = AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    gen = descent.Generator(5)
    _train(model, opt, x, y, gen, 10)
    dio.save(sys.argv[1], model, opt, step=10, data_rng=gen.get_state())
    print("saved", flush=True)
    while True:  # keeps training (and would overwrite nothing) until it is killed
        _train(model, opt, x, y, gen, 1)
    """
)


def test_exact_resume_after_sigkill(tmp_path):
    from descent.optim.adam import AdamW

    script = tmp_path / "trainer.py"
    script.write_text(RESUME_SCRIPT)
    path = tmp_path / "ck.safetensors"
    tests_dir = str(Path(__file__).resolve().parent)
    proc = subprocess.Popen([sys.executable, str(script), str(path), tests_dir],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "saved"
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4)).astype(np.float32)
    y = np.tanh(x[:, :3] * 2).astype(np.float32)
    descent.manual_seed(1)
    model = _linear_model()
    opt = AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    full = _train(model, opt, x, y, descent.Generator(5), 20)

    model = _linear_model()
    opt = AdamW(model.parameters(), lr=1e-3)
    ck = dio.load(path, model=model, optimizer=opt)
    ck.restore_rng()
    gen = descent.Generator(0)
    gen.set_state(ck.meta["data_rng"])
    assert _train(model, opt, x, y, gen, 10) == full[10:]


def test_gpt_with_tied_weights_and_config(tmp_path):
    from descent.models import GPT, GPTConfig

    descent.manual_seed(0)
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0,
                    bias=True)  # fmt: skip
    model = GPT(cfg)
    tok = CharTokenizer("abcdefghijk")
    path = dio.save(tmp_path / "gpt.safetensors", model, tokenizer=tok.to_dict(), iter_num=3)
    ck = dio.load(path)
    shape = {"vocab_size": 11, "block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 16,
             "dropout": 0.0, "bias": True}  # fmt: skip
    assert ck.model_config == cfg.to_dict()  # every field, the speedrun options included
    assert ck.model_config.items() >= shape.items()
    assert ck.model_class == "descent.models.gpt.GPT"
    assert list(ck.state_dict) == list(model.state_dict())  # the model's order, not sorted
    rebuilt = GPT(GPTConfig(**ck.model_config))
    dio.load(path, model=rebuilt)
    assert_sd_equal(rebuilt.state_dict(), model.state_dict())
    idx = descent.tensor([[1, 2, 3]])
    np.testing.assert_array_equal(rebuilt(idx)[0].numpy(), model(idx)[0].numpy())
    # the tied embedding / lm_head weight is stored once
    wte = model.state_dict()["transformer.wte.weight"]
    sizes = [v.numpy().nbytes for v in model.state_dict().values()]
    assert path.stat().st_size < sum(sizes) - wte.numpy().nbytes + 4096


@pytest.mark.gpu
@pytest.mark.skipif(not descent.backend.cuda_available(), reason="needs a CUDA GPU with CuPy")
def test_gpu_save_and_map_location(tmp_path):
    sd = {"w": descent.randn(3, 4).to("cuda"), "n": descent.arange(5).to("cuda")}
    path = dio.save_state_dict(tmp_path / "g.safetensors", sd)
    on_cpu = dio.load_state_dict(path)
    assert on_cpu["w"].device == "cpu"
    np.testing.assert_array_equal(on_cpu["w"].numpy(), sd["w"].numpy())
    on_gpu = dio.load_state_dict(path, map_location="cuda")
    assert on_gpu["w"].device.startswith("cuda") and on_gpu["n"].dtype == np.int64
    np.testing.assert_array_equal(on_gpu["n"].numpy(), np.arange(5))


def test_save_load_complex_tensors_and_arrays(tmp_path):
    """Complex tensors (an FNO's spectral weights, a complex rotary table) in a saved object:
    descent.save refused them (safetensors has no complex dtype); they are stored as their
    (..., 2) real pairs and come back bit for bit, with requires_grad and Parameter kept."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    obj = {
        "spectral": descent.nn.Parameter(descent.tensor(w.astype(np.complex64))),
        "table": descent.tensor(w, requires_grad=True),
        "arr": w.astype(np.complex64)[:, ::2],  # a non-contiguous NumPy array
        "empty": descent.zeros(0, 2, dtype=descent.complex64),
        "real": descent.ones(2),
    }
    path = tmp_path / "c.pt"
    descent.save(obj, path)
    back = descent.load(path)
    assert type(back["spectral"]).__name__ == "Parameter" and back["spectral"].requires_grad
    assert back["spectral"].dtype == descent.complex64 and back["table"].dtype == descent.complex128
    assert back["table"].requires_grad
    np.testing.assert_array_equal(back["spectral"].detach().numpy(), w.astype(np.complex64))
    np.testing.assert_array_equal(back["table"].detach().numpy(), w)
    assert back["arr"].dtype == np.complex64
    np.testing.assert_array_equal(back["arr"], w.astype(np.complex64)[:, ::2])
    assert tuple(back["empty"].shape) == (0, 2) and back["empty"].dtype == descent.complex64
    np.testing.assert_array_equal(back["real"].numpy(), np.ones(2, np.float32))
