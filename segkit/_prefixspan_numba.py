"""Compiled kernels of :func:`segkit.patterns.mine_patterns` (``engine="fast"``).

The database is a CSR of int32 item codes: ``flat`` holds every sequence back to back and
sequence ``s`` is ``flat[offsets[s]:offsets[s + 1]]``. Codes are ranks in the pattern order, so a
depth-first search that visits extensions in ascending code order emits the patterns in
lexicographic order.

Mining is PrefixSpan with pseudo-projection: a prefix's projected database is a list of
``(sequence id, position of the prefix's first occurrence)`` pairs, one per supporting sequence.
For a prefix, one scan over the suffixes counts each next item once per sequence (a per-item
"last seen" stamp) and records each item's FIRST occurrence after the current position; the
records of the frequent extensions are then scattered into their projections (none are written
for extensions at the maximum length, which are never expanded). The DFS keeps
an explicit stack of frames; projections live in one growable buffer used as a stack.

The frequent patterns come back as a trie in preorder (``parent``, ``item``, ``support``), and
the closed and generator filters look patterns up in that trie (see :func:`mark`).

Every kernel is compiled with ``cache=True``: the first call in a fresh environment compiles
(about 4 s for mining, 1 s more for :func:`mark`), later processes load the cached machine code
(about 1 s). Slice assignments, ``np.full`` and integer literals passed to other kernels are
avoided on purpose: each costs compile time (a literal compiles the callee twice).
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["mine", "item_support", "children_csr", "mark"]


@njit(cache=True)
def _grow(a, need):
    """Return ``a`` or a copy at least ``need`` long (doubling)."""
    n = a.shape[0]
    if need <= n:
        return a
    out = np.empty(need if need > 2 * n else 2 * n, dtype=np.int64)
    for i in range(n):  # an explicit loop: slice assignment costs seconds of compile time
        out[i] = a[i]
    return out


@njit(cache=True)
def _offer(heap, size, value):
    """Offer ``value`` to the min-heap ``heap[:size]`` of capacity ``heap.shape[0]``; new size."""
    if size < heap.shape[0]:
        i = size
        heap[i] = value
        while i > 0:
            parent = (i - 1) >> 1
            if heap[parent] <= heap[i]:
                break
            tmp = heap[parent]
            heap[parent] = heap[i]
            heap[i] = tmp
            i = parent
        return size + 1
    if value <= heap[0]:
        return size
    heap[0] = value
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[i] <= heap[child]:
            break
        tmp = heap[child]
        heap[child] = heap[i]
        heap[i] = tmp
        i = child
    return size


@njit(cache=True)
def _count(flat, offsets, proj, a, b, count, stamp, touched, clock, rec):
    """Count, once per projected sequence, the items after each position.

    Every item's first occurrence after the position is also recorded in ``rec`` as a
    ``(item, sequence, position)`` triple, in projection order, so the extensions' projections
    can be written without scanning the suffixes again. Returns ``(n_touched, n_records, rec)``
    (``rec`` grows when needed); ``touched`` lists the items whose count became non-zero.
    """
    n_touched = 0
    n_rec = 0
    n_items = count.shape[0]
    for e in range(a, b):
        s = proj[2 * e]
        lo = proj[2 * e + 1] + 1
        hi = offsets[s + 1]
        room = hi - lo if hi - lo < n_items else n_items
        if 3 * (n_rec + room) > rec.shape[0]:
            rec = _grow(rec, 3 * (n_rec + room))
        for p in range(lo, hi):
            x = flat[p]
            if stamp[x] != clock:
                stamp[x] = clock
                if count[x] == 0:
                    touched[n_touched] = x
                    n_touched += 1
                count[x] += 1
                rec[3 * n_rec] = x
                rec[3 * n_rec + 1] = s
                rec[3 * n_rec + 2] = p
                n_rec += 1
        clock += 1
    return n_touched, n_rec, rec


@njit(cache=True)
def _select(count, touched, n_touched, thr, kids):
    """Frequent items among ``touched`` into ``kids`` in ascending order; reset the others."""
    n_kids = 0
    for t in range(n_touched):
        x = touched[t]
        if count[x] >= thr:
            kids[n_kids] = x
            n_kids += 1
        else:
            count[x] = 0
    for i in range(1, n_kids):  # insertion sort: ascending codes give lexicographic preorder
        v = kids[i]
        j = i - 1
        while j >= 0 and kids[j] > v:
            kids[j + 1] = kids[j]
            j -= 1
        kids[j + 1] = v
    return n_kids


@njit(cache=True)
def _project(rec, n_rec, proj, slot):
    """Write each frequent extension's projection (its first occurrence after the position).

    ``slot[x]`` is 1 + the next write index of item ``x`` (0 for items that are not extended).
    """
    for r in range(n_rec):
        x = rec[3 * r]
        q = slot[x]
        if q > 0:
            proj[2 * (q - 1)] = rec[3 * r + 1]
            proj[2 * (q - 1) + 1] = rec[3 * r + 2]
            slot[x] = q + 1


@njit(cache=True)
def mine(flat, offsets, n_items, minsup, maxlen, top_k, min_len, contain_code, end_code):
    """Depth-first PrefixSpan over the CSR database.

    Parameters
    ----------
    flat : int32 array
        Item codes in ``[0, n_items)`` of all sequences, back to back.
    offsets : int64 array
        ``n_sequences + 1`` start offsets into ``flat``.
    n_items : int
        Number of distinct codes.
    minsup : int
        Absolute minimum support (at least 1).
    maxlen : int
        Longest pattern to enumerate (at least 1).
    top_k : int
        When positive, raise the threshold on the fly to the ``top_k``-th best support seen so far
        among the patterns that pass the filters below; ties are kept and the caller cuts.
    min_len, contain_code, end_code : int
        The filters that decide which patterns count for ``top_k`` (``-1``: no filter).

    Returns
    -------
    out : int64 array
        ``out[:5 * n_out].reshape(n_out, 5)`` holds the frequent patterns as a trie in preorder,
        one row each: ``parent`` (row of the pattern without its last item, ``-1`` for single
        items), ``item`` (last code), ``support``, ``length`` and ``has_contain`` (1 when the
        pattern contains ``contain_code``).
    n_out : int
        Number of patterns.
    threshold : int
        The final support threshold (``minsup`` unless ``top_k`` raised it).
    """
    n_seq = offsets.shape[0] - 1
    proj = np.empty(4 * n_seq + 2048, dtype=np.int64)  # stack of (sequence id, position) pairs
    kid = np.empty(3 * 1024, dtype=np.int64)  # open frames' children: (item, projection start, support)
    rec = np.empty(3 * (n_seq + 1024), dtype=np.int64)  # first occurrences found by _count
    # one frame per depth: first child, end of children, cursor, projection top, node, has
    frame = np.empty(6 * (maxlen + 2), dtype=np.int64)
    out = np.empty(5 * 1024, dtype=np.int64)
    n_out = 0
    count = np.zeros(n_items, dtype=np.int64)
    stamp = np.zeros(n_items, dtype=np.int64)
    slot = np.zeros(n_items, dtype=np.int64)
    touched = np.empty(n_items, dtype=np.int64)
    kids = np.empty(n_items, dtype=np.int64)
    heap = np.empty(top_k if top_k > 0 else 1, dtype=np.int64)
    hsize = np.int64(0)  # np.int64, not a literal: literals would compile callees twice
    thr = minsup
    clock = np.int64(1)
    for s in range(n_seq):  # root projection: every sequence, before its first position
        proj[2 * s] = s
        proj[2 * s + 1] = offsets[s] - 1
    ptop = n_seq
    ktop = 0
    proj_a = np.int64(0)
    proj_b = n_seq
    depth = 0
    node = -1
    has = 0
    while True:
        # ---- expand the node whose projection is proj[proj_a:proj_b] and push its frame
        n_touched, n_rec, rec = _count(flat, offsets, proj, proj_a, proj_b, count, stamp, touched, clock, rec)
        clock += proj_b - proj_a
        n_kids = _select(count, touched, n_touched, thr, kids)
        frame[6 * depth + 0] = ktop
        frame[6 * depth + 2] = ktop
        frame[6 * depth + 3] = ptop
        frame[6 * depth + 4] = node
        frame[6 * depth + 5] = has
        if n_kids > 0:
            total = 0
            for i in range(n_kids):
                total += count[kids[i]]
            proj = _grow(proj, 2 * (ptop + total))
            kid = _grow(kid, 3 * (ktop + n_kids))
            start = ptop
            for i in range(n_kids):
                x = kids[i]
                kid[3 * (ktop + i)] = x
                kid[3 * (ktop + i) + 1] = start
                kid[3 * (ktop + i) + 2] = count[x]
                slot[x] = start + 1
                start += count[x]
                count[x] = 0
            if depth + 1 < maxlen:  # children at maxlen are never expanded: no projection needed
                _project(rec, n_rec, proj, slot)
            for i in range(n_kids):
                slot[kids[i]] = 0
            ptop = start
            ktop += n_kids
        frame[6 * depth + 1] = ktop

        # ---- move to the next child worth expanding, popping finished frames
        found = False
        while depth >= 0:
            c = frame[6 * depth + 2]
            if c >= frame[6 * depth + 1]:
                ptop = frame[6 * depth + 3]
                ktop = frame[6 * depth + 0]
                depth -= 1
                continue
            frame[6 * depth + 2] = c + 1
            sup = kid[3 * c + 2]
            if sup < thr:
                continue
            x = kid[3 * c]
            plen = depth + 1
            chas = 1 if x == contain_code else frame[6 * depth + 5]
            out = _grow(out, 5 * (n_out + 1))
            out[5 * n_out] = frame[6 * depth + 4]
            out[5 * n_out + 1] = x
            out[5 * n_out + 2] = sup
            out[5 * n_out + 3] = plen
            out[5 * n_out + 4] = chas
            n_out += 1
            if top_k > 0 and plen >= min_len and (contain_code < 0 or chas == 1) \
                    and (end_code < 0 or x == end_code):
                hsize = _offer(heap, hsize, sup)
                if hsize == top_k and heap[0] > thr:
                    thr = heap[0]
            if plen < maxlen:
                proj_a = kid[3 * c + 1]
                proj_b = proj_a + sup
                depth += 1
                node = n_out - 1
                has = chas
                found = True
                break
        if not found:
            break
    return out, n_out, thr


def children_csr(parent):
    """Children of every trie node, sorted by item: ``kids[ptr[v + 1]:ptr[v + 2]]`` (root ``v = -1``).

    The trie is in preorder and siblings are visited in ascending item order, so a stable sort
    by parent keeps each run of children sorted by item.
    """
    ptr = np.zeros(parent.shape[0] + 2, dtype=np.int64)
    np.cumsum(np.bincount(parent + 1, minlength=parent.shape[0] + 1), out=ptr[1:])
    kids = np.argsort(parent, kind="stable").astype(np.int64)
    return ptr, kids


@njit(cache=True)
def _child(ptr, kids, item, node, x):
    """Child of ``node`` with item ``x`` (binary search), or ``-1``."""
    lo = ptr[node + 1]
    hi = ptr[node + 2]
    while lo < hi:
        mid = (lo + hi) >> 1
        v = item[kids[mid]]
        if v < x:
            lo = mid + 1
        elif v > x:
            hi = mid
        else:
            return kids[mid]
    return -1


@njit(cache=True)
def mark(parent, item, support, length, ptr, kids, n_sequences, closed, generator):
    """Closed and generator flags of every pattern of the trie.

    A pattern is closed when no one-item-longer super-pattern has its support: every pattern
    ``Q`` marks each of its one-item deletions with ``Q``'s support as not closed (a super-pattern
    with equal support is frequent, so it is in the trie when the trie was mined one level deeper
    than the longest pattern that is returned). A pattern is a generator when no one-item deletion
    has its support; the empty pattern, with support ``n_sequences``, is the deletion of a single
    item. Every deletion of a frequent pattern is frequent, hence in the trie, and is found by
    walking down from the node of the prefix before the deleted position.

    Returns
    -------
    is_closed, is_generator : bool arrays
        All ``True`` for a mode that was not asked for.
    """
    n = parent.shape[0]
    is_closed = np.ones(n, dtype=np.bool_)
    is_gen = np.ones(n, dtype=np.bool_)
    longest = 0
    for q in range(n):
        if length[q] > longest:
            longest = length[q]
    anc = np.empty(longest + 1, dtype=np.int64)  # anc[d]: node of the first d items (-1: empty)
    codes = np.empty(longest + 1, dtype=np.int64)
    for q in range(n):
        L = length[q]
        if L == 1:
            if generator and support[q] == n_sequences:
                is_gen[q] = False
            continue
        v = q
        anc[L] = q
        for d in range(L - 1, -1, -1):
            codes[d] = item[v]
            v = parent[v]
            anc[d] = v
        for j in range(L):
            if j + 1 < L and codes[j] == codes[j + 1]:
                continue  # deleting j or j + 1 gives the same pattern
            p = anc[j]
            for d in range(j + 1, L):
                p = _child(ptr, kids, item, p, codes[d])
                if p < 0:
                    break
            if p >= 0 and support[p] == support[q]:
                if closed:
                    is_closed[p] = False
                if generator:
                    is_gen[q] = False
                    if not closed:
                        break
    return is_closed, is_gen


@njit(cache=True)
def item_support(flat, offsets, n_items):
    """Number of sequences that contain each item code."""
    support = np.zeros(n_items, dtype=np.int64)
    seen = np.zeros(n_items, dtype=np.int64)  # 1 + the last sequence that contained the item
    for s in range(offsets.shape[0] - 1):
        for p in range(offsets[s], offsets[s + 1]):
            x = flat[p]
            if seen[x] != s + 1:
                seen[x] = s + 1
                support[x] += 1
    return support
