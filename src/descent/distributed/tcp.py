"""A process group over plain TCP sockets, for worlds that no MPI launcher started.

PyTorch's tutorials start ranks themselves (`torch.multiprocessing.spawn`, `torchrun`) and
rendezvous at MASTER_ADDR:MASTER_PORT with the "gloo" backend. descent meets them here, in
pure Python + NumPy: `init_process_group(world_size > 1)` outside `mpirun` connects the ranks
through this module and hands comm.py an object with the part of mpi4py's communicator API
that descent's collectives, DDP, DistributedSampler and agree.py use (`Get_rank`, `Get_size`,
`Allreduce`, `Iallreduce`, `Bcast`, `Allgather`, `Barrier`, `allgather`, `bcast`,
`Split_type`, `Free`, `Abort`) plus a stand-in for the `mpi4py.MPI` module (`IN_PLACE`, `SUM`,
`MAX`, `MIN`, `Request.Waitall/Testall`, `COMM_WORLD`). Nothing above comm.py changes.

Topology: a star. Rank 0 listens at the address; every other rank connects to it once.
* Reductions run at rank 0 in rank order: acc = x0; acc = acc (op) x1; acc = acc (op) x2; ...
  (for a sum: ((x0 + x1) + x2) + ...), then rank 0 sends the result to every rank, so every
  rank holds the same bits (and a world of 2 sums as MPI does: x0 + x1).
* Bcast from rank r: r sends to rank 0, rank 0 sends to the others. Allgather: everyone sends
  to rank 0, rank 0 sends the concatenation back. Barrier: an allgather of nothing.
* `Iallreduce` completes before it returns (no overlap with backward; correct, simpler).

Every message carries the collective's kind, so ranks that call different collectives fail
with a RuntimeError instead of misreading bytes. Every socket has the group's timeout (torch's
`timeout=`, 30 minutes by default); a rank that dies closes its socket and the ranks waiting
for it raise RuntimeError naming it at once; rank 0 passes such an error on to the others
before it closes. Messages stay within one host's or one LAN's trust: no authentication
(as gloo's).
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import time
from typing import Any

import numpy as np

DEFAULT_TIMEOUT_S = 1800.0  # torch's default process-group timeout (30 minutes)

_MAGIC = b"DSCNT1"
_HELLO = struct.Struct("!6sqq")  # magic, rank, world_size
_HEADER = struct.Struct("!cQ")  # kind, payload bytes
_SMALL = 1 << 16  # payloads up to this size are sent with their header in one call

# Message kinds: one per collective, and an error passed on by rank 0.
_REDUCE, _BCAST, _GATHER, _OBJECT, _ERROR = b"R", b"B", b"G", b"O", b"E"
_KIND_NAMES = {
    _REDUCE: "allreduce",
    _BCAST: "broadcast",
    _GATHER: "all_gather",
    _OBJECT: "object collective",
}


class _Op:
    """MPI.SUM / MPI.MAX / MPI.MIN's stand-ins: a name and the NumPy function."""

    def __init__(self, name: str, ufunc: Any) -> None:
        self.name, self.ufunc = name, ufunc

    def __repr__(self) -> str:
        return f"tcp.{self.name}"


SUM = _Op("SUM", np.add)
MAX = _Op("MAX", np.maximum)
MIN = _Op("MIN", np.minimum)
IN_PLACE = object()
COMM_TYPE_SHARED = "shared"


class _DoneRequest:
    """What `Iallreduce` returns: the operation has already completed."""

    def Test(self) -> bool:  # noqa: N802 - mpi4py's names
        return True

    def Wait(self) -> None:  # noqa: N802
        return None


class Request:
    """mpi4py's `MPI.Request` class methods that ddp.py calls."""

    @staticmethod
    def Testall(requests) -> bool:  # noqa: N802
        return True

    @staticmethod
    def Waitall(requests) -> None:  # noqa: N802
        return None


def _bytes_of(arr: np.ndarray) -> memoryview:
    """A writable byte view of a C-contiguous array (no copy)."""
    return memoryview(arr.reshape(-1).view(np.uint8))


class TCPComm:
    """The communicator of a TCP process group (see the module docstring)."""

    def __init__(self, rank: int, size: int, peers: dict[int, socket.socket], timeout: float,
                 where: str) -> None:  # fmt: skip
        self.rank, self.size, self.timeout, self.where = rank, size, timeout, where
        self._peers = peers  # rank 0: every other rank; others: {0: socket}
        self._closed = False

    # -- mpi4py's queries -----------------------------------------------------------------
    def Get_rank(self) -> int:  # noqa: N802
        return self.rank

    def Get_size(self) -> int:  # noqa: N802
        return self.size

    # -- framing -------------------------------------------------------------------------
    def _fail(self, peer: int, what: str) -> RuntimeError:
        msg = (
            f"descent.distributed (tcp, rank {self.rank} of {self.size}): {what} rank {peer}; "
            f"did rank {peer} crash, exit, or call a different collective?"
        )
        return RuntimeError(msg)

    def _sock(self, peer: int) -> socket.socket:
        if self._closed:
            raise RuntimeError(
                "descent.distributed: a collective after destroy_process_group(); call "
                "init_process_group again first"
            )
        return self._peers[peer]

    def _recv_exact(self, peer: int, view: memoryview, kind: bytes) -> None:
        sock = self._sock(peer)
        got, n = 0, len(view)
        while got < n:
            try:
                k = sock.recv_into(view[got:], n - got)
            except TimeoutError:
                raise self._fail(
                    peer, f"{_KIND_NAMES.get(kind, 'message')} timed out after "
                    f"{self.timeout:g} s waiting for"
                ) from None  # fmt: skip
            except OSError as e:
                raise self._fail(peer, f"connection lost ({e}) to") from None
            if k == 0:
                raise self._fail(
                    peer, f"{_KIND_NAMES.get(kind, 'message')}: connection closed by"
                )  # fmt: skip
            got += k

    def _send(self, peer: int, kind: bytes, payload) -> None:
        sock = self._sock(peer)
        data = payload if isinstance(payload, (bytes, memoryview)) else _bytes_of(payload)
        try:
            if len(data) <= _SMALL:  # one segment: header and payload together
                sock.sendall(_HEADER.pack(kind, len(data)) + bytes(data))
            else:
                sock.sendall(_HEADER.pack(kind, len(data)))
                sock.sendall(data)
        except TimeoutError:
            raise self._fail(peer, f"sending timed out after {self.timeout:g} s to") from None
        except OSError as e:
            raise self._fail(peer, f"connection lost ({e}) to") from None

    def _recv_header(self, peer: int, kind: bytes) -> int:
        head = bytearray(_HEADER.size)
        self._recv_exact(peer, memoryview(head), kind)
        got_kind, n = _HEADER.unpack(head)
        if got_kind == _ERROR:
            text = bytearray(n)
            self._recv_exact(peer, memoryview(text), kind)
            raise RuntimeError(text.decode("utf-8", "replace"))
        if got_kind != kind:
            raise RuntimeError(
                f"descent.distributed (tcp, rank {self.rank}): this rank runs "
                f"{_KIND_NAMES.get(kind)} while rank {peer} runs "
                f"{_KIND_NAMES.get(got_kind, repr(got_kind))}: every rank must call the same "
                "collectives in the same order"
            )
        return n

    def _recv_into(self, peer: int, kind: bytes, arr: np.ndarray) -> None:
        n = self._recv_header(peer, kind)
        if n != arr.nbytes:
            raise RuntimeError(
                f"descent.distributed (tcp, rank {self.rank}): {_KIND_NAMES[kind]} of "
                f"{arr.nbytes} bytes ({arr.dtype}, {arr.size} elements) here, {n} bytes from "
                f"rank {peer}: every rank must pass the same shape and dtype"
            )
        if n:
            self._recv_exact(peer, _bytes_of(arr), kind)

    def _recv_bytes(self, peer: int, kind: bytes) -> bytes:
        n = self._recv_header(peer, kind)
        out = bytearray(n)
        if n:
            self._recv_exact(peer, memoryview(out), kind)
        return bytes(out)

    def _root(self, fn):
        """Run rank 0's side of a collective; on failure tell the other ranks why, then raise."""
        try:
            return fn()
        except RuntimeError as e:
            self._tell_others(str(e))
            raise

    def _tell_others(self, text: str) -> None:
        data = text.encode()
        for sock in self._peers.values():
            try:
                sock.sendall(_HEADER.pack(_ERROR, len(data)) + data)
            except OSError:
                pass  # that peer is gone too

    # -- buffer collectives --------------------------------------------------------------
    def Allreduce(self, sendbuf, recvbuf: np.ndarray, op: _Op = SUM) -> None:  # noqa: N802
        """recvbuf = op over ranks (at rank 0, in rank order) of sendbuf (or recvbuf)."""
        if sendbuf is not IN_PLACE:
            recvbuf[...] = sendbuf
        if self.rank != 0:
            self._send(0, _REDUCE, recvbuf)
            self._recv_into(0, _REDUCE, recvbuf)
            return

        def root() -> None:
            tmp = np.empty_like(recvbuf)
            for peer in range(1, self.size):  # fixed order: ((x0 op x1) op x2) op ...
                self._recv_into(peer, _REDUCE, tmp)
                with np.errstate(all="ignore"):  # IEEE results, silently, as MPI's and gloo's
                    op.ufunc(recvbuf, tmp, out=recvbuf)

        self._root(root)
        for peer in range(1, self.size):
            self._send(peer, _REDUCE, recvbuf)

    def Iallreduce(self, sendbuf, recvbuf: np.ndarray, op: _Op = SUM) -> _DoneRequest:  # noqa: N802
        self.Allreduce(sendbuf, recvbuf, op)
        return _DoneRequest()

    def Bcast(self, buf: np.ndarray, root: int = 0) -> None:  # noqa: N802
        """buf = rank `root`'s buf on every rank (relayed through rank 0)."""
        if self.rank == 0:
            if root != 0:
                self._root(lambda: self._recv_into(root, _BCAST, buf))
            for peer in range(1, self.size):
                if peer != root:
                    self._send(peer, _BCAST, buf)
        elif self.rank == root:
            self._send(0, _BCAST, buf)
        else:
            self._recv_into(0, _BCAST, buf)

    def Allgather(self, sendbuf: np.ndarray, recvbuf: np.ndarray) -> None:  # noqa: N802
        """recvbuf[r] = rank r's sendbuf, on every rank (recvbuf: (size,) + sendbuf.shape)."""
        rows = recvbuf.reshape(self.size, -1)
        if self.rank != 0:
            self._send(0, _GATHER, sendbuf)
            self._recv_into(0, _GATHER, recvbuf)
            return
        rows[0] = sendbuf.reshape(-1)

        def root() -> None:
            for peer in range(1, self.size):
                self._recv_into(peer, _GATHER, rows[peer])

        self._root(root)
        for peer in range(1, self.size):
            self._send(peer, _GATHER, recvbuf)

    def Barrier(self) -> None:  # noqa: N802
        self.allgather(None)

    # -- object collectives (pickled) ----------------------------------------------------
    def allgather(self, obj: Any) -> list:
        """Every rank's object, in rank order, on every rank."""
        if self.rank != 0:
            self._send(0, _OBJECT, pickle.dumps(obj))
            return pickle.loads(self._recv_bytes(0, _OBJECT))
        objs = [obj] + self._root(
            lambda: [pickle.loads(self._recv_bytes(p, _OBJECT)) for p in range(1, self.size)]
        )
        data = pickle.dumps(objs)
        for peer in range(1, self.size):
            self._send(peer, _OBJECT, data)
        return objs

    def bcast(self, obj: Any, root: int = 0) -> Any:
        """Rank `root`'s object on every rank."""
        if self.rank == 0:
            if root != 0:
                obj = self._root(lambda: pickle.loads(self._recv_bytes(root, _OBJECT)))
            data = pickle.dumps(obj)
            for peer in range(1, self.size):
                if peer != root:
                    self._send(peer, _OBJECT, data)
            return obj
        if self.rank == root:
            self._send(0, _OBJECT, pickle.dumps(obj))
            return obj
        return pickle.loads(self._recv_bytes(0, _OBJECT))

    # -- the rest ----------------------------------------------------------------------------
    def Split_type(self, split_type: Any, key: int = 0) -> Any:  # noqa: N802
        """The ranks on this machine (by host name): an object with Get_rank / Get_size."""
        hosts = self.allgather(socket.gethostname())
        mine = [r for r, h in enumerate(hosts) if h == hosts[self.rank]]
        return _Local(mine.index(self.rank), len(mine))

    def Free(self) -> None:  # noqa: N802
        """Close the sockets (destroy_process_group)."""
        self._closed = True
        for sock in self._peers.values():
            try:
                sock.close()
            except OSError:
                pass

    def Abort(self, code: int = 1) -> None:  # noqa: N802
        """End this process now; the other ranks see its sockets close and raise."""
        self.Free()
        os._exit(int(code) or 1)


class _Local:
    def __init__(self, rank: int, size: int) -> None:
        self._rank, self._size = rank, size

    def Get_rank(self) -> int:  # noqa: N802
        return self._rank

    def Get_size(self) -> int:  # noqa: N802
        return self._size

    def Free(self) -> None:  # noqa: N802
        return None


class MPIStandIn:
    """The names of `mpi4py.MPI` that comm.py, ddp.py and agree.py read, for a TCP group."""

    IN_PLACE = IN_PLACE
    SUM, MAX, MIN = SUM, MAX, MIN
    COMM_TYPE_SHARED = COMM_TYPE_SHARED
    Request = Request

    def __init__(self, comm: TCPComm) -> None:
        self.COMM_WORLD = comm

    @staticmethod
    def Is_finalized() -> bool:  # noqa: N802
        return True  # nothing to finalise

    @staticmethod
    def Finalize() -> None:  # noqa: N802
        return None


# ---------------------------------------------------------------------------------------------
# Rendezvous


def parse_address(init_method: str | None) -> tuple[str, int]:
    """(host, port) from `tcp://host:port`, or from MASTER_ADDR / MASTER_PORT (`env://`, None).

    Raises:
        ValueError: an init_method descent cannot use, or MASTER_ADDR / MASTER_PORT unset.
    """
    if init_method and init_method.startswith("tcp://"):
        rest = init_method[len("tcp://") :].split("?", 1)[0].rstrip("/")
        host, sep, port = rest.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(
                f"init_process_group: init_method={init_method!r} needs a port: tcp://host:port"
            )
        return host.strip("[]") or "127.0.0.1", int(port)
    if init_method not in (None, "", "env://"):
        raise ValueError(
            f"init_process_group: init_method={init_method!r} is not supported without an MPI "
            "launcher; use 'env://' (MASTER_ADDR, MASTER_PORT) or 'tcp://host:port'"
        )
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise ValueError(
            f"init_process_group: world_size > 1 without an MPI launcher needs a rendezvous "
            f"address, but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
            "set: set os.environ['MASTER_ADDR'] / ['MASTER_PORT'] (rank 0's host and a free "
            "port) or pass init_method='tcp://host:port'"
        )
    port = os.environ["MASTER_PORT"]
    if not port.isdigit():
        raise ValueError(f"init_process_group: MASTER_PORT={port!r} is not a port number")
    return os.environ["MASTER_ADDR"], int(port)


def _tune(sock: socket.socket, timeout: float) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout)
    return sock


def connect(rank: int, size: int, host: str, port: int, timeout: float) -> TCPComm:
    """Form the group: rank 0 listens at host:port and waits for the others, who connect.

    Raises:
        RuntimeError: nobody came (or rank 0 could not be reached) within `timeout` seconds,
            naming the address and the missing ranks; a rank or world size that disagrees.
    """
    where = f"{host}:{port}"
    if not 0 <= rank < size:
        raise ValueError(f"init_process_group: rank={rank} is not in 0..{size - 1}")
    deadline = time.monotonic() + timeout
    if rank == 0:
        return _listen(size, host, port, timeout, deadline, where)
    last: Exception | None = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(
                f"init_process_group: rank {rank} could not reach rank 0 at {where} within "
                f"{timeout:g} s ({last}); is rank 0 running, and are MASTER_ADDR / "
                "MASTER_PORT (or the tcp:// address) the same on every rank?"
            )
        try:
            sock = socket.create_connection((host, port), timeout=min(left, 5.0))
            break
        except OSError as e:  # rank 0 not listening yet: try again shortly
            last = e
            time.sleep(min(0.02, max(left, 0)))
    _tune(sock, timeout)
    try:
        sock.sendall(_HELLO.pack(_MAGIC, rank, size))
        reply = bytearray(_HELLO.size)
        view, got = memoryview(reply), 0
        while got < len(reply):
            k = sock.recv_into(view[got:])
            if k == 0:
                break
            got += k
    except OSError as e:
        sock.close()
        raise RuntimeError(f"init_process_group: rank {rank} lost rank 0 at {where}: {e}") from None
    if got < len(reply) or reply[:1] == _ERROR:
        sock.close()
        raise RuntimeError(
            f"init_process_group: rank 0 at {where} refused rank {rank} of a world of {size} "
            "(another rank with this rank, or a different world_size?)"
        )
    magic, _, ok = _HELLO.unpack(reply)
    if magic != _MAGIC or ok != size:
        sock.close()
        raise RuntimeError(f"init_process_group: {where} is not a descent rank 0 of {size} ranks")
    return TCPComm(rank, size, {0: sock}, timeout, where)


def _listen(size: int, host: str, port: int, timeout: float, deadline: float,
            where: str) -> TCPComm:  # fmt: skip
    try:
        if socket.has_dualstack_ipv6():
            server = socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        else:
            server = socket.create_server(("", port))
    except OSError as e:
        raise RuntimeError(
            f"init_process_group: rank 0 cannot listen at {where}: {e}; pick a free "
            "MASTER_PORT"
        ) from None  # fmt: skip
    peers: dict[int, socket.socket] = {}
    try:
        while len(peers) < size - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [r for r in range(1, size) if r not in peers]
                raise RuntimeError(
                    f"init_process_group: rank 0 waited {timeout:g} s at {where} for a world "
                    f"of {size}, but rank(s) {', '.join(map(str, missing))} never connected; "
                    "start every rank with the same MASTER_ADDR / MASTER_PORT and world_size"
                )
            server.settimeout(left)
            try:
                sock, _ = server.accept()
            except TimeoutError:
                continue
            _tune(sock, timeout)
            hello = bytearray(_HELLO.size)
            try:
                view, got = memoryview(hello), 0
                while got < len(hello):
                    k = sock.recv_into(view[got:])
                    if k == 0:
                        break
                    got += k
            except OSError:
                got = 0
            magic, r, n = _HELLO.unpack(hello) if got == len(hello) else (b"", -1, -1)
            if magic != _MAGIC or n != size or not 0 < r < size or r in peers:
                try:  # a stranger, a different world size, or a rank twice: refuse it
                    sock.sendall(_ERROR * _HELLO.size)
                finally:
                    sock.close()
                if magic == _MAGIC and (n != size or r in peers):
                    for s in peers.values():
                        s.close()
                    what = f"world_size={n}" if n != size else f"rank {r} twice"
                    raise RuntimeError(
                        f"init_process_group: rank 0 at {where} (world_size={size}) was "
                        f"reached with {what}: every rank must pass the same world_size and "
                        "its own rank"
                    )
                continue
            peers[r] = sock
        for sock in peers.values():
            sock.sendall(_HELLO.pack(_MAGIC, 0, size))
    except BaseException:
        for s in peers.values():
            s.close()
        raise
    finally:
        server.close()
    return TCPComm(0, size, dict(sorted(peers.items())), timeout, where)
