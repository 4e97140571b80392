"""`torch.ops.aten` (and PyTorch's other built-in op namespaces): op names as comparable objects.

    descent.ops.aten.mm.default            # <OpOverload(op='aten.mm', overload='default')>
    descent.ops.aten.add.Tensor            # an overload by name
    descent.ops._c10d_functional.reduce_scatter_tensor.default

descent has no ATen dispatcher: its ops are the `autograd.Function` classes of `descent.ops`,
fused differently from ATen's (one `Linear` op where PyTorch runs `addmm`). Tools that are
written against ATen names (a selective-checkpoint policy that saves `aten.mm.default`, a
flop counter keyed by `aten.mm`) need the ATen op each descent op corresponds to. This module
gives the names as singleton objects (so `op in [aten.mm.default]` and `op == ...` work as in
PyTorch); `descent.utils.checkpoint_selective.aten_op_of` maps a descent op to one (with
`descent.utils.flop_counter`'s rule for the matrix products). An aten overload called with
arguments runs descent's function of the same name (`aten.mm.default(a, b)` is
`descent.mm(a, b)`).

Any attribute name gives a packet (descent does not hold ATen's list of operators); unknown
names fail only when called. The namespaces besides `aten` (`prims`, `_c10d_functional`, ...)
exist so that code naming their ops in a policy list (torchtitan's
`_c10d_functional.reduce_scatter_tensor`) runs; descent never runs those ops.
"""

from __future__ import annotations

import sys

__all__ = ["NAMESPACES", "OpNamespace", "OpOverload", "OpOverloadPacket", "namespace", "packet"]

# PyTorch's built-in namespaces (torch.ops.<ns>) that descent names
NAMESPACES = ("aten", "prim", "prims", "_c10d_functional", "c10d_functional",
              "_c10d_functional_autograd", "_quantized", "quantized", "profiler")  # fmt: skip
_PACKETS: dict = {}
_SPACES: dict = {}


class OpOverload:
    """One overload of an op (`torch.ops.aten.mm.default`): compared by identity."""

    __slots__ = ("_name", "_ns", "_overload", "overloadpacket")

    def __init__(self, packet: OpOverloadPacket, overload: str) -> None:
        self.overloadpacket = packet
        self._ns, self._name = packet._ns, packet._name
        self._overload = overload

    def name(self) -> str:
        """The schema name, as PyTorch's: 'aten::add.Tensor' ('aten::mm' for default)."""
        base = f"{self._ns}::{self._name}"
        return base if self._overload == "default" else f"{base}.{self._overload}"

    def __repr__(self) -> str:
        return f"<OpOverload(op='{self._ns}.{self._name}', overload='{self._overload}')>"

    def __str__(self) -> str:
        return f"{self._ns}.{self._name}.{self._overload}"

    def __call__(self, *args, **kwargs):
        descent = sys.modules["descent"]  # loaded: this module is reached through it
        fn = getattr(descent, self._name, None) if self._ns == "aten" else None
        if fn is None or not callable(fn):
            raise NotImplementedError(f"{self}: descent has no function '{self._name}' to run")
        return fn(*args, **kwargs)


class OpOverloadPacket:
    """An op with its overloads (`torch.ops.aten.mm`); `.default`, `.Tensor`, ..."""

    __slots__ = ("_name", "_ns", "_overloads")

    def __init__(self, ns: str, name: str) -> None:
        self._ns, self._name = ns, name
        self._overloads: dict = {}

    def __getattr__(self, overload: str) -> OpOverload:
        if overload.startswith("__"):
            raise AttributeError(overload)
        op = self._overloads.get(overload)
        if op is None:
            op = self._overloads[overload] = OpOverload(self, overload)
        return op

    def __repr__(self) -> str:
        return f"<OpOverloadPacket(op='{self._ns}.{self._name}')>"

    # descent.utils.flop_counter keys its counts by name strings (OpKey, "aten.mm"): a packet
    # finds its entry (`counts["Global"][torch.ops.aten.mm]`, as with PyTorch's counter), while
    # it stays unequal to a plain string, as PyTorch's packet is.
    def __eq__(self, other) -> bool:
        if type(other).__name__ == "OpKey":
            return str.__eq__(other, f"{self._ns}.{self._name}")
        return other is self

    def __hash__(self) -> int:
        return hash(f"{self._ns}.{self._name}")

    def __str__(self) -> str:
        return f"{self._ns}.{self._name}"

    def __call__(self, *args, **kwargs):
        return self.default(*args, **kwargs)


class OpNamespace:
    """`torch.ops.<ns>`: any attribute is the singleton packet of that op name."""

    def __init__(self, ns: str) -> None:
        self._ns = ns

    def __getattr__(self, name: str) -> OpOverloadPacket:
        if name.startswith("__"):
            raise AttributeError(f"'_OpNamespace' '{self._ns}' object has no attribute {name!r}")
        return packet(name, self._ns)

    def __repr__(self) -> str:
        return f"_OpNamespace('{self._ns}')"


def packet(name: str, ns: str = "aten") -> OpOverloadPacket:
    """The singleton packet `<ns>.<name>`."""
    key = (ns, name)
    p = _PACKETS.get(key)
    if p is None:
        p = _PACKETS[key] = OpOverloadPacket(ns, name)
    return p


def namespace(ns: str) -> OpNamespace:
    """The singleton namespace object `torch.ops.<ns>`."""
    space = _SPACES.get(ns)
    if space is None:
        space = _SPACES[ns] = OpNamespace(ns)
    return space
