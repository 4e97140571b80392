"""`device`, as torch.device: where a tensor's values live ('cpu' or 'cuda:N').

A `device` is a `str` (its canonical name), so every function that takes a device string takes
one, and `x.device == 'cpu'` holds. Which array library serves a device is `backend.py`'s
business; this module only parses and names devices, and imports nothing of descent. A device
is also a context manager (`with device('cuda'):`), through the default-device switch that
`descent.creation` registers here.
"""

from __future__ import annotations


class device(str):  # lower case: PyTorch's name
    """A device, as torch.device: `device('cpu')`, `device('cuda')`, `device('cuda', 1)`,
    `device('cuda:1')`, `device('meta')` (shapes without data, docs/meta_device.md), with
    `.type` ('cpu', 'cuda' or 'meta') and `.index` (None or an int).

    It is a `str` (its canonical name), so it is accepted everywhere a device string is and
    compares equal to one (`x.device == 'cpu'`).
    """

    __slots__ = ()

    def __new__(cls, type_or_name="cpu", index: int | None = None, *, type: str | None = None):  # noqa: A002
        if type is not None:  # torch.device(type='cpu'), as torch's repr (and fx's code) writes it
            type_or_name = type
        name = str(type_or_name).lower()
        if isinstance(type_or_name, device) and index is None:
            return type_or_name
        if index is not None:
            if ":" in name:
                raise ValueError(f"device(): {name!r} already has an index; pass it once")
            name = f"{name}:{int(index)}"
        kind, _, idx = name.partition(":")
        if kind == "gpu":
            kind = "cuda"
        if kind not in ("cpu", "cuda", "meta") or (idx and not idx.isdigit()):
            raise RuntimeError(
                f"device(): expected 'cpu', 'cuda', 'cuda:N' or 'meta', got {type_or_name!r} "
                "(descent runs on the CPU through NumPy and on NVIDIA GPUs through CuPy; "
                "'meta' tensors have a shape and a dtype but no data)"
            )
        return str.__new__(cls, f"{kind}:{idx}" if idx else kind)

    @property
    def type(self) -> str:
        return str.__str__(self).partition(":")[0]  # a plain str (partition may return self)

    @property
    def index(self) -> int | None:
        idx = str.__str__(self).partition(":")[2]
        return int(idx) if idx else None

    def __enter__(self) -> device:
        """`with device('cuda'):` makes new tensors go to this device, as set_default_device
        does, until the block ends (then the previous default is back)."""
        get, set_default = _default_device_switch
        _entered.append(get())
        set_default(self)
        return self

    def __exit__(self, *exc) -> None:
        _default_device_switch[1](_entered.pop())

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


# `with device(...)` needs the creation layer's default device, which this bottom module may not
# import: descent.creation hands over its (get, set) pair here when it is imported.
_default_device_switch: tuple = (None, None)
_entered: list = []  # the defaults that the open `with device(...)` blocks will restore


def register_default_device_switch(get, set_default) -> None:
    """Called once by descent.creation: how to read and set the default device."""
    global _default_device_switch
    _default_device_switch = (get, set_default)


# Made once: `Tensor.device` returns it for every NumPy-backed tensor (read on every device
# check, so it must not build a new object each time).
CPU = device("cpu")
META = device("meta")
