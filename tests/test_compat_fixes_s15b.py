"""Fixes found by session 15's second round of compat programs (tests/compat/programs:
pixelcnn_wgan, loss_zoo, convlstm_bayes, txl_poincare) and the probes beside them, each
differential against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import pytest

import descent

torch = pytest.importorskip("torch")


def _optimizers(lib):
    class Custom(lib.optim.Optimizer):
        def __init__(self, params, lr=0.1, mom=0.0):
            super().__init__(params, dict(lr=lr, mom=mom))

    p, q = lib.nn.Parameter(lib.ones(2)), lib.nn.Parameter(lib.ones(3))
    custom = Custom([p], lr=0.5)
    custom.add_param_group({"params": [q], "mom": 0.9})
    sgd = lib.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=0.1)
    return [custom, sgd, lib.optim.Adam([p], lr=0.1)]


# print(optimizer) with several groups: PyTorch parts groups by a blank line (each group opens
# with a newline); descent printed them back to back
def test_optimizer_repr_matches_pytorch():
    for ours, theirs in zip(_optimizers(descent), _optimizers(torch), strict=True):
        assert repr(ours) == repr(theirs)
