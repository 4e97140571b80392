"""`torch.backends.cuda`: TF32 and reduced-precision switches (recorded; descent's CuPy matmuls
always run in the tensor's own precision), the scaled-dot-product-attention kernel switches and
`is_built`."""

from __future__ import annotations

import contextlib as _contextlib
import warnings as _warnings

from .. import backend as _backend

__all__ = [
    "cufft_plan_cache",
    "enable_flash_sdp",
    "enable_math_sdp",
    "enable_mem_efficient_sdp",
    "flash_sdp_enabled",
    "is_built",
    "math_sdp_enabled",
    "matmul",
    "mem_efficient_sdp_enabled",
    "sdp_kernel",
]


class _MatmulFlags:
    """`matmul.allow_tf32` and friends: plain attributes a script may set and read back."""

    def __init__(self) -> None:
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    def __repr__(self) -> str:
        return f"<descent.backends.cuda.matmul allow_tf32={self.allow_tf32}>"


matmul = _MatmulFlags()
cufft_plan_cache = None  # descent keeps no FFT plans

# descent has one attention implementation (descent.nn.functional.scaled_dot_product_attention,
# fused where a kernel exists); the switches are recorded for scripts that set them.
_sdp = {"flash": True, "mem_efficient": True, "math": True}


def is_built() -> bool:
    """True when descent can use a CUDA GPU (CuPy is installed and sees one)."""
    return _backend.cuda_available()


def enable_flash_sdp(enabled: bool) -> None:
    _sdp["flash"] = bool(enabled)


def enable_mem_efficient_sdp(enabled: bool) -> None:
    _sdp["mem_efficient"] = bool(enabled)


def enable_math_sdp(enabled: bool) -> None:
    _sdp["math"] = bool(enabled)


def flash_sdp_enabled() -> bool:
    return _sdp["flash"]


def mem_efficient_sdp_enabled() -> bool:
    return _sdp["mem_efficient"]


def math_sdp_enabled() -> bool:
    return _sdp["math"]


@_contextlib.contextmanager
def sdp_kernel(
    enable_flash: bool = True,
    enable_math: bool = True,
    enable_mem_efficient: bool = True,
    enable_cudnn: bool = True,
):
    """`with torch.backends.cuda.sdp_kernel(enable_flash=False, ...)`: the deprecated switch
    block that LLM repositories still wrap attention in. It sets the three recorded switches
    for the block and restores them after (descent's attention ignores them, as PyTorch's CPU
    attention does); a FutureWarning as in PyTorch."""
    _warnings.warn(
        "`torch.backends.cuda.sdp_kernel()` is deprecated. In the future, this context manager "
        "will be removed. Please see `torch.nn.attention.sdpa_kernel()` for the new context "
        "manager, with updated signature.",
        FutureWarning,
        stacklevel=3,
    )
    saved = dict(_sdp)
    _sdp.update(flash=bool(enable_flash), math=bool(enable_math),
                mem_efficient=bool(enable_mem_efficient))  # fmt: skip
    try:
        yield
    finally:
        _sdp.update(saved)
