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
  lock (fcntl), and a read replays the records. The file is deleted when the last store
  using it is done, as torch's (see FileStore).
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
import weakref
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
        world_size: how many stores will use the file. As torch's, the file is deleted when a
            store is closed (collected, or at the end of the process that made it) and no store
            of it is left open, once `world_size` stores have closed; with -1 (the default) it
            is never deleted.
    """

    def __init__(self, file_name: str, world_size: int = -1) -> None:
        super().__init__()
        self.path, self.world_size = file_name, world_size
        open(file_name, "ab").close()
        _file_store_locked(file_name, _count_users, 1)
        self._finalizer = weakref.finalize(self, _file_store_release, file_name, world_size)

    def _call(self, op: str, key: str, *args: Any) -> Any:
        return _file_store_locked(self.path, _apply_op, op, key, *args)


# FileStore's file: one record per change, appended under an fcntl lock; a read replays them.
# A record is kind (1 byte: 0 a user's key, 1 the users' bookkeeping), the key's length and
# UTF-8 bytes, then the value's length and bytes (length 2^64 - 1: the key was deleted).
# The bookkeeping keys (torch's refcount/ and cleanup/) are apart from the user's, so
# num_keys() counts only the user's keys.
_REFCOUNT, _FINISHED = "refcount", "cleanup"
_DELETED = 2**64 - 1


def _file_store_locked(path: str, fn: Any, *args: Any) -> Any:
    """Run fn(table, bookkeeping, *args) on the file's replayed contents; append what changed."""
    import fcntl  # POSIX only: imported where a FileStore is used

    reads = fn is _apply_op and args[0] in ("get_now", "check", "num_keys")
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_SH if reads else fcntl.LOCK_EX)
        try:
            f.seek(0)
            raw = f.read()
            tables: tuple[dict, dict] = ({}, {})
            pos = 0
            while pos + 1 + 2 * _LEN.size <= len(raw):
                kind = raw[pos]
                (n,) = _LEN.unpack_from(raw, pos + 1)
                key = raw[pos + 1 + _LEN.size : pos + 1 + _LEN.size + n].decode()
                pos += 1 + _LEN.size + n
                (m,) = _LEN.unpack_from(raw, pos)
                pos += _LEN.size
                if m == _DELETED:
                    tables[kind].pop(key, None)
                else:
                    tables[kind][key] = raw[pos : pos + m]
                    pos += m
            before = (dict(tables[0]), dict(tables[1]))
            table = _Table()
            table.data = tables[0]
            result = fn(table, tables[1], *args)
            out = bytearray()
            for kind in (0, 1):
                now, was = tables[kind], before[kind]
                for k in [k for k in now if was.get(k) != now[k]] + [
                    k for k in was if k not in now
                ]:
                    kb, v = k.encode(), now.get(k)
                    out += bytes([kind]) + _LEN.pack(len(kb)) + kb
                    out += _LEN.pack(_DELETED) if v is None else _LEN.pack(len(v)) + v
            if out:
                f.seek(0, os.SEEK_END)
                f.write(out)
                f.flush()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    return result


def _apply_op(table: _Table, bookkeeping: dict, op: str, key: str, *args: Any) -> Any:
    del bookkeeping
    return table.apply(op, key, *args)


def _count_users(table: _Table, bookkeeping: dict, delta: int) -> int:
    del table
    value = int(bookkeeping.get(_REFCOUNT, b"0")) + delta
    bookkeeping[_REFCOUNT] = str(value).encode()
    return value


def _finish_user(table: _Table, bookkeeping: dict, path: str, world_size: int) -> None:
    """torch's ~FileStore: count this store finished; the last one deletes the file."""
    del table
    finished = int(bookkeeping.get(_FINISHED, b"0")) + 1
    users = int(bookkeeping.get(_REFCOUNT, b"0")) - 1
    bookkeeping[_FINISHED], bookkeeping[_REFCOUNT] = str(finished).encode(), str(users).encode()
    if users == 0 and world_size >= 0 and finished >= world_size:
        os.remove(path)  # under the lock: no store appends to the unlinked file meanwhile


def _file_store_release(path: str, world_size: int) -> None:
    if os.path.exists(path):  # (someone removed it already: nothing to count, as torch)
        try:
            _file_store_locked(path, _finish_user, path, world_size)
        except OSError:
            pass
