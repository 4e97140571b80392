"""torch.distributed's key-value stores: TCPStore, FileStore, HashStore, PrefixStore.

A store is a small dictionary of bytes that every rank can reach; ranks use it to find each
other (`init_process_group(store=store, rank=r, world_size=n)` rendezvouses through it) and to
exchange small values before any process group exists. The API is torch's: `set(key, value)`,
`get(key)` (waits until the key exists, up to the store's timeout), `add(key, amount)` (an
integer counter; returns the new value), `compare_set(key, expected, desired)`, `wait(keys)`,
`check(keys)`, `delete_key(key)`, `num_keys()`, `set_timeout(timedelta)`. Values are bytes
(a str is encoded as UTF-8), as torch's.

* TCPStore: the master (`is_master=True`, usually rank 0) serves the dictionary on
  host:port from a thread; every store, the master's included, is a client with one socket.
  With `wait_for_workers=True` the master's constructor returns once `world_size` stores
  have connected, as torch's does.
* FileStore: the dictionary lives in a file every rank can read (a local path, or a shared
  file system across machines): each change is appended as one record under an exclusive
  lock (fcntl), and a read replays the records.
* HashStore: a dictionary in this process (threads only). PrefixStore: keys under a prefix.
"""

from __future__ import annotations

import datetime
import os
import pickle
import socket
import struct
import threading
import time
from typing import Any

__all__ = ["DistError", "DistStoreError", "FileStore", "HashStore", "PrefixStore", "Store",
           "TCPStore"]  # fmt: skip


class DistError(RuntimeError):
    """torch.distributed.DistError: an error of the distributed layer (a RuntimeError)."""


class DistStoreError(DistError):
    """torch.distributed.DistStoreError: a store operation timed out or lost its server."""


_DEFAULT_TIMEOUT = datetime.timedelta(seconds=300)  # torch's store timeout
_LEN = struct.Struct("!Q")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return bytes(value)  # torch's binding also takes a list of byte values
    raise TypeError(f"Store: a value must be bytes or str, got {type(value).__name__}")


def _seconds(timeout: Any) -> float:
    return timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)


class _Table:
    """The dictionary and its rules, shared by every store kind (under a lock)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.cond = threading.Condition()

    def apply(self, op: str, key: str, *args: Any) -> Any:
        """Run one store operation that does not wait; returns its result."""
        data = self.data
        if op == "set":
            data[key] = args[0]
        elif op == "add":
            value = int(data.get(key, b"0")) + int(args[0])
            data[key] = str(value).encode()
            return value
        elif op == "compare_set":
            expected, desired = args
            current = data.get(key)
            if (current is None and expected == b"") or current == expected:
                data[key] = desired
                return desired
            return expected if current is None else current
        elif op == "delete_key":
            return data.pop(key, None) is not None
        elif op == "num_keys":
            return len(data)
        elif op == "check":
            return all(k in data for k in args[0])
        elif op == "get_now":
            return data.get(key)
        else:
            raise ValueError(f"Store: unknown operation {op!r}")
        return None


class Store:
    """The key-value API of torch.distributed.Store over `_call` (one operation at a time)."""

    def __init__(self, timeout: Any = _DEFAULT_TIMEOUT) -> None:
        self._timeout = _seconds(timeout)

    @property
    def timeout(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self._timeout)

    def set_timeout(self, timeout: Any) -> None:
        self._timeout = _seconds(timeout)

    def _call(self, op: str, key: str, *args: Any) -> Any:
        raise NotImplementedError

    def set(self, key: str, value: Any) -> None:
        self._call("set", key, _as_bytes(value))

    def get(self, key: str) -> bytes:
        """The value of `key`, waiting up to the store's timeout for it to be set.

        Raises:
            RuntimeError: the key was not set within the timeout (naming it).
        """
        self.wait([key])
        value = self._call("get_now", key)
        if value is None:  # deleted in between
            raise DistStoreError(f"Store.get: key {key!r} was deleted while waiting for it")
        return value

    def add(self, key: str, amount: int) -> int:
        return self._call("add", key, int(amount))

    def compare_set(self, key: str, expected_value: Any, desired_value: Any) -> bytes:
        return self._call("compare_set", key, _as_bytes(expected_value), _as_bytes(desired_value))

    def delete_key(self, key: str) -> bool:
        return self._call("delete_key", key)

    def num_keys(self) -> int:
        return self._call("num_keys", "")

    def check(self, keys: list[str]) -> bool:
        return self._call("check", "", list(keys))

    def wait(self, keys: list[str], timeout: Any = None) -> None:
        """Return once every key exists.

        Raises:
            RuntimeError: the keys were not all set within the timeout (naming them).
        """
        seconds = self._timeout if timeout is None else _seconds(timeout)
        deadline = time.monotonic() + seconds
        delay = 0.001
        while not self.check(keys):
            if time.monotonic() > deadline:
                missing = [k for k in keys if not self.check([k])]
                raise DistStoreError(
                    f"Store.wait: key(s) {missing} not set within {seconds:g} s; did the rank "
                    "that sets them start, with the same store address?"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


class HashStore(Store):
    """A store in this process's memory (threads share it)."""

    def __init__(self) -> None:
        super().__init__()
        self._table = _Table()

    def _call(self, op: str, key: str, *args: Any) -> Any:
        with self._table.cond:
            return self._table.apply(op, key, *args)


class PrefixStore(Store):
    """`store` with every key under `prefix + '/'` (torch's PrefixStore)."""

    def __init__(self, prefix: str, store: Store) -> None:
        super().__init__(store.timeout)
        self.prefix, self.underlying_store = prefix, store

    def _call(self, op: str, key: str, *args: Any) -> Any:
        if op == "check":
            return self.underlying_store._call(op, key, [f"{self.prefix}/{k}" for k in args[0]])
        if op == "num_keys":
            return self.underlying_store._call(op, key)
        return self.underlying_store._call(op, f"{self.prefix}/{key}", *args)


class TCPStore(Store):
    """A store served by the master over TCP (torch's TCPStore; see the module docstring).

    Args:
        host_name: the master's host (the others connect to it).
        port: its port (the master may pass 0 for a free one; `.port` then tells which).
        world_size: how many stores will connect (None: not counted).
        is_master: serve the dictionary from this process.
        timeout: how long a connection, get or wait may take (default 300 s).
        wait_for_workers: the master's constructor waits until world_size stores connected.

    Raises:
        RuntimeError: the master cannot listen, or a client cannot reach it within timeout.
    """

    def __init__(self, host_name: str, port: int, world_size: int | None = None,
                 is_master: bool = False, timeout: Any = _DEFAULT_TIMEOUT,
                 wait_for_workers: bool = True, multi_tenant: bool = False,
                 master_listen_fd: int | None = None, use_libuv: bool = True) -> None:  # fmt: skip
        del multi_tenant, master_listen_fd, use_libuv
        super().__init__(timeout)
        self.host, self.port, self.world_size = host_name, int(port), world_size
        self._server: socket.socket | None = None
        if is_master:
            try:
                self._server = socket.create_server(("", self.port))
            except OSError as e:
                raise RuntimeError(
                    f"TCPStore: the master cannot listen on port {self.port}: {e}; pick a free "
                    "port (or 0)"
                ) from None
            self.port = self._server.getsockname()[1]
            self._table = _Table()
            threading.Thread(target=self._serve, daemon=True, name="descent-store").start()
        self._lock = threading.Lock()
        self._sock = self._connect()
        n = self.add("__descent_store_clients__", 1)
        if is_master and wait_for_workers and world_size is not None and n < world_size:
            try:
                self._wait_count("__descent_store_clients__", world_size)
            except RuntimeError:
                raise DistStoreError(
                    f"TCPStore: the master at port {self.port} waited {self._timeout:g} s for "
                    f"{world_size} stores; start the others with host_name={host_name!r}, "
                    f"port={self.port}"
                ) from None

    def _wait_count(self, key: str, at_least: int) -> None:
        deadline = time.monotonic() + self._timeout
        while int(self._call("get_now", key) or b"0") < at_least:
            if time.monotonic() > deadline:
                raise DistStoreError(f"TCPStore: {key} stayed below {at_least}")
            time.sleep(0.005)

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self._timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except OSError as e:  # the master is not listening yet
                if time.monotonic() > deadline:
                    raise DistStoreError(
                        f"TCPStore: no master at {self.host}:{self.port} within "
                        f"{self._timeout:g} s ({e}); start the master (is_master=True) there"
                    ) from None
                time.sleep(0.02)

    def _call(self, op: str, key: str, *args: Any) -> Any:
        request = pickle.dumps((op, key, args))
        with self._lock:  # one request and its reply at a time on the socket
            try:
                self._sock.sendall(_LEN.pack(len(request)) + request)
                ok, result = pickle.loads(_recv_message(self._sock))
            except (OSError, EOFError) as e:
                raise DistStoreError(
                    f"TCPStore.{op}: lost the master at {self.host}:{self.port} ({e})"
                ) from None
        if not ok:
            raise RuntimeError(result)
        return result

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(sock,), daemon=True).start()

    def _client(self, sock: socket.socket) -> None:
        with sock:
            while True:
                try:
                    op, key, args = pickle.loads(_recv_message(sock))
                except (OSError, EOFError, pickle.UnpicklingError):
                    return
                try:
                    with self._table.cond:
                        reply = (True, self._table.apply(op, key, *args))
                except (ValueError, TypeError) as e:
                    reply = (False, f"TCPStore.{op}: {e}")
                data = pickle.dumps(reply)
                try:
                    sock.sendall(_LEN.pack(len(data)) + data)
                except OSError:
                    return

    def __del__(self) -> None:
        for s in (getattr(self, "_sock", None), getattr(self, "_server", None)):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


def _recv_message(sock: socket.socket) -> bytes:
    head = _read_exact(sock, _LEN.size)
    return _read_exact(sock, _LEN.unpack(head)[0])


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError("connection closed")
        got += k
    return bytes(buf)


class FileStore(Store):
    """A store in a file (torch's FileStore; see the module docstring).

    Args:
        file_name: the file (created if missing; every rank passes the same path).
        world_size: accepted (torch counts users to delete the file at the end; descent
            leaves the file: remove it, or pass a fresh path, before the next job).
    """

    def __init__(self, file_name: str, world_size: int = -1) -> None:
        super().__init__()
        self.path, self.world_size = file_name, world_size
        open(file_name, "ab").close()

    def _call(self, op: str, key: str, *args: Any) -> Any:
        import fcntl  # POSIX only: imported where a FileStore is used

        with open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX if op in ("set", "add", "compare_set",
                                                   "delete_key") else fcntl.LOCK_SH)  # fmt: skip
            try:
                f.seek(0)
                table = _Table()
                raw = f.read()
                pos = 0
                while pos + _LEN.size <= len(raw):  # replay: (key, value or None) records
                    (n,) = _LEN.unpack_from(raw, pos)
                    k, v = pickle.loads(raw[pos + _LEN.size : pos + _LEN.size + n])
                    pos += _LEN.size + n
                    if v is None:
                        table.data.pop(k, None)
                    else:
                        table.data[k] = v
                before = dict(table.data)
                result = table.apply(op, key, *args)
                if table.data != before:  # append what changed
                    changed = [k for k in table.data if before.get(k) != table.data[k]]
                    gone = [k for k in before if k not in table.data]
                    records = [(k, table.data[k]) for k in changed] + [(k, None) for k in gone]
                    out = b"".join(
                        _LEN.pack(len(r)) + r for r in (pickle.dumps(rec) for rec in records)
                    )
                    f.seek(0, os.SEEK_END)
                    f.write(out)
                    f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return result
