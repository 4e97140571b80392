"""torch._dynamo / torch._inductor's config modules and helpers (descent._dynamo,
descent._inductor): PyTorch's names and defaults, checked names, patch(), and the settings
descent.compile reads (recompile_limit / cache_size_limit, disable, error_on_recompile)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import descent
import descent._dynamo
import descent._inductor.config as inductor_config
import descent.nn as nn

torch = pytest.importorskip("torch")
pytest.importorskip("torch._dynamo")
pytest.importorskip("torch._inductor.config")


def _settings(module):
    return module.get_config_copy()


def test_every_dynamo_setting_has_pytorchs_default():
    ours = _settings(descent._dynamo.config)
    assert len(ours) >= 20
    for name, value in ours.items():
        assert getattr(torch._dynamo.config, name) == value, name
    for alias in ("cache_size_limit", "accumulated_cache_size_limit"):
        assert getattr(descent._dynamo.config, alias) == getattr(torch._dynamo.config, alias)


def test_every_inductor_setting_has_pytorchs_default():
    ours = _settings(inductor_config)
    assert len(ours) >= 40
    for dotted, value in ours.items():
        obj = torch._inductor.config
        for part in dotted.split("."):
            obj = getattr(obj, part)
        assert obj == value, dotted


@pytest.mark.parametrize("lib", ["torch", "descent"])
def test_unknown_names_raise_attribute_error_as_pytorch(lib):
    mod = torch if lib == "torch" else descent
    with pytest.raises(AttributeError, match="does not exist"):
        mod._dynamo.config.no_such_setting = 1
    with pytest.raises(AttributeError, match="does not exist"):
        _ = mod._dynamo.config.no_such_setting
    with pytest.raises(AttributeError):
        mod._inductor.config.triton.no_such_setting = 1


def test_aliases_share_one_value_and_patch_restores():
    cfg = descent._dynamo.config
    old = cfg.recompile_limit
    try:
        cfg.cache_size_limit = 64
        assert cfg.recompile_limit == 64
        with cfg.patch(recompile_limit=3, suppress_errors=True):
            assert cfg.cache_size_limit == 3 and cfg.suppress_errors is True
        assert cfg.recompile_limit == 64 and cfg.suppress_errors is False

        @inductor_config.patch({"triton.cudagraphs": True, "coordinate_descent_tuning": True})
        def inside():
            return inductor_config.triton.cudagraphs, inductor_config.coordinate_descent_tuning

        assert inside() == (True, True)
        assert inductor_config.triton.cudagraphs is False
        assert inductor_config.coordinate_descent_tuning is False
    finally:
        cfg.recompile_limit = old


def test_script_lines_run_unchanged_in_a_fresh_interpreter():
    """The lines gpt-fast / modded-nanogpt-style scripts put before torch.compile."""
    src = (
        "import descent as torch\n"
        "import descent._dynamo\n"
        "import descent._inductor.config as config\n"
        "import descent._dynamo.config\n"
        "config.coordinate_descent_tuning = True\n"
        "config.triton.unique_kernel_names = True\n"
        "config.fx_graph_cache = True\n"
        "torch._inductor.config.coordinate_descent_tuning = True\n"
        "torch._dynamo.config.cache_size_limit = 32\n"
        "torch._dynamo.config.suppress_errors = True\n"
        "torch._dynamo.reset()\n"
        "x = torch.zeros(4, 3)\n"
        "torch._dynamo.mark_dynamic(x, 0)\n"
        "torch._dynamo.maybe_mark_dynamic(x, 1)\n"
        "torch._dynamo.mark_static(x)\n"
        "torch._dynamo.graph_break()\n"
        "assert not torch._dynamo.is_compiling()\n"
        "print(torch._dynamo.config.recompile_limit, config.triton.unique_kernel_names)\n"
    )
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["32", "True"]


def test_mark_dynamic_checks_its_arguments():
    x = descent.zeros(2, 3)
    with pytest.raises(IndexError, match="out of range"):
        descent._dynamo.mark_dynamic(x, 2)
    with pytest.raises(TypeError, match="expected a Tensor"):
        descent._dynamo.mark_dynamic([1, 2], 0)


def _step_fn():
    model = nn.Linear(3, 2)

    def step(x):
        with descent.no_grad():
            return model(x) * 2

    return step


def test_recompile_limit_sets_the_default_cache_size():
    with descent._dynamo.config.patch(cache_size_limit=2):
        f = descent.compile(_step_fn())
    assert f.cache_size == 2
    for n in (1, 2, 3, 4):
        f(descent.ones(n, 3))
    assert len(f._cache) == 2  # least recently used evicted
    assert descent.compile(_step_fn()).cache_size == 8
    assert descent.compile(_step_fn(), cache_size=5).cache_size == 5


def test_config_disable_returns_the_function_itself():
    fn = _step_fn()
    with descent._dynamo.config.patch(disable=True):
        assert descent.compile(fn) is fn
    assert descent.compile(fn) is not fn


def test_error_on_recompile_raises_on_a_new_signature_only():
    f = descent.compile(_step_fn())
    with descent._dynamo.config.patch(error_on_recompile=True):
        a = f(descent.ones(2, 3))  # the first signature records
        b = f(descent.ones(2, 3))
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        with pytest.raises(descent._dynamo.exc.RecompileError, match="error_on_recompile"):
            f(descent.ones(5, 3))
    f(descent.ones(5, 3))  # allowed again once unset
    assert issubclass(descent._dynamo.exc.RecompileError, RuntimeError)
