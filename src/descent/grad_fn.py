"""PyTorch's view of a graph node (`tensor.grad_fn`): `name()` and `next_functions`.

descent's nodes (`descent.autograd.Function`) record their parents as they are: per input,
the node that produced it, the leaf tensor itself, or None. PyTorch shows the same graph
through two names that programs written for it read:

* `grad_fn.name()` is a METHOD there ("SumBackward0"), while descent's own code reads
  `node.name` as an attribute. `NodeName` is a `str` (descent's name, "MulScalarBackward",
  which error messages and the explain tools print) that can also be called: `name()` gives
  PyTorch's name ("MulBackward0"), looked up when called (descent.grad_fn_names).
* `grad_fn.next_functions` is a tuple of `(node, 0)` pairs, one per input: the producing node,
  an `AccumulateGrad` for a leaf that requires grad (its `.variable` is the leaf), or None for an
  input that gets no gradient. It is computed when asked for, from `node.parents`: recording a
  node costs nothing more.
* `type(grad_fn).__name__` is PyTorch's name too ("SumBackward0": torchviz labels its drawing
  with it). A node handed to the user (`Tensor.grad_fn`, `next_functions`) gets, at that
  moment, a subclass of its op class named as PyTorch names the node (`torch_class`); it adds
  nothing but the name, and `node.op_class` still says which op made it.

This module sits below the engine and imports nothing from descent.
"""

from __future__ import annotations

import weakref

from .grad_fn_names import _MARKED, _MASKED_SELECT, SCALAR_INPUT, getitem_steps, torch_name

# The nodes that stand for one output of a multi-output custom Function: descent records them as
# slices of the function's packed output (autograd_torch.ctx_apply), PyTorch shows the
# function's node itself, so their name() and next_functions are the function's.
OUTPUT_OF: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class NodeName(str):
    """A node's name: a `str` (descent's `node.name`) that is also callable (`grad_fn.name()`,
    PyTorch's spelling), returning PyTorch's name for the node (the plain string when made
    without a node: a custom Function's "CubeBackward", which is PyTorch's too)."""

    def __new__(cls, text: str, node=None):
        s = super().__new__(cls, text)
        s.node = node
        return s

    def __call__(self) -> str:
        node = self.node
        if node is None:
            return str.__str__(self)
        owner = OUTPUT_OF.get(node) if OUTPUT_OF else None
        return torch_name(node) if owner is None else owner.name()


# (op class, PyTorch's name) -> the renamed subclass (at most one per name an op class shows)
_RENAMED: dict = {}
# Nodes that keep their class: the ops a descent.compile recording holds, whose program tells
# ops apart by their class (compiler/recorder.py pins them)
_PINNED: weakref.WeakSet = weakref.WeakSet()


def pin_class(node) -> None:
    """Keep `node`'s class as it is when the user reads it (`torch_class` leaves it)."""
    _PINNED.add(node)


def torch_class(node):
    """`node`, its class made the subclass of its op class named as PyTorch's node is named
    (`Sum` -> `SumBackward0`, a `GetItem` -> `SelectBackward0` or `SliceBackward0`), so that
    `type(t.grad_fn).__name__` reads as in PyTorch. Done once per node, when the user first
    reads it; the name never changes after the op has recorded the node."""
    if _MARKED:
        node = _shared(node)[0]
    cls = type(node)
    op = cls.op_class
    if cls is not op or op.keeps_class or (_PINNED and node in _PINNED):
        return node
    name = node.name().rpartition("::")[2]  # torch::autograd::CopySlices -> CopySlices
    if name == cls.__name__ or not name.isidentifier():
        return node
    sub = _RENAMED.get((op, name))
    if sub is None:
        sub = type(op)(name, (op,), {"__slots__": (), "op_class": op, "__module__": op.__module__,
                                     "__doc__": op.__doc__})  # fmt: skip
        _RENAMED[(op, name)] = sub
    try:
        node.__class__ = sub
    except TypeError:  # a layout the swap refuses (none of descent's ops): the name stays
        pass
    return node


# Nodes whose PyTorch inputs are not their own parents (copy_'s node: descent adds a zero link
# of the old value to a clone of the source, PyTorch's CopyBackwards points at both directly)
# are marked in grad_fn_names' table with (name, parents): one weak-dict entry per node, an op's
# whole cost (a split of 3 pieces marks 3)


def mark_edges(node, name: str, parents: tuple) -> None:
    """Name `node` `name` and make its `next_functions` list `parents` (nodes, leaves or None)
    instead of its own."""
    _MARKED[node] = (name, tuple(parents))


def _shown_parents(node):
    """The parents `mark_edges` / `show_as` gave `node`, or None."""
    m = _MARKED.get(node) if _MARKED else None
    return m[1] if type(m) is tuple else None


def show_as(out, name: str, inputs: tuple):
    """Show `out`'s node, the last node of an op descent composes from others (addmm is an add
    of a product, hardtanh a where), as PyTorch's one node for the op: named `name`, with
    `next_functions` over the op's `inputs` (Tensors; None where PyTorch lists an input without
    a gradient). Only what the user reads changes (name(), repr, the class name, the walk);
    backward runs through descent's nodes. Returns `out`; nothing is marked when the op
    recorded no node of its own (its result is an input, or nothing requires grad)."""
    node = getattr(out, "_node", None)
    if node is None:
        return out
    parents = []
    for t in inputs:
        tn = getattr(t, "_node", None)
        if tn is node:  # the result is (a node of) an input: not this op's own node
            return out
        parents.append(tn if tn is not None else t if getattr(t, "_rg", False) else None)
    _MARKED[node] = (name, tuple(parents))
    return out


def show_copy_slices(node, old_base, op) -> None:
    """Show `node` (a base's new value after an in-place op `op` on a view of it) as PyTorch's
    CopySlices: its `next_functions` are the base's old node (`old_base`: a node, a leaf or
    None), then `op`'s inputs after the view (mul_(2): the number's None)."""
    rest: tuple = ()
    if op is not None:
        shown = _shown_parents(op)
        rest = tuple((op.parents if shown is None else shown)[1:])
        if shown is None and op.op_class.__name__ in SCALAR_INPUT:
            rest += (None,)
    _MARKED[node] = ("torch::autograd::CopySlices", (old_base, *rest))


def show_pieces(pieces, name: str, x) -> None:
    """Show the pieces of split / chunk / unbind (slices of `x`, one node each here) as
    PyTorch's one node `name` over `x` that all of them share: `a.grad_fn is b.grad_fn`, and
    piece k is its output k (`b.output_nr`, the index in a `next_functions` pair). The node
    shown is the first piece's (descent's own). With two or more pieces whose PyTorch node is
    a cat / stack of their gradients (`_CAT_NAMES`), or the sum of each result's backward over
    one input (`_SUM_NAMES`: aminmax's, each result one node over x here), the pieces' nodes get
    one `PieceGroup` (`node.group`): the engine runs them as that one node (autograd_backward's
    `run_group`), and node hooks on the shared node are the group's. Other shared nodes refuse
    node hooks (`_refuse_shared`: they would see one output's gradient, PyTorch's see all)."""
    first, count, nodes = None, 0, []
    for k, p in enumerate(pieces):
        node = getattr(p, "_node", None)
        if node is None or getattr(x, "_node", None) is node:
            nodes.append(None)
            continue
        # the other pieces' entries hold the first piece's node (alive while any piece's is, as
        # PyTorch's shared node); its own holds None (an entry must not hold its weak key)
        _MARKED[node] = (name, (x._node if x._node is not None else x if x._rg else None,),
                         first, k)  # fmt: skip
        nodes.append(node)
        count += 1
        if first is None:
            first = node
    if count > 1:
        cat = name in _CAT_NAMES and all(n is not None and n.op_class.__name__ == "GetItem"
                                         and n.basic for n in nodes)  # fmt: skip
        summed = not cat and name in _SUM_NAMES and count == len(nodes) and all(
            len(n.parents) == 1 and n.parents[0] is first.parents[0]
            and n.in_shapes == first.in_shapes for n in nodes)  # fmt: skip
        if cat or summed:
            group = PieceGroup(nodes, summed)
            for n in nodes:
                if n is not None:
                    n.group = group
            _GROUP.pop(first, None)
        else:
            _GROUP[first] = count


# PyTorch's nodes for pieces whose backward is one cat (stack) of the pieces' gradients, None
# pieces' as zeros: a piece's -0.0 stays -0.0 (tensor_split's pieces are SliceBackward0s there,
# summed by its engine: +0.0, as descent's separate slices)
_CAT_NAMES = frozenset(
    ("SplitBackward0", "SplitWithSizesBackward0", "UnsafeSplitBackward0",
     "UnsafeSplitWithSizesBackward0", "UnbindBackward0")
)  # fmt: skip


# PyTorch's nodes over several results whose input gradient is the sum of each result's
# backward (a result no gradient reached adds nothing), descent's results being one node each
_SUM_NAMES = frozenset(("AminmaxBackward0",))


class PieceGroup:
    """The pieces of one split / chunk / unbind as PyTorch's one node over them: `refs` holds a
    weak reference per output (None for a piece without a node of its own), `hooks` the node
    hooks registered on the shared node (`grad_fn.register_hook` / `register_prehook`), which
    see every output's gradient at once (None for a piece no gradient reached). The nodes hold
    the group; it holds them weakly (no cycle: the graph is freed by reference counts).
    `summed`: x's gradient is the sum of the pieces' own backward (aminmax), not their cat."""

    __slots__ = ("refs", "hooks", "idxs", "order", "summed")

    def __init__(self, nodes, summed: bool = False) -> None:
        self.summed = summed
        self.refs = tuple(None if n is None else weakref.ref(n) for n in nodes)
        self.idxs = None if summed else tuple(None if n is None else n.idx for n in nodes)
        self.hooks: list | None = None
        # (output index, hook) per Tensor.register_hook on a piece, in registration order: PyTorch
        # runs the tensor hooks of a node's outputs in that order, then their retain_grad
        self.order: list = []

    def nodes(self) -> list:
        """The pieces' live nodes per output (None where dead or without a node)."""
        return [None if r is None else r() for r in self.refs]


# a shared node whose pieces are not a `PieceGroup` (split pieces that are not basic slices,
# aminmax's results that are not one node each over x) -> how many
_GROUP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _refuse_shared(node, what: str) -> None:
    """A node hook on a shared node that descent does not run as one: the hook would see one
    output's gradient where PyTorch's sees all of them."""
    n = _GROUP.get(node) if _GROUP else None
    if n:
        name = type(node).__name__
        raise RuntimeError(
            f"{name}.{what}: descent computes the {n} outputs this node shows in separate "
            "backward steps, so a hook on their shared node would see one output's gradient "
            "where PyTorch's sees all of them; register a hook on each output tensor instead "
            "(t.register_hook(fn) gets that output's gradient)"
        )


def _shared(node) -> tuple:
    """(the node shown for `node`, its output index): a split piece's is the first piece's."""
    m = _MARKED.get(node)
    if type(m) is tuple and len(m) == 4:
        return (node if m[2] is None else m[2]), m[3]
    return node, 0


def output_nr(node) -> int:
    """`Tensor.output_nr`: which output of its node (as PyTorch shows it) a tensor is."""
    return _shared(node)[1] if _MARKED else 0


def node_repr(node) -> str:
    """PyTorch's repr of a grad_fn: `<MulBackward0 object at 0x...>` (its class's name:
    `<CopySlices object ...>` where name() is "torch::autograd::CopySlices")."""
    return f"<{node.name().rpartition('::')[2]} object at {hex(id(node))}>"


class AccumulateGrad:
    """PyTorch's node for a leaf in `next_functions`: `.variable` is the leaf tensor.

    descent delivers a leaf's gradient into `.grad` in the engine itself and has no such node
    in its graph; this stand-in is made when `next_functions` is read, and while it lives every
    read returns the same one for the same leaf, as PyTorch's (torchviz keys its drawing on
    `id(fn)`). Two stand-ins for the same leaf also compare equal.
    """

    __slots__ = ("variable", "__weakref__")

    def __init__(self, variable) -> None:
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        return ()

    def __eq__(self, other) -> bool:
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self) -> int:
        return hash((AccumulateGrad, id(self.variable)))

    def __repr__(self) -> str:  # PyTorch's (printed by its "Neural Networks" tutorial)
        return f"<AccumulateGrad object at {id(self):#x}>"


# id(leaf) -> its live AccumulateGrad (which holds the leaf, so the id cannot be reused first)
_ACCUMULATORS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def accumulate_grad(leaf) -> AccumulateGrad:
    """The leaf's AccumulateGrad stand-in: the live one if there is one, else a new one."""
    acc = _ACCUMULATORS.get(id(leaf))
    if acc is None or acc.variable is not leaf:
        acc = _ACCUMULATORS[id(leaf)] = AccumulateGrad(leaf)
    return acc


class ShownNode:
    """A node of PyTorch's graph that descent's graph does not have, shown in `next_functions`
    where PyTorch's is: `x[0, 1]` is one node here, PyTorch's select of a select (the inner
    SelectBackward0 is a ShownNode); `F.linear`'s weight goes through PyTorch's TBackward0,
    cross_entropy's input through its LogSoftmaxBackward0, `2 / x` is its ReciprocalBackward0
    times 2. It has PyTorch's class name, `name()`, `next_functions` and `metadata`; backward
    does not pass through it (descent's node above it computes the whole step), so hooks on it
    are refused. Made when the node above is first walked, the same object on every read."""

    __slots__ = ("next_functions", "metadata", "__weakref__")

    def __init__(self, next_functions: tuple) -> None:
        self.next_functions = next_functions
        self.metadata: dict = {}

    def name(self) -> str:
        return type(self).__name__

    def _no_hooks(self, hook):
        raise RuntimeError(
            f"{type(self).__name__}: descent computes this step inside the node above it "
            "(it has no node of its own to run hooks on); register the hook on the tensor "
            "(Tensor.register_hook) or on the node above"
        )

    register_hook = register_prehook = _no_hooks

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"


_SHOWN_CLASSES: dict = {}


def _shown(name: str, parent, node_class) -> ShownNode:
    """A ShownNode named `name` over `parent` (a node, a leaf, a ShownNode or None)."""
    cls = _SHOWN_CLASSES.get(name)
    if cls is None:
        cls = _SHOWN_CLASSES[name] = type(name, (ShownNode,), {"__slots__": ()})
    return cls((_edge(parent, node_class),))


def _edge(p, node_class) -> tuple:
    if p is None or isinstance(p, ShownNode):
        return (p, 0)
    if isinstance(p, node_class):
        return (torch_class(p), output_nr(p))
    return (accumulate_grad(p), 0)


# node -> its parents with the ShownNodes PyTorch's graph has below it (made on the first walk)
_INSERTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _with_shown(node, key: str, parents: tuple, node_class):
    """`parents` with PyTorch's nodes that descent's `node` computes itself put in between, or
    None where PyTorch's graph has none."""
    got = _INSERTED.get(node)
    if got is not None:
        return got
    if key in ("GetItem", "IndexGetItem"):
        if node in _MASKED_SELECT or len(parents) != 1:
            return None
        steps = getitem_steps(node)
        if not steps or len(steps) < 2:
            return None
        below = parents[0]
        for name in steps[:-1]:
            below = below if below is None else _shown(name, below, node_class)
        new = (below,)
    elif key == "Linear":  # addmm(bias, x, w.t()) / mm(x, w.t()): the weight's TBackward0
        if torch_name(node) not in ("AddmmBackward0", "MmBackward0") or parents[-1] is None:
            return None
        new = (*parents[:-1], _shown("TBackward0", parents[-1], node_class))
    elif key == "SoftmaxCrossEntropy":  # nll_loss(log_softmax(x)) without label smoothing
        if (getattr(node, "smoothing", 0) or len(parents) != 1 or parents[0] is None
                or len(node.in_shapes[0]) != 2):  # fmt: skip
            return None
        new = (_shown("LogSoftmaxBackward0", parents[0], node_class),)
    elif key == "PoolGather":  # adaptive_max_pool1d: squeeze(adaptive_max_pool2d(unsqueeze))
        if torch_name(node) != "SqueezeBackward1" or parents[0] is None:
            return None
        inner = _shown("UnsqueezeBackward0", parents[0], node_class)
        new = (_shown("AdaptiveMaxPool2DBackward0", inner, node_class),)
    elif key == "RDivScalar":  # c / x: reciprocal(x) * c
        if torch_name(node) != "MulBackward0" or parents[0] is None:
            return None
        new = (_shown("ReciprocalBackward0", parents[0], node_class), None)
    else:
        return None
    _INSERTED[node] = new
    return new


_CONVS = frozenset({"Conv2d", "ConvNd", "ConvTransposeNd"})
_HAS_SHOWN = frozenset({"GetItem", "IndexGetItem", "Linear", "SoftmaxCrossEntropy", "RDivScalar",
                        "PoolGather"})


def next_functions(node, node_class) -> tuple:
    """PyTorch's `next_functions` for `node`: per input `(node, 0)`, `(AccumulateGrad(leaf), 0)`
    or `(None, 0)`; `node_class` is the engine's Function (passed in: this module sits below
    the engine). As in PyTorch, an op with a Python-number operand (x * 2) ends with
    `(None, 0)` for it, and `where`'s condition (not differentiable) is not listed."""
    if OUTPUT_OF:
        node = OUTPUT_OF.get(node, node)
    parents = node.parents
    key = node.op_class.__name__
    shown = _shown_parents(node) if _MARKED else None
    if shown is not None:
        parents = shown
        key = ""  # (the op's own rules below do not apply)
    elif key == "Where" and len(parents) == 3:
        parents = parents[1:]
    elif key == "Linear" and len(parents) == 3:  # PyTorch's addmm(bias, x, w.t()) order
        parents = (parents[2], parents[0], parents[1])
    elif key == "LayerNorm" and len(parents) < 3:  # (input, weight, bias): None when absent
        parents = tuple(parents) + (None,) * (3 - len(parents))
    elif key in ("BatchNorm", "GroupNorm") and len(parents) < 3:  # the same, from the flags
        rest = iter(parents[1:])
        parents = (parents[0], next(rest) if getattr(node, "has_w", False) else None,
                   next(rest) if getattr(node, "has_b", False) else None)  # fmt: skip
    elif key in _CONVS and len(parents) == 2:  # (input, weight, bias): no bias -> None
        parents = (*parents, None)
    elif key == "MaskedFill" and len(parents) == 2:  # the mask is not listed (a number's fill)
        parents = parents[:1]
    if key in _HAS_SHOWN:
        inserted = _with_shown(node, key, parents, node_class)
        if inserted is not None:
            parents = inserted
    out = tuple(_edge(p, node_class) for p in parents)
    return out + ((None, 0),) if key in SCALAR_INPUT else out


_SAVED_INPUTS = {1: ("_saved_self",), 2: ("_saved_self", "_saved_other")}


def saved_names(node) -> tuple:
    """The `_saved_*` attributes PyTorch's node for this op would show that descent can give:
    `_saved_self` / `_saved_other` for saved inputs, `_saved_result` for a saved output."""
    names: tuple = ()
    saved = getattr(node, "saved", None)
    if node.save_inputs and type(saved) is tuple:
        names = _SAVED_INPUTS.get(len(saved), ())
    if node.save_output and getattr(node, "out_data", None) is not None:
        names += ("_saved_result",)
    return names


def node_dir(node, names) -> list:
    """dir(node): `names` without the `_saved_*` properties the node cannot give."""
    have = saved_names(node)
    return [n for n in names if not n.startswith("_saved_") or n in have]


def saved_attr(node, name: str, wrap):
    """`grad_fn._saved_self` and the like (torchviz reads them): the saved Tensor; `wrap`
    makes a Tensor of the saved output array. AttributeError when the node has none."""
    if name not in saved_names(node):
        arity = len(getattr(node, "in_shapes", ()) or ())
        could = (_SAVED_INPUTS.get(arity, ()) if node.save_inputs else ()) + (
            ("_saved_result",) if node.save_output else ()
        )
        if name in could:  # the node saves it, and a backward without retain_graph freed it
            raise RuntimeError(node._freed_message())
        raise AttributeError(f"'{node.name()}' (descent node {node.name}) has no attribute {name}")
    if name == "_saved_result":
        return wrap(node.out_data)
    return node.saved[_SAVED_INPUTS[len(node.saved)].index(name)]


# -- node hooks (grad_fn.register_prehook / register_hook) ------------------------------------
# They live in the node's `hooks` list, next to the tensor hooks of its output (which are
# pre-hooks of the node already): a pre-hook is wrapped to look like one, a post-hook is a
# _PostHook the tensor-hook loop skips and the engine calls after the node's backward.


class _PostHook:
    __slots__ = ("fn",)

    def __init__(self, fn) -> None:
        self.fn = fn


def _add(node, entry, handle_class):
    group = node.group
    if group is not None:  # the shared node of split's pieces: the group's hooks
        if group.hooks is None:
            group.hooks = []
        group.hooks.append(entry)
        return handle_class(group.hooks, entry)
    if node.hooks is None:
        node.hooks = []
    node.hooks.append(entry)
    return handle_class(node.hooks, entry)


def register_prehook(node, hook, handle_class):
    """`grad_fn.register_prehook(hook)`: `hook(grad_outputs)` before the node's backward; a
    returned tuple replaces grad_outputs (descent's nodes have one output)."""
    _refuse_shared(node, "register_prehook")

    def as_tensor_hook(g):
        r = hook((g,))
        return None if r is None else r[0]

    as_tensor_hook.__wrapped_prehook__ = hook
    return _add(node, as_tensor_hook, handle_class)


def register_hook(node, hook, handle_class):
    """`grad_fn.register_hook(hook)`: `hook(grad_inputs, grad_outputs)` after the node's
    backward; a returned tuple replaces grad_inputs (the gradients sent to its inputs)."""
    _refuse_shared(node, "register_hook")
    return _add(node, _PostHook(hook), handle_class)


def run_post_hooks(node, gy, gxs, create_graph: bool, wrap, zero_marker):
    """The engine's call after `node.backward`: gxs (a tuple or one gradient) through the
    node's post-hooks, as Tensors (`wrap` makes one; known-zero gradients show as None)."""
    posts = [h for h in node.hooks if type(h) is _PostHook]
    if not posts:
        return gxs
    bare = type(gxs) is not tuple
    items = (gxs,) if bare else gxs
    ins = tuple(None if g is None or g is zero_marker else (g if create_graph else wrap(g))
                for g in items)  # fmt: skip
    outs = (gy if create_graph else wrap(gy),)
    for h in posts:
        r = h.fn(ins, outs)
        if r is not None:
            if len(r) != len(ins):
                raise RuntimeError(
                    f"hook of {node.name} returned {len(r)} gradients; the node has {len(ins)} "
                    "inputs"
                )
            ins = tuple(r)
    new = tuple(None if g is None else (g if create_graph else g._data) for g in ins)
    return new[0] if bare else new
