"""torch.nn.utils.convert_parameters: `parameters_to_vector` and `vector_to_parameters` (the
functions of descent.nn.utils; this path exists for programs that import from it)."""

from __future__ import annotations

from . import parameters_to_vector, vector_to_parameters

__all__ = ["parameters_to_vector", "vector_to_parameters"]
