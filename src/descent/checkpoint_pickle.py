"""A restricted pickle interpreter: reads the pickles inside torch.save files without `pickle`.

Python's unpickler runs whatever a file names (`GLOBAL posix system` + `REDUCE` is a shell
command), so descent never imports or calls `pickle.load`/`pickle.Unpickler`. This module is a
small loop over the opcodes that protocol 2 pickles and torch's writer use. Everything that could
run code goes through two hooks supplied by the caller (checkpoint_torch.py):

* `find_global(module, name)` turns GLOBAL / STACK_GLOBAL into one of descent's own builders
  from a fixed allow-list, or raises; nothing is imported and no attribute is looked up by name;
* REDUCE / NEWOBJ call only a `Builder` (an object made by that allow-list): a function, class
  or method that the file names is never called, because the file cannot name one;
* BUILD calls `build(instance, state)`, which decides what state each type may receive;
* BINPERSID calls `persistent_load(pid)` (torch's storages).

There is no recursion (nesting depth is bounded only by memory, as with lists), every read
checks the bytes left, and an unknown opcode stops the load with its byte and offset.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from .checkpoint_format import CheckpointError

# A LONG4 / BINUNICODE8 / BINBYTES8 longer than this is a crafted file, not a checkpoint's
# pickle (real ones keep the tensor data outside, in storage records).
_MAX_ITEM = 1 << 31


class Builder:
    """An allow-listed global: `fn` is descent's own function that builds the value.

    `name` is the dotted name the file used (for messages); `newobj` says whether the pickle
    may also create it with NEWOBJ (classes) and not only call it with REDUCE.
    """

    __slots__ = ("name", "fn", "newobj", "new")

    def __init__(
        self, name: str, fn: Callable, newobj: bool = False, new: Callable | None = None
    ) -> None:
        # `new`: what NEWOBJ calls when it differs from `fn` (a class's __new__)
        self.name, self.fn, self.newobj, self.new = name, fn, newobj, new

    def __repr__(self) -> str:
        return f"<allowed global {self.name}>"


class _Mark:
    """The MARK opcode's stack marker (a unique object, so no pickled value equals it)."""


_MARK = _Mark()


def _pop_mark(stack: list, where: str) -> list:
    """The items above the topmost MARK, removed together with the MARK."""
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1 :]
            del stack[i:]
            return items
    raise CheckpointError(f"{where}: an opcode needs a MARK and none is on the stack")


def unpickle(
    data: bytes,
    find_global: Callable[[str, str], Any],
    persistent_load: Callable[[Any], Any],
    build: Callable[[Any, Any], None],
    where: str,
    pos: int = 0,
) -> tuple[Any, int]:
    """Interpret one pickle in `data` starting at `pos`: returns (the object, the end offset).

    Raises:
        CheckpointError: a truncated pickle, an unknown opcode, a stack or memo misuse, a
            global outside the allow-list (from `find_global`), a refused BUILD, or any value
            of the wrong kind where an opcode or a hook needs another (a damaged file).
    """
    try:
        return _interpret(data, find_global, persistent_load, build, where, pos)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, struct.error,
            OverflowError) as e:  # fmt: skip
        # a damaged file can put any value anywhere; the hooks check what they rely on, and
        # this keeps what they did not foresee a CheckpointError too
        raise CheckpointError(f"{where} is damaged ({type(e).__name__}: {e})") from None


def _interpret(
    data: bytes,
    find_global: Callable[[str, str], Any],
    persistent_load: Callable[[Any], Any],
    build: Callable[[Any, Any], None],
    where: str,
    pos: int = 0,
) -> tuple[Any, int]:
    """unpickle's loop."""
    mv = memoryview(data)
    n = len(data)
    stack: list = []
    memo: dict[int, Any] = {}

    def take(k: int) -> memoryview:
        nonlocal pos
        if k < 0 or pos + k > n:
            raise CheckpointError(
                f"{where} is truncated: a pickle opcode needs {k} bytes at offset {pos}, "
                f"{n - pos} are left; the file is incomplete or damaged, save it again"
            )
        out = mv[pos : pos + k]
        pos += k
        return out

    def line() -> str:
        nonlocal pos
        end = data.find(b"\n", pos)
        if end < 0:
            raise CheckpointError(f"{where} is truncated inside a GLOBAL opcode at offset {pos}")
        text = bytes(mv[pos:end]).decode("utf-8", "replace")
        pos = end + 1
        return text

    def top(kind: type, op: str) -> Any:
        if not stack or not isinstance(stack[-1], kind) or stack[-1] is _MARK:
            raise CheckpointError(f"{where}: {op} needs a {kind.__name__} on the stack")
        return stack[-1]

    def pop() -> Any:
        if not stack or stack[-1] is _MARK:
            raise CheckpointError(f"{where}: an opcode at offset {pos - 1} pops an empty stack")
        return stack.pop()

    def call(op: str, fn: Any, args: Any, kwargs: dict | None = None) -> Any:
        if not isinstance(fn, Builder) or (op != "REDUCE" and not fn.newobj):
            raise CheckpointError(
                f"{where}: {op} on {type(fn).__name__} {fn!r}; only "
                "allow-listed builders can be called"
            )
        if not isinstance(args, tuple):
            raise CheckpointError(f"{where}: {op} arguments of {fn.name} are not a tuple")
        try:
            make = fn.new if op != "REDUCE" and fn.new is not None else fn.fn
            return make(*args, **(kwargs or {}))
        except CheckpointError:
            raise
        except (
            TypeError,
            ValueError,
            OverflowError,
            KeyError,
            IndexError,
            RuntimeError,
            AttributeError,
        ) as e:
            raise CheckpointError(f"{where}: {fn.name}{args!r:.200} failed: {e}") from None

    while True:
        op_pos = pos
        code = take(1)[0]
        if code == 0x80:  # PROTO
            if take(1)[0] > 5:
                raise CheckpointError(f"{where}: pickle protocol above 5 is unknown")
        elif code == 0x95:  # FRAME: an 8-byte length that only helps buffered readers
            take(8)
        elif code == 0x2E:  # STOP
            return pop(), pos
        elif code == 0x63:  # GLOBAL "module\nname\n"
            module = line()
            stack.append(find_global(module, line()))
        elif code == 0x93:  # STACK_GLOBAL
            name, module = pop(), pop()
            if not isinstance(module, str) or not isinstance(name, str):
                raise CheckpointError(f"{where}: STACK_GLOBAL needs two strings")
            stack.append(find_global(module, name))
        elif code in (0x71, 0x72, 0x94):  # BINPUT, LONG_BINPUT, MEMOIZE
            if not stack:
                raise CheckpointError(
                    f"{where}: a memo opcode at offset {op_pos} on an empty stack"
                )
            idx = (
                take(1)[0]
                if code == 0x71
                else struct.unpack("<I", take(4))[0]
                if code == 0x72
                else len(memo)
            )
            memo[idx] = stack[-1]
        elif code in (0x68, 0x6A):  # BINGET, LONG_BINGET
            idx = take(1)[0] if code == 0x68 else struct.unpack("<I", take(4))[0]
            if idx not in memo:
                raise CheckpointError(f"{where}: memo entry {idx} is read before it is written")
            stack.append(memo[idx])
        elif code == 0x28:  # MARK
            stack.append(_MARK)
        elif code == 0x30:  # POP
            pop()
        elif code == 0x31:  # POP_MARK
            _pop_mark(stack, where)
        elif code == 0x32:  # DUP
            stack.append(top(object, "DUP"))
        elif code == 0x7D:  # EMPTY_DICT
            stack.append({})
        elif code == 0x5D:  # EMPTY_LIST
            stack.append([])
        elif code == 0x29:  # EMPTY_TUPLE
            stack.append(())
        elif code == 0x8F:  # EMPTY_SET
            stack.append(set())
        elif code == 0x74:  # TUPLE
            stack.append(tuple(_pop_mark(stack, where)))
        elif code in (0x85, 0x86, 0x87):  # TUPLE1, TUPLE2, TUPLE3
            k = code - 0x84
            items = [pop() for _ in range(k)][::-1]
            stack.append(tuple(items))
        elif code == 0x6C:  # LIST
            stack.append(_pop_mark(stack, where))
        elif code == 0x64:  # DICT
            items = _pop_mark(stack, where)
            stack.append(_pairs({}, items, where))
        elif code == 0x91:  # FROZENSET
            stack.append(_hashable(frozenset, _pop_mark(stack, where), where))
        elif code == 0x73:  # SETITEM
            value, key = pop(), pop()
            _pairs(top(dict, "SETITEM"), [key, value], where)
        elif code == 0x75:  # SETITEMS
            items = _pop_mark(stack, where)
            _pairs(top(dict, "SETITEMS"), items, where)
        elif code == 0x61:  # APPEND
            value = pop()
            top(list, "APPEND").append(value)
        elif code == 0x65:  # APPENDS
            items = _pop_mark(stack, where)
            top(list, "APPENDS").extend(items)
        elif code == 0x90:  # ADDITEMS
            items = _pop_mark(stack, where)
            target = top(set, "ADDITEMS")
            target |= _hashable(set, items, where)
        elif code == 0x4A:  # BININT
            stack.append(struct.unpack("<i", take(4))[0])
        elif code == 0x4B:  # BININT1
            stack.append(take(1)[0])
        elif code == 0x4D:  # BININT2
            stack.append(struct.unpack("<H", take(2))[0])
        elif code in (0x8A, 0x8B):  # LONG1, LONG4: little-endian two's complement
            k = take(1)[0] if code == 0x8A else struct.unpack("<i", take(4))[0]
            if code == 0x8B and not 0 <= k <= 1 << 16:
                raise CheckpointError(f"{where}: a LONG4 of {k} bytes is not a checkpoint's")
            stack.append(int.from_bytes(take(k), "little", signed=True))
        elif code == 0x47:  # BINFLOAT (big-endian double)
            stack.append(struct.unpack(">d", take(8))[0])
        elif code in (0x58, 0x8C, 0x8D):  # BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
            k = _length(code, take, {0x58: "<I", 0x8C: "B", 0x8D: "<Q"}, where)
            try:
                stack.append(str(take(k), "utf-8", "surrogatepass"))
            except UnicodeDecodeError as e:
                raise CheckpointError(
                    f"{where}: a string at offset {op_pos} is not UTF-8 ({e}); the file is damaged"
                ) from None
        elif code in (0x55, 0x54, 0x43, 0x42, 0x8E, 0x96):  # (SHORT_)BINSTRING, BINBYTES*
            fmt = {0x55: "B", 0x54: "<i", 0x43: "B", 0x42: "<I", 0x8E: "<Q", 0x96: "<Q"}[code]
            k = _length(code, take, {code: fmt}, where)
            raw = bytes(take(k))
            # a Python 2 str (BINSTRING) stays bytes, as torch.load's encoding="bytes" keeps it
            stack.append(bytearray(raw) if code == 0x96 else raw)
        elif code == 0x4E:  # NONE
            stack.append(None)
        elif code == 0x88:  # NEWTRUE
            stack.append(True)
        elif code == 0x89:  # NEWFALSE
            stack.append(False)
        elif code == 0x52:  # REDUCE: callable(*args)
            args = pop()
            fn = pop()
            stack.append(call("REDUCE", fn, args))
        elif code == 0x81:  # NEWOBJ: cls.__new__(cls, *args)
            args = pop()
            cls = pop()
            stack.append(call("NEWOBJ", cls, args))
        elif code == 0x92:  # NEWOBJ_EX
            kwargs, args = pop(), pop()
            cls = pop()
            if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
                raise CheckpointError(f"{where}: NEWOBJ_EX keywords are not a dict of strings")
            stack.append(call("NEWOBJ_EX", cls, args, kwargs))
        elif code == 0x62:  # BUILD: inst.__setstate__(state), as the caller allows
            state = pop()
            build(top(object, "BUILD"), state)
        elif code == 0x51:  # BINPERSID: torch's storages
            stack.append(persistent_load(pop()))
        else:
            raise CheckpointError(
                f"{where}: unknown or unsupported pickle opcode {bytes([code])!r} (0x{code:02x}) "
                f"at offset {op_pos}; descent reads the binary opcodes torch.save writes "
                "(protocols 2-5): save the file again with torch.save's defaults"
            )


def _length(code: int, take: Callable, formats: dict, where: str) -> int:
    fmt = formats[code]
    k = struct.unpack(fmt, take(struct.calcsize(fmt)))[0]
    if not 0 <= k <= _MAX_ITEM:
        raise CheckpointError(f"{where}: a string or bytes item of {k} bytes is refused")
    return k


def _pairs(target: dict, items: list, where: str) -> dict:
    """target[k] = v for the pairs k0, v0, k1, v1, ... (unhashable keys: a clean error)."""
    if len(items) % 2:
        raise CheckpointError(f"{where}: SETITEMS has an odd number of items")
    try:
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]
    except TypeError as e:
        raise CheckpointError(f"{where}: a dict key is not hashable ({e})") from None
    return target


def _hashable(kind: type, items: list, where: str):
    try:
        return kind(items)
    except TypeError as e:
        raise CheckpointError(f"{where}: a set item is not hashable ({e})") from None
