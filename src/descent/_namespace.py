"""Namespace hygiene: a package's public names are torch's (tests/test_namespace_hygiene_s13.py).

A package that imports its implementation files (`from . import activation`, or
`from .tensor import SparseTensor`, which loads `.tensor` too) gets each file as an attribute
(`descent.nn.activation`) that torch's namespace lacks. `hide_submodules(globals())` at the end of
the package's `__init__` drops those attributes; the files stay importable by path
(`from descent.nn.activation import ReLU`, `import descent.sparse.tensor`), since Python finds a
loaded submodule in `sys.modules` when its attribute is missing.
"""

from __future__ import annotations

import types as _types


def hide_submodules(namespace: dict, keep: tuple[str, ...] = ()) -> None:
    """Delete the loaded submodules of the package whose globals are `namespace` (but `keep`)."""
    package = namespace["__name__"]
    for name, value in list(namespace.items()):
        if (isinstance(value, _types.ModuleType) and value.__name__ == f"{package}.{name}"
                and name not in keep and not name.startswith("_")):  # fmt: skip
            del namespace[name]
