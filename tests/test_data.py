"""Tests for descent.data: datasets, DataLoader, tokenizer, token stream, corpora, toy data."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import descent
from descent.data import (
    CharTokenizer,
    ChecksumError,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    TokenStream,
    corpora,
    default_collate,
    load_corpus,
    python_stdlib,
    random_split,
    shakespeare,
    synthetic,
)

SHAKESPEARE = Path("/work/shared/data/tinyshakespeare.txt")
if not SHAKESPEARE.is_file():  # CI checkouts keep the shared data next to the repository
    SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


@pytest.fixture(scope="module")
def shakespeare_text() -> str:
    return SHAKESPEARE.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Datasets and DataLoader


def make_ds(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(descent.tensor(x), descent.tensor(y))


def test_tensor_dataset_items_and_batches():
    ds = make_ds(10)
    assert len(ds) == 10
    x, y = ds[4]
    np.testing.assert_array_equal(x.numpy(), [12, 13, 14])
    assert y.item() == 4
    xb, yb = ds.get_batch(np.array([7, 2, 2]))
    assert xb.shape == (3, 3) and yb.dtype == np.int64
    np.testing.assert_array_equal(yb.numpy(), [7, 2, 2])


def test_tensor_dataset_keeps_array_dtype_and_checks_lengths():
    ds = TensorDataset(np.zeros((4, 2), dtype=np.float64), np.arange(4))
    assert ds.tensors[0].dtype == np.float64
    with pytest.raises(ValueError, match=r"same first dimension.*\(4, 2\).*\(5,\)"):
        TensorDataset(np.zeros((4, 2)), np.arange(5))


def test_dataloader_covers_every_item_once_and_lengths():
    ds = make_ds(10)
    loader = DataLoader(ds, batch_size=4)
    sizes = [len(y) for _, y in loader]
    assert sizes == [4, 4, 2] and len(loader) == 3
    seen = np.concatenate([y.numpy() for _, y in loader])
    np.testing.assert_array_equal(seen, np.arange(10))  # no shuffle: in order
    loader = DataLoader(ds, batch_size=4, drop_last=True)
    assert [len(y) for _, y in loader] == [4, 4] and len(loader) == 2


def test_dataloader_shuffle_is_reproducible_and_new_each_epoch():
    ds = make_ds(50)

    def epochs(seed, n=2):
        loader = DataLoader(ds, batch_size=8, shuffle=True, generator=descent.Generator(seed))
        return [np.concatenate([y.numpy() for _, y in loader]) for _ in range(n)]

    a, b, c = epochs(0), epochs(0), epochs(1)
    for e in a:
        np.testing.assert_array_equal(np.sort(e), np.arange(50))  # a permutation
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])  # a new order each epoch
    assert not np.array_equal(a[0], c[0])  # another seed, another order


def test_dataloader_fast_path_equals_item_by_item(monkeypatch):
    ds = make_ds(23)
    slow = DataLoader(ds, 5, shuffle=True, collate_fn=default_collate,
                      generator=descent.Generator(3))  # fmt: skip
    fast = DataLoader(ds, 5, shuffle=True, generator=descent.Generator(3))
    slow_batches = list(slow)

    def no_items(self, i):
        raise AssertionError("the fast path must not fetch items one by one")

    monkeypatch.setattr(TensorDataset, "__getitem__", no_items)
    fast_batches = list(fast)
    assert len(fast_batches) == len(slow_batches) == 5
    for (xs, ys), (xf, yf) in zip(slow_batches, fast_batches):
        np.testing.assert_array_equal(xs.numpy(), xf.numpy())
        np.testing.assert_array_equal(ys.numpy(), yf.numpy())
        assert xs.dtype == xf.dtype and ys.dtype == yf.dtype


def test_default_collate_types():
    batch = [
        {"x": np.array([1.0, 2.0]), "n": i, "f": 0.5 * i, "name": f"s{i}",
         "pair": (descent.tensor([i, i]), np.float64(i))}
        for i in range(3)
    ]  # fmt: skip
    out = default_collate(batch)
    assert out["x"].shape == (3, 2) and out["x"].dtype == np.float32
    assert out["n"].dtype == np.int64 and out["n"].tolist() == [0, 1, 2]
    assert out["f"].dtype == np.float32
    assert out["name"] == ["s0", "s1", "s2"]
    assert isinstance(out["pair"], tuple) and out["pair"][0].shape == (3, 2)
    assert out["pair"][0].dtype == np.int64
    # Tensors keep their dtype when stacked
    t = default_collate([descent.zeros(2, dtype=np.float64)] * 4)
    assert t.shape == (4, 2) and t.dtype == np.float64


def test_default_collate_errors():
    with pytest.raises(ValueError, match="different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="collate_fn"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="mixes Tensor"):
        default_collate([descent.zeros(2), np.zeros(2)])


def test_custom_dataset_and_collate_fn():
    class Squares(Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return i, i * i

    loader = DataLoader(Squares(), batch_size=3)
    xs, ys = next(iter(loader))
    assert xs.tolist() == [0, 1, 2] and ys.tolist() == [0, 1, 4]
    loader = DataLoader(Squares(), batch_size=3, collate_fn=lambda b: sum(s for _, s in b))
    assert list(loader) == [5, 50, 36]
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Squares(), batch_size=0)


def test_random_split_ints_fractions_and_reproducibility():
    ds = make_ds(10)
    a, b = random_split(ds, [7, 3], generator=descent.Generator(0))
    ia, ib = set(a.indices), set(b.indices)
    assert len(a) == 7 and len(b) == 3 and not ia & ib and ia | ib == set(range(10))
    # PyTorch's indices: a list of Python ints (json.dump-able), the Subset keeps them as given
    assert type(a.indices) is list and all(type(i) is int for i in a.indices)
    json.dumps(a.indices)
    a2, _ = random_split(ds, [7, 3], generator=descent.Generator(0))
    assert a.indices == a2.indices
    assert Subset(ds, (4, 2)).indices == (4, 2) and len(Subset(ds, range(3, 6))) == 3
    assert [y.item() for _, y in Subset(ds, [9, 1, 5])[[0, 2]]] == [9, 5]
    parts = random_split(ds, [0.34, 0.33, 0.33], generator=descent.Generator(1))
    assert [len(p) for p in parts] == [4, 3, 3]
    with pytest.raises(ValueError, match="sum to the dataset length 10"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.2])


def test_random_split_fraction_lengths_match_torch():
    import torch

    for n, fr in [(10, [0.33, 0.33, 0.34]), (101, [0.9, 0.1]), (7, [0.5, 0.25, 0.25])]:
        mine = [len(s) for s in random_split(make_ds(n), fr, generator=descent.Generator(0))]
        theirs = [len(s) for s in torch.utils.data.random_split(range(n), fr)]
        assert mine == theirs


def test_subset_keeps_the_fast_path():
    ds = make_ds(10)
    sub = Subset(ds, [9, 1, 5])
    assert sub[0][1].item() == 9
    x, y = sub.get_batch(np.array([2, 0]))
    assert y.tolist() == [5, 9]
    assert not hasattr(Subset(list(range(3)), [0]), "get_batch")


def test_blobs_logistic_regression_end_to_end():
    """DataLoader + autograd: softmax regression on well separated blobs reaches 95%."""
    g = descent.Generator(0)
    x, y = synthetic.blobs(300, centers=3, dim=2, generator=g, std=1.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=g)
    w = descent.zeros(2, 3, requires_grad=True)
    b = descent.zeros(3, requires_grad=True)
    for _ in range(20):
        for xb, yb in loader:
            logp = descent.log_softmax(xb @ w + b, axis=-1)  # (B, 3)
            loss = -descent.take_along_axis(logp, yb.reshape(-1, 1), axis=1).mean()
            w.grad = b.grad = None
            loss.backward()
            with descent.no_grad():
                w._data -= 0.05 * w.grad._data
                b._data -= 0.05 * b.grad._data
    acc = ((x @ w + b).numpy().argmax(-1) == y.numpy()).mean()
    assert acc >= 0.95, acc


# ---------------------------------------------------------------------------------------------
# Synthetic data


def test_synthetic_shapes_dtypes_balance_and_determinism():
    for fn, kw, xshape in [
        (synthetic.blobs, dict(n=60, centers=4, dim=5), (60, 5)),
        (synthetic.spirals, dict(n=60, classes=3), (60, 2)),
        (synthetic.images, dict(n=60, size=16, classes=6), (60, 1, 16, 16)),
        (synthetic.images, dict(n=12, size=28, classes=4), (12, 1, 28, 28)),
    ]:
        x, y = fn(**kw, generator=descent.Generator(5))
        x2, y2 = fn(**kw, generator=descent.Generator(5))
        x3, _ = fn(**kw, generator=descent.Generator(6))
        assert x.shape == xshape and x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x.numpy(), x2.numpy())
        np.testing.assert_array_equal(y.numpy(), y2.numpy())
        assert not np.array_equal(x.numpy(), x3.numpy())
        counts = np.bincount(y.numpy())
        assert counts.max() - counts.min() <= 1  # balanced classes


def test_blobs_given_centers_and_images_classes_differ():
    x, y = synthetic.blobs(200, centers=[[0, 0], [10, 10]], generator=descent.Generator(0),
                           std=0.5)  # fmt: skip
    means = [x.numpy()[y.numpy() == k].mean(0) for k in range(2)]
    np.testing.assert_allclose(means[0], [0, 0], atol=0.2)
    np.testing.assert_allclose(means[1], [10, 10], atol=0.2)
    xi, yi = synthetic.images(600, size=16, classes=3, noise=0.0, generator=descent.Generator(0))
    img, lab = xi.numpy()[:, 0], yi.numpy()
    row_var = [img[lab == k].sum(axis=2).std(axis=1).mean() for k in range(3)]
    col_var = [img[lab == k].sum(axis=1).std(axis=1).mean() for k in range(3)]
    # horizontal bars concentrate ink in rows, vertical bars in columns
    assert row_var[0] > col_var[0] and col_var[1] > row_var[1]
    with pytest.raises(ValueError, match="classes"):
        synthetic.images(10, classes=9)


# ---------------------------------------------------------------------------------------------
# CharTokenizer


def test_char_tokenizer_matches_nanogpt_vocabulary(shakespeare_text):
    tok = CharTokenizer(shakespeare_text)
    chars = sorted(set(shakespeare_text))  # nanoGPT's shakespeare_char/prepare.py
    assert tok.vocab_size == len(chars) == 65
    assert tok.stoi == {c: i for i, c in enumerate(chars)}
    sample = shakespeare_text[:2000]
    ids = tok.encode(sample)
    assert isinstance(ids, list) and ids == [tok.stoi[c] for c in sample]
    arr = tok.encode_array(sample)
    assert arr.dtype == np.uint16 and arr.tolist() == ids
    assert tok.decode(ids) == sample
    assert tok.decode(np.array(ids)) == sample
    assert tok.decode(descent.tensor(ids)) == sample


def test_char_tokenizer_unicode_and_serialisation():
    text = "naïve café — 日本 🙂\n"
    tok = CharTokenizer(text)
    assert tok.decode(tok.encode(text)) == text
    d = json.loads(json.dumps(tok.to_dict()))
    tok2 = CharTokenizer.from_dict(d)
    assert tok2 == tok and tok2.encode("café") == tok.encode("café")
    with pytest.raises(ValueError, match="from_dict"):
        CharTokenizer.from_dict({"type": "bpe"})


def test_char_tokenizer_errors():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 2 .* 3 characters"):
        tok.encode("abz")
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer("")
    with pytest.raises(TypeError):
        tok.encode(b"abc")


# ---------------------------------------------------------------------------------------------
# TokenStream


def test_token_stream_split_and_compact_storage(shakespeare_text):
    stream = TokenStream(shakespeare_text)
    n = len(shakespeare_text)
    assert stream.data.dtype == np.uint16 and stream.data.nbytes == 2 * n
    assert len(stream.train) == int(n * 0.9) and len(stream.train) + len(stream.val) == n
    assert stream.tokenizer.decode(stream.val[:50]) == shakespeare_text[int(n * 0.9) :][:50]


def test_token_stream_batches_are_shifted_windows():
    text = "".join(chr(ord("a") + i % 26) for i in range(5000))
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 1000, size=5000)
    stream = TokenStream(tokens, val_fraction=0.2, seed=0)
    x, y = stream.get_batch("train", batch_size=8, block_size=16)
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == np.int64
    train = stream.train.astype(np.int64)
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        starts = [s for s in range(len(train) - 16) if np.array_equal(train[s : s + 16], row_x)]
        assert starts, "x must be a window of the train split"
        np.testing.assert_array_equal(row_y, train[starts[0] + 1 : starts[0] + 17])
    xv, yv = stream.get_batch("val", 4, 16)
    val = stream.val.astype(np.int64)
    for row in xv.numpy():
        assert any(np.array_equal(val[s : s + 16], row) for s in range(len(val) - 16))
    assert len(text) == 5000


def test_token_stream_determinism_and_exact_resume(shakespeare_text):
    a = TokenStream(shakespeare_text[:20000], seed=7)
    b = TokenStream(shakespeare_text[:20000], seed=7)
    for _ in range(3):
        xa, _ = a.get_batch("train", 4, 32)
        xb, _ = b.get_batch("train", 4, 32)
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
    state = json.loads(json.dumps(a.state_dict()))  # must survive JSON (checkpoint metadata)
    expected = [a.get_batch("train", 4, 32)[0].numpy() for _ in range(3)]
    resumed = TokenStream(shakespeare_text[:20000], seed=123)
    resumed.load_state_dict(state)
    got = [resumed.get_batch("train", 4, 32)[0].numpy() for _ in range(3)]
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
    # an explicit generator is used instead of the stream's own
    g1 = descent.Generator(11)
    c = TokenStream(shakespeare_text[:20000], seed=7)
    xc, _ = c.get_batch("train", 4, 32, generator=g1)
    xd, _ = c.get_batch("train", 4, 32, generator=descent.Generator(11))
    np.testing.assert_array_equal(xc.numpy(), xd.numpy())


def test_token_stream_sharding_partitions_the_global_batch(shakespeare_text):
    text = shakespeare_text[:50000]
    single = TokenStream(text, seed=3)
    ranks = [TokenStream(text, seed=3, rank=r, world_size=3) for r in range(3)]
    for _ in range(2):
        xg, yg = single.get_batch("train", 12, 20)  # the global batch, 3 ranks x 4
        parts = [s.get_batch("train", 4, 20) for s in ranks]
        np.testing.assert_array_equal(np.concatenate([p[0].numpy() for p in parts]), xg.numpy())
        np.testing.assert_array_equal(np.concatenate([p[1].numpy() for p in parts]), yg.numpy())
        assert not np.array_equal(parts[0][0].numpy(), parts[1][0].numpy())
    with pytest.raises(ValueError, match="rank"):
        TokenStream(text, rank=2, world_size=2)


def test_token_stream_errors_and_windows_dataset():
    stream = TokenStream("abcdefghij" * 10, val_fraction=0.1)
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        stream.get_batch("test", 2, 4)
    with pytest.raises(ValueError, match="block_size"):
        stream.get_batch("val", 2, 10)  # 10 val tokens cannot hold 11
    with pytest.raises(TypeError, match="integers"):
        TokenStream(np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError, match="val_fraction"):
        TokenStream("abc", val_fraction=1.0)
    windows = stream.windows("train", block_size=8)
    assert len(windows) == (90 - 9) // 8 + 1
    batches = list(DataLoader(windows, batch_size=4))
    x0, y0 = batches[0]
    assert x0.shape == (4, 8)
    np.testing.assert_array_equal(x0.numpy()[1], stream.train[8:16])
    np.testing.assert_array_equal(y0.numpy()[1], stream.train[9:17])
    xi, yi = windows[1]
    np.testing.assert_array_equal(xi.numpy(), stream.train[8:16])
    assert TokenStream(np.arange(70000)).data.dtype == np.uint32


# ---------------------------------------------------------------------------------------------
# Corpora


def test_shakespeare_from_path_env_and_directory(monkeypatch, tmp_path, shakespeare_text):
    monkeypatch.delenv("DESCENT_DATA", raising=False)
    assert shakespeare(SHAKESPEARE) == shakespeare_text
    assert len(shakespeare_text) == 1_115_394
    monkeypatch.setenv("DESCENT_DATA", str(SHAKESPEARE))
    monkeypatch.setattr(corpora, "_urlopen", _no_network)
    assert shakespeare() == shakespeare_text
    (tmp_path / "input.txt").write_text("to be")
    monkeypatch.setenv("DESCENT_DATA", str(tmp_path))
    assert shakespeare() == "to be"
    monkeypatch.setenv("DESCENT_DATA", str(tmp_path / "nope.txt"))
    with pytest.raises(FileNotFoundError, match="DESCENT_DATA.*nope.txt"):
        shakespeare()


def _no_network(*args, **kwargs):
    raise AssertionError("no download expected")


def _serve(data: bytes, calls: list, fail_after: int | None = None):
    """A stand-in for urllib.request.urlopen serving `data` (optionally failing midway)."""

    class Response(io.BytesIO):
        def read(self, n=-1):
            if fail_after is not None and self.tell() >= fail_after:
                raise ConnectionResetError("connection reset by peer")
            return super().read(n)

    def opener(url, timeout=None):
        calls.append(url)
        return Response(data)

    return opener


def test_shakespeare_download_checksum_and_cache(monkeypatch, tmp_path, shakespeare_text):
    monkeypatch.delenv("DESCENT_DATA", raising=False)
    raw = SHAKESPEARE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == corpora.SHAKESPEARE_SHA256
    calls: list = []
    monkeypatch.setattr(corpora, "_urlopen", _serve(raw, calls))
    text = shakespeare(cache_dir=tmp_path)
    assert text == shakespeare_text and calls == [corpora.SHAKESPEARE_URL]
    assert (tmp_path / "tinyshakespeare.txt").read_bytes() == raw
    assert shakespeare(cache_dir=tmp_path) == text and len(calls) == 1  # served from the cache
    # DESCENT_CACHE chooses the cache directory when cache_dir is not given
    monkeypatch.setenv("DESCENT_CACHE", str(tmp_path / "c2"))
    assert shakespeare() == text and len(calls) == 2
    assert (tmp_path / "c2" / "tinyshakespeare.txt").is_file()
    # a damaged cache entry is replaced by a fresh download
    (tmp_path / "tinyshakespeare.txt").write_bytes(raw[:1000])
    assert shakespeare(cache_dir=tmp_path) == text and len(calls) == 3


def test_shakespeare_corrupted_download_is_deleted(monkeypatch, tmp_path):
    monkeypatch.delenv("DESCENT_DATA", raising=False)
    raw = bytearray(SHAKESPEARE.read_bytes())
    raw[500] ^= 0x01  # one flipped bit
    monkeypatch.setattr(corpora, "_urlopen", _serve(bytes(raw), []))
    with pytest.raises(ChecksumError, match=r"SHA-256 [0-9a-f]{64}, expected 86c4e6aa.*deleted"):
        shakespeare(cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary is left
    monkeypatch.setattr(corpora, "_urlopen", _serve(SHAKESPEARE.read_bytes(), [], 100_000))
    with pytest.raises(ConnectionResetError):
        shakespeare(cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_python_stdlib_corpus_is_deterministic_and_sized():
    text = python_stdlib()
    size = len(text.encode("utf-8"))
    assert 1_900_000 <= size <= 2_000_000
    assert python_stdlib() == text
    files = re.findall(r"^# file: (.*)$", text, re.M)
    assert len(files) > 20
    assert not any(re.search(r"(^|/)(tests?|idle_test)/", f) for f in files)
    assert not any(f.rsplit("/", 1)[-1].startswith("test_") for f in files)
    assert "def " in text and "class " in text and "\r" not in text
    small = python_stdlib(max_bytes=50_000)
    assert len(small.encode("utf-8")) <= 50_000
    stream = TokenStream(small)
    assert stream.tokenizer.decode(stream.data) == small


def test_python_stdlib_selection_rule(tmp_path):
    (tmp_path / "b.py").write_text("b = 2\n")
    (tmp_path / "a.py").write_text("a = 1\r\n")
    (tmp_path / "_private.py").write_text("p = 0\n")
    (tmp_path / "latin1.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("m = 3\n")
    (tmp_path / "pkg" / "test_mod.py").write_text("t = 4\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "x.py").write_text("x = 5\n")
    (tmp_path / "big.py").write_text("z = 0\n" * 1000)
    text = python_stdlib(max_bytes=500, root=tmp_path)
    files = re.findall(r"^# file: (.*)$", text, re.M)
    # public top-level modules first (sorted), then the rest by path; big.py does not fit
    assert files == ["a.py", "b.py", "_private.py", "pkg/mod.py"]
    assert "a = 1\n" in text and "\r" not in text
    with pytest.raises(FileNotFoundError, match="standard library"):
        python_stdlib(root=tmp_path / "missing")


def test_load_corpus(monkeypatch, tmp_path):
    monkeypatch.setenv("DESCENT_DATA", str(SHAKESPEARE))
    assert load_corpus("shakespeare").startswith("First Citizen:")
    assert load_corpus("python") == load_corpus("stdlib") == python_stdlib()
    f = tmp_path / "mine.txt"
    f.write_text("hello corpus")
    assert load_corpus(str(f)) == "hello corpus"
    assert load_corpus(f) == "hello corpus"
    with pytest.raises(FileNotFoundError, match=r"'nope\.txt' is neither a corpus name"):
        load_corpus("nope.txt")
    assert os.environ["DESCENT_DATA"] == str(SHAKESPEARE)


def test_token_stream_default_block_size():
    stream = TokenStream("abcdefghij" * 20, block_size=5, seed=0)
    x, y = stream.get_batch("train", 3)
    assert x.shape == (3, 5)
    assert TokenStream("abcdefghij" * 20, seed=0).get_batch("train", 3, 5)[0].tolist() == x.tolist()
    with pytest.raises(ValueError, match="pass block_size"):
        TokenStream("abcdefghij" * 20).get_batch("train", 3)


@pytest.mark.gpu
@pytest.mark.skipif(not descent.backend.cuda_available(), reason="needs a CUDA GPU with CuPy")
def test_gpu_batches():
    stream = TokenStream("abcdefghij" * 20, seed=0)
    x, y = stream.get_batch("train", 3, 5, device="cuda")
    assert x.device.startswith("cuda") and y.dtype == np.int64
    ds = TensorDataset(descent.randn(10, 2).to("cuda"), descent.arange(10).to("cuda"))
    xb, yb = next(iter(DataLoader(ds, batch_size=4, shuffle=True, generator=descent.Generator(0))))
    assert xb.device.startswith("cuda") and xb.shape == (4, 2)
