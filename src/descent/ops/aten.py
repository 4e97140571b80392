"""`torch.ops.aten`: names for PyTorch's ATen operators, as objects a policy can compare.

    descent.ops.aten.mm.default            # <OpOverload(op='aten.mm', overload='default')>
    descent.ops.aten.add.Tensor            # an overload by name

descent has no ATen dispatcher: its ops are the `autograd.Function` classes of `descent.ops`,
fused differently from ATen's (one `Linear` op where PyTorch runs `addmm`). Tools that are
written against ATen names (a selective-checkpoint policy that saves `aten.mm.default`, a
flop counter keyed by `aten.mm`) need the ATen op each descent op corresponds to. This module
gives the names as singleton objects (so `op in [aten.mm.default]` and `op == ...` work as in
PyTorch); `descent.utils.checkpoint_selective.aten_op_of` maps a descent op to one (with
`descent.utils.flop_counter`'s rule for the matrix products). An overload called with arguments runs
descent's function of the same name (`aten.mm.default(a, b)` is `descent.mm(a, b)`).

Any attribute name gives a packet (descent does not hold ATen's list of operators); unknown
names fail only when called.
"""

from __future__ import annotations

import sys

__all__ = ["OpOverload", "OpOverloadPacket", "packet"]

_PACKETS: dict = {}


class OpOverload:
    """One overload of an ATen op (`torch.ops.aten.mm.default`): compared by identity."""

    __slots__ = ("_name", "_overload", "overloadpacket")

    def __init__(self, packet: OpOverloadPacket, overload: str) -> None:
        self.overloadpacket = packet
        self._name = packet._name
        self._overload = overload

    def name(self) -> str:
        """The schema name, as PyTorch's: 'aten::add.Tensor' ('aten::mm' for default)."""
        base = f"aten::{self._name}"
        return base if self._overload == "default" else f"{base}.{self._overload}"

    def __repr__(self) -> str:
        return f"<OpOverload(op='aten.{self._name}', overload='{self._overload}')>"

    def __str__(self) -> str:
        return f"aten.{self._name}.{self._overload}"

    def __call__(self, *args, **kwargs):
        descent = sys.modules["descent"]  # loaded: this module is reached through it
        fn = getattr(descent, self._name.lstrip("_"), None)
        if fn is None or not callable(fn):
            raise NotImplementedError(f"{self}: descent has no function '{self._name}' to run")
        return fn(*args, **kwargs)


class OpOverloadPacket:
    """An ATen op with its overloads (`torch.ops.aten.mm`); `.default`, `.Tensor`, ..."""

    __slots__ = ("_name", "_overloads")

    def __init__(self, name: str) -> None:
        self._name = name
        self._overloads: dict = {}

    def __getattr__(self, overload: str) -> OpOverload:
        if overload.startswith("__"):
            raise AttributeError(overload)
        op = self._overloads.get(overload)
        if op is None:
            op = self._overloads[overload] = OpOverload(self, overload)
        return op

    def __repr__(self) -> str:
        return f"<OpOverloadPacket(op='aten.{self._name}')>"

    def __str__(self) -> str:
        return f"aten.{self._name}"

    def __call__(self, *args, **kwargs):
        return self.default(*args, **kwargs)


def packet(name: str) -> OpOverloadPacket:
    """The singleton packet `aten.<name>`."""
    p = _PACKETS.get(name)
    if p is None:
        p = _PACKETS[name] = OpOverloadPacket(name)
    return p


def __getattr__(name: str) -> OpOverloadPacket:
    if name.startswith("__"):
        raise AttributeError(f"module 'descent.ops.aten' has no attribute {name!r}")
    return packet(name)
