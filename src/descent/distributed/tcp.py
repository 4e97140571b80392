"""A process group over plain TCP sockets, for worlds that no MPI launcher started.

PyTorch's tutorials start ranks themselves (`torch.multiprocessing.spawn`, `torchrun`) and
rendezvous at MASTER_ADDR:MASTER_PORT with the "gloo" backend. descent meets them here, in
pure Python + NumPy: `init_process_group(world_size > 1)` outside `mpirun` connects the ranks
through this module and hands comm.py an object with the part of mpi4py's communicator API
that descent's collectives, DDP, DistributedSampler and agree.py use (`Get_rank`, `Get_size`,
`Allreduce`, `Iallreduce`, `Bcast`, `Allgather`, `Reduce`, `Reduce_scatter_block`, `Barrier`,
`allgather`, `bcast`, `gather`, `scatter`, `alltoall`, `Send`, `Recv`, `Isend`, `Irecv`,
`Split`, `Split_type`, `Free`, `Abort`) plus a stand-in for the `mpi4py.MPI` module
(`IN_PLACE`, `SUM`, `MAX`, `MIN`, `PROD`, `BAND`, `BOR`, `BXOR`, `UNDEFINED`, `ANY_SOURCE`,
`Status`, `Request.Waitall/Testall`, `COMM_WORLD`). Nothing above comm.py changes.

Topology: a star for the world's collectives, a mesh for the rest.
* Rank 0 listens at the address; every other rank connects to it once (`file:///path`: rank 0
  listens on a free port and writes its host and port into the file).
* Reductions run at rank 0 in rank order: acc = x0; acc = acc (op) x1; acc = acc (op) x2; ...
  (for a sum: ((x0 + x1) + x2) + ...), then rank 0 sends the result to every rank (Allreduce),
  to the root (Reduce) or each rank its block (Reduce_scatter_block), so every rank holds the
  same bits, and reduce / reduce_scatter give the bits all_reduce gives (a world of 2 sums as
  MPI does: x0 + x1; gloo's order for 3 ranks or more differs in the last bit).
* Bcast from rank r: r sends to rank 0, rank 0 sends to the others. Allgather / gather /
  scatter / alltoall: everyone sends to rank 0, rank 0 sends each rank its part. Barrier: an
  allgather of nothing.
* `Iallreduce` (DDP's buckets) runs on a background thread, so a bucket's reduction overlaps
  the rest of backward; requests run in order, and any other collective waits for them first.
* Point to point and groups (new_group) use the mesh (`_Mesh`): every rank also listens on a
  port of its own, learnt by the others at init; a rank connects to another the first time it
  sends to it. A reader thread per incoming socket files whole messages by (sender, group,
  tag), so a send never waits for its recv (gloo's does), tags may be received in any order,
  and a group's collectives (rooted at its first rank) never mix with other traffic.

Every message carries the collective's kind, so ranks that call different collectives fail
with a RuntimeError instead of misreading bytes. Every socket has the group's timeout (torch's
`timeout=`, 30 minutes by default); a rank that dies closes its socket and the ranks waiting
for it raise RuntimeError naming it at once; rank 0 passes such an error on to the others
before it closes. Messages stay within one host's or one LAN's trust: no authentication
(as gloo's).
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import pickle
import socket
import struct
import threading
import time
from typing import Any

import numpy as np

from .store import _read_exact

DEFAULT_TIMEOUT_S = 1800.0  # torch's default process-group timeout (30 minutes)

_MAGIC = b"DSCNT1"
_HELLO = struct.Struct("!6sqq")  # magic, rank, world_size
_HEADER = struct.Struct("!cQ")  # kind, payload bytes
_SMALL = 1 << 16  # payloads up to this size are sent with their header in one call

# Message kinds: one per collective, and an error passed on by rank 0.
_REDUCE, _BCAST, _GATHER, _OBJECT, _ERROR = b"R", b"B", b"G", b"O", b"E"
_ROOTED, _SCATTER, _P2P = b"D", b"S", b"P"
_KIND_NAMES = {
    _REDUCE: "allreduce",
    _BCAST: "broadcast",
    _GATHER: "all_gather",
    _OBJECT: "object collective",
    _ROOTED: "reduce",
    _SCATTER: "reduce_scatter",
    _P2P: "send/recv",
}
_MESH_HELLO = struct.Struct("!6sq")  # magic, rank of the connecting (sending) side
_MESH_HEADER = struct.Struct("!cqqQ")  # kind, group id (0: the world), tag, payload bytes


class _Op:
    """MPI.SUM / MPI.MAX / MPI.MIN's stand-ins: a name and the NumPy function."""

    def __init__(self, name: str, ufunc: Any) -> None:
        self.name, self.ufunc = name, ufunc

    def __repr__(self) -> str:
        return f"tcp.{self.name}"


SUM = _Op("SUM", np.add)
MAX = _Op("MAX", np.maximum)
MIN = _Op("MIN", np.minimum)
PROD = _Op("PROD", np.multiply)
BAND = _Op("BAND", np.bitwise_and)
BOR = _Op("BOR", np.bitwise_or)
BXOR = _Op("BXOR", np.bitwise_xor)
IN_PLACE = object()
COMM_TYPE_SHARED = "shared"
UNDEFINED = -32766  # Split's colour of a rank that joins no group (mpi4py's MPI.UNDEFINED)
ANY_SOURCE = -1


class _DoneRequest:
    """What `Iallreduce` returns: the operation has already completed."""

    def Test(self, status: Any = None) -> bool:  # noqa: N802 - mpi4py's names
        return True

    def Wait(self, status: Any = None) -> None:  # noqa: N802
        return None


class _FutureRequest:
    """What `Iallreduce` returns while the background thread runs it."""

    def __init__(self, future: concurrent.futures.Future) -> None:
        self._future = future

    def Test(self, status: Any = None) -> bool:  # noqa: N802
        return self._future.done()

    def Wait(self, status: Any = None) -> None:  # noqa: N802
        self._future.result()


class Request:
    """mpi4py's `MPI.Request` class methods that ddp.py calls."""

    @staticmethod
    def Testall(requests) -> bool:  # noqa: N802
        return all([r.Test() for r in requests])  # a list: test every one, as MPI does

    @staticmethod
    def Waitall(requests) -> None:  # noqa: N802
        for r in requests:
            r.Wait()


class Status:
    """mpi4py's `MPI.Status`: `Recv(..., status=s)` records the sender's rank in it."""

    def __init__(self) -> None:
        self.source = ANY_SOURCE

    def Get_source(self) -> int:  # noqa: N802
        return self.source


class _RecvRequest:
    """What `Irecv` returns: the message arrives in the background (the mesh's reader thread);
    `Test` / `Wait` copy it into the buffer once it is there."""

    def __init__(self, comm: TCPComm, buf: np.ndarray, source: int, tag: int) -> None:
        self._comm, self._buf, self._source, self._tag = comm, buf, source, tag
        self._done = False

    def Test(self, status: Status | None = None) -> bool:  # noqa: N802
        if not self._done:
            self._done = self._comm._p2p_recv(self._buf, self._source, self._tag, status, False)
        return self._done

    def Wait(self, status: Status | None = None) -> None:  # noqa: N802
        if not self._done:
            self._done = self._comm._p2p_recv(self._buf, self._source, self._tag, status, True)


def _bytes_of(arr: np.ndarray) -> memoryview:
    """A writable byte view of a C-contiguous array (no copy)."""
    return memoryview(arr.reshape(-1).view(np.uint8))


class TCPComm:
    """The communicator of a TCP process group (see the module docstring)."""

    overlap = True  # Iallreduce on a background thread (False: it completes before returning)

    def __init__(self, rank: int, size: int, peers: dict[int, socket.socket], timeout: float,
                 where: str) -> None:  # fmt: skip
        self.rank, self.size, self.timeout, self.where = rank, size, timeout, where
        self._peers = peers  # rank 0: every other rank; others: {0: socket}
        self._closed = False
        self._mesh: _Mesh | None = None  # point-to-point sockets (send/recv, groups)
        self._groups = 0  # groups made by Split so far: the next one's id
        self._gid = 0  # this communicator's group id in mesh messages (the world: 0)
        # Iallreduce's background thread and its outstanding work (futures, in order).
        self._background: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: collections.deque = collections.deque()
        self._thread = threading.local()  # .background: True on the background thread

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
        if self._pending and not getattr(self._thread, "background", False):
            self._drain()  # a blocking collective after Iallreduces: theirs go first
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
            raise self._mismatch(peer, kind, got_kind)
        return n

    def _mismatch(self, peer: int, kind: bytes, got_kind: bytes) -> RuntimeError:
        return RuntimeError(
            f"descent.distributed (tcp, rank {self.rank}): this rank runs "
            f"{_KIND_NAMES.get(kind)} while rank {peer} runs "
            f"{_KIND_NAMES.get(got_kind, repr(got_kind))}: every rank must call the same "
            "collectives in the same order"
        )

    def _size_mismatch(self, peer: int, kind: bytes, arr: np.ndarray, n: int) -> RuntimeError:
        return RuntimeError(
            f"descent.distributed (tcp, rank {self.rank}): {_KIND_NAMES[kind]} of "
            f"{arr.nbytes} bytes ({arr.dtype}, {arr.size} elements) here, {n} bytes from "
            f"rank {peer}: every rank must pass the same shape and dtype"
        )

    def _recv_into(self, peer: int, kind: bytes, arr: np.ndarray) -> None:
        n = self._recv_header(peer, kind)
        if n != arr.nbytes:
            raise self._size_mismatch(peer, kind, arr, n)
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

    def Iallreduce(self, sendbuf, recvbuf: np.ndarray, op: _Op = SUM) -> Any:  # noqa: N802
        """Allreduce on this communicator's background thread (DDP's buckets, overlapping the
        rest of backward): the request's Wait returns when recvbuf holds the result. The
        same arithmetic as Allreduce, so the same bits. Requests run one at a time in the
        order they were made, and any other collective first waits for them all."""
        if not self.overlap:
            self.Allreduce(sendbuf, recvbuf, op)
            return _DoneRequest()
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()  # raise a background failure here, in order
        if self._background is None:
            self._background = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="descent-tcp-allreduce"
            )
        future = self._background.submit(self._in_background, sendbuf, recvbuf, op)
        self._pending.append(future)
        return _FutureRequest(future)

    def _in_background(self, sendbuf, recvbuf: np.ndarray, op: _Op) -> None:
        self._thread.background = True
        self.Allreduce(sendbuf, recvbuf, op)

    def _drain(self) -> None:
        """Wait for the background allreduces (before this thread touches the sockets)."""
        while self._pending:
            self._pending.popleft().result()

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

    # -- rooted collectives (torch's reduce / reduce_scatter; rank 0 reduces, in rank order) --
    def _reduce_at_root(self, data: np.ndarray, out: np.ndarray, op: _Op, kind: bytes) -> None:
        """At rank 0: out = ((x0 op x1) op x2) op ... with x0 = data (out may be data)."""

        def root() -> None:
            if out is not data:
                out[...] = data
            tmp = np.empty_like(out)
            for peer in range(1, self.size):  # fixed order: the bits of Allreduce
                self._recv_into(peer, kind, tmp)
                with np.errstate(all="ignore"):
                    op.ufunc(out, tmp, out=out)

        self._root(root)

    def Reduce(self, sendbuf, recvbuf, op: _Op = SUM, root: int = 0) -> None:  # noqa: N802
        """recvbuf (at `root` only) = op over ranks of sendbuf (or recvbuf with IN_PLACE): the
        same bits as Allreduce. Other ranks' buffers are left as they were."""
        data = recvbuf if sendbuf is IN_PLACE else sendbuf
        if self.rank != 0:
            self._send(0, _ROOTED, data)
            if self.rank == root:
                self._recv_into(0, _ROOTED, recvbuf)
            return
        acc = recvbuf if root == 0 else np.empty_like(data)
        self._reduce_at_root(data, acc, op, _ROOTED)
        if root != 0:
            self._send(root, _ROOTED, acc)

    def Reduce_scatter_block(self, sendbuf, recvbuf: np.ndarray, op: _Op = SUM) -> None:  # noqa: N802
        """recvbuf on rank r = block r of the op over ranks of sendbuf (size blocks of
        recvbuf.size elements): the bits Allreduce gives each block."""
        if self.rank != 0:
            self._send(0, _SCATTER, sendbuf)
            self._recv_into(0, _SCATTER, recvbuf)
            return
        acc = np.empty_like(sendbuf)
        self._reduce_at_root(sendbuf, acc, op, _SCATTER)
        blocks = acc.reshape(self.size, -1)
        for peer in range(1, self.size):
            self._send(peer, _SCATTER, np.ascontiguousarray(blocks[peer]))
        recvbuf.reshape(-1)[...] = blocks[0]

    # -- rooted object collectives (gather / scatter / all_to_all of arrays or objects) -------
    def gather(self, obj: Any, root: int = 0) -> list | None:
        """Every rank's object, in rank order, at `root` (None elsewhere)."""
        if self.rank != 0:
            self._send(0, _OBJECT, pickle.dumps(obj))
            return pickle.loads(self._recv_bytes(0, _OBJECT)) if self.rank == root else None
        objs = [obj] + self._root(
            lambda: [pickle.loads(self._recv_bytes(p, _OBJECT)) for p in range(1, self.size)]
        )
        if root == 0:
            return objs
        self._send(root, _OBJECT, pickle.dumps(objs))
        return None

    def scatter(self, objs: list | None, root: int = 0) -> Any:
        """objs[r] (a list of size objects at `root`) on rank r."""
        if self.rank == 0:
            if root != 0:
                objs = self._root(lambda: pickle.loads(self._recv_bytes(root, _OBJECT)))
            for peer in range(1, self.size):
                if peer != root:
                    self._send(peer, _OBJECT, pickle.dumps(objs[peer]))
            return objs[0]
        if self.rank == root:
            self._send(0, _OBJECT, pickle.dumps(objs))
            return objs[root]
        return pickle.loads(self._recv_bytes(0, _OBJECT))

    def alltoall(self, objs: list) -> list:
        """Rank r receives [objs_0[r], objs_1[r], ...] (every rank passes size objects)."""
        if self.rank != 0:
            self._send(0, _OBJECT, pickle.dumps(objs))
            return pickle.loads(self._recv_bytes(0, _OBJECT))
        rows = [objs] + self._root(
            lambda: [pickle.loads(self._recv_bytes(p, _OBJECT)) for p in range(1, self.size)]
        )
        for peer in range(1, self.size):
            self._send(peer, _OBJECT, pickle.dumps([row[peer] for row in rows]))
        return [row[0] for row in rows]

    # -- point to point (the mesh: a socket per ordered pair of ranks) -----------------------
    def _world_rank(self, rank: int) -> int:
        return rank

    def _check_peer(self, what: str, peer: int, any_ok: bool = False) -> None:
        if any_ok and peer == ANY_SOURCE:
            return
        if not 0 <= peer < self.size or peer == self.rank:
            raise ValueError(
                f"{what}: rank {peer} is not another rank of this group of {self.size} "
                f"(this is rank {self.rank}); pass a peer's rank"
            )

    def Send(self, buf: np.ndarray, dest: int, tag: int = 0) -> None:  # noqa: N802
        """Send buf to rank `dest` (returns once the bytes are handed to the socket: the
        receiver's reader thread buffers them, so a send never waits for the matching recv)."""
        self._check_peer("send", dest)
        self._mesh_of().send(self._world_rank(dest), _P2P, self._gid, tag, _bytes_of(buf))

    def Isend(self, buf: np.ndarray, dest: int, tag: int = 0) -> _DoneRequest:  # noqa: N802
        self.Send(buf, dest, tag)
        return _DoneRequest()

    def Recv(self, buf: np.ndarray, source: int = ANY_SOURCE, tag: int = 0,  # noqa: N802
             status: Status | None = None) -> None:  # fmt: skip
        self._check_peer("recv", source, any_ok=True)
        self._p2p_recv(buf, source, tag, status, True)

    def Irecv(self, buf: np.ndarray, source: int = ANY_SOURCE, tag: int = 0) -> _RecvRequest:  # noqa: N802
        self._check_peer("irecv", source, any_ok=True)
        return _RecvRequest(self, buf, source, tag)

    def _p2p_recv(self, buf: np.ndarray, source: int, tag: int, status: Status | None,
                  block: bool) -> bool:  # fmt: skip
        """Copy the first message from `source` (any rank: ANY_SOURCE) with this tag into buf;
        False when none has come and block is False."""
        mesh = self._mesh_of()
        src = None if source == ANY_SOURCE else self._world_rank(source)
        got = mesh.take(src, True, self._gid, tag, block, self._fail)
        if got is None:
            return False
        src, _, data = got
        local = self._local_rank(src)
        if len(data) != buf.nbytes:
            raise RuntimeError(
                f"recv: rank {local} sent {len(data)} bytes (tag {tag}), this rank's tensor "
                f"holds {buf.nbytes} ({buf.dtype}, {buf.size} elements); send and recv "
                "tensors of the same shape and dtype"
            )
        _bytes_of(buf)[:] = data
        if status is not None:
            status.source = local
        return True

    def _local_rank(self, world_rank: int) -> int:
        return world_rank

    def _mesh_of(self) -> _Mesh:
        if self._closed or self._mesh is None:
            raise RuntimeError(
                "descent.distributed: send/recv after destroy_process_group(); call "
                "init_process_group again first"
            )
        return self._mesh

    def start_mesh(self, root_host: str) -> None:
        """Open this rank's point-to-point listener and learn every rank's (collective)."""
        self._mesh = mesh = _Mesh(self.rank, self.timeout)
        ports = self.allgather(mesh.port)
        if self.rank == 0:
            hosts = [""] + [_host_of(self._peers[r]) for r in range(1, self.size)]
        else:
            hosts = None
        hosts = self.bcast(hosts)
        mesh.addrs = [(root_host if r == 0 else hosts[r], ports[r]) for r in range(self.size)]

    # -- groups -------------------------------------------------------------------------------
    def Split(self, color: int, key: int = 0) -> TCPGroupComm | None:  # noqa: N802
        """The ranks that pass the same colour form a group (ordered by key, then rank), as
        MPI_Comm_split; UNDEFINED joins none (None). Collective: every rank calls it."""
        self._groups += 1
        gid = self._groups  # every rank makes groups in the same order: the same id
        triples = self.allgather((color, key))
        if color == UNDEFINED:
            return None
        ranks = sorted((k, r) for r, (c, k) in enumerate(triples) if c == color)
        return TCPGroupComm(self, [r for _, r in ranks], gid)

    # -- the rest ----------------------------------------------------------------------------
    def Split_type(self, split_type: Any, key: int = 0) -> Any:  # noqa: N802
        """The ranks on this machine (by host name): an object with Get_rank / Get_size."""
        hosts = self.allgather(socket.gethostname())
        mine = [r for r, h in enumerate(hosts) if h == hosts[self.rank]]
        return _Local(mine.index(self.rank), len(mine))

    def Free(self) -> None:  # noqa: N802
        """Close the sockets (destroy_process_group)."""
        self._closed = True
        if self._mesh is not None:
            self._mesh.close()
        if self._background is not None:  # a stuck allreduce fails once its socket closes
            self._background.shutdown(wait=False)
            self._pending.clear()
        for sock in self._peers.values():
            _close_socket(sock)

    def Abort(self, code: int = 1) -> None:  # noqa: N802
        """End this process now; the other ranks see its sockets close and raise."""
        self.Free()
        os._exit(int(code) or 1)


class TCPGroupComm(TCPComm):
    """A communicator of some of the world's ranks (new_group): the same collectives, with
    the group's first rank as their root, carried by the world's point-to-point mesh in
    messages that name the group (so they never mix with the world's or another group's)."""

    def __init__(self, world: TCPComm, ranks: list[int], gid: int) -> None:
        super().__init__(ranks.index(world.rank), len(ranks), {}, world.timeout, world.where)
        self._world, self._ranks, self._gid = world, ranks, gid

    def _world_rank(self, rank: int) -> int:
        return self._ranks[rank]

    def _local_rank(self, world_rank: int) -> int:
        return self._ranks.index(world_rank)

    def _mesh_of(self) -> _Mesh:
        if self._closed:
            raise RuntimeError(
                "descent.distributed: a collective on a group after destroy_process_group(); "
                "call init_process_group and new_group again first"
            )
        return self._world._mesh_of()

    def _send(self, peer: int, kind: bytes, payload) -> None:
        data = payload if isinstance(payload, (bytes, memoryview)) else _bytes_of(payload)
        self._mesh_of().send(self._ranks[peer], kind, self._gid, 0, data)

    def _take(self, peer: int, kind: bytes) -> bytes:
        _, got_kind, data = self._mesh_of().take(self._ranks[peer], False, self._gid, 0, True,
                                                 self._fail)  # fmt: skip
        if got_kind == _ERROR:
            raise RuntimeError(data.decode("utf-8", "replace"))
        if got_kind != kind:
            raise self._mismatch(peer, kind, got_kind)
        return data

    def _recv_into(self, peer: int, kind: bytes, arr: np.ndarray) -> None:
        data = self._take(peer, kind)
        if len(data) != arr.nbytes:
            raise self._size_mismatch(peer, kind, arr, len(data))
        if data:
            _bytes_of(arr)[:] = data

    def _recv_bytes(self, peer: int, kind: bytes) -> bytes:
        return self._take(peer, kind)

    def _tell_others(self, text: str) -> None:
        for peer in range(1, self.size):
            try:
                self._send(peer, _ERROR, text.encode())
            except RuntimeError:
                pass  # that peer is gone too

    def Split(self, color: int, key: int = 0) -> TCPGroupComm | None:  # noqa: N802
        raise RuntimeError("new_group: make groups of the world's ranks (group=None)")

    def Free(self) -> None:  # noqa: N802
        self._closed = True  # the sockets are the world's


def _host_of(sock: socket.socket) -> str:
    """The address a peer connected from (an IPv4 address seen through IPv6 made plain)."""
    host = sock.getpeername()[0]
    return host[len("::ffff:") :] if host.startswith("::ffff:") else host


class _Mesh:
    """Point-to-point messages between any two ranks, for send/recv and for groups.

    Each rank listens on a port of its own (learnt by the others at init). A rank that sends
    to rank d for the first time connects to d and says who it is; each socket carries
    messages one way. A reader thread per incoming socket reads whole messages into an inbox
    as they come, so a send never waits for its recv (no deadlock when two ranks send to each
    other first) and messages of different tags or groups may be taken in any order. Messages
    from one sender with one (group, tag) keep their order (MPI's non-overtaking rule).
    """

    def __init__(self, rank: int, timeout: float) -> None:
        self.rank, self.timeout = rank, timeout
        self.addrs: list[tuple[str, int]] = []
        if socket.has_dualstack_ipv6():
            self.server = socket.create_server(("", 0), family=socket.AF_INET6,
                                               dualstack_ipv6=True)  # fmt: skip
        else:
            self.server = socket.create_server(("", 0))
        self.port = self.server.getsockname()[1]
        self.out: dict[int, socket.socket] = {}
        self.out_lock = threading.Lock()
        self.send_locks: dict[int, threading.Lock] = {}
        self.incoming: list[socket.socket] = []
        self.cond = threading.Condition()
        self.inbox: dict[tuple, collections.deque] = {}  # (src, p2p, gid, tag) -> messages
        self.lost: dict[int, str] = {}  # src -> why its socket closed
        self.seq = 0  # arrival counter: ANY_SOURCE takes the earliest message
        self.closed = False
        self.acceptor = threading.Thread(target=self._accept, name="descent-tcp-accept",
                                         daemon=True)  # fmt: skip
        self.acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._read, args=(sock,), daemon=True,
                             name="descent-tcp-recv").start()  # fmt: skip

    def _read(self, sock: socket.socket) -> None:
        """One sender's messages into the inbox until its socket closes."""
        src = -1
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.incoming.append(sock)
            magic, src = _MESH_HELLO.unpack(_read_exact(sock, _MESH_HELLO.size))
            if magic != _MAGIC:
                return
            while True:
                kind, gid, tag, n = _MESH_HEADER.unpack(_read_exact(sock, _MESH_HEADER.size))
                data = _read_exact(sock, n) if n else b""
                with self.cond:
                    self.seq += 1
                    key = (src, kind == _P2P, gid, tag)
                    self.inbox.setdefault(key, collections.deque()).append((self.seq, kind, data))
                    self.cond.notify_all()
        except (OSError, EOFError, struct.error) as e:
            with self.cond:
                if src >= 0:
                    self.lost[src] = str(e) or "connection closed"
                self.cond.notify_all()
        finally:
            sock.close()

    def _connect(self, dst: int) -> socket.socket:
        deadline = time.monotonic() + self.timeout
        while True:  # the listener exists since init: this succeeds at once unless it died
            try:
                sock = socket.create_connection(self.addrs[dst], timeout=self.timeout)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        _tune(sock, self.timeout)
        sock.sendall(_MESH_HELLO.pack(_MAGIC, self.rank))
        return sock

    def send(self, dst: int, kind: bytes, gid: int, tag: int, data) -> None:
        with self.out_lock:
            lock = self.send_locks.setdefault(dst, threading.Lock())
        with lock:  # one message at a time on a socket
            try:
                sock = self.out.get(dst)
                if sock is None:
                    sock = self.out[dst] = self._connect(dst)
                head = _MESH_HEADER.pack(kind, gid, tag, len(data))
                if len(data) <= _SMALL:
                    sock.sendall(head + bytes(data))
                else:
                    sock.sendall(head)
                    sock.sendall(data)
            except OSError as e:
                raise RuntimeError(
                    f"descent.distributed (tcp, rank {self.rank}): {_KIND_NAMES.get(kind)} "
                    f"to rank {dst} failed ({e}); did rank {dst} crash or exit?"
                ) from None

    def take(self, src: int | None, p2p: bool, gid: int, tag: int, block: bool, fail):
        """(src, kind, payload) of the first message from src (None: any rank) with this
        (p2p, group, tag); None when none is there and block is False."""
        deadline = time.monotonic() + self.timeout
        with self.cond:
            while True:
                best = None
                for key, queue in self.inbox.items():
                    if queue and key[1:] == (p2p, gid, tag) and (src is None or key[0] == src):
                        if best is None or queue[0][0] < self.inbox[best][0][0]:
                            best = key
                if best is not None:
                    _, kind, data = self.inbox[best].popleft()
                    return best[0], kind, data
                if not block:
                    return None
                if self.closed:
                    raise RuntimeError(
                        "descent.distributed: recv after destroy_process_group(); call "
                        "init_process_group again first"
                    )
                if src is not None and src in self.lost:
                    raise fail(src, f"connection closed ({self.lost[src]}) by")
                left = deadline - time.monotonic()
                if left <= 0:
                    who = "any rank" if src is None else src
                    raise fail(who, f"recv timed out after {self.timeout:g} s waiting for")
                self.cond.wait(left)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        for sock in [self.server, *self.out.values(), *self.incoming]:
            _close_socket(sock)


def _close_socket(sock: socket.socket) -> None:
    """Close a socket, waking a thread blocked in its recv or accept (a plain close on Linux
    leaves that thread waiting: the interpreter's exit would then wait for it forever)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected (a listener on some systems) or already closed
    try:
        sock.close()
    except OSError:
        pass


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
    SUM, MAX, MIN, PROD, BAND, BOR, BXOR = SUM, MAX, MIN, PROD, BAND, BOR, BXOR
    COMM_TYPE_SHARED = COMM_TYPE_SHARED
    UNDEFINED, ANY_SOURCE, COMM_NULL = UNDEFINED, ANY_SOURCE, None
    Request, Status = Request, Status

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
            "launcher; use 'env://' (MASTER_ADDR, MASTER_PORT), 'tcp://host:port' or "
            "'file:///shared/path'"
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


def address_file(init_method: str | None) -> str | None:
    """The path of a `file:///path` init_method (None for any other)."""
    if not init_method or not init_method.startswith("file://"):
        return None
    path = init_method[len("file://") :]
    if not path:
        raise ValueError(
            f"init_process_group: init_method={init_method!r} needs a path: file:///tmp/x"
        )
    return path


def _parse_host_port(text: str) -> tuple[str, int] | None:
    try:
        host, port = text.split()
        number = int(port)
    except ValueError:
        return None
    # the same machine: the loopback address (a host name need not resolve)
    return ("127.0.0.1" if host == socket.gethostname() else host), number


class FileBoard:
    """Where rank 0 announces its free port: a file (init_method='file:///path')."""

    def __init__(self, path: str) -> None:
        self.path, self.where = path, f"file://{path}"

    def publish(self, port: int) -> None:
        tmp = f"{self.path}.{os.getpid()}.tmp"  # written whole, then renamed: never half-read
        with open(tmp, "w") as f:
            f.write(f"{socket.gethostname()} {port}\n")
        os.replace(tmp, self.path)

    def lookup(self) -> tuple[str, int] | None:
        try:
            with open(self.path) as f:
                return _parse_host_port(f.read())
        except OSError:
            return None

    def close(self) -> None:  # every rank has come: the file has served (a rerun starts clean)
        try:
            os.unlink(self.path)
        except OSError:
            pass


class StoreBoard:
    """Where rank 0 announces its free port: a key of a Store (init_process_group(store=)).
    Each init through the same store uses a key of its own (every rank counts its inits)."""

    def __init__(self, store: Any, rank: int) -> None:
        generation = store.add(f"descent/tcp/inits/rank{rank}", 1)
        self.store, self.key = store, f"descent/tcp/{generation}/rank0"
        self.where = f"{type(store).__name__} key {self.key!r}"

    def publish(self, port: int) -> None:
        self.store.set(self.key, f"{socket.gethostname()} {port}")

    def lookup(self) -> tuple[str, int] | None:
        if not self.store.check([self.key]):
            return None
        return _parse_host_port(self.store.get(self.key).decode())

    def close(self) -> None:
        return None


def _tune(sock: socket.socket, timeout: float) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout)
    return sock


def connect(rank: int, size: int, host: str, port: int, timeout: float,
            board: FileBoard | StoreBoard | None = None) -> TCPComm:  # fmt: skip
    """Form the group: rank 0 listens at host:port and waits for the others, who connect.
    With a `board` (init_method='file:///path': a file every rank can read; store=: a key of
    the store), rank 0 listens on a free port and announces its host name and port there.

    Raises:
        RuntimeError: nobody came (or rank 0 could not be reached) within `timeout` seconds,
            naming the address and the missing ranks; a rank or world size that disagrees.
    """
    where = f"{host}:{port}" if board is None else board.where
    if not 0 <= rank < size:
        raise ValueError(f"init_process_group: rank={rank} is not in 0..{size - 1}")
    deadline = time.monotonic() + timeout
    if rank == 0:
        return _listen(size, host, port, timeout, deadline, where, board)
    last: Exception | str | None = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(
                f"init_process_group: rank {rank} could not reach rank 0 at {where} within "
                f"{timeout:g} s ({last}); is rank 0 running, and are MASTER_ADDR / "
                "MASTER_PORT (or the tcp:// or file:// address) the same on every rank?"
            )
        if board is not None:  # read it again each time: a stale file's port is refused
            found = board.lookup()
            if found is None:
                last = "rank 0 has not written its address yet"
                time.sleep(min(0.02, max(left, 0)))
                continue
            host, port = found
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
    comm = TCPComm(rank, size, {0: sock}, timeout, where)
    comm.start_mesh(host)
    return comm


def _listen(size: int, host: str, port: int, timeout: float, deadline: float,
            where: str, board: FileBoard | StoreBoard | None) -> TCPComm:  # fmt: skip
    if board is not None:
        port = 0  # a free port, announced in the file
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
        if board is not None:
            board.publish(server.getsockname()[1])
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
        if board is not None:
            board.close()
    comm = TCPComm(0, size, dict(sorted(peers.items())), timeout, where)
    comm.start_mesh(host)
    return comm
