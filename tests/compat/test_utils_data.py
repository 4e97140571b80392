"""descent.utils.data against torch.utils.data: the same batches, collation, lengths and errors.

Datasets here are plain Python (lists, NumPy), so the same object feeds both libraries' loaders
and the batches are compared value by value, dtype by dtype.
"""

from __future__ import annotations

import os
import time
from collections import namedtuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tud = pytest.importorskip("torch.utils.data")

import descent  # noqa: E402
from descent.utils import data as dud  # noqa: E402

Pair = namedtuple("Pair", "a b")


def plain(obj):
    """A library-neutral picture of a batch: (kind, dtype, values) for tensors, recursively."""
    if isinstance(obj, torch.Tensor):
        return ("T", str(obj.dtype).replace("torch.", ""), obj.numpy().tolist())
    if isinstance(obj, descent.Tensor):
        return ("T", str(obj.dtype).rsplit(".", 1)[-1], obj.numpy().tolist())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return ("namedtuple", type(obj).__name__, [plain(o) for o in obj])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [plain(o) for o in obj])
    if isinstance(obj, dict):
        return ("dict", {k: plain(v) for k, v in obj.items()})
    return obj


class Squares(tud.Dataset):
    """Map-style, plain Python: usable by both libraries' loaders (duck typing)."""

    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        return np.array([k, k * k], dtype=np.float32), k


class Ranged:
    """Iterable-style for both libraries: each worker takes every num_workers-th item."""

    def __init__(self, lib, n=10):
        self.lib, self.n = lib, n

    def __iter__(self):
        info = self.lib.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


def _iterable(lib, n=10):
    base = tud.IterableDataset if lib is tud else dud.IterableDataset
    cls = type("RangedDS", (Ranged, base), {})
    return cls(lib, n)


SAMPLES = [
    [(np.float32(1.5), 2), (np.float32(2.5), 3)],
    [1.0, 2.0, 3.0],
    [1, 2, 3],
    [True, False],
    [np.array([1, 2], dtype=np.int32), np.array([3, 4], dtype=np.int32)],
    [np.arange(3.0), np.arange(3.0)],
    [{"x": 1.0, "y": np.int64(2)}, {"x": 3.0, "y": np.int64(4)}],
    [Pair(1, 2.0), Pair(3, 4.0)],
    [["a", 1], ["b", 2]],
    ["s", "t"],
]


@pytest.mark.parametrize("batch", SAMPLES, ids=range(len(SAMPLES)))
def test_default_collate_matches_torch(batch):
    assert plain(dud.default_collate(batch)) == plain(tud.default_collate(batch))


def test_default_collate_stacks_tensors_in_their_dtype():
    ours = dud.default_collate([descent.tensor([1, 2]), descent.tensor([3, 4])])
    theirs = tud.default_collate([torch.tensor([1, 2]), torch.tensor([3, 4])])
    assert plain(ours) == plain(theirs)


def test_default_collate_refuses_ragged_tensors():
    with pytest.raises(RuntimeError, match="equal size"):
        dud.default_collate([descent.zeros(2), descent.zeros(3)])


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize(
    ("batch_size", "drop_last"), [(1, False), (3, False), (3, True), (4, True)]
)
def test_map_style_batches_match_torch(num_workers, batch_size, drop_last):
    ds = Squares(10)
    ours = dud.DataLoader(ds, batch_size=batch_size, drop_last=drop_last, num_workers=num_workers)
    theirs = tud.DataLoader(ds, batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert [plain(b) for b in ours] == [plain(b) for b in theirs]


def test_sampler_batch_sampler_and_no_batching_match_torch():
    ds = Squares(7)
    order = [6, 0, 3, 1, 5, 2, 4]
    for kw in (
        {"sampler": order, "batch_size": 2},
        {"batch_sampler": [[0, 1, 2], [5], [6, 3]]},
        {"batch_size": None},
        {"batch_size": None, "sampler": order},
    ):
        ours = [plain(b) for b in dud.DataLoader(ds, **kw)]
        assert ours == [plain(b) for b in tud.DataLoader(ds, **kw)], kw
        ours_mp = [plain(b) for b in dud.DataLoader(ds, num_workers=2, **kw)]
        assert ours_mp == ours, kw


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize("num_workers", [0, 2, 3])
def test_iterable_dataset_with_workers_matches_torch_order(num_workers):
    ours = dud.DataLoader(_iterable(dud), batch_size=2, num_workers=num_workers)
    theirs = tud.DataLoader(_iterable(tud), batch_size=2, num_workers=num_workers)
    assert [b.tolist() for b in ours] == [b.tolist() for b in theirs]


def test_tensor_dataset_fast_path_equals_item_by_item():
    x = descent.tensor(np.arange(20, dtype=np.float32).reshape(10, 2))
    y = descent.tensor(np.arange(10))
    ds = dud.TensorDataset(x, y)
    fast = list(dud.DataLoader(ds, batch_size=4))
    slow = list(dud.DataLoader(ds, batch_size=4, collate_fn=dud.default_collate))
    assert [plain(b) for b in fast] == [plain(b) for b in slow]
    assert isinstance(fast[0], list)  # torch's default_collate turns tuple samples into a list


def test_shuffle_is_a_permutation_repeatable_from_the_generator():
    ds = Squares(12)

    def epochs(seed):
        loader = dud.DataLoader(ds, batch_size=5, shuffle=True, generator=descent.Generator(seed))
        return [sum((b[1].tolist() for b in loader), []) for _ in range(2)]

    e = epochs(3)
    assert all(sorted(order) == list(range(12)) for order in e)
    assert e == epochs(3)
    assert e[0] != e[1]


def _pid_dataset():
    class Pids(dud.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, k):
            info = dud.get_worker_info()
            return np.array([os.getpid(), info.id, info.seed % 1000])

    return Pids()


def test_workers_are_processes_seeded_per_worker_and_persistent():
    loader = dud.DataLoader(_pid_dataset(), batch_size=1, num_workers=2, persistent_workers=True)
    first = [b[0].tolist() for b in loader]
    second = [b[0].tolist() for b in loader]
    pids = {r[0] for r in first}
    assert os.getpid() not in pids and len(pids) == 2
    assert [r[1] for r in first] == [0, 1, 0, 1]  # round-robin, answers in order
    assert {r[0] for r in second} == pids  # the same processes serve the next epoch
    fresh = dud.DataLoader(_pid_dataset(), batch_size=1, num_workers=2)
    assert {b[0].tolist()[0] for b in fresh}.isdisjoint(pids)
    assert dud.get_worker_info() is None


def _record_init(worker_id):
    os.environ["DESCENT_TEST_WORKER"] = str(worker_id * 10)


class _EnvReader(dud.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, k):
        return int(os.environ.get("DESCENT_TEST_WORKER", "-1"))


def test_worker_init_fn_runs_in_each_worker():
    loader = dud.DataLoader(_EnvReader(), batch_size=1, num_workers=2, worker_init_fn=_record_init)
    assert [b.tolist() for b in loader] == [[0], [10]]
    assert "DESCENT_TEST_WORKER" not in os.environ


class _Faulty(dud.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, k):
        if k == 2:
            raise KeyError(f"no item {k}")
        return k


def test_worker_exception_is_raised_again_with_its_type():
    loader = dud.DataLoader(_Faulty(), batch_size=1, num_workers=2)
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0"):
        list(loader)


class _Dies(dud.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, k):
        os._exit(3)


def test_dead_worker_raises_instead_of_hanging():
    loader = dud.DataLoader(_Dies(), batch_size=1, num_workers=1)
    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        list(loader)


class _Slow(dud.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, k):
        # 4x the loader's timeout (0.5 s): the timeout must fire first. Not longer: the
        # loader's shutdown then waits for this item (it was 5 s, the test's whole time)
        time.sleep(2)
        return k


def test_timeout():
    loader = dud.DataLoader(_Slow(), batch_size=1, num_workers=1, timeout=0.5)
    with pytest.raises(RuntimeError, match="timed out"):
        list(loader)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sampler": [0, 1], "shuffle": True},
        {"batch_sampler": [[0]], "batch_size": 2},
        {"batch_sampler": [[0]], "drop_last": True},
        {"persistent_workers": True},
        {"prefetch_factor": 2},
        {"num_workers": -1},
        {"timeout": -1},
        {"batch_size": None, "drop_last": True},
    ],
    ids=str,
)
def test_argument_errors_match_torch(kwargs):
    with pytest.raises(ValueError):
        tud.DataLoader(Squares(4), **kwargs)
    with pytest.raises(ValueError):
        dud.DataLoader(Squares(4), **kwargs)


def test_iterable_dataset_refuses_shuffle_and_samplers():
    for kw in ({"shuffle": True}, {"sampler": [0]}, {"batch_sampler": [[0]]}):
        with pytest.raises(ValueError):
            tud.DataLoader(_iterable(tud), **kw)
        with pytest.raises(ValueError):
            dud.DataLoader(_iterable(dud), **kw)


def test_samplers():
    assert list(dud.BatchSampler(dud.SequentialSampler(range(7)), 3, False)) == list(
        tud.BatchSampler(tud.SequentialSampler(range(7)), 3, False)
    )
    assert len(dud.BatchSampler(range(7), 3, True)) == len(tud.BatchSampler(range(7), 3, True))
    g = descent.Generator(0)
    draws = list(dud.RandomSampler(range(5), replacement=True, num_samples=50, generator=g))
    assert len(draws) == 50 and set(draws) <= set(range(5))
    perm = list(dud.RandomSampler(range(5), num_samples=12, generator=g))
    assert sorted(perm[:5]) == list(range(5)) and sorted(perm[5:10]) == list(range(5))
    assert sorted(dud.SubsetRandomSampler([3, 7, 9], generator=g)) == [3, 7, 9]
    weighted = list(dud.WeightedRandomSampler([0.0, 1.0, 3.0], 100, generator=g))
    assert 0 not in weighted and len(weighted) == 100
    assert sorted(dud.WeightedRandomSampler([1, 1, 1], 3, replacement=False, generator=g)) == [
        0,
        1,
        2,
    ]
    with pytest.raises(ValueError):
        dud.WeightedRandomSampler([-1.0, 1.0], 2)


def test_names_torch_users_import():
    for name in (
        "DataLoader Dataset IterableDataset TensorDataset ConcatDataset ChainDataset Subset "
        "random_split default_collate default_convert get_worker_info Sampler SequentialSampler "
        "RandomSampler SubsetRandomSampler WeightedRandomSampler BatchSampler DistributedSampler"
    ).split():
        assert hasattr(dud, name) and hasattr(tud, name), name


def test_persistent_workers_survive_an_abandoned_epoch():
    loader = dud.DataLoader(Squares(9), batch_size=2, num_workers=2, persistent_workers=True)
    for k, _ in enumerate(loader):
        if k == 1:
            break  # leaves batches in flight from this epoch
    again = [plain(b) for b in loader]
    assert again == [plain(b) for b in tud.DataLoader(Squares(9), batch_size=2)]


def test_spawned_workers():
    loader = dud.DataLoader(
        Squares(5), batch_size=2, num_workers=2, multiprocessing_context="spawn"
    )
    assert [plain(b) for b in loader] == [
        plain(b) for b in tud.DataLoader(Squares(5), batch_size=2)
    ]


def test_iterable_dataset_with_persistent_workers_restarts_each_epoch():
    loader = dud.DataLoader(_iterable(dud, 7), batch_size=2, num_workers=2, persistent_workers=True)
    expected = [b.tolist() for b in tud.DataLoader(_iterable(tud, 7), batch_size=2, num_workers=2)]
    assert [b.tolist() for b in loader] == expected
    assert [b.tolist() for b in loader] == expected
