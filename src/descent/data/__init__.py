"""Data: datasets, batching, text tokenization, corpora and generated toy data.

    >>> from descent.data import DataLoader, TensorDataset
    >>> loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
    ...                     generator=descent.Generator(0))

See docs/data.md.
"""

from __future__ import annotations

from . import synthetic
from .corpora import (
    SHAKESPEARE_SHA256,
    SHAKESPEARE_URL,
    ChecksumError,
    load_corpus,
    python_stdlib,
    shakespeare,
)
from .dataloader import DataLoader, default_collate
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .subword import SubwordTokenizer, loss_in_units, tokenizer_from_dict
from .synthetic import blobs, images, spirals
from .text import CharTokenizer, TokenStream, TokenWindows

TokenStreamDataset = TokenStream  # the other name for it

__all__ = [
    "SHAKESPEARE_SHA256",
    "SHAKESPEARE_URL",
    "ChecksumError",
    "CharTokenizer",
    "SubwordTokenizer",
    "loss_in_units",
    "tokenizer_from_dict",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "Subset",
    "TensorDataset",
    "TokenStream",
    "TokenStreamDataset",
    "TokenWindows",
    "blobs",
    "default_collate",
    "images",
    "load_corpus",
    "python_stdlib",
    "random_split",
    "shakespeare",
    "spirals",
    "synthetic",
]
