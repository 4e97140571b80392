"""PyTorch's import paths that programs use, under descent: torch.nn.modules.*, torch.nn.parameter,
torch.nn.attention, torch.nn.common_types, torch.utils.data.distributed, torch.utils.hooks,
torch.types, torch.overrides, torch.optim.lr_scheduler._LRScheduler (a custom scheduler that
overrides get_lr, as PyTorch's are written, gives PyTorch's learning rates)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

import descent as ds

PATHS = [
    ("nn.modules.loss", ["_Loss", "_WeightedLoss", "CrossEntropyLoss", "MSELoss"]),
    ("nn.modules.batchnorm", ["_BatchNorm", "BatchNorm1d", "BatchNorm2d"]),
    ("nn.modules.conv", ["_ConvNd", "Conv2d", "ConvTranspose2d"]),
    ("nn.modules.module", ["Module"]),
    ("nn.modules.linear", ["Linear", "Identity"]),
    ("nn.modules.activation", ["MultiheadAttention", "ReLU", "GELU"]),
    ("nn.modules.container", ["Sequential", "ModuleList", "ModuleDict"]),
    ("nn.modules.dropout", ["Dropout", "_DropoutNd"]),
    ("nn.modules.normalization", ["LayerNorm", "GroupNorm"]),
    ("nn.modules.sparse", ["Embedding"]),
    ("nn.modules.rnn", ["LSTM", "GRU"]),
    ("nn.modules.transformer", ["TransformerEncoderLayer"]),
    ("nn.modules.instancenorm", ["_InstanceNorm", "InstanceNorm2d"]),
    ("nn.modules", ["Linear", "Conv2d"]),
    ("nn.parameter", ["Parameter"]),
    ("nn.attention", ["SDPBackend", "sdpa_kernel"]),
    ("nn.common_types", ["_size_2_t", "_size_any_t"]),
    ("utils.data.distributed", ["DistributedSampler"]),
    ("utils.data.dataloader", ["default_collate", "DataLoader"]),
    ("utils.hooks", ["RemovableHandle"]),
    ("types", ["Number", "Device"]),
    ("overrides", ["has_torch_function", "is_tensor_like"]),
    ("optim.lr_scheduler", ["_LRScheduler", "LRScheduler"]),
    ("optim.optimizer", ["Optimizer", "register_optimizer_step_pre_hook"]),
]


@pytest.mark.parametrize("path,names", PATHS)
def test_torch_import_paths_exist_in_descent(path, names):
    tmod = importlib.import_module(f"torch.{path}")
    dmod = importlib.import_module(f"descent.{path}")
    for n in names:
        assert hasattr(tmod, n), f"torch.{path}.{n}"  # the list names real torch paths
        assert hasattr(dmod, n), f"descent.{path}.{n}"


def test_modules_paths_hold_the_same_classes():
    from descent.nn.modules.batchnorm import _BatchNorm
    from descent.nn.modules.loss import _Loss

    assert issubclass(ds.nn.BatchNorm2d, _BatchNorm) and issubclass(ds.nn.MSELoss, _Loss)
    assert ds.nn.modules.Linear is ds.nn.Linear


def _custom_schedule(lib, base):
    class Warm(base):
        def __init__(self, opt, warmup, last_epoch=-1):
            self.warmup = warmup
            super().__init__(opt, last_epoch)

        def get_lr(self):
            f = min(1.0, (self.last_epoch + 1) / self.warmup)
            return [b * f * (0.5 if i else 1.0) for i, b in enumerate(self.base_lrs)]

    p, q = lib.zeros(1, requires_grad=True), lib.zeros(1, requires_grad=True)
    opt = lib.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.2}], lr=0.5)
    s = Warm(opt, 4)
    out = []
    for _ in range(7):
        opt.step()
        s.step()
        out.append([round(g["lr"], 10) for g in opt.param_groups] + s.get_last_lr())
    return out


def test_custom_scheduler_overriding_get_lr_matches_torch():
    from descent.optim.lr_scheduler import _LRScheduler

    assert _custom_schedule(ds, _LRScheduler) == _custom_schedule(
        torch, torch.optim.lr_scheduler._LRScheduler
    )


def test_sdpa_kernel_accepts_backends_and_checks_them():
    from descent.nn.attention import SDPBackend, sdpa_kernel

    q = ds.randn(1, 2, 3, 4)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
        y = ds.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert y.shape == (1, 2, 3, 4)
    with pytest.raises(TypeError):
        with sdpa_kernel(["flash"]):
            pass


def test_autograd_function_path_and_once_differentiable_match_torch():
    results = []
    for lib in (ds, torch):
        mod = importlib.import_module(f"{lib.__name__}.autograd.function")

        class Cube(mod.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x**3

            @staticmethod
            @mod.once_differentiable
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 3 * x * x * g

        x = lib.tensor([2.0, -1.0], requires_grad=True)
        Cube.apply(x).sum().backward()
        results.append(x.grad.tolist())
    assert results[0] == results[1] == [12.0, 3.0]
    from descent.nn.utils.clip_grad import clip_grad_norm_

    assert clip_grad_norm_ is ds.nn.utils.clip_grad_norm_


def test_autograd_function_is_an_attribute_without_an_import():
    # `@torch.autograd.function.once_differentiable` and `ctx: torch.autograd.function.
    # FunctionCtx` need only `import torch`; descent.autograd.function was reachable by import
    # only (AttributeError). A fresh process, since an import anywhere sets the attribute.
    code = (
        "import {0}\n"
        "m = {0}.autograd.function\n"
        "print(m.once_differentiable.__name__, m.FunctionCtx.__name__,\n"
        "      m.Function is {0}.autograd.Function)"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", code.format(name)], capture_output=True, text=True, check=True
        ).stdout
        for name in ("descent", "torch")
    ]
    assert outs[0] == outs[1] == "once_differentiable FunctionCtx True\n"


def test_torch_version_module_as_a_cpu_build():
    # Environment reports print torch.version.cuda (None on a CPU build) after a bare import;
    # descent had no `version` module (AttributeError). A fresh process, as above.
    code = (
        "import {0}\n"
        "v = {0}.version\n"
        "print(v.cuda, v.hip, v.debug, type(v.git_version).__name__, type(v.__version__).__name__)"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", code.format(name)], capture_output=True, text=True, check=True
        ).stdout
        for name in ("descent", "torch")
    ]
    assert outs[0] == "None None False str str\n"
    assert outs[1].startswith("None None False str")  # torch's __version__ is a str subclass
