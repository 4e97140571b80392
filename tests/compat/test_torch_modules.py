"""The small modules that carry PyTorch's names: nn.utils, nn.parallel, backends, accelerator and
torch.distributed's process-group functions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import descent  # noqa: E402
import descent.accelerator  # noqa: E402
import descent.backends  # noqa: E402
import descent.distributed as dist  # noqa: E402
import descent.nn  # noqa: E402
from descent import backend  # noqa: E402
from descent.optim import clip  # noqa: E402

SHAPES = [(3, 2), (4,), (2, 2, 2)]


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    ours = [descent.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return arrays, ours, theirs


def test_nn_utils_clip_is_optims():
    assert descent.nn.utils.clip_grad_norm_ is clip.clip_grad_norm_
    assert descent.nn.utils.clip_grad_value_ is clip.clip_grad_value_
    with pytest.warns(FutureWarning):
        descent.nn.utils.clip_grad_norm([descent.zeros(2, requires_grad=True)], 1.0)


def test_parameters_to_vector_matches_torch_and_is_differentiable():
    _, ours, theirs = _pair()
    v_ours = descent.nn.utils.parameters_to_vector(ours)
    v_theirs = torch.nn.utils.parameters_to_vector(theirs)
    np.testing.assert_array_equal(v_ours.numpy(), v_theirs.detach().numpy())
    weights = np.arange(v_ours.shape[0], dtype=np.float32)
    (v_ours * descent.tensor(weights)).sum().backward()
    (v_theirs * torch.tensor(weights)).sum().backward()
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())


def test_vector_to_parameters_matches_torch_in_place():
    _, ours, theirs = _pair()
    vec = np.linspace(-1, 1, sum(int(np.prod(s)) for s in SHAPES)).astype(np.float32)
    kept = [id(p) for p in ours]
    descent.nn.utils.vector_to_parameters(descent.tensor(vec), ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(vec), theirs)
    assert [id(p) for p in ours] == kept
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(p.numpy(), q.detach().numpy())
        assert p.requires_grad and p.grad is None


def test_vector_to_parameters_errors():
    _, ours, _ = _pair()
    with pytest.raises(ValueError, match="hold 18 numbers"):
        descent.nn.utils.vector_to_parameters(descent.zeros(5), ours)
    with pytest.raises(TypeError):
        descent.nn.utils.vector_to_parameters(np.zeros(18), ours)


def test_ddp_with_torch_arguments_in_a_world_of_one():
    model = descent.nn.Linear(3, 2)
    ddp = descent.nn.parallel.DistributedDataParallel(
        model, device_ids=None, bucket_cap_mb=1, find_unused_parameters=True
    )
    x = descent.tensor(np.ones((4, 3), np.float32))
    np.testing.assert_array_equal(ddp(x).numpy(), model(x).numpy())
    ddp(x).sum().backward()
    np.testing.assert_allclose(model.weight.grad.numpy(), np.full((2, 3), 4.0))
    assert ddp.module is model and ddp.bucket_mb == 1.0
    for kw in ({"device_ids": [0, 1]}, {"dim": 1}, {"process_group": object()}):
        with pytest.raises(ValueError):
            descent.nn.parallel.DistributedDataParallel(model, **kw)
    with pytest.raises(TypeError, match="unexpected keyword"):
        descent.nn.parallel.DistributedDataParallel(model, bucket_size=3)


def test_backends_flags_and_submodules():
    import descent.backends.cudnn as cudnn  # the import form scripts use

    cudnn.benchmark = True
    assert descent.backends.cudnn.benchmark is True
    descent.backends.cuda.matmul.allow_tf32 = True
    assert descent.backends.cuda.matmul.allow_tf32 is True
    assert cudnn.is_available() is False and cudnn.version() is None
    assert descent.backends.mps.is_available() is False
    assert descent.backends.cuda.is_built() == backend.cuda_available()
    descent.backends.cuda.enable_flash_sdp(False)
    assert descent.backends.cuda.flash_sdp_enabled() is False
    descent.backends.cuda.enable_flash_sdp(True)


def test_accelerator():
    assert descent.accelerator.is_available() == backend.cuda_available()
    assert descent.accelerator.device_count() == backend.cuda_device_count()
    if not backend.cuda_available():
        assert descent.accelerator.current_accelerator() is None
        assert descent.accelerator.current_device_index() == -1
    descent.accelerator.synchronize()


def test_reduce_op_names_reach_all_reduce():
    assert (dist.ReduceOp.SUM, dist.ReduceOp.AVG) == ("sum", "mean")
    t = descent.tensor([1.0, 2.0])
    for op in (dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MAX, dist.ReduceOp.MIN):
        assert dist.all_reduce(t, op=op) is t  # a world of one: unchanged
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


@pytest.mark.skipif(not dist.is_mpi_available(), reason="mpi4py is not installed")
def test_init_and_destroy_process_group_in_a_fresh_process():
    code = (
        "import descent.distributed as d\n"
        "d.init_process_group(backend='gloo', init_method='env://', world_size=1, rank=0)\n"
        "print(d.get_rank(), d.get_world_size(), d.get_backend(), d.is_initialized())\n"
        "d.destroy_process_group()\n"
        "print(d.is_initialized())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["0", "1", "gloo", "True", "False"]
    bad = "import descent.distributed as d\nd.init_process_group(world_size=4)\n"
    proc = subprocess.run([sys.executable, "-c", bad], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "mpirun -n 4" in proc.stderr


def test_get_backend_before_init():
    if not dist.is_initialized():
        with pytest.raises(RuntimeError, match="init_process_group"):
            dist.get_backend()


@pytest.mark.mpi
@pytest.mark.skipif(not dist.is_mpi_available(), reason="mpi4py is not installed")
def test_torch_style_ddp_step_under_mpirun():
    import os
    from pathlib import Path

    from descent.distributed import launch

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_", "SLURM_"))
    }
    script = Path(__file__).resolve().parent / "scripts" / "ddp_torch_style.py"
    res = launch.run(2, [str(script)], timeout=180, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(res.stdout.split("\n"))[-2:] == ["rank 0 ok", "rank 1 ok"]
