"""The subword tokenizer: training at a chosen vocabulary size, exact round trips, saving
without pickle (JSON inside a checkpoint's metadata) and the loss units."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("tokenizers")

from descent.data import CharTokenizer
from descent.data.subword import SubwordTokenizer, loss_in_units, tokenizer_from_dict

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
) * 40


def test_train_at_vocab_size_and_round_trip():
    tok = SubwordTokenizer.train(TEXT, vocab_size=300)
    assert tok.vocab_size == 300
    ids = tok.encode_array(TEXT)
    assert ids.dtype == np.uint16 and len(ids) < len(TEXT) / 2  # merges compress
    assert tok.decode(ids) == TEXT
    assert tok.encode("Speak, speak.") == tok.encode_array("Speak, speak.").tolist()
    # Byte level: text never seen (other scripts, emoji, tabs) still round-trips exactly.
    odd = "naïve café — 東京 🎭\ttab\r\n  spaces  "
    assert tok.decode(tok.encode(odd)) == odd


def test_save_load_through_json_without_pickle():
    tok = SubwordTokenizer.train(TEXT, vocab_size=280)
    d = json.loads(json.dumps(tok.to_dict()))  # what a checkpoint's metadata stores
    assert d["type"] == "subword" and isinstance(d["json"], str)
    back = tokenizer_from_dict(d)
    assert back == tok and back.encode(TEXT) == tok.encode(TEXT)
    assert isinstance(tokenizer_from_dict(CharTokenizer("abc").to_dict()), CharTokenizer)
    with pytest.raises(ValueError, match="unknown tokenizer type"):
        tokenizer_from_dict({"type": "bpe?"})


def test_checkpoint_round_trip(tmp_path):
    from descent import io as dio
    from descent.models import Grok, GrokConfig

    tok = SubwordTokenizer.train(TEXT, vocab_size=270)
    model = Grok(GrokConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_embd=32,
                            n_head=2, n_kv_head=1, head_dim=16, num_experts=2))  # fmt: skip
    path = tmp_path / "ckpt.safetensors"
    dio.save(path, model, tokenizer=tok.to_dict())
    meta = dio.read_metadata(path)
    assert tokenizer_from_dict(meta["tokenizer"]) == tok
    fresh = Grok(model.config)
    dio.load(path, fresh)
    for (n, a), (_, b) in zip(model.named_parameters(), fresh.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=n)


def test_errors_are_explained():
    with pytest.raises(ValueError, match="257"):
        SubwordTokenizer.train(TEXT, vocab_size=100)
    tok = SubwordTokenizer.train(TEXT, vocab_size=260)
    with pytest.raises(ValueError, match="outside"):
        tok.decode([0, 260])
    with pytest.raises(TypeError, match="str"):
        tok.encode(b"bytes")


def test_loss_in_units():
    text = "héllo"  # 5 characters, 6 UTF-8 bytes
    u = loss_in_units(2.0, 2, text)  # 4 nats in total
    assert u["per_token"] == 2.0
    assert u["per_char"] == pytest.approx(4 / 5)
    assert u["bits_per_char"] == pytest.approx(4 / 5 / math.log(2))
    assert u["bits_per_byte"] == pytest.approx(4 / 6 / math.log(2))
    assert u["chars_per_token"] == pytest.approx(2.5)
