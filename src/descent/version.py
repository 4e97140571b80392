"""torch.version: what build this is. Scripts print `torch.version.cuda` in their environment
report, or branch on it being None (a CPU-only build, as descent's NumPy backend is; CuPy's
CUDA version is `descent.cuda`'s business, not the build's).

`__version__` is PyTorch's: the API level descent follows, "2.13.0+descent.0.1.0" (a TorchVersion,
docs/pytorch.md); `descent_version` is descent's own release, the package's version."""

from __future__ import annotations

from . import __version__ as _torch_version

__all__ = ["__version__", "descent_version", "cuda", "hip", "git_version", "debug"]

cuda = None  # no CUDA build: PyTorch's CPU wheels report None too
hip = None
git_version = "unknown"
debug = False
__version__ = str(_torch_version)  # a plain str here, as in PyTorch
descent_version = __version__.partition("+descent.")[2]  # "0.1.0", pyproject's version
