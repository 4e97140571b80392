"""Helpers the compat programs import: the same weights and the same report in both runs.

Nothing here imports torch or descent. A program is written once against `torch`; the harness
(test_programs.py) runs it as written and again with only its import lines rewritten to descent,
so these helpers work on whatever the program's model is (duck typing: `named_parameters()`,
`p.shape`) and exchange plain NumPy arrays and JSON.
"""

from __future__ import annotations

import json
import math
import os
import zlib

import numpy as np


def reference_weights(model) -> dict[str, np.ndarray]:
    """One float32 array per named parameter, the same in every library.

    Each array depends only on the parameter's name and shape (the generator is seeded with the
    name's CRC32), so torch and descent models built by the same program get equal weights once
    the program copies them in (`p.copy_(torch.from_numpy(W[name]))`). Matrices are uniform in
    +-1/sqrt(fan_in) as nn.Linear's default; 1-D weights (norm scales) are 1 + 0.1 u; biases 0.1 u.
    """
    out = {}
    for name, p in model.named_parameters():
        shape = tuple(int(s) for s in p.shape)
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        u = rng.uniform(-1.0, 1.0, size=shape)
        if len(shape) >= 2:
            fan_in = math.prod(shape[1:])
            arr = u / math.sqrt(fan_in)
        elif name.endswith("weight"):
            arr = 1.0 + 0.1 * u
        else:
            arr = 0.1 * u
        out[name] = arr.astype(np.float32)
    return out


def report(**results) -> None:
    """Write the program's results (losses, accuracies, tokens) as JSON for the harness.

    Values must be JSON: numbers, strings, bools and lists of them. The harness compares floats to
    the program's tolerance and everything else exactly, except keys that start with `random_`,
    whose values depend on a library's random generator and are compared by shape only.
    """
    path = os.environ.get("COMPAT_OUT")
    text = json.dumps(results)
    if path:
        with open(path, "w") as f:
            f.write(text)
    else:
        print(text)
