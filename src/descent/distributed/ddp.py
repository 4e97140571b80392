"""DistributedDataParallel: average gradients across ranks, overlapped with backward.

How it works (the design of `torch.nn.parallel.DistributedDataParallel`, on MPI):

1. At construction every rank gathers the others' model description (parameter and buffer
   names, shapes, dtypes). A disagreement fails at once on every rank, naming the first
   differing tensor and the ranks, instead of hanging or corrupting memory in the first
   allreduce. Then rank 0's parameters and buffers are broadcast, so all replicas start equal.
2. Gradients are packed into contiguous flat buckets of about `bucket_mb` MiB, filled in
   REVERSE parameter order (the order backward produces them: last layer first). The first
   bucket is kept small (1 MiB, as torch) so communication starts as early as possible.
3. While recording a forward pass, each parameter is routed through a tiny graph node
   (`_GradReady`) that the engine reaches exactly once, when that parameter's gradient of this
   backward is complete. Its backward copies the gradient into the parameter's slot of its
   bucket; when a bucket is full it starts a non-blocking `Iallreduce` (SUM) of it, so
   communication runs while backward computes the earlier layers. Buckets start strictly in
   order, so every rank issues the same sequence of collectives (an MPI requirement).
4. A last node (`_Finalize`), reached after every `_GradReady`, waits for the outstanding
   requests, divides by the world size and stores the averaged gradients into `p.grad`
   (views of the bucket: no extra copy). By the time `loss.backward()` returns, `p.grad` holds
   the global-batch gradient and the optimizer steps as usual.

Why graph nodes and not leaf hooks: descent's engine runs leaf hooks after the whole pass, which
would leave nothing to overlap with. A `_GradReady` node gets a creation index just below the
first op that used its parameter (found by walking the recorded graph once after forward), and
the engine processes nodes by descending index, so it fires as soon as the gradient is final.

Semantics (documented in docs/distributed.md):
* Gradients accumulate as usual: inside `no_sync()` nothing is communicated and `p.grad`
  accumulates locally; the first synchronised backward averages the accumulated gradients.
* A parameter that gets no gradient on a rank in a synchronised backward contributes zeros
  (torch's `find_unused_parameters=True` behaviour, always on); after the step every
  synchronised parameter has a `.grad` (zeros when no rank used it). Freeze a parameter with
  `requires_grad=False` to leave it out.
* One forward per synchronised backward; `create_graph=True` through DDP is not supported.
* `state_dict()` / `load_state_dict()` pass straight to the wrapped module: keys carry no
  'module.' prefix, so checkpoints load with or without DDP.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np

from .. import autograd, backend
from ..tensor import Tensor
from . import comm as _c

_MiB = 1024 * 1024
_FIRST_BUCKET_BYTES = 1 * _MiB  # torch's dist._DEFAULT_FIRST_BUCKET_BYTES


class _Bucket:
    """A contiguous flat gradient buffer shared by several parameters of one dtype."""

    __slots__ = (
        "index",
        "dtype",
        "params",
        "offsets",
        "numel",
        "pending",
        "buffer",
        "host",
        "request",
    )

    def __init__(self, index: int, dtype) -> None:
        self.index = index
        self.dtype = dtype
        self.params: list[int] = []  # positions in DDP._params
        self.offsets: list[int] = []
        self.numel = 0
        self.pending = 0  # parameters whose gradient has not arrived this round
        self.buffer: Any = None  # the flat gradient (numpy or cupy), allocated per round
        self.host: Any = None  # the NumPy array handed to MPI (== buffer on CPU)
        self.request: Any = None


class _GradReady(autograd.Function):
    """Graph node standing for one parameter during a DDP forward: backward = gradient is final.

    d/dp: passes nothing on (its only parent is the `_Finalize` node); the gradient itself is
    handed to the DDP bucket.
    """

    __slots__ = ("ddp", "pos")
    differentiable_backward = False
    keeps_class = True  # (the hook walk below finds these by `type(parent) is _GradReady`)

    def backward(self, gy, ops):
        self.ddp._mark_ready(self.pos, gy)
        # A token that leads the engine to _Finalize (0-d, the shape recorded for the edge).
        return backend.get_array_module(gy).zeros((), dtype=gy.dtype)

    def __lt__(self, other) -> bool:  # heap tie-break between parameters first used by one op
        if isinstance(other, _GradReady):
            return self.pos < other.pos
        return NotImplemented

    def __gt__(self, other) -> bool:
        if isinstance(other, _GradReady):
            return self.pos > other.pos
        return NotImplemented


class _Finalize(autograd.Function):
    """Reached after every `_GradReady` of one forward: wait for the allreduces, store grads."""

    __slots__ = ("ddp",)
    differentiable_backward = False

    def backward(self, gy, ops):
        self.ddp.finish_gradient_synchronization()
        return ()


def _new_node(cls, parents: tuple, in_shapes: tuple):
    """A graph node built by hand: what `Function.apply` records, without running a forward
    (the engine's `record_node` sets its fields; `_schedule` later moves its index)."""
    fn = object.__new__(cls)
    autograd._record_node(fn, parents, in_shapes)
    return fn


def _iter_tensors(obj):
    """Tensors inside a forward's output (a Tensor, or nested tuples/lists/dicts of them)."""
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, Tensor):
            yield o
        elif isinstance(o, (tuple, list)):
            stack.extend(o)
        elif isinstance(o, dict):
            stack.extend(o.values())


class DistributedDataParallel:
    """Data-parallel wrapper: each rank runs its own batch, gradients are averaged.

    Args:
        model: a descent Module (needs `named_parameters()`; `named_buffers()` if it has any).
        bucket_mb: target size of a gradient bucket in MiB (torch's default 25). Smaller
            buckets start communicating earlier; larger ones pay the per-message latency fewer
            times.
        broadcast_buffers: copy rank 0's buffers (e.g. BatchNorm running statistics) to all
            ranks at every forward in training mode, as torch does.

    Raises:
        RuntimeError: the ranks disagree on the model (names, shapes or dtypes), naming the
            first differing tensor and the ranks.

    Example:
        >>> ddp = DistributedDataParallel(model)
        >>> logits, loss = ddp(x_local, y_local)   # forward of this rank's shard
        >>> loss.backward()                         # grads averaged across ranks, overlapped
        >>> opt.step()
    """

    def __init__(self, model, bucket_mb: float = 25.0, broadcast_buffers: bool = True) -> None:
        if bucket_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_mb must be > 0, got {bucket_mb}")
        self.module = model
        self.bucket_mb = float(bucket_mb)
        self.broadcast_buffers = bool(broadcast_buffers)
        self._comm = _c.communicator()
        self.world_size = 1 if self._comm is None else self._comm.Get_size()
        self.rank = 0 if self._comm is None else self._comm.Get_rank()
        named = list(model.named_parameters())
        self._params = [p for _, p in named if p.requires_grad]
        self._param_names = [n for n, p in named if p.requires_grad]
        self._buffers = list(model.named_buffers()) if hasattr(model, "named_buffers") else []
        self._require_sync = True
        self._round_open = False
        self._ready: list[bool] = [False] * len(self._params)
        self._next_launch = 0
        self._inflight: list[Any] = []
        #: Counters for benchmarks: synchronised steps, seconds blocked waiting for allreduces
        #: at the end of backward, seconds spent starting/progressing them inside backward.
        #: `early_buckets` counts allreduces started while backward still had gradients to
        #: compute (the overlapped ones; at most buckets - 1 per step).
        self.stats = {"syncs": 0, "wait_s": 0.0, "comm_call_s": 0.0, "bytes": 0, "early_buckets": 0}
        if self._comm is not None:
            self._verify_same_model(named)
            self._broadcast_state(named)
        self._buckets, self._where = self._build_buckets()

    # -- set-up --------------------------------------------------------------------------
    def _verify_same_model(self, named) -> None:
        """Fail on every rank, with the first difference, when the replicas differ."""
        desc = [
            ("parameter", n, tuple(p.shape), str(p._data.dtype), bool(p.requires_grad))
            for n, p in named
        ]
        desc += [("buffer", n, tuple(b.shape), str(b._data.dtype), False) for n, b in self._buffers]
        everyone = _c.all_gather_object(desc)
        ref = everyone[0]
        for r, other in enumerate(everyone[1:], start=1):
            if other == ref:
                continue
            for i in range(max(len(ref), len(other))):
                a = ref[i] if i < len(ref) else None
                b = other[i] if i < len(other) else None
                if a != b:
                    break

            def show(d):
                if d is None:
                    return "nothing (fewer tensors)"
                kind, name, shape, dtype, rg = d
                return f"{kind} '{name}' shape {shape} {dtype}" + (
                    "" if rg or kind == "buffer" else " (frozen)"
                )

            raise RuntimeError(
                f"DistributedDataParallel: ranks disagree on the model at tensor #{i}: rank 0 "
                f"has {show(a)}, rank {r} has {show(b)} ({len(ref)} vs {len(other)} tensors). "
                "Every rank must build the same model (same config and vocabulary) before "
                "wrapping it."
            )

    def _broadcast_state(self, named) -> None:
        """Start every replica from rank 0's parameters and buffers."""
        for _, p in named:
            self._bcast_array(p)
        for _, b in self._buffers:
            self._bcast_array(b)

    def _bcast_array(self, t) -> None:
        if isinstance(t._data, np.ndarray) and not t._data.flags.c_contiguous:
            t._data = np.ascontiguousarray(t._data)
        _c.broadcast(t, src=0)

    def _build_buckets(self):
        """Group parameters into buckets by dtype, in reverse order (backward's order)."""
        cap = self.bucket_mb * _MiB
        buckets: list[_Bucket] = []
        open_by_dtype: dict[Any, _Bucket] = {}
        where: list[tuple[int, int, int]] = [(0, 0, 0)] * len(self._params)
        for pos in reversed(range(len(self._params))):
            p = self._params[pos]
            dtype = p._data.dtype
            b = open_by_dtype.get(dtype)
            nbytes = p._data.size * dtype.itemsize
            limit = _FIRST_BUCKET_BYTES if not buckets or b is buckets[0] else cap
            limit = min(limit, cap)
            if b is not None and b.numel * dtype.itemsize + nbytes > limit and b.numel > 0:
                b = None
            if b is None:
                b = _Bucket(len(buckets), dtype)
                buckets.append(b)
                open_by_dtype[dtype] = b
            where[pos] = (b.index, b.numel, p._data.size)
            b.params.append(pos)
            b.offsets.append(b.numel)
            b.numel += p._data.size
        return buckets, where

    # -- delegation ------------------------------------------------------------------------
    def __getattr__(self, name: str):
        # parameters(), named_parameters(), train(), eval(), zero_grad(), config, generate...
        # reach the wrapped module (only called for names not found on the wrapper).
        if name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)

    def state_dict(self, *args, **kwargs):
        """The wrapped module's state dict: keys WITHOUT a 'module.' prefix."""
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        """Load into the wrapped module (keys without a 'module.' prefix)."""
        return self.module.load_state_dict(*args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"DistributedDataParallel(world_size={self.world_size}, "
            f"buckets={len(self._buckets)}, bucket_mb={self.bucket_mb:g},\n"
            f"  module={self.module!r})"
        )

    @property
    def bucket_sizes(self) -> list[int]:
        """Bytes per bucket, in launch order."""
        return [b.numel * b.dtype.itemsize for b in self._buckets]

    @contextlib.contextmanager
    def no_sync(self):
        """Skip gradient averaging inside the block: gradients accumulate locally.

        For gradient accumulation over k micro-batches: run k-1 of them inside `no_sync()`
        and the last outside; the last backward averages the accumulated gradients.
        """
        prev = self._require_sync
        self._require_sync = False
        try:
            yield
        finally:
            self._require_sync = prev

    # -- forward ---------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """Run the wrapped module, recording the nodes that start gradient allreduces."""
        if self._round_open:
            if any(self._ready):  # a previous backward stopped before its end: complete it
                self.finish_gradient_synchronization()
            else:  # a forward that was never followed by backward: nothing to synchronise
                self._round_open = False
        if self._comm is None:
            return self.module(*args, **kwargs)
        training = getattr(self.module, "training", True)
        if self.broadcast_buffers and self._buffers and training and self.world_size > 1:
            for _, b in self._buffers:
                self._bcast_array(b)
        if not (self._require_sync and autograd._is_grad_enabled() and self._params):
            return self.module(*args, **kwargs)

        # Route every parameter through a _GradReady node while the forward is recorded.
        finalize = _new_node(_Finalize, (), ())
        finalize.ddp = self
        nodes = []
        for pos, p in enumerate(self._params):
            if p._node is not None:
                raise RuntimeError(
                    f"DistributedDataParallel: parameter '{self._param_names[pos]}' is not a "
                    "leaf (is a forward of this model already running?)"
                )
            gr = _new_node(_GradReady, (finalize,), ((),))
            gr.ddp = self
            gr.pos = pos
            nodes.append(gr)
            p._node = gr
        try:
            out = self.module(*args, **kwargs)
        finally:
            for p in self._params:
                p._node = None
        self._schedule(out, nodes, finalize.index)
        self._open_round()
        return out

    def _schedule(self, out, nodes, floor: int) -> None:
        """Give each _GradReady an index just below the first op that consumed its parameter.

        The engine pops nodes by descending index; a node placed right below its parameter's
        earliest consumer runs as soon as every consumer has delivered its gradient.
        """
        first_use: list[Any] = [None] * len(nodes)  # by parameter position
        function, grad_ready = autograd.Function, _GradReady
        seen: set = set()
        stack = []
        for t in _iter_tensors(out):
            node = t._node
            if node is not None and node not in seen and node.index > floor:
                seen.add(node)
                stack.append(node)
        while stack:  # explicit stack: graphs may be deep
            node = stack.pop()
            idx = node.index
            for parent in node.parents:
                if type(parent) is grad_ready:
                    pos = parent.pos
                    if nodes[pos] is parent and (first_use[pos] is None or idx < first_use[pos]):
                        first_use[pos] = idx
                elif (
                    isinstance(parent, function)  # not a leaf tensor, not None
                    and parent.index > floor  # recorded before this forward: not ours
                    and parent not in seen
                ):
                    seen.add(parent)
                    stack.append(parent)
        for gr, idx in zip(nodes, first_use):
            if idx is not None:
                # Re-record the node just below its first consumer: between two integer
                # indices, so it never ties with a real op, and above its parent (_Finalize).
                autograd._record_node(gr, gr.parents, gr.in_shapes, index=idx - 0.5)

    def _open_round(self) -> None:
        self._round_open = True
        self._ready = [False] * len(self._params)
        self._next_launch = 0
        for b in self._buckets:
            b.pending = len(b.params)
            b.buffer = None
            b.host = None
            b.request = None

    # -- backward: buckets -------------------------------------------------------------
    def _mark_ready(self, pos: int, gy) -> None:
        """The gradient of parameter `pos` for this backward is complete: put it in its bucket."""
        if not self._round_open:
            raise RuntimeError(
                "DistributedDataParallel: a gradient arrived after synchronisation finished. "
                "Run one forward per synchronised backward (use no_sync() to accumulate), and "
                "do not backward twice through one DDP forward."
            )
        if self._ready[pos]:
            raise RuntimeError(
                f"DistributedDataParallel: parameter '{self._param_names[pos]}' received its "
                "gradient twice in one synchronised backward (two forwards, one backward?). "
                "Wrap all but the last micro-batch in no_sync()."
            )
        p = self._params[pos]
        if p._hooks:  # user hooks on the parameter see its gradient, as on a leaf
            gt = Tensor._wrap(gy)
            for hook in p._hooks:
                r = hook(gt)
                if r is not None:
                    gt = r
            gy = gt._data
        self._ready[pos] = True
        bi, off, n = self._where[pos]
        b = self._buckets[bi]
        self._put(b, off, n, gy if p.grad is None else p.grad._data + gy)
        b.pending -= 1
        t0 = time.perf_counter()
        if b.pending == 0:
            before = self._next_launch
            self._launch_ready()
            # Buckets that can overlap the rest of backward: all but the one holding the
            # last gradient (that one starts only when backward is done).
            launched = self._next_launch - before
            last = self._next_launch == len(self._buckets)
            self.stats["early_buckets"] += launched - (1 if last and launched else 0)
        elif self._inflight:
            # Open MPI's non-blocking collectives advance only inside MPI calls: poke them.
            _c.mpi_module().Request.Testall(self._inflight)
        self.stats["comm_call_s"] += time.perf_counter() - t0

    def _put(self, b: _Bucket, off: int, n: int, g) -> None:
        if b.buffer is None:
            xp = backend.get_array_module(g)
            b.buffer = xp.empty(b.numel, dtype=b.dtype)
        b.buffer[off : off + n] = g.reshape(-1)

    def _launch_ready(self) -> None:
        """Start allreduces of full buckets, strictly in bucket order (same on every rank)."""
        MPI = _c.mpi_module()
        while self._next_launch < len(self._buckets):
            b = self._buckets[self._next_launch]
            if b.pending:
                break
            if b.buffer is None:  # every gradient in it was None-filled: zeros
                b.buffer = np.zeros(b.numel, dtype=b.dtype)
            b.host = b.buffer if isinstance(b.buffer, np.ndarray) else backend.as_numpy(b.buffer)
            b.request = self._comm.Iallreduce(MPI.IN_PLACE, b.host, op=MPI.SUM)
            self._inflight.append(b.request)
            self.stats["bytes"] += b.host.nbytes
            self._next_launch += 1

    def finish_gradient_synchronization(self) -> None:
        """Wait for the outstanding allreduces and store averaged gradients into `p.grad`.

        Called automatically at the end of a synchronised backward; call it yourself only if
        you run backward through something that bypasses the wrapped forward's graph.
        Parameters that got no gradient on this rank contribute zeros.
        """
        if not self._round_open:
            return
        t0 = time.perf_counter()
        for pos, ready in enumerate(self._ready):
            if not ready:  # unused this step on this rank: contribute zeros (or its old grad)
                p = self._params[pos]
                bi, off, n = self._where[pos]
                b = self._buckets[bi]
                if p.grad is not None:
                    self._put(b, off, n, p.grad._data)
                elif b.buffer is None:
                    xp = backend.get_array_module(p._data)
                    b.buffer = xp.zeros(b.numel, dtype=b.dtype)
                else:
                    b.buffer[off : off + n] = 0
                b.pending -= 1
                self._ready[pos] = True
        self._launch_ready()
        t1 = time.perf_counter()
        _c.mpi_module().Request.Waitall(self._inflight)
        t2 = time.perf_counter()
        self._inflight = []
        inv = self.world_size
        for b in self._buckets:
            host = b.host
            host /= inv  # the average; identical arithmetic on every rank keeps replicas equal
            buf = b.buffer if host is b.buffer else backend.get_array_module(b.buffer).asarray(host)
            for pos, off in zip(b.params, b.offsets):
                p = self._params[pos]
                p.grad = Tensor._wrap(buf[off : off + p._data.size].reshape(p._data.shape))
            b.buffer = b.host = b.request = None
        self._round_open = False
        self.stats["syncs"] += 1
        self.stats["wait_s"] += t2 - t1
        self.stats["comm_call_s"] += (t1 - t0) + (time.perf_counter() - t2)


#: The short name (PyTorch users write DDP).
DDP = DistributedDataParallel
