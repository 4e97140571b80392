"""descent.jit: torch.jit's names so that scripting/tracing programs run unchanged (eagerly);
the same results as torch's scripted and traced code; archives refused (no code loading)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds


def _program(lib):
    """A model written the TorchScript way: scripted helpers, ignore/export. (A branch on
    is_scripting() differs by design: descent always takes the eager branch, as torch's eager
    and traced runs do.)"""

    @lib.jit.script
    def fused_gelu(x):
        return x * 0.5 * (1.0 + lib.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(3, 2)

        def forward(self, x):
            return fused_gelu(self.fc(self.helper(x)))

        @lib.jit.ignore
        def helper(self, x):
            return x * 2

        @lib.jit.export
        def extra(self, x):
            return x + 1

    lib.manual_seed(0)
    net = Net()
    with lib.no_grad():
        net.fc.weight.copy_(lib.tensor([[0.1, -0.2, 0.3], [0.5, 0.4, -0.6]]))
        net.fc.bias.copy_(lib.tensor([0.05, -0.05]))
    scripted = lib.jit.script(net)
    x = lib.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    traced = lib.jit.trace(net, (x,))
    fut = lib.jit.fork(scripted, x)
    out = [scripted(x), traced(x), lib.jit.wait(fut), scripted.extra(x)]
    return [o.detach().numpy() for o in out]


def test_a_scripted_and_traced_program_gives_torchs_values():
    for ours, theirs in zip(_program(ds), _program(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


def test_script_and_trace_return_their_argument_and_decorators_keep_functions():
    lin = ds.nn.Linear(2, 2)
    assert ds.jit.script(lin) is lin and ds.jit.trace(lin, ds.ones(1, 2)) is lin

    def f(x):
        return x

    assert ds.jit.ignore(f) is f and ds.jit.ignore(drop=True)(f) is f and ds.jit.unused(f) is f
    assert ds.jit.annotate(list, [1]) == [1] and ds.jit.Attribute(3, int) == 3
    assert not ds.jit.is_scripting() and not ds.jit.is_tracing()
    assert ds.jit.freeze(lin) is lin and ds.jit.optimize_for_inference(lin) is lin


def test_torchscript_archives_are_refused(tmp_path):
    with pytest.raises(RuntimeError, match="never"):
        ds.jit.save(ds.nn.Linear(1, 1), tmp_path / "m.pt")
    with pytest.raises(RuntimeError, match="never loads"):
        ds.jit.load(tmp_path / "m.pt")
