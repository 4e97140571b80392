"""Which of several equal elements PyTorch's CPU selection kernels pick: kthvalue, mode, topk.

When a row holds ties, the index these ops return is decided by the algorithm, not by any
rule a stable sort would reproduce:

* kthvalue runs TH's quickselect (Sedgewick's median-of-three partition, ATen's
  `quick_select_template`, NaN the largest value) on a copy of the row and returns the index
  that lands at position k - 1;
* mode sorts (value, index) pairs with `std::sort` on the value alone and returns the index
  that ends the longest run of equal values;
* topk keeps (value, index) pairs and uses `std::partial_sort` when k * 64 <= n, else
  `std::nth_element` and (sorted=True) `std::sort` of the first k - 1 (ATen's
  `topk_impl_loop`), NaN the largest value.

`std::sort`, `std::nth_element` and `std::partial_sort` are libstdc++'s (introsort with a
16-element insertion-sort cutoff, introselect, heap select): PyTorch's Linux wheels are built
with GCC. Each function here replays one of those algorithms step for step on a Python list
of (key, index) pairs, so the permutation of equal elements is the same. They cost Python time
per element: callers use them only for the rows where ties make the answer ambiguous.
"""

from __future__ import annotations

import math

_THRESHOLD = 16  # libstdc++'s _S_threshold


def _lg(n: int) -> int:
    return n.bit_length() - 1


class _Algo:
    """libstdc++'s sorting algorithms over a list `a`, with a strict `less` on its items."""

    def __init__(self, a: list, less) -> None:
        self.a = a
        self.less = less

    # insertion sorts
    def unguarded_linear_insert(self, last: int, lo: int = 0) -> None:
        a, less = self.a, self.less
        val = a[last]
        nxt = last - 1
        while nxt >= lo and less(val, a[nxt]):  # lo: a guard libstdc++ does not need
            a[last] = a[nxt]
            last = nxt
            nxt -= 1
        a[last] = val

    def insertion_sort(self, first: int, last: int) -> None:
        a, less = self.a, self.less
        if first == last:
            return
        for i in range(first + 1, last):
            if less(a[i], a[first]):
                val = a[i]
                a[first + 1 : i + 1] = a[first:i]
                a[first] = val
            else:
                self.unguarded_linear_insert(i, first)

    def final_insertion_sort(self, first: int, last: int) -> None:
        if last - first > _THRESHOLD:
            self.insertion_sort(first, first + _THRESHOLD)
            for i in range(first + _THRESHOLD, last):
                self.unguarded_linear_insert(i)
        else:
            self.insertion_sort(first, last)

    # heaps
    def adjust_heap(self, first: int, hole: int, length: int, value) -> None:
        a, less = self.a, self.less
        top = second = hole
        while second < (length - 1) // 2:
            second = 2 * (second + 1)
            if less(a[first + second], a[first + second - 1]):
                second -= 1
            a[first + hole] = a[first + second]
            hole = second
        if length % 2 == 0 and second == (length - 2) // 2:
            second = 2 * (second + 1)
            a[first + hole] = a[first + second - 1]
            hole = second - 1
        parent = (hole - 1) // 2
        while hole > top and less(a[first + parent], value):
            a[first + hole] = a[first + parent]
            hole = parent
            parent = (hole - 1) // 2
        a[first + hole] = value

    def make_heap(self, first: int, last: int) -> None:
        n = last - first
        if n < 2:
            return
        parent = (n - 2) // 2
        while True:
            self.adjust_heap(first, parent, n, self.a[first + parent])
            if parent == 0:
                return
            parent -= 1

    def pop_heap(self, first: int, last: int, result: int) -> None:
        a = self.a
        value = a[result]
        a[result] = a[first]
        self.adjust_heap(first, 0, last - first, value)

    def heap_select(self, first: int, middle: int, last: int) -> None:
        self.make_heap(first, middle)
        for i in range(middle, last):
            if self.less(self.a[i], self.a[first]):
                self.pop_heap(first, middle, i)

    def sort_heap(self, first: int, last: int) -> None:
        while last - first > 1:
            last -= 1
            self.pop_heap(first, last, last)

    def partial_sort(self, first: int, middle: int, last: int) -> None:
        self.heap_select(first, middle, last)
        self.sort_heap(first, middle)

    # quicksort pieces
    def move_median_to_first(self, result: int, x: int, y: int, z: int) -> None:
        a, less = self.a, self.less
        if less(a[x], a[y]):
            if less(a[y], a[z]):
                pick = y
            elif less(a[x], a[z]):
                pick = z
            else:
                pick = x
        elif less(a[x], a[z]):
            pick = x
        elif less(a[y], a[z]):
            pick = z
        else:
            pick = y
        a[result], a[pick] = a[pick], a[result]

    def unguarded_partition(self, first: int, last: int, pivot: int) -> int:
        a, less = self.a, self.less
        while True:
            while less(a[first], a[pivot]):
                first += 1
            last -= 1
            while less(a[pivot], a[last]):
                last -= 1
            if not first < last:
                return first
            a[first], a[last] = a[last], a[first]
            first += 1

    def partition_pivot(self, first: int, last: int) -> int:
        mid = first + (last - first) // 2
        self.move_median_to_first(first, first + 1, mid, last - 1)
        return self.unguarded_partition(first + 1, last, first)

    def introsort_loop(self, first: int, last: int, depth: int) -> None:
        while last - first > _THRESHOLD:
            if depth == 0:
                self.partial_sort(first, last, last)
                return
            depth -= 1
            cut = self.partition_pivot(first, last)
            self.introsort_loop(cut, last, depth)
            last = cut

    def sort(self, first: int, last: int) -> None:
        """std::sort"""
        if first != last:
            self.introsort_loop(first, last, 2 * _lg(last - first))
            self.final_insertion_sort(first, last)

    def nth_element(self, first: int, nth: int, last: int) -> None:
        """std::nth_element"""
        if first == last or nth == last:
            return
        depth = 2 * _lg(last - first)
        while last - first > 3:
            if depth == 0:
                self.heap_select(first, nth + 1, last)
                self.a[first], self.a[nth] = self.a[nth], self.a[first]
                return
            depth -= 1
            cut = self.partition_pivot(first, last)
            if cut <= nth:
                first = cut
            else:
                last = cut
        self.insertion_sort(first, last)


def _isnan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _gt_or_nan(x, y) -> bool:
    """PyTorch's order for the largest first: NaN above everything."""
    return (_isnan(x) and not _isnan(y)) or x > y


def _lt_or_nan(x, y) -> bool:
    """The smallest first, NaN last."""
    return (not _isnan(x) and _isnan(y)) or x < y


def kthvalue_index(row: list, k: int) -> int:
    """The index torch.kthvalue returns for the k-th smallest (k from 1) of `row` (ATen's
    quick_select_template over a copy of the row and its indices)."""
    vals = list(row)
    idx = list(range(len(vals)))
    gt = _gt_or_nan
    k -= 1

    def swap(i, j):
        vals[i], vals[j] = vals[j], vals[i]
        idx[i], idx[j] = idx[j], idx[i]

    lo, hi = 0, len(vals) - 1
    while True:
        if hi <= lo:
            break
        if hi == lo + 1:
            if gt(vals[lo], vals[hi]):
                swap(lo, hi)
            break
        p = (lo + hi) >> 1
        swap(p, lo + 1)
        if gt(vals[lo + 1], vals[hi]):
            swap(lo + 1, hi)
        if gt(vals[lo], vals[hi]):
            swap(lo, hi)
        if gt(vals[lo + 1], vals[lo]):
            swap(lo + 1, lo)
        i, j = lo + 1, hi
        piv = vals[lo]
        while True:
            i += 1
            while gt(piv, vals[i]):
                i += 1
            j -= 1
            while gt(vals[j], piv):
                j -= 1
            if j < i:
                break
            swap(i, j)
        swap(lo, j)
        if j <= k:
            lo = i
        if j >= k:
            hi = j - 1
    return idx[k]


def mode_index(row: list) -> int:
    """The index torch.mode returns for `row`: std::sort of (value, index) by value, then the
    last pair of the first longest run of equal values."""
    pairs = [(v, i) for i, v in enumerate(row)]
    _Algo(pairs, lambda p, q: p[0] < q[0]).sort(0, len(pairs))
    best_i, best_f, run = 0, 0, 0
    for j, (v, i) in enumerate(pairs):
        run += 1
        if j == len(pairs) - 1 or v != pairs[j + 1][0]:
            if run > best_f:
                best_i, best_f = i, run
            run = 0
    return best_i


def topk_indices(row: list, k: int, largest: bool, sorted_: bool) -> list:
    """The indices torch.topk returns for `row`, in its order (ATen's topk_impl_loop)."""
    n = len(row)
    pairs = [(v, i) for i, v in enumerate(row)]
    cmp = _gt_or_nan if largest else _lt_or_nan
    algo = _Algo(pairs, lambda p, q: cmp(p[0], q[0]))
    if k * 64 <= n:
        algo.partial_sort(0, k, n)
    else:
        algo.nth_element(0, k - 1, n)
        if sorted_:
            algo.sort(0, k - 1)
    return [i for _, i in pairs[:k]]


# Array-level corrections: the callers compute the indices of a stable order (vectorised), and
# these replace the rows where ties make PyTorch's algorithm pick otherwise. CPU arrays only.


# bool, int8, uint8, int16 and uint16 values reach the numba kernels as int32: widening keeps
# every value, so every comparison and equality (and with them each algorithm's steps and the
# indices it returns) is unchanged, and the kernels compile one integer specialisation for the
# five dtypes instead of one each (numba compiles per dtype; a first run of the selection ops on
# every dtype spent most of its time there). int32 is also the packed-key kernels' key type.


def _rows(a, idx, d: int):
    """a and idx with `d` moved last and flattened to rows: (R, n), (R, m)."""
    import numpy as np

    m = np.moveaxis(a, d, -1)
    if m.dtype.kind == "V" or m.dtype.itemsize == 2 and m.dtype.kind == "f":
        m = m.astype(np.float32)  # bfloat16 / float16: compared as float (exact)
    elif m.dtype.kind in "biu" and m.dtype.itemsize < 4:
        m = m.astype(np.int32)  # exact: see the comment above
    n = m.shape[-1]
    mi = np.moveaxis(idx, d, -1)
    return m.reshape(-1, n), mi.reshape(-1, mi.shape[-1]).copy(), mi.shape


def _eq(x, y):
    import numpy as np

    eq = x == y
    if x.dtype.kind == "f":
        eq |= np.isnan(x) & np.isnan(y)
    return eq


def _back(rows_idx, shape, d: int):
    import numpy as np

    return np.moveaxis(rows_idx.reshape(shape), -1, d)


def _kernels_take(m) -> bool:
    """Whether the numba replays run on rows m (R, n): kernels on and a NumPy dtype numba
    types (after _rows: float32/64, integers)."""
    from ..kernels import cpu as _kcpu

    return _kcpu.enabled() and m.dtype.kind in "fiu" and m.dtype.type.__module__ == "numpy"


def fix_kthvalue(a, idx, d: int, k: int):
    """idx (k-th of a stable order, size 1 along d) with tied rows replaced by TH's choice."""
    import numpy as np

    if type(a) is not np.ndarray or a.ndim == 0:
        return idx
    m, mi, shape = _rows(a, idx, d)
    kth = np.take_along_axis(m, mi, axis=1)  # (R, 1)
    tied = np.flatnonzero(_eq(m, kth).sum(axis=1) > 1)
    if tied.size and _kernels_take(m):
        from ..kernels import _cpu_tie_order as _kt

        _kt.kthvalue_torch_rows(_wide_keys(m), tied, k, mi)
        return _back(mi, shape, d)
    for r in tied:
        mi[r, 0] = kthvalue_index(m[r].tolist(), k)
    return _back(mi, shape, d) if tied.size else idx


def _wide_keys(m):
    """Rows m (R, n) of any dtype the kernels take as int64 keys in PyTorch's order (NaN the
    largest, -0.0 and +0.0 one key: kernels._cpu_tie_order.float64_keys, exact for float32),
    C-contiguous; uint64 (no int64 key) as it is. Every comparison and equality of the keys is
    the values' own, so each replay takes the same steps and returns the same indices, and the
    value kernels (kthvalue, median, mode and topk on rows) compile one int64 copy for every
    dtype instead of one per dtype (2-11 s of numba compilation each)."""
    import numpy as np

    from ..kernels import _cpu_tie_order as _kt

    if m.dtype.kind == "f":
        keys = np.empty(m.shape, np.int64)
        _kt.float64_keys(np.ascontiguousarray(m, dtype=np.float64), keys)
        return keys
    if m.dtype == np.uint64:
        return np.ascontiguousarray(m)
    return np.ascontiguousarray(m, dtype=np.int64)


def _all_rows(a, d: int):
    """a with d moved last as rows (R, n) for the kernels (None where they do not run: not a
    NumPy array, 0-d, an empty dim, or a dtype numba does not type), and the (R, 1) index
    array they fill."""
    import numpy as np

    if type(a) is not np.ndarray or a.ndim == 0 or a.shape[d] == 0:
        return None, None
    m, mi, _ = _rows(a, np.zeros((1,) * a.ndim, np.int64), d)
    if not _kernels_take(m):
        return None, None
    return np.ascontiguousarray(m), np.empty((m.shape[0], 1), np.int64)


def _back_one(a, mi, d: int):
    """(R, 1) indices back to a's shape with size 1 along d."""
    import numpy as np

    shape = list(np.moveaxis(a, d, -1).shape)
    shape[-1] = 1
    return np.moveaxis(mi.reshape(shape), -1, d)


def kthvalue_order(a, d: int, k: int):
    """torch.kthvalue's indices along d (size 1 there) from the quickselect replay on every
    row, or None where the kernels do not run (the caller takes a stable order and
    fix_kthvalue). A row without ties has one k-th element, which the replay finds too."""
    import numpy as np

    m, mi = _all_rows(a, d)
    if m is None:
        return None
    from ..kernels import _cpu_tie_order as _kt

    _kt.kthvalue_torch_rows(_wide_keys(m), np.arange(m.shape[0]), k, mi)
    return _back_one(a, mi, d)


def all_nan_nanmedian_index(n: int) -> int:
    """torch.nanmedian(dim)'s index on a row of n NaNs: ATen runs std::nth_element at
    position 0 with a comparator under which NaNs are all equivalent, so introselect's
    partitions (not the first NaN) decide: 0, 0, 0, 2, 2, 3, 5, 6, ... for n = 1, 2, 3, ..."""
    pairs = list(range(n))
    _Algo(pairs, lambda p, q: False).nth_element(0, 0, n)
    return pairs[0]


def median_order(a, d: int):
    """The index at position (n - 1) // 2 of the stable ascending order along d (size 1
    there), what median's `_order(...)[(n - 1) // 2]` gives, from a partition and two scans
    per row (numba), or None where the kernels do not run. Rows with NaN get an arbitrary
    index: the caller replaces it with the first NaN's."""
    m, mi = _all_rows(a, d)
    if m is None:
        return None
    from ..kernels import _cpu_tie_order as _kt

    _kt.median_stable_rows(_wide_keys(m), (m.shape[1] - 1) // 2, mi)
    return _back_one(a, mi, d)


def mode_order(a, d: int):
    """torch.mode's indices along d (size 1 there) from the std::sort replay on every row
    (rows with NaN in Python, see fix_mode), or None where the kernels do not run."""
    import numpy as np

    m, mi = _all_rows(a, d)
    if m is None:
        return None
    from ..kernels import _cpu_tie_order as _kt

    nan = np.isnan(m).any(axis=1) if m.dtype.kind == "f" else np.zeros(m.shape[0], bool)
    if m.dtype == np.float32 or m.dtype.char in _PACKED_CHARS and m.shape[1] < 2**31:
        keys = m  # 32-bit keys packed with the index (as torch_sort_order's)
        if m.dtype == np.float32:
            keys = np.empty(m.shape, np.int32)
            _kt.float32_keys(m, keys)
        _kt.mode_torch_keys(keys, np.flatnonzero(~nan), mi)
    else:
        _kt.mode_torch_rows(_wide_keys(m), np.flatnonzero(~nan), mi)
    for r in np.flatnonzero(nan):
        mi[r, 0] = mode_index(m[r].tolist())
    return _back_one(a, mi, d)


def fix_mode(a, idx, d: int):
    """mode's idx with the rows that hold ties (or NaN) replaced by std::sort's choice."""
    import numpy as np

    if type(a) is not np.ndarray or a.ndim == 0:
        return idx
    m, mi, shape = _rows(a, idx, d)
    val = np.take_along_axis(m, mi, axis=1)  # (R, 1)
    redo = (m == val).sum(axis=1) > 1
    if m.dtype.kind == "f":
        redo |= np.isnan(m).any(axis=1)
    rows = np.flatnonzero(redo)
    if rows.size and _kernels_take(m):
        # rows with NaN stay in Python: std::sort's `<` is no order there (NaN is "equal" to
        # everything), which the kernels' comparators do not replay
        nan = np.isnan(m[rows]).any(axis=1) if m.dtype.kind == "f" else np.zeros(len(rows), bool)
        from ..kernels import _cpu_tie_order as _kt

        _kt.mode_torch_rows(_wide_keys(m), rows[~nan], mi)
        rows_py = rows[nan]
    else:
        rows_py = rows
    for r in rows_py:
        mi[r, 0] = mode_index(m[r].tolist())
    return _back(mi, shape, d) if rows.size else idx


def _replay_topk(m, rows, k: int, largest: bool, sorted_: bool, mi) -> None:
    """mi[rows] (every row for None) = PyTorch's topk indices of those rows of m (R, n), by
    the numba replay: 32-bit keys packed with the index (as torch_sort_order's, integer
    compares) where the dtype allows, else on the values."""
    import numpy as np

    from ..kernels import _cpu_tie_order as _kt

    if m.dtype == np.float32 or m.dtype.char in _PACKED_CHARS and m.shape[1] < 2**31:
        sub = m if rows is None else m[rows]
        keys = sub
        if m.dtype == np.float32:
            keys = np.empty(sub.shape, np.int32)
            _kt.float32_keys(sub, keys)
        out = mi if rows is None else np.empty((len(rows), k), np.int64)
        _kt.topk_torch_keys(np.ascontiguousarray(keys), k, bool(largest), bool(sorted_), out)
        if rows is not None:
            mi[rows] = out
    else:
        rows = np.arange(m.shape[0]) if rows is None else rows
        _kt.topk_torch_rows(_wide_keys(m), rows, k, bool(largest), bool(sorted_), mi)


def topk_order(a, d: int, k: int, largest: bool, sorted_: bool):
    """torch.topk's indices along d (size k there) from the replay of its partial_sort /
    nth_element + sort on every row, or None where the kernels do not run (the caller takes
    a stable order and fix_topk). Rows without ties have one top-k in one sorted order (and
    sorted=False on nth_element's path is replayed on every row by fix_topk too), so this
    returns what the stable argsort and fix_topk return, without the argsort."""
    import numpy as np

    if k == 0:
        return None
    m, _ = _all_rows(a, d)
    if m is None:
        return None
    mi = np.empty((m.shape[0], k), np.int64)
    _replay_topk(m, None, k, largest, sorted_, mi)
    shape = list(np.moveaxis(a, d, -1).shape)
    shape[-1] = k
    return np.moveaxis(mi.reshape(shape), -1, d)


def fix_topk(a, idx, d: int, k: int, largest: bool, sorted_: bool):
    """topk's idx (the first k of a stable order) with the rows where ties (or, for
    sorted=False on nth_element's path, the unsorted order) make PyTorch's differ."""
    import numpy as np

    if type(a) is not np.ndarray or a.ndim == 0 or k == 0:
        return idx
    from ..kernels import cpu as _kcpu

    fast = _kcpu.enabled()
    if fast:
        from ..kernels import _cpu_tie_order as _kt
    m, mi, shape = _rows(a, idx, d)
    n = m.shape[1]
    if not sorted_ and k * 64 > n and k > 1:
        redo = np.ones(m.shape[0], dtype=bool)
    elif fast:
        m = np.ascontiguousarray(m)
        redo = np.empty(m.shape[0], dtype=bool)
        _kt.topk_tied_rows(m, mi, redo)
    else:
        vals = np.take_along_axis(m, mi, axis=1)  # (R, k), in order
        redo = _eq(vals[:, 1:], vals[:, :-1]).any(axis=1)
        last = vals[:, -1:]
        redo |= _eq(m, last).sum(axis=1) > _eq(vals, last).sum(axis=1)
    rows = np.flatnonzero(redo)
    if not rows.size:
        return idx
    if fast:
        _replay_topk(m, rows, k, largest, sorted_, mi)
    else:
        for r in rows:
            mi[r] = topk_indices(m[r].tolist(), k, largest, sorted_)
    return _back(mi, shape, d)


def sort_indices(row: list, descending: bool) -> list:
    """The indices torch.sort(stable=False) returns for `row` (std::sort of (value, index)
    pairs by value, NaN the largest)."""
    pairs = [(v, i) for i, v in enumerate(row)]
    cmp = _gt_or_nan if descending else _lt_or_nan
    _Algo(pairs, lambda p, q: cmp(p[0], q[0])).sort(0, len(pairs))
    return [i for _, i in pairs]


_RADIX_MIN = 32768  # ATen's GRAIN_SIZE: 1-D integer ascending sorts from here use a radix sort


# int8, uint8, int16, uint16, int32, bool: keys in int32's range (uint32's are not)
_PACKED_CHARS = frozenset("bBhHi?")


def torch_sort_order(a, d: int, descending: bool):
    """torch.sort(stable=False)'s indices along d straight from the replay of std::sort on
    every row (numba), or None where the caller takes the stable argsort and `fix_sort`: no
    kernels, not a NumPy array, rows of fewer than 2, an expanded row (stride 0), fbgemm's
    radix case, or a dtype without a kernel here.

    Rows without ties have one sorted order, which the replay gives too, so running it on
    every row returns what the stable argsort followed by fix_sort returns, without the
    argsort (1M float32 values with ties, one pinned core: 243 -> 73 ms, torch 88 ms). The
    result has the input's memory layout, as PyTorch's (empty_like)."""
    import numpy as np

    from ..kernels import cpu as _kcpu

    if not _kcpu.enabled() or type(a) is not np.ndarray or a.ndim == 0:
        return None
    n = a.shape[d]
    if n < 2 or a.strides[d] == 0 or n >= 2**31:
        return None
    if a.ndim == 1 and a.dtype.kind in "iu" and not descending and a.size >= _RADIX_MIN:
        return None
    dt = a.dtype
    if dt.kind == "V" or dt.kind == "f" and dt.itemsize == 2 or dt.type.__module__ != "numpy":
        a, dt = a.astype(np.float32), np.dtype(np.float32)  # float16 / bfloat16: exact
    if dt == np.float32:
        wide = False
    elif dt.char in _PACKED_CHARS:
        wide = False
    elif dt in (np.float64, np.int64):
        wide = True
    else:
        return None
    from ..kernels import _cpu_tie_order as _kt

    res = np.empty_like(a, dtype=np.int64)  # order='K': a's layout
    m = np.moveaxis(a, d, -1).reshape(-1, n)
    rm = np.moveaxis(res, d, -1)
    out = rm.reshape(-1, n) if rm.flags.c_contiguous else np.empty(m.shape, np.int64)
    if wide:
        if dt == np.float64:
            keys = np.empty(m.shape, np.int64)
            _kt.float64_keys(m, keys)
        else:
            keys = np.ascontiguousarray(m)
        _kt.sort_torch_wide_rows(keys, bool(descending), out)
    else:
        if dt == np.float32:
            keys = np.empty(m.shape, np.int32)
            _kt.float32_keys(m, keys)
        else:  # int32 keys (_rows' widening of the smaller integers, see there)
            keys = np.ascontiguousarray(m, dtype=np.int32)
        _kt.sort_torch_all_rows(keys, bool(descending), out)
    if not rm.flags.c_contiguous:
        rm[...] = out.reshape(rm.shape)
    return res


def fix_sort(a, idx, d: int, descending: bool):
    """A stable sort's idx along d, with the rows that hold ties replaced by PyTorch's
    std::sort order (torch.sort / argsort with stable=False). A 1-D integer ascending sort of
    32768 or more elements is fbgemm's radix sort in PyTorch: stable, left alone."""
    import numpy as np

    if type(a) is not np.ndarray or a.ndim == 0 or a.shape[d] < 2 or a.strides[d] == 0:
        return idx  # stride 0 (an expanded row): PyTorch returns 0..n-1 as the stable sort
    if a.ndim == 1 and a.dtype.kind in "iu" and not descending and a.size >= _RADIX_MIN:
        return idx
    from ..kernels import cpu as _kcpu

    m, mi, shape = _rows(a, idx, d)
    s = np.take_along_axis(m, mi, axis=1)
    if _kcpu.enabled():
        from ..kernels import _cpu_tie_order as _kt

        if m.dtype.type.__module__ != "numpy":
            # ml_dtypes' bfloat16/float8 (numba cannot type them): their float32 values,
            # exact, order and ties the same
            m, s = m.astype(np.float32), s.astype(np.float32)

        redo = np.empty(m.shape[0], dtype=bool)
        _kt.sorted_tied_rows(s, redo)
        rows = np.flatnonzero(redo)
        if rows.size:
            _kt.sort_torch_rows(np.ascontiguousarray(m), rows, bool(descending), mi)
    else:
        rows = np.flatnonzero(_eq(s[:, 1:], s[:, :-1]).any(axis=1))
        for r in rows:
            mi[r] = sort_indices(m[r].tolist(), descending)
    return _back(mi, shape, d) if rows.size else idx
