"""`torch._dynamo.config`: the settings scripts write before compiling (PyTorch's names and
defaults). descent's compile reads three of them:

- `recompile_limit` (alias `cache_size_limit`): how many programs (input signatures) a compiled
  function keeps when `descent.compile` is not given `cache_size` (least recently used evicted;
  PyTorch instead falls back to eager past the limit).
- `disable`: `descent.compile` returns the function itself, uncompiled.
- `error_on_recompile`: a compiled function that already holds a program raises
  `descent._dynamo.exc.RecompileError` instead of recording a new input signature.

The others are stored and read back but change nothing: they tune TorchDynamo's tracer (guards,
dynamic shapes, graph breaks), which descent does not have (docs/compile.md, "torch._dynamo").
An unknown name raises AttributeError, as in PyTorch.
"""

from descent._config_module import install_config_module

install_config_module(__name__, {
    "recompile_limit": 8,
    "accumulated_recompile_limit": 256,
    "disable": False,
    "error_on_recompile": False,
    "suppress_errors": False,
    "verbose": False,
    "compiled_autograd": False,
    "capture_scalar_outputs": False,
    "capture_dynamic_output_shape_ops": False,
    "optimize_ddp": True,
    "automatic_dynamic_shapes": True,
    "assume_static_by_default": True,
    "specialize_int": False,
    "specialize_float": False,
    "force_parameter_static_shapes": True,
    "force_nn_module_property_static_shapes": True,
    "guard_nn_modules": True,
    "allow_unspec_int_on_nn_module": False,
    "skip_nnmodule_hook_guards": True,
    "use_lazy_graph_module": True,
    "replay_record_enabled": False,
    "allow_rnn": False,
    "raise_on_ctx_manager_usage": True,
    "rewrite_assert_with_torch_assert": True,
}, aliases={
    "cache_size_limit": "recompile_limit",
    "accumulated_cache_size_limit": "accumulated_recompile_limit",
})
