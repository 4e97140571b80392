"""descent.utils._pytree against torch.utils._pytree: leaves, specs (equality, repr,
num_leaves/num_nodes), round trips, tree_map over several trees, the *_only variants, is_leaf,
registered container types, errors, and deep trees (no recursion)."""

from __future__ import annotations

from collections import OrderedDict, defaultdict, deque, namedtuple

import pytest

import descent
from descent.utils import _pytree as dp

torch = pytest.importorskip("torch")
tp = pytest.importorskip("torch.utils._pytree")

Point = namedtuple("Point", "x y")

TREES = [
    1,
    None,
    [],
    (),
    {},
    [1, 2, 3],
    (1, [2, (3, None)], {"b": 4, "a": 5}),
    {"b": 1, "a": [2, (3, 7)], "c": OrderedDict(z=4, y=5)},
    Point(1, [2, 3]),
    [deque([1, 2], maxlen=5), defaultdict(int, {"k": 3})],
    {"x": "a string is a leaf", "y": b"bytes", "z": 2.5},
    [[[[1]]], [[2, [3, [4]]]]],
]


@pytest.mark.parametrize("tree", TREES, ids=[repr(t)[:40] for t in TREES])
def test_flatten_and_spec_match_pytorch(tree):
    leaves, spec = dp.tree_flatten(tree)
    tleaves, tspec = tp.tree_flatten(tree)
    assert leaves == tleaves
    assert repr(spec) == repr(tspec)
    assert (spec.num_leaves, spec.num_nodes) == (tspec.num_leaves, tspec.num_nodes)
    back = dp.tree_unflatten(leaves, spec)
    assert back == tree and type(back) is type(tree)
    assert dp.tree_structure(tree) == spec
    assert dp.tree_leaves(tree) == tp.tree_leaves(tree)


def test_tree_map_over_several_trees_and_only_variants():
    a = {"w": [1, 2], "b": (3,)}
    b = {"w": [10, 20], "b": (30,)}
    f = lambda x, y: x + y  # noqa: E731
    assert dp.tree_map(f, a, b) == tp.tree_map(f, a, b)
    mixed = [1, "a", 2.0, (3, None)]
    assert dp.tree_map_only(int, lambda x: -x, mixed) == tp.tree_map_only(int, lambda x: -x, mixed)
    assert dp.tree_all(lambda x: x > 0, [1, 2]) and dp.tree_any(lambda x: x > 1, [1, 2])
    assert dp.tree_all_only(int, lambda x: x > 0, [1, "s"]) == tp.tree_all_only(
        int, lambda x: x > 0, [1, "s"])
    assert not dp.tree_any_only(str, lambda x: x == "t", [1, "s"])


def test_tree_map_over_tensors_detaches_a_nested_output():
    x = descent.ones(2, requires_grad=True)
    out = {"loss": (x * 2).sum(), "parts": [x * 3, (x + 1, None)]}
    det = dp.tree_map_only(descent.Tensor, lambda t: t.detach(), out)
    assert not det["loss"].requires_grad and not det["parts"][1][0].requires_grad
    assert det["parts"][1][1] is None
    seen = []
    dp.tree_map_(seen.append, out)
    assert len(seen) == 4


def test_is_leaf_stops_flattening():
    tree = [[1, 2], (3, [4])]
    pred = lambda t: isinstance(t, list) and len(t) == 2  # noqa: E731
    assert dp.tree_leaves(tree, is_leaf=pred) == tp.tree_leaves(tree, is_leaf=pred)
    ours, theirs = dp.tree_structure(tree, is_leaf=pred), tp.tree_structure(tree, is_leaf=pred)
    assert repr(ours) == repr(theirs)


def test_register_pytree_node_for_a_user_class():
    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b

        def __eq__(self, other):
            return isinstance(other, Pair) and (self.a, self.b) == (other.a, other.b)

    dp.register_pytree_node(Pair, lambda p: ([p.a, p.b], "ctx"), lambda xs, ctx: Pair(*xs))
    tree = {"p": Pair(1, [2, 3])}
    leaves, spec = dp.tree_flatten(tree)
    assert leaves == [1, 2, 3]
    assert dp.tree_unflatten([4, 5, 6], spec) == {"p": Pair(4, [5, 6])}
    assert dp.tree_map(lambda v: v * 2, tree) == {"p": Pair(2, [4, 6])}
    with pytest.raises(ValueError, match="already registered"):
        dp.register_pytree_node(Pair, lambda p: ([], None), lambda xs, c: Pair(0, 0))


def test_errors_as_pytorch():
    leaves, spec = dp.tree_flatten({"a": 1, "b": [2, 3]})
    with pytest.raises(ValueError, match="has length 1 but the spec refers to a pytree that "
                                         "holds 3 items"):
        dp.tree_unflatten([1], spec)
    with pytest.raises(ValueError, match="arity mismatch"):
        dp.tree_map(lambda x, y: x + y, [1, 2], [3])
    with pytest.raises(ValueError, match="arity mismatch"):
        tp.tree_map(lambda x, y: x + y, [1, 2], [3])
    with pytest.raises(TypeError):
        dp.tree_unflatten([1], "not a spec")


def test_a_deep_tree_needs_no_recursion():
    tree = leaf = [0]
    for i in range(1, 5000):
        leaf.append([i])
        leaf = leaf[1]
    leaves, spec = dp.tree_flatten(tree)
    assert leaves == list(range(5000))
    back = dp.tree_unflatten([v + 1 for v in leaves], spec)
    again, spec2 = dp.tree_flatten(back)
    assert again == list(range(1, 5001)) and spec2 == spec


def test_reachable_as_torch_utils_pytree_without_import():
    import subprocess
    import sys

    src = ("import descent as torch\n"
           "print(torch.utils._pytree.tree_leaves({'a': [1, 2]}))\n")
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[1, 2]"
