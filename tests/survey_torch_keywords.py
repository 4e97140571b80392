"""Hand-run survey (not collected by pytest): which of PyTorch's documented parameter names
descent's functions do not accept.

    .venv/bin/python tests/survey_torch_keywords.py

For every Tensor method, top-level function and nn.functional function that both libraries
have, it compares torch's parameter names (the first line of the docstring, or
inspect.signature where torch has a Python signature) with descent's (inspect.signature) and
prints the names descent lacks. Some of torch's documented names are refused by torch's own
parser (`torch.true_divide(dividend=)`, `x.div(value=)`, `x.fmod(divisor=)`): check a reported
name against torch before adding it (tests/test_torch_keywords.py calls each one in both).
`out=`, layouts, `memory_format` and the like are skipped.
"""

from __future__ import annotations

import inspect
import re
import warnings

import torch
import torch.nn.functional as torch_f

import descent

SKIP = {"out", "memory_format", "layout", "pin_memory", "generator", "names", "requires_grad",
        "device", "dtype", "non_blocking", "copy", "sparse_grad", "async", "self"}  # fmt: skip


def torch_names(fn, name: str) -> list[str] | None:
    """torch's parameter names for fn: its Python signature, else its docstring's first line."""
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        pass
    doc = getattr(fn, "__doc__", None)
    if not doc:
        return None
    m = re.match(rf"{re.escape(name)}\((.*?)\)\s*(->|$)", doc.strip().splitlines()[0])
    if not m:
        return None
    names = [p.split("=")[0].split(":")[0].strip() for p in m.group(1).split(",")]
    return [n for n in names if n.isidentifier()]


def survey(label: str, torch_ns, descent_ns, method: bool = False) -> int:
    checked = 0
    for name in sorted(dir(torch_ns)):
        if name.startswith("_"):
            continue
        tf, df = getattr(torch_ns, name, None), getattr(descent_ns, name, None)
        if not callable(tf) or not callable(df) or isinstance(df, type):
            continue
        tnames = torch_names(tf, name)
        try:
            params = inspect.signature(df).parameters
        except (TypeError, ValueError):
            continue
        if tnames is None or any(p.kind == p.VAR_KEYWORD for p in params.values()):
            continue
        checked += 1
        if tnames in (["args", "kwargs"], ["args"]):  # a dispatcher without names
            continue
        missing = [n for n in tnames if n not in params and n not in SKIP]
        if method:
            missing = [n for n in missing if n != "input"]
        if missing:
            print(f"{label}.{name}: torch has {missing}; descent {list(params)}")
    return checked


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    n = survey("Tensor", torch.Tensor, descent.Tensor, method=True)
    n += survey("torch", torch, descent)
    n += survey("F", torch_f, descent.nn.functional)
    print(f"{n} functions compared")
