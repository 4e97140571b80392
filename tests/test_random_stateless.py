"""descent.random (torch.random: fork_rng, seeds, states), descent.default_generator as a
Generator object (torch's), and nn.utils.stateless.functional_call."""

from __future__ import annotations

import numpy as np
import torch

import descent as ds


def test_fork_rng_restores_the_default_generator():
    ds.random.manual_seed(7)
    want = ds.randn(3).numpy()
    ds.random.manual_seed(7)
    with ds.random.fork_rng():
        ds.randn(100)
    np.testing.assert_array_equal(ds.randn(3).numpy(), want)
    ds.random.manual_seed(7)
    with ds.random.fork_rng(enabled=False):
        ds.randn(100)
    assert not np.array_equal(ds.randn(3).numpy(), want)
    assert ds.random.initial_seed() == 7
    state = ds.random.get_rng_state()
    a = ds.rand(2).numpy()
    ds.random.set_rng_state(state)
    np.testing.assert_array_equal(ds.rand(2).numpy(), a)


def test_default_generator_is_a_generator_object_as_torchs():
    assert isinstance(ds.default_generator, ds.Generator)
    assert isinstance(torch.default_generator, torch.Generator)
    ds.default_generator.manual_seed(3)
    a = ds.randn(2).numpy()
    ds.manual_seed(3)
    np.testing.assert_array_equal(ds.randn(2).numpy(), a)
    assert ds.default_generator.initial_seed() == 3
    assert ds.default_generator() is ds.default_generator  # descent's older call form


def test_stateless_functional_call():
    lin = ds.nn.Linear(2, 1)
    w = {"weight": ds.ones(1, 2), "bias": ds.zeros(1)}
    out = ds.nn.utils.stateless.functional_call(lin, w, (ds.tensor([[1.0, 2.0]]),))
    assert out.item() == 3.0
    assert ds.nn.utils.stateless.functional_call is ds.func.functional_call
