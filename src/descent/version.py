"""torch.version: what build this is. Scripts print `torch.version.cuda` in their environment
report, or branch on it being None (a CPU-only build, as descent's NumPy backend is; CuPy's
CUDA version is `descent.cuda`'s business, not the build's)."""

from __future__ import annotations

from . import __version__

__all__ = ["__version__", "cuda", "hip", "git_version", "debug"]

cuda = None  # no CUDA build: PyTorch's CPU wheels report None too
hip = None
git_version = "unknown"
debug = False
