"""descent.utils.tensorboard.SummaryWriter writes TensorBoard event files: TFRecord framing with
masked CRC-32C and Event/Summary protocol buffers, decoded here by an independent reader
(CRC-32C checked against the standard check value), and by TensorBoard's own reader when the
`tensorboard` package is installed (verified 2026-12-04 with tensorboard 2.21)."""

from __future__ import annotations

import glob
import os
import struct

import numpy as np
import pytest

import descent as ds
from descent.utils.tensorboard import SummaryWriter
from descent.utils.tensorboard import _crc32c as crc32c


def test_crc32c_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)
    assert crc32c(b"") == 0


def _masked(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _records(path: str) -> list[bytes]:
    raw, out, i = open(path, "rb").read(), [], 0
    while i < len(raw):
        (n,) = struct.unpack_from("<Q", raw, i)
        (hcrc,) = struct.unpack_from("<I", raw, i + 8)
        assert hcrc == _masked(raw[i : i + 8])
        data = raw[i + 12 : i + 12 + n]
        (dcrc,) = struct.unpack_from("<I", raw, i + 12 + n)
        assert dcrc == _masked(data)
        out.append(data)
        i += 16 + n
    return out


def _fields(buf: bytes) -> list[tuple[int, object]]:
    """(field number, value) pairs of a protocol buffer: ints, doubles, floats or bytes."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
        elif wire == 1:
            (v,), i = struct.unpack_from("<d", buf, i), i + 8
        elif wire == 5:
            (v,), i = struct.unpack_from("<f", buf, i), i + 4
        else:
            n, i = _varint(buf, i)
            v, i = buf[i : i + n], i + n
        out.append((field, v))
    return out


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _events(path: str) -> list[dict]:
    out = []
    for rec in _records(path):
        f = dict(_fields(rec))
        ev = {"step": f.get(2, 0), "wall_time": f[1]}
        if 3 in f:
            ev["file_version"] = f[3].decode()
        if 5 in f:
            value = dict(_fields(dict(_fields(f[5]))[1]))
            ev["tag"] = value[1].decode()
            ev["value"] = value
        out.append(ev)
    return out


def test_scalars_histograms_and_text_decode(tmp_path):
    with SummaryWriter(str(tmp_path)) as w:
        for step in range(4):
            w.add_scalar("loss", ds.tensor(1.0 / (step + 1)), step)
        w.add_scalars("acc", {"train": 0.5, "val": 0.25}, 7)
        values = np.random.default_rng(0).standard_normal(500)
        w.add_histogram("w", ds.tensor(values), 3)
        w.add_histogram("w10", values, 5, bins=10)
        w.add_text("note", "hello", 2)
    (main,) = glob.glob(os.path.join(str(tmp_path), "events.out.tfevents.*"))
    evs = _events(main)
    assert evs[0]["file_version"] == "brain.Event:2"
    scalars = [(e["step"], e["value"][2]) for e in evs if e.get("tag") == "loss"]
    assert scalars == [(s, pytest.approx(1.0 / (s + 1), rel=1e-7)) for s in range(4)]
    (h,) = [e for e in evs if e.get("tag") == "w"]
    histo = _fields(h["value"][5])
    d = dict(histo)
    assert (d[1], d[2], d[3]) == (values.min(), values.max(), 500.0)
    assert d[4] == pytest.approx(values.sum()) and d[5] == pytest.approx(values @ values)
    counts = struct.unpack(f"<{len(d[7]) // 8}d", d[7])
    limits = struct.unpack(f"<{len(d[6]) // 8}d", d[6])
    assert sum(counts) == 500 and len(counts) == len(limits) and list(limits) == sorted(limits)
    (h10,) = [e for e in evs if e.get("tag") == "w10"]
    counts10 = struct.unpack("<10d", dict(_fields(h10["value"][5]))[7])
    np.testing.assert_array_equal(counts10, np.histogram(values, 10)[0])
    (t,) = [e for e in evs if e.get("tag") == "note"]
    assert dict(_fields(t["value"][8]))[8] == b"hello"
    for key, want in (("train", 0.5), ("val", 0.25)):
        (sub,) = glob.glob(os.path.join(str(tmp_path), f"acc_{key}", "events.out.tfevents.*"))
        (e,) = [e for e in _events(sub) if e.get("tag") == "acc"]
        assert e["step"] == 7 and e["value"][2] == want


def test_tensorboards_own_reader(tmp_path):
    acc = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    with SummaryWriter(str(tmp_path)) as w:
        w.add_scalar("loss", 0.5, 1)
    ea = acc.EventAccumulator(str(tmp_path))
    ea.Reload()
    assert [(e.step, e.value) for e in ea.Scalars("loss")] == [(1, 0.5)]


def test_unsupported_kinds_raise_and_default_logdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_x")
    assert w.get_logdir().startswith("runs") and w.get_logdir().endswith("_x")
    with pytest.raises(NotImplementedError, match="scalars, histograms and text"):
        w.add_image("img", np.zeros((3, 2, 2)))
    w.close()
