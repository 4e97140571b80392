"""`torch.utils.tensorboard.SummaryWriter`, writing TensorBoard's event files with no dependency.

TensorBoard reads a directory of `events.out.tfevents.*` files: TFRecord framing (a little-endian
uint64 length, its masked CRC-32C, the bytes, their masked CRC-32C) around `Event` protocol
buffers. The few messages a writer needs are encoded here by hand (varints and length-delimited
fields; field numbers from TensorFlow's `event.proto` and `summary.proto`), so the writer needs
neither `tensorboard` nor `protobuf` (PyTorch's needs both). Run `tensorboard --logdir runs` where
TensorBoard is installed to see the curves.

Written: scalars (`add_scalar`, `add_scalars`: one sub-run per key, as PyTorch's), histograms
(`add_histogram`: TensorBoard's HistogramProto from the values, bins as PyTorch's "tensorflow"
default), text (`add_text`), and `flush`/`close`. Images, audio, graphs, embeddings and hparams
are not written (`add_image` & co. raise `NotImplementedError` naming the alternative).
"""

from __future__ import annotations

import os as _os
import socket as _socket
import struct as _struct
import time as _time

import numpy as _np

__all__ = ["SummaryWriter"]

# -- CRC-32C (Castagnoli), table-driven -------------------------------------------------------

_POLY = 0x82F63B78
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    header = _struct.pack("<Q", len(data))
    return header + _struct.pack("<I", _masked(header)) + data + _struct.pack("<I", _masked(data))


# -- protocol buffer encoding ----------------------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64s as 10-byte two's complement, as protobuf does
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _bytes_field(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _double_field(field: int, v: float) -> bytes:
    return _key(field, 1) + _struct.pack("<d", float(v))


def _float_field(field: int, v: float) -> bytes:
    return _key(field, 5) + _struct.pack("<f", float(v))


def _int_field(field: int, v: int) -> bytes:
    return _key(field, 0) + _varint(int(v))


def _packed_doubles(field: int, values) -> bytes:
    return _bytes_field(field, _struct.pack(f"<{len(values)}d", *values))


def _event(wall_time: float, step: int, *, file_version: str | None = None,
          summary: bytes | None = None) -> bytes:  # fmt: skip
    """An `Event`: wall_time = 1 (double), step = 2 (int64), file_version = 3, summary = 5."""
    out = _double_field(1, wall_time) + _int_field(2, step)
    if file_version is not None:
        out += _bytes_field(3, file_version.encode())
    if summary is not None:
        out += _bytes_field(5, summary)
    return out


def _scalar_summary(tag: str, value: float) -> bytes:
    """`Summary { value { tag = 1, simple_value = 2 } }`."""
    return _bytes_field(1, _bytes_field(1, tag.encode()) + _float_field(2, value))


def _histogram_proto(values: _np.ndarray, bins) -> bytes:
    """`HistogramProto`: min 1, max 2, num 3, sum 4, sum_squares 5, bucket_limit 6, bucket 7."""
    v = _np.asarray(values, dtype=_np.float64).ravel()
    if v.size == 0:
        raise ValueError("add_histogram: the values are empty")
    if isinstance(bins, str) and bins == "tensorflow":
        limits = _tf_bucket_limits(float(_np.abs(v).max()))
        counts = _np.histogram(v, bins=_np.concatenate([[-_np.inf], limits]))[0]
    else:
        counts, edges = _np.histogram(v, bins=bins)
        limits = edges[1:]
    keep = _np.nonzero(counts)[0]  # TensorBoard's writer drops empty buckets at the ends
    lo, hi = (keep[0], keep[-1] + 1) if keep.size else (0, 1)
    out = (_double_field(1, v.min()) + _double_field(2, v.max()) + _double_field(3, v.size)
           + _double_field(4, v.sum()) + _double_field(5, float(_np.dot(v, v))))  # fmt: skip
    out += _packed_doubles(6, [float(x) for x in limits[lo:hi]])
    out += _packed_doubles(7, [float(x) for x in counts[lo:hi]])
    return out


def _tf_bucket_limits(max_abs: float) -> _np.ndarray:
    """TensorFlow's default buckets: +-1e-12 * 1.1^k, symmetric, up to the largest value."""
    pos = [1e-12]
    while pos[-1] < max(max_abs, 1e-12) * 1.1 and len(pos) < 2000:
        pos.append(pos[-1] * 1.1)
    pos = _np.array(pos)
    return _np.concatenate([-pos[::-1], [0.0], pos, [_np.finfo(_np.float64).max]])


def _histogram_summary(tag: str, values, bins) -> bytes:
    """`Summary { value { tag = 1, histo = 5 } }`."""
    value = _bytes_field(1, tag.encode()) + _bytes_field(5, _histogram_proto(values, bins))
    return _bytes_field(1, value)


def _text_summary(tag: str, text: str) -> bytes:
    """A text summary as TensorBoard's text plugin reads it: `Value { tag = 1, metadata = 9
    { plugin_data = 1 { plugin_name = 1: "text" } }, tensor = 8 { dtype = 1: DT_STRING (7),
    tensor_shape = 2 { dim = 2 { size = 1: 1 } }, string_val = 8 } }`."""
    meta = _bytes_field(1, _bytes_field(1, b"text"))
    shape = _bytes_field(2, _int_field(1, 1))
    tensor = _int_field(1, 7) + _bytes_field(2, shape) + _bytes_field(8, text.encode())
    value = _bytes_field(1, tag.encode()) + _bytes_field(9, meta) + _bytes_field(8, tensor)
    return _bytes_field(1, value)


def _as_float(value) -> float:
    if hasattr(value, "item"):
        return float(value.item())
    return float(value)


def _as_array(values) -> _np.ndarray:
    if hasattr(values, "_data"):
        from .. import backend  # noqa: PLC0415

        return backend.as_numpy(values.detach()._data)
    return _np.asarray(values)


class _EventFile:
    def __init__(self, logdir: str, filename_suffix: str = "") -> None:
        _os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(_time.time())}.{_socket.gethostname()}.{_os.getpid()}"
        self.path = _os.path.join(logdir, name + filename_suffix)
        self._f = open(self.path, "ab")  # noqa: SIM115 - kept open until close()
        self.write(_event(_time.time(), 0, file_version="brain.Event:2"))
        self.flush()

    def write(self, ev: bytes) -> None:
        self._f.write(_record(ev))

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class SummaryWriter:
    """Write TensorBoard event files (torch.utils.tensorboard.SummaryWriter's interface).

    Args:
        log_dir: the run's directory (default `runs/<date>_<host><comment>`, as PyTorch).
        comment: suffix of the default log_dir.
        purge_step, max_queue, flush_secs: accepted; each event is written at once and flushed
            every `flush_secs` seconds and on `flush()`/`close()`.
        filename_suffix: appended to the event file's name.
    """

    def __init__(
        self,
        log_dir: str | None = None,
        comment: str = "",
        purge_step=None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ) -> None:
        if log_dir is None:
            stamp = _time.strftime("%b%d_%H-%M-%S")
            log_dir = _os.path.join("runs", f"{stamp}_{_socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self._suffix = filename_suffix
        self._flush_secs = flush_secs
        self._last_flush = _time.time()
        self._file = _EventFile(self.log_dir, filename_suffix)
        self._subwriters: dict[str, _EventFile] = {}

    def get_logdir(self) -> str:
        return self.log_dir

    def _write(self, summary: bytes, step, walltime, f: _EventFile | None = None) -> None:
        f = f or self._file
        f.write(_event(_time.time() if walltime is None else walltime, int(step or 0),
                      summary=summary))  # fmt: skip
        if _time.time() - self._last_flush >= self._flush_secs:
            self.flush()

    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None,
                   new_style: bool = False, double_precision: bool = False) -> None:  # fmt: skip
        """One point of the curve `tag` (a number or a one-element tensor)."""
        self._write(_scalar_summary(tag, _as_float(scalar_value)), global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None,
                    walltime=None) -> None:  # fmt: skip
        """Several curves in one chart: each key goes to the sub-run `<log_dir>/<main_tag>_<key>`
        under the tag `main_tag`, as PyTorch's."""
        for key, value in tag_scalar_dict.items():
            sub = _os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{key}")
            f = self._subwriters.get(sub)
            if f is None:
                f = self._subwriters[sub] = _EventFile(sub, self._suffix)
            self._write(_scalar_summary(main_tag, _as_float(value)), global_step, walltime, f)

    def add_histogram(self, tag: str, values, global_step=None, bins="tensorflow",
                      walltime=None, max_bins=None) -> None:  # fmt: skip
        """The distribution of `values` (a tensor or array) at this step."""
        self._write(_histogram_summary(tag, _as_array(values), bins), global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        """A text entry (Markdown in TensorBoard's text tab)."""
        self._write(_text_summary(tag, str(text_string)), global_step, walltime)

    def _unsupported(self, what: str):
        raise NotImplementedError(
            f"SummaryWriter.{what}: descent writes scalars, histograms and text; for images and "
            "figures save them with matplotlib, and see descent.explain for training reports"
        )

    def add_image(self, *args, **kwargs):
        self._unsupported("add_image")

    def add_images(self, *args, **kwargs):
        self._unsupported("add_images")

    def add_figure(self, *args, **kwargs):
        self._unsupported("add_figure")

    def add_graph(self, *args, **kwargs):
        self._unsupported("add_graph")

    def add_hparams(self, *args, **kwargs):
        self._unsupported("add_hparams")

    def add_embedding(self, *args, **kwargs):
        self._unsupported("add_embedding")

    def flush(self) -> None:
        self._file.flush()
        for f in self._subwriters.values():
            f.flush()
        self._last_flush = _time.time()

    def close(self) -> None:
        self.flush()
        self._file.close()
        for f in self._subwriters.values():
            f.close()

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
