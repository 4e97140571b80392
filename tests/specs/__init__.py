"""The op-specification table: one `Spec` per differentiable operation.

Every module `tests/specs/<name>.py` defines a module-level list `SPECS: list[Spec]`;
`all_specs()` imports them all and returns the concatenation (names must be unique).
`tests/test_ops_table.py` turns each spec into tests:

* forward values (float64) against the NumPy reference `ref`;
* float64 gradients against central finite differences (`descent.explain.gradcheck`), and
  second-order gradients (`gradgradcheck`) when `second_order` is True;
* float32 forward and gradients against PyTorch (`torch_fn`), when `torch_fn` is given;
* broadcasting over a grid of shapes when `broadcast` is True (binary elementwise ops);
* a guard: every `Function` subclass defined in a `descent.ops.*` module (or in
  `descent.nn.functional`) must be named in the `covers` of some spec.

How to write one (all callables receive one argument per entry of `shapes`)::

    Spec(
        name="mul",                                  # unique, used in test ids
        fn=lambda a, b: a * b,                       # descent Tensors -> descent Tensor
        ref=lambda a, b: a * b,                      # NumPy arrays    -> NumPy array
        torch_fn=lambda a, b: a * b,                 # torch tensors   -> torch tensor
        shapes=[(3, 4), (3, 4)],                     # input shapes
        domain=(-2.0, 2.0),                          # one (lo, hi) for all inputs, or one per input
        covers=("Mul",),                             # Function subclasses this spec exercises
        broadcast=True,                              # also run the broadcasting grid
    )

Non-differentiable arguments (indices, masks, axis numbers) are captured as constants in the
closures, so every listed input is a floating tensor. `grad_inputs` restricts which inputs the
gradient checks differentiate (default: all). Set `torch_fn=None` with `torch_reason` when
PyTorch has no equivalent. `inputs` may replace the uniform sampler for ops that need structured
inputs (e.g. distinct values for max, so that no tie makes the function non-differentiable):
it is called as `inputs(rng, dtype)` and returns a list of NumPy arrays.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Shape = tuple[int, ...]


@dataclass
class Spec:
    """One row of the op table (see the module docstring)."""

    name: str
    fn: Callable
    ref: Callable
    shapes: Sequence[Shape]
    torch_fn: Callable | None = None
    torch_reason: str = ""
    domain: tuple[float, float] | Sequence[tuple[float, float]] = (-2.0, 2.0)
    grad_inputs: Sequence[int] | None = None
    second_order: bool = True
    covers: Sequence[str] = ()
    broadcast: bool = False
    inputs: Callable | None = None
    # float64 forward vs NumPy
    fwd_atol: float = 1e-10
    fwd_rtol: float = 1e-7
    # float64 gradients vs finite differences
    grad_atol: float = 1e-5
    grad_rtol: float = 1e-3
    eps: float = 1e-6  # finite-difference step (larger for ops that round, e.g. casts)
    # float32 vs PyTorch (the tolerances)
    torch_fwd_atol: float = 1e-6
    torch_fwd_rtol: float = 1e-3
    torch_grad_atol: float = 1e-4
    torch_grad_rtol: float = 1e-3
    tags: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.torch_fn is None and not self.torch_reason:
            raise ValueError(f"spec {self.name!r}: give torch_fn or a torch_reason for its absence")
        if not self.covers:
            raise ValueError(f"spec {self.name!r}: name the Function subclasses it covers")

    def domains(self) -> list[tuple[float, float]]:
        d = self.domain
        if len(d) == 2 and all(isinstance(v, (int, float)) for v in d):
            return [tuple(d)] * len(self.shapes)  # type: ignore[list-item]
        return [tuple(x) for x in d]  # type: ignore[union-attr]

    def make_inputs(self, seed: int = 0, dtype=np.float64) -> list[np.ndarray]:
        """Sample one array per input shape, uniformly in its domain (or via `inputs`)."""
        rng = np.random.default_rng(seed)
        if self.inputs is not None:
            return [np.asarray(a, dtype=dtype) for a in self.inputs(rng, dtype)]
        return [
            rng.uniform(lo, hi, size=shape).astype(dtype)
            for shape, (lo, hi) in zip(self.shapes, self.domains(), strict=True)
        ]

    def sample(self, shapes, seed: int = 0, dtype=np.float64) -> list[np.ndarray]:
        """Uniform samples for other shapes (the broadcasting grid), in this spec's domain."""
        rng = np.random.default_rng(seed)
        return [
            rng.uniform(lo, hi, size=shape).astype(dtype)
            for shape, (lo, hi) in zip(shapes, self.domains(), strict=True)
        ]

    def diff_inputs(self) -> list[int]:
        if self.grad_inputs is None:
            return list(range(len(self.shapes)))
        return list(self.grad_inputs)

    def __repr__(self) -> str:  # short ids in pytest output
        return f"Spec({self.name})"


def all_specs() -> list[Spec]:
    """Every SPECS list of every module in this package, in module-name order."""
    specs: list[Spec] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        specs.extend(getattr(mod, "SPECS", []))
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate spec names: {dup}")
    return specs
