"""torch.torch_version: `torch.__version__` is a `TorchVersion`, a str that also compares as a
version number against strings, tuples and `packaging.version.Version` objects.

descent's `__version__` is "2.13.0+descent.0.1.0": the PyTorch API level descent follows (2.13),
with descent's own release in the PEP 440 local label, where PyTorch's CPU wheel has "+cpu".
Programs gate features on `torch.__version__ >= "2.0"` or `(2, 1)`; with descent's own "0.1.0"
they took their pre-PyTorch-1.0 paths. `descent.version.descent_version` is descent's release
alone (the package's version).

The comparison follows PEP 440 as the `packaging` library orders versions (release numbers
without trailing zeros, then pre-release, post-release, dev release, local label); a string
that is not a version falls back to plain string comparison, as PyTorch's class does. `!=` is
str's, as in PyTorch (its class overrides only <, <=, ==, >=, >).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["TorchVersion"]

_PEP440 = re.compile(
    r"""^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?:-(?P<post_n1>[0-9]+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_PRE = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "pre": "rc", "preview": "rc",
        "rc": "rc"}  # fmt: skip


class InvalidVersion(ValueError):
    """Not a PEP 440 version string (packaging's exception of the same name)."""


def _key(text: str) -> tuple:
    """packaging.version.Version's sort key, with ranks in place of its infinities."""
    m = _PEP440.match(text)
    if m is None:
        raise InvalidVersion(f"Invalid version: {text!r}")
    release = [int(p) for p in m["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    post = m["post_n1"] or m["post_n2"] or ("0" if m["post_l"] else None)
    if m["pre_l"]:
        pre: tuple = (1, _PRE[m["pre_l"].lower()], int(m["pre_n"] or 0))
    elif post is None and m["dev_l"]:
        pre = (0,)  # 1.0.dev0 sorts before 1.0a0
    else:
        pre = (2,)  # a final release sorts after its pre-releases
    post_k = (0,) if post is None else (1, int(post))
    dev_k = (1,) if not m["dev_l"] else (0, int(m["dev_n"] or 0))
    if m["local"] is None:
        local: tuple = (0,)
    else:  # numeric segments sort after alphanumeric ones
        segs = re.split(r"[-_.]", m["local"].lower())
        local = (1, tuple((1, int(s), "") if s.isdigit() else (0, 0, s) for s in segs))
    return (int(m["epoch"] or 0), tuple(release), pre, post_k, dev_k, local)


def _other_key(other: Any) -> tuple:
    if isinstance(other, str):
        return _key(other)
    if isinstance(other, Iterable):  # (2, 1) means "2.1"
        return _key(".".join(str(item) for item in other))
    if hasattr(other, "release") and hasattr(other, "public"):  # packaging's Version
        return _key(str(other))
    raise InvalidVersion(other)


class TorchVersion(str):
    """A version string that compares as a version: `v >= "2.0"`, `v > (2, 1)`, `v < Version()`."""

    __slots__ = ()

    def _cmp(self, other: Any, method: str) -> bool:
        try:
            mine, theirs = _key(self), _other_key(other)
        except InvalidVersion:
            return getattr(str, method)(self, other)  # PyTorch's fallback: str comparison
        return getattr(mine, method)(theirs)

    def __lt__(self, other: Any) -> bool:
        return self._cmp(other, "__lt__")

    def __le__(self, other: Any) -> bool:
        return self._cmp(other, "__le__")

    def __gt__(self, other: Any) -> bool:
        return self._cmp(other, "__gt__")

    def __ge__(self, other: Any) -> bool:
        return self._cmp(other, "__ge__")

    def __eq__(self, other: Any) -> bool:
        return self._cmp(other, "__eq__")

    __hash__ = str.__hash__
