"""Specs of the ops defined by descent/ops/gaps_math.py and gaps_math_inplace.py
(docs/torch_gaps_math.md): Frexp, Nextafter and ZeroGradient."""

from __future__ import annotations

import math

import numpy as np
import torch

import descent as ds

from . import Spec

SPECS = [
    Spec(
        name="frexp_mantissa",
        fn=lambda a: ds.frexp(a).mantissa,
        ref=lambda a: np.frexp(a)[0],
        torch_fn=lambda a: torch.frexp(a).mantissa,
        shapes=[(3, 4)],
        domain=(-9.0, 9.0),
        covers=("Frexp",),
    ),
    Spec(
        name="nextafter",
        fn=lambda a, b: ds.nextafter(a, b),
        ref=np.nextafter,
        torch_fn=lambda a, b: torch.nextafter(a, b),
        shapes=[(3, 4), (3, 4)],
        covers=("Nextafter",),
        broadcast=True,
    ),
    Spec(
        name="angle_real",
        fn=lambda a: ds.angle(a),
        ref=lambda a: np.where(a < 0, math.pi, 0.0),
        torch_fn=lambda a: torch.angle(a),
        shapes=[(3, 4)],
        covers=("ZeroGradient",),
    ),
]
