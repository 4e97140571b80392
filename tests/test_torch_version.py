"""descent.__version__ is PyTorch's kind of version: "2.13.0+descent.<release>", a TorchVersion
that compares like torch's against strings, tuples and packaging Versions (docs/pytorch.md)."""

from __future__ import annotations

import importlib.metadata
import json
import operator

import pytest

import descent
import descent.version
from descent.torch_version import TorchVersion

torch = pytest.importorskip("torch")
from torch.torch_version import TorchVersion as TorchTorchVersion  # noqa: E402

CANDIDATES = ["2.13", "2.13.0", "2.13.1", "2.14.0a0", "2.13.0rc1", "2.13.0.post1",
              "2.13.0.dev20260101", "2.13.0+cpu", "2.13.0+descent.0.1.0", "2.13.0+descent.0.2",
              "2.13.0+descent.x", "1.10.0a", "1.10.0a0", "1.9", "parrot", "2!1.0", "v2.13",
              "2.13.0-1", "1.0.dev0", "1.0a1.dev2", "1.0.post1.dev3"]  # fmt: skip
OTHERS = [*CANDIDATES, (2, 13), (2, 13, 0), (1, 2, 1), (3,), [2, 14]]
OPS = ["__lt__", "__le__", "__gt__", "__ge__", "__eq__"]


def _outcome(v, method, other):
    try:
        return getattr(v, method)(other)
    except Exception as e:  # noqa: BLE001 - the exception type is compared
        return type(e).__name__


def test_every_comparison_agrees_with_torch():
    diffs = [
        (a, b, m)
        for a in CANDIDATES
        for b in OTHERS
        for m in OPS
        if _outcome(TorchVersion(a), m, b) != _outcome(TorchTorchVersion(a), m, b)
    ]
    assert diffs == []


def test_version_is_pytorchs_api_level_with_descents_release():
    v = descent.__version__
    assert isinstance(v, TorchVersion) and isinstance(v, str)
    assert v == "2.13.0+descent." + descent.version.descent_version
    assert v.split("+")[0] == torch.__version__.split("+")[0]  # the oracle's API level
    assert descent.version.descent_version == importlib.metadata.version("descent")
    # torch.version.__version__ is a plain str in PyTorch too
    assert type(descent.version.__version__) is str and descent.version.__version__ == v


@pytest.mark.parametrize(
    "gate, expected",
    [
        ('v >= "2.0"', True), ("v >= (2, 1)", True), ('v < "2.14"', True),
        ('v >= "1.10.0a"', True), ('v > "2.13.0"', True), ('v >= "2.13.1"', False),
        ("int(v.split('.')[0]) >= 2", True),
        ("tuple(map(int, v.split('+')[0].split('.')[:2])) >= (2, 13)", True),
        ('v != "2.13.0+descent.0.1.0"', False), ("json.dumps(v)", '"2.13.0+descent.0.1.0"'),
        ("hash(v) == hash(str(v))", True), ('{v: 1}["2.13.0+descent.0.1.0"]', 1),
    ],
)  # fmt: skip
def test_version_gates_take_the_modern_path(gate, expected):
    # the release in the label is descent's; compare with what this checkout declares
    v = descent.__version__
    if "0.1.0" in str(expected):
        expected = expected.replace("0.1.0", descent.version.descent_version)
    gate = gate.replace("0.1.0", descent.version.descent_version)
    assert eval(gate, {"v": v, "json": json}) == expected  # noqa: S307 - fixed test strings


def test_packaging_versions_compare():
    # packaging's Version (PyTorch vendors a copy; the same class as packaging.version's)
    from torch._vendor.packaging import version as packaging

    v = descent.__version__
    assert v >= packaging.Version("2.13") and v < packaging.Version("3")
    assert v > packaging.Version("2.13.0")  # a local label sorts after the bare release
    assert operator.lt(TorchVersion("1.0.dev0"), packaging.Version("1.0a0"))


def test_invalid_versions_fall_back_to_string_comparison():
    assert TorchVersion("parrot") > "apple" and TorchVersion("parrot") < "zebra"
    with pytest.raises(TypeError):
        TorchVersion("parrot") < (1, 2)  # noqa: B015 - str < tuple, as in PyTorch
