"""`torch.backends.cpu`: `get_cpu_capability()` names the widest vector instruction set this CPU
offers that NumPy's kernels use, in PyTorch's words: 'AVX512', 'AVX2', 'VSX', 'ZVECTOR',
'SVE256' or 'DEFAULT' (from NumPy's detected CPU features)."""

from __future__ import annotations

__all__ = ["get_cpu_capability"]


def get_cpu_capability() -> str:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats  # noqa: PLC0415
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as feats  # noqa: PLC0415
    if feats.get("AVX512F") and feats.get("AVX512BW") and feats.get("AVX512VL"):
        return "AVX512"
    if feats.get("AVX2") and feats.get("FMA3"):
        return "AVX2"
    if feats.get("VSX"):
        return "VSX"
    if feats.get("VX"):
        return "ZVECTOR"
    if feats.get("SVE"):
        return "SVE256"
    return "DEFAULT"
