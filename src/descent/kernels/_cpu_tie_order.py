"""numba form of ops/tie_order.py's topk: libstdc++'s partial_sort / nth_element / sort
replayed on (key, index) pairs, as PyTorch's CPU topk runs them (ATen's topk_impl_loop).

Imported on first use only, by callers that have checked `kernels.cpu.enabled()`; the Python
form in ops/tie_order.py gives the same indices (tests compare the two). The order of equal
keys after these algorithms is what makes topk's indices agree with PyTorch's when a row has
ties, and sorted=False's order at all; Python costs 0.65 ms per row of 512, this 2 us.

torch.sort(stable=False) runs `sort_torch_all_rows` / `sort_torch_wide_rows` on every row:
keys that compare as PyTorch's comparator compares the values (float32_keys, float64_keys),
packed with the index into one int64 where the key has 32 bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True)
_THRESHOLD = 16
# The helpers' own constants (a heap's root hole 0, an insertion sort's 0 and 16) are passed as
# NumPy scalars: numba types a Python literal argument as its own Literal type and compiles the
# callee once more for it (and down the chain); NumPy scalars are typed int64. The entry points
# keep their literal 0 / False (e.g. mode_torch_rows' ascending _sort): those copies fold the
# branches, and mode_torch_rows on float64 ran 13-23% slower without them (64 x 4096 rows).
_I0, _I16 = np.int64(0), np.int64(_THRESHOLD)


@njit(inline="always", **_OPTS)
def _less(a, b, largest):  # pragma: no cover - compiled
    """PyTorch's order for topk: NaN is the largest value (a != a: NaN)."""
    if largest:
        return (a != a and b == b) or a > b
    return (a == a and b != b) or a < b


@njit(**_OPTS)
def _lg(n):  # pragma: no cover - compiled
    r = -1
    while n:
        n >>= 1
        r += 1
    return r


@njit(**_OPTS)
def _linear_insert(v, ix, last, lo, largest):  # pragma: no cover - compiled
    tv, ti = v[last], ix[last]
    nxt = last - 1
    while nxt >= lo and _less(tv, v[nxt], largest):
        v[last], ix[last] = v[nxt], ix[nxt]
        last = nxt
        nxt -= 1
    v[last], ix[last] = tv, ti


@njit(**_OPTS)
def _insertion_sort(v, ix, first, last, largest):  # pragma: no cover - compiled
    if first == last:
        return
    for i in range(first + 1, last):
        if _less(v[i], v[first], largest):
            tv, ti = v[i], ix[i]
            for j in range(i, first, -1):
                v[j], ix[j] = v[j - 1], ix[j - 1]
            v[first], ix[first] = tv, ti
        else:
            _linear_insert(v, ix, i, first, largest)


@njit(**_OPTS)
def _adjust_heap(v, ix, first, hole, length, tv, ti, largest):  # pragma: no cover - compiled
    top = hole
    second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if _less(v[first + second], v[first + second - 1], largest):
            second -= 1
        v[first + hole], ix[first + hole] = v[first + second], ix[first + second]
        hole = second
    if length % 2 == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        v[first + hole], ix[first + hole] = v[first + second - 1], ix[first + second - 1]
        hole = second - 1
    parent = (hole - 1) // 2
    while hole > top and _less(v[first + parent], tv, largest):
        v[first + hole], ix[first + hole] = v[first + parent], ix[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    v[first + hole], ix[first + hole] = tv, ti


@njit(**_OPTS)
def _pop_heap(v, ix, first, last, result, largest):  # pragma: no cover - compiled
    tv, ti = v[result], ix[result]
    v[result], ix[result] = v[first], ix[first]
    _adjust_heap(v, ix, first, _I0, last - first, tv, ti, largest)


@njit(**_OPTS)
def _heap_select(v, ix, first, middle, last, largest):  # pragma: no cover - compiled
    n = middle - first
    if n >= 2:
        parent = (n - 2) // 2
        while True:
            _adjust_heap(v, ix, first, parent, n, v[first + parent], ix[first + parent], largest)
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, last):
        if _less(v[i], v[first], largest):
            _pop_heap(v, ix, first, middle, i, largest)


@njit(**_OPTS)
def _sort_heap(v, ix, first, last, largest):  # pragma: no cover - compiled
    while last - first > 1:
        last -= 1
        _pop_heap(v, ix, first, last, last, largest)


@njit(**_OPTS)
def _partition_pivot(v, ix, first, last, largest):  # pragma: no cover - compiled
    mid = first + (last - first) // 2
    x, y, z = first + 1, mid, last - 1
    if _less(v[x], v[y], largest):
        if _less(v[y], v[z], largest):
            pick = y
        elif _less(v[x], v[z], largest):
            pick = z
        else:
            pick = x
    elif _less(v[x], v[z], largest):
        pick = x
    elif _less(v[y], v[z], largest):
        pick = z
    else:
        pick = y
    v[first], v[pick] = v[pick], v[first]
    ix[first], ix[pick] = ix[pick], ix[first]
    lo, hi = first + 1, last
    while True:
        while _less(v[lo], v[first], largest):
            lo += 1
        hi -= 1
        while _less(v[first], v[hi], largest):
            hi -= 1
        if not lo < hi:
            return lo
        v[lo], v[hi] = v[hi], v[lo]
        ix[lo], ix[hi] = ix[hi], ix[lo]
        lo += 1


@njit(**_OPTS)
def _sort(v, ix, first, last, largest):  # pragma: no cover - compiled
    """std::sort. The introsort recursion as a stack: its parts are disjoint ranges, so the
    order they are processed in does not change the result."""
    if first == last:
        return
    stack = [(first, last, 2 * _lg(last - first))]
    while len(stack):
        lo, hi, depth = stack.pop()
        while hi - lo > _THRESHOLD:
            if depth == 0:
                _heap_select(v, ix, lo, hi, hi, largest)
                _sort_heap(v, ix, lo, hi, largest)
                break
            depth -= 1
            cut = _partition_pivot(v, ix, lo, hi, largest)
            stack.append((cut, hi, depth))
            hi = cut
    if last - first > _THRESHOLD:
        _insertion_sort(v, ix, first, first + _THRESHOLD, largest)
        for i in range(first + _THRESHOLD, last):
            _linear_insert(v, ix, i, _I0, largest)
    else:
        _insertion_sort(v, ix, first, last, largest)


@njit(**_OPTS)
def _nth_element(v, ix, first, nth, last, largest):  # pragma: no cover - compiled
    if first == last or nth == last:
        return
    depth = 2 * _lg(last - first)
    while last - first > 3:
        if depth == 0:
            _heap_select(v, ix, first, nth + 1, last, largest)
            v[first], v[nth] = v[nth], v[first]
            ix[first], ix[nth] = ix[nth], ix[first]
            return
        depth -= 1
        cut = _partition_pivot(v, ix, first, last, largest)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(v, ix, first, last, largest)


@njit(**_OPTS)
def topk_torch_rows(m, rows, k, largest, sorted_, out):  # pragma: no cover - compiled
    """out[r] = PyTorch's topk indices of m[r] (R, n) for each r in rows."""
    n = m.shape[1]
    for r in rows:
        v = m[r].copy()
        ixa = np.arange(n)
        if k * 64 <= n:
            _heap_select(v, ixa, 0, k, n, largest)
            _sort_heap(v, ixa, 0, k, largest)
        else:
            _nth_element(v, ixa, 0, k - 1, n, largest)
            if sorted_:
                _sort(v, ixa, 0, k - 1, largest)
        for j in range(k):
            out[r, j] = ixa[j]


@njit(inline="always", **_OPTS)
def _same(a, b):  # pragma: no cover - compiled
    return a == b or (a != a and b != b)


@njit(**_OPTS)
def topk_tied_rows(m, mi, flags):  # pragma: no cover - compiled
    """flags[r] = whether row r of m (R, n) has ties that make the choice of its k entries
    mi[r] (a stable order's first k, in order) or their order ambiguous: two equal selected
    keys, or the k-th key equal to an unselected one (NaN equal to NaN)."""
    r_, n = m.shape
    k = mi.shape[1]
    for r in range(r_):
        last = m[r, mi[r, k - 1]]
        tied = False
        inside = 0
        for c in range(k):
            x = m[r, mi[r, c]]
            if c and _same(x, m[r, mi[r, c - 1]]):
                tied = True
                break
            if _same(x, last):
                inside += 1
        if not tied:
            total = 0
            for j in range(n):
                if _same(m[r, j], last):
                    total += 1
            tied = total > inside
        flags[r] = tied


@njit(**_OPTS)
def sort_torch_rows(m, rows, descending, out):  # pragma: no cover - compiled
    """out[r] = PyTorch's torch.sort(stable=False) indices of m[r] (R, n) for each r in rows:
    std::sort of (value, index) pairs by value, NaN the largest."""
    n = m.shape[1]
    for r in rows:
        v = m[r].copy()
        ixa = np.arange(n)
        _sort(v, ixa, 0, n, descending)
        for j in range(n):
            out[r, j] = ixa[j]


@njit(**_OPTS)
def sorted_tied_rows(s, flags):  # pragma: no cover - compiled
    """flags[r] = whether the sorted row s[r] holds two equal neighbours (NaN equal to NaN)."""
    r_, n = s.shape
    for r in range(r_):
        tied = False
        for j in range(1, n):
            if _same(s[r, j], s[r, j - 1]):
                tied = True
                break
        flags[r] = tied


# Whole-row std::sort for torch.sort(stable=False) on keys of 32 bits or fewer (float32,
# float16/bfloat16 as float32, int8/16/32, uint8/16, bool). Each element becomes one int64:
# an order key in the high 32 bits and its index in the low 32. Comparing `p >> 32` gives
# exactly the outcomes of PyTorch's comparator on the values (the key is order-isomorphic:
# equal values, -0.0 and +0.0, all NaNs get one key; NaN the largest), so the algorithm takes
# the same steps and leaves equal values in the same order; and one 8-byte move replaces the
# (value, index) pair of moves. Rows without ties come out as any sort's (their order is
# unique), so callers run this on every row and skip the stable argsort.


@njit(inline="always", **_OPTS)
def _pk(a):  # pragma: no cover - compiled
    return a >> 32


@njit(**_OPTS)
def _p_linear_insert(p, last, lo):  # pragma: no cover - compiled
    t = p[last]
    tk = _pk(t)
    nxt = last - 1
    while nxt >= lo and tk < _pk(p[nxt]):
        p[last] = p[nxt]
        last = nxt
        nxt -= 1
    p[last] = t


@njit(**_OPTS)
def _p_insertion_sort(p, first, last):  # pragma: no cover - compiled
    if first == last:
        return
    for i in range(first + 1, last):
        if _pk(p[i]) < _pk(p[first]):
            t = p[i]
            for j in range(i, first, -1):
                p[j] = p[j - 1]
            p[first] = t
        else:
            _p_linear_insert(p, i, first)


@njit(**_OPTS)
def _p_adjust_heap(p, first, hole, length, t):  # pragma: no cover - compiled
    top = hole
    second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if _pk(p[first + second]) < _pk(p[first + second - 1]):
            second -= 1
        p[first + hole] = p[first + second]
        hole = second
    if length % 2 == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        p[first + hole] = p[first + second - 1]
        hole = second - 1
    parent = (hole - 1) // 2
    tk = _pk(t)
    while hole > top and _pk(p[first + parent]) < tk:
        p[first + hole] = p[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    p[first + hole] = t


@njit(**_OPTS)
def _p_heap_sort(p, first, last):  # pragma: no cover - compiled
    """std::partial_sort(first, last, last): make_heap, then sort_heap (heap_select's scan of
    [last, last) is empty)."""
    n = last - first
    if n >= 2:
        parent = (n - 2) // 2
        while True:
            _p_adjust_heap(p, first, parent, n, p[first + parent])
            if parent == 0:
                break
            parent -= 1
    while last - first > 1:
        last -= 1
        t = p[last]
        p[last] = p[first]
        _p_adjust_heap(p, first, _I0, last - first, t)


@njit(**_OPTS)
def _p_partition_pivot(p, first, last):  # pragma: no cover - compiled
    mid = first + (last - first) // 2
    x, y, z = first + 1, mid, last - 1
    kx, ky, kz = _pk(p[x]), _pk(p[y]), _pk(p[z])
    if kx < ky:
        if ky < kz:
            pick = y
        elif kx < kz:
            pick = z
        else:
            pick = x
    elif kx < kz:
        pick = x
    elif ky < kz:
        pick = z
    else:
        pick = y
    p[first], p[pick] = p[pick], p[first]
    piv = _pk(p[first])  # the pivot stays at `first` during the partition
    lo, hi = first + 1, last
    while True:
        while _pk(p[lo]) < piv:
            lo += 1
        hi -= 1
        while piv < _pk(p[hi]):
            hi -= 1
        if not lo < hi:
            return lo
        p[lo], p[hi] = p[hi], p[lo]
        lo += 1


@njit(**_OPTS)
def _p_sort(p, n, stack):  # pragma: no cover - compiled
    """std::sort of p[:n] by key; `stack` (int64, (3 * 64,)) holds the introsort's pending
    ranges (disjoint, so the order they are processed in does not change the result)."""
    if n == 0:
        return
    top = 0
    stack[0], stack[1], stack[2] = 0, n, 2 * _lg(n)
    top = 3
    while top:
        top -= 3
        lo, hi, depth = stack[top], stack[top + 1], stack[top + 2]
        while hi - lo > _THRESHOLD:
            if depth == 0:
                _p_heap_sort(p, lo, hi)
                break
            depth -= 1
            cut = _p_partition_pivot(p, lo, hi)
            stack[top], stack[top + 1], stack[top + 2] = cut, hi, depth
            top += 3
            hi = cut
    if n > _THRESHOLD:
        _p_insertion_sort(p, _I0, _I16)
        for i in range(_THRESHOLD, n):
            _p_linear_insert(p, i, _I0)
    else:
        _p_insertion_sort(p, _I0, n)


@njit(**_OPTS)
def float32_keys(m, keys):  # pragma: no cover - compiled
    """keys (int32, m's shape (R, n)) ordered as float32 m under PyTorch's comparator: -0.0
    and +0.0 one key (0), every NaN the largest key, other values their IEEE bits with the
    negatives' magnitude bits flipped (the usual float-to-integer order map)."""
    r_, n = m.shape
    for r in range(r_):
        for j in range(n):
            x = m[r, j]
            if x != x:
                keys[r, j] = 2147483647
            elif x == 0:
                keys[r, j] = 0
            else:
                b = np.float32(x).view(np.int32)
                keys[r, j] = b if b >= 0 else b ^ np.int32(2147483647)


@njit(**_OPTS)
def sort_torch_all_rows(keys, descending, out):  # pragma: no cover - compiled
    """out[r] = PyTorch's torch.sort(stable=False) indices of every row of keys (R, n), an
    integer type of at most 32 bits (float32_keys' for float32), n < 2**31."""
    r_, n = keys.shape
    p = np.empty(n, np.int64)
    stack = np.empty(3 * 66, np.int64)  # 2 * lg(n) + 1 <= 61 pending ranges
    for r in range(r_):
        for j in range(n):
            k = np.int64(keys[r, j])
            if descending:
                k = ~k  # -k - 1: reverses the order, stays in int32's range
            p[j] = (k << 32) | j
        _p_sort(p, n, stack)
        for j in range(n):
            out[r, j] = p[j] & 0xFFFFFFFF


@njit(**_OPTS)
def float64_keys(m, keys):  # pragma: no cover - compiled
    """float32_keys for float64: int64 keys in float64's order (NaN the largest, one 0)."""
    r_, n = m.shape
    for r in range(r_):
        for j in range(n):
            x = m[r, j]
            if x != x:
                keys[r, j] = 9223372036854775807
            elif x == 0:
                keys[r, j] = 0
            else:
                b = np.float64(x).view(np.int64)
                keys[r, j] = b if b >= 0 else b ^ np.int64(9223372036854775807)


@njit(**_OPTS)
def sort_torch_wide_rows(keys, descending, out):  # pragma: no cover - compiled
    """sort_torch_all_rows for int64 keys (float64_keys' for float64): (key, index) pairs in
    two arrays, compared as integers."""
    r_, n = keys.shape
    v = np.empty(n, np.int64)
    ixa = np.empty(n, np.int64)
    for r in range(r_):
        for j in range(n):
            v[j] = keys[r, j]
            ixa[j] = j
        _sort(v, ixa, 0, n, descending)
        for j in range(n):
            out[r, j] = ixa[j]


@njit(**_OPTS)
def kthvalue_torch_rows(m, rows, k, out):  # pragma: no cover - compiled
    """out[r, 0] = the index torch.kthvalue returns for the k-th smallest (k from 1) of m[r]
    (R, n), for each r in rows: tie_order.kthvalue_index (TH's median-of-three quickselect on
    a copy of the row, NaN the largest) step for step."""
    n = m.shape[1]
    k -= 1
    for r in rows:
        v = m[r].copy()
        ix = np.arange(n)
        lo, hi = 0, n - 1
        while True:
            if hi <= lo:
                break
            if hi == lo + 1:
                if _less(v[lo], v[hi], True):  # v[lo] > v[hi], NaN the largest
                    v[lo], v[hi] = v[hi], v[lo]
                    ix[lo], ix[hi] = ix[hi], ix[lo]
                break
            p = (lo + hi) >> 1
            v[p], v[lo + 1] = v[lo + 1], v[p]
            ix[p], ix[lo + 1] = ix[lo + 1], ix[p]
            if _less(v[lo + 1], v[hi], True):
                v[lo + 1], v[hi] = v[hi], v[lo + 1]
                ix[lo + 1], ix[hi] = ix[hi], ix[lo + 1]
            if _less(v[lo], v[hi], True):
                v[lo], v[hi] = v[hi], v[lo]
                ix[lo], ix[hi] = ix[hi], ix[lo]
            if _less(v[lo + 1], v[lo], True):
                v[lo + 1], v[lo] = v[lo], v[lo + 1]
                ix[lo + 1], ix[lo] = ix[lo], ix[lo + 1]
            i, j = lo + 1, hi
            piv = v[lo]
            while True:
                i += 1
                while _less(piv, v[i], True):
                    i += 1
                j -= 1
                while _less(v[j], piv, True):
                    j -= 1
                if j < i:
                    break
                v[i], v[j] = v[j], v[i]
                ix[i], ix[j] = ix[j], ix[i]
            v[lo], v[j] = v[j], v[lo]
            ix[lo], ix[j] = ix[j], ix[lo]
            if j <= k:
                lo = i
            if j >= k:
                hi = j - 1
        out[r, 0] = ix[k]


@njit(**_OPTS)
def mode_torch_rows(m, rows, out):  # pragma: no cover - compiled
    """out[r, 0] = the index torch.mode returns for m[r] (R, n), for each r in rows WITHOUT
    NaN (tie_order.mode_index: std::sort of (value, index) by `<`, which on NaN-free values
    is `_less`'s ascending order; then the last index of the first longest run)."""
    n = m.shape[1]
    for r in rows:
        v = m[r].copy()
        ix = np.arange(n)
        _sort(v, ix, 0, n, False)
        best_i, best_f, run = 0, 0, 0
        for j in range(n):
            run += 1
            if j == n - 1 or v[j] != v[j + 1]:
                if run > best_f:
                    best_i, best_f = ix[j], run
                run = 0
        out[r, 0] = best_i


@njit(**_OPTS)
def median_stable_rows(m, k, out):  # pragma: no cover - compiled
    """out[r, 0] = the index at position k of a stable ascending sort of row m[r] (R, n)
    without NaN (the caller overrides rows with NaN): the k-th smallest value x, then among
    the entries equal to x (-0.0 equal to +0.0, as the sort compares) the (k - #less)-th in
    index order. O(n) per row (a selection and two scans) instead of a sort.

    m holds int64 keys (tie_order._wide_keys). The selection is _nth_element called as
    topk_torch_rows calls it (the same argument types: one compiled copy for both; numba's
    np.partition compiled 4-11 s per dtype)."""
    r_, n = m.shape
    ascending = k < 0  # False (largest=False), typed bool as topk_torch_rows' argument
    for r in range(r_):
        v = m[r].copy()
        ixa = np.arange(n)
        _nth_element(v, ixa, 0, k, n, ascending)
        x = v[k]
        less = 0
        for j in range(n):
            if m[r, j] < x:
                less += 1
        want = k - less
        seen = 0
        for j in range(n):
            if m[r, j] == x:
                if seen == want:
                    out[r, 0] = j
                    break
                seen += 1


# topk on packed keys (key << 32 | index, see sort_torch_all_rows): the same algorithms as
# topk_torch_rows, comparing integers and moving one int64 per element.


@njit(**_OPTS)
def _p_heap_select(p, first, middle, last):  # pragma: no cover - compiled
    n = middle - first
    if n >= 2:
        parent = (n - 2) // 2
        while True:
            _p_adjust_heap(p, first, parent, n, p[first + parent])
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, last):
        if _pk(p[i]) < _pk(p[first]):
            t = p[i]  # pop_heap(first, middle, i)
            p[i] = p[first]
            _p_adjust_heap(p, first, _I0, n, t)


@njit(**_OPTS)
def _p_sort_heap(p, first, last):  # pragma: no cover - compiled
    while last - first > 1:
        last -= 1
        t = p[last]
        p[last] = p[first]
        _p_adjust_heap(p, first, _I0, last - first, t)


@njit(**_OPTS)
def _p_nth_element(p, nth, last):  # pragma: no cover - compiled
    """std::nth_element(p, p + nth, p + last)."""
    first = _I0
    if nth == last:
        return
    depth = 2 * _lg(last - first)
    while last - first > 3:
        if depth == 0:
            _p_heap_select(p, first, nth + 1, last)
            p[first], p[nth] = p[nth], p[first]
            return
        depth -= 1
        cut = _p_partition_pivot(p, first, last)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _p_insertion_sort(p, first, last)


@njit(**_OPTS)
def topk_torch_keys(keys, k, largest, sorted_, out):  # pragma: no cover - compiled
    """out[r] = PyTorch's topk indices of every row of keys (R, n) (an integer type of at
    most 32 bits, float32_keys' for float32), as topk_torch_rows on the values."""
    r_, n = keys.shape
    p = np.empty(n, np.int64)
    stack = np.empty(3 * 66, np.int64)
    for r in range(r_):
        for j in range(n):
            kk = np.int64(keys[r, j])
            if largest:
                kk = ~kk  # the largest first: the ascending order of ~key
            p[j] = (kk << 32) | j
        if k * 64 <= n:
            _p_heap_select(p, 0, k, n)
            _p_sort_heap(p, 0, k)
        else:
            _p_nth_element(p, k - 1, n)
            if sorted_:
                _p_sort(p, k - 1, stack)
        for j in range(k):
            out[r, j] = p[j] & 0xFFFFFFFF


@njit(**_OPTS)
def mode_torch_keys(keys, rows, out):  # pragma: no cover - compiled
    """mode_torch_rows on 32-bit keys (float32_keys' for float32; rows WITHOUT NaN): std::sort
    of the packed (key, index) pairs, then the last index of the first longest run of equal
    keys (equal keys: equal values, -0.0 and +0.0 one run as `!=` sees them)."""
    n = keys.shape[1]
    p = np.empty(n, np.int64)
    stack = np.empty(3 * 66, np.int64)
    for r in rows:
        for j in range(n):
            p[j] = (np.int64(keys[r, j]) << 32) | j
        _p_sort(p, n, stack)
        best_i, best_f, run = 0, 0, 0
        for j in range(n):
            run += 1
            if j == n - 1 or _pk(p[j]) != _pk(p[j + 1]):
                if run > best_f:
                    best_i, best_f = p[j] & 0xFFFFFFFF, run
                run = 0
        out[r, 0] = best_i
