"""torch.__future__: two switches for how `nn.Module` converts and loads its tensors.

- `set_overwrite_module_params_on_conversion(True)`: `module.to(...)`/`.double()`/... give the
  module new Parameter objects instead of changing the existing ones in place.
- `set_swap_module_params_on_conversion(True)`: conversions and `load_state_dict` keep each
  Parameter object and swap its contents (`descent.utils.swap_tensors`); `load_state_dict`
  builds the new contents with `Tensor.module_load(value, assign)`, which a tensor subclass
  may override.

Both are off by default, as in PyTorch. descent's conversions change tensors in place either way;
`load_state_dict` honours the swap switch.
"""

_overwrite_module_params_on_conversion: bool = False
_swap_module_params_on_conversion: bool = False


def set_overwrite_module_params_on_conversion(value: bool) -> None:
    global _overwrite_module_params_on_conversion
    _overwrite_module_params_on_conversion = value


def get_overwrite_module_params_on_conversion() -> bool:
    return _overwrite_module_params_on_conversion


def set_swap_module_params_on_conversion(value: bool) -> None:
    global _swap_module_params_on_conversion
    _swap_module_params_on_conversion = value


def get_swap_module_params_on_conversion() -> bool:
    return _swap_module_params_on_conversion
