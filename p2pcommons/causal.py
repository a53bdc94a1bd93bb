"""Version vectors that cost per entry what the entry adds: persistent sparse tries.

An entry's causal past is summarized by its version vector: per author index, the highest
seq of that author in the past (0: none).  Stored densely (one slot per author index) it
costs O(authors) per entry: 10,000 joins that depend only on the genesis held 50 M slots.
Here a vector is a 32-ary trie keyed by author index, built by path copying: an entry's
vector shares every node with its parents' vectors except the paths to the slots it
changes (its own author's new seq, and what its other parents bring), so it costs
O(changed slots × depth) — depth is 1 up to 32 authors, 2 up to 1,024, 3 up to 32,768.

A vector is a pair ``(shift, root)``: ``shift`` is 5 × (depth - 1).  A node is a tuple of
at most 32 items, trimmed after its last non-empty one; a leaf's items are ints, an inner
node's are nodes, ``()`` standing for an empty subtree (all zeros).  Reading a slot is
``depth`` tuple indexings (:func:`get`).  Merging (:func:`merge`, slot-wise max) skips
subtrees the two vectors share and returns one of them unchanged where it already covers
the other, so merging a parent that adds little costs little.

Why not a library (pyrsistent's ``pmap``): its map is pure Python above a C vector, so a
lookup costs a hash, a bucket scan and several calls; it has no slot-wise max that skips
shared structure, and it would be a dependency (last release 2023) for ~150 lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from itertools import compress, repeat, zip_longest
from operator import ge as _ge
from operator import is_ as _is
from operator import is_not as _is_not
from operator import lt as _lt
from operator import ne as _ne
from typing import Any

Node = tuple[Any, ...]
Vector = tuple[int, Node]

BITS = 5
WIDTH = 1 << BITS
MASK = WIDTH - 1
EMPTY: Vector = (0, ())


def get(vector: Vector, index: int) -> int:
    """The slot ``index`` (0 if never set)."""
    shift, node = vector
    if index >> shift >> BITS:
        return 0
    while shift:
        j = (index >> shift) & MASK
        if j >= len(node):
            return 0
        node = node[j]
        shift -= BITS
    j = index & MASK
    return node[j] if j < len(node) else 0


def _grow(vector: Vector, shift: int) -> Vector:
    """The same vector with a deeper root (``shift`` at least the vector's)."""
    have, node = vector
    while have < shift:
        node = (node,) if node else ()
        have += BITS
    return have, node


def _set(node: Node, shift: int, index: int, value: int) -> Node:
    j = (index >> shift) & MASK
    new: Any
    if shift:
        child = node[j] if j < len(node) else ()
        new = _set(child, shift - BITS, index, value)
        if new is child:
            return node
    else:
        if (node[j] if j < len(node) else 0) == value:
            return node
        new = value
    if j < len(node):
        return (*node[:j], new, *node[j + 1:])
    return (*node, *((() if shift else 0,) * (j - len(node))), new)


def put(vector: Vector, index: int, value: int) -> Vector:
    """A vector equal to ``vector`` but with slot ``index`` set to ``value`` (path copy)."""
    shift = vector[0]
    while index >> shift >> BITS:
        shift += BITS
    shift, node = _grow(vector, shift)
    new = _set(node, shift, index, value)
    return vector if new is node and shift == vector[0] else (shift, new)


def _merge(a: Node, b: Node, shift: int) -> Node:
    # (``map`` over C functions, not generator expressions: a fold of many authors merges a
    # few parents' vectors per entry, and the per-slot Python frames were most of its cost.)
    if a is b or not b:
        return a
    if not a:
        return b
    if not shift:
        if len(a) >= len(b):
            if all(map(_ge, a, b)):
                return a
            return (*map(max, a, b), *a[len(b):])
        if all(map(_ge, b, a)):
            return b
        return (*map(max, a, b), *b[len(a):])
    low = shift - BITS
    if len(a) < len(b):
        merged = tuple(map(_merge, (*a, *((),) * (len(b) - len(a))), b, repeat(low)))
    else:
        merged = tuple(map(_merge, a, (*b, *((),) * (len(a) - len(b))), repeat(low)))
    if len(a) >= len(b) and all(map(_is, merged, a)):
        return a
    if len(b) >= len(a) and all(map(_is, merged, b)):
        return b
    return merged


def merge(a: Vector, b: Vector) -> Vector:
    """The slot-wise maximum of two vectors (``a`` itself where it covers ``b``)."""
    if a is b or not b[1]:
        return a
    shift = max(a[0], b[0])
    ga, gb = _grow(a, shift), _grow(b, shift)
    node = _merge(ga[1], gb[1], shift)
    if node is ga[1]:
        return a if shift == a[0] else ga
    return b if node is gb[1] and shift == b[0] else (shift, node)


def _merge_leaves(leaves: list[Node]) -> Node:
    """The slot-wise maximum of two or more leaves (one of them itself where it covers the
    rest: what differences skip)."""
    if len(leaves) == 2:  # (the usual case: one covers the other, found in C)
        first, second = leaves
        merged = _merge(first, second, 0)
        return second if merged is not first and merged == second else merged
    merged = tuple(map(max, zip_longest(*leaves, fillvalue=0)))
    for leaf in leaves:
        if leaf == merged:
            return leaf
    return merged


def _merge_all(nodes: list[Node], shift: int) -> Node:
    """The slot-wise maximum of two or more distinct, non-empty nodes at ``shift`` (one of
    them itself where it covers the others)."""
    if not shift:
        return _merge_leaves(nodes)
    # Only the children where some node is not the first's own are merged (found in C):
    # parents' vectors share most subtrees, and a 32-wide walk of each node was most of the
    # cost with thousands of authors.
    low = shift - BITS
    first = nodes[0]
    size = len(first)
    width = max(map(len, nodes))
    differ: set[int] = set()
    padded: list[Node] = []
    for node in nodes:
        if len(node) < width:
            node = (*node, *((),) * (width - len(node)))
        padded.append(node)
        differ.update(compress(range(size), map(_is_not, node, first)))
    differ.update(range(size, width))
    merge_below = _merge_leaves if not low else partial(_merge_all, shift=low)
    out = [*first, *((),) * (width - size)]
    for j in differ:
        children = list({id(child): child for child in [node[j] for node in padded] if child}.values())
        out[j] = () if not children else children[0] if len(children) == 1 else merge_below(children)
    for node in nodes:  # (the same object where one covers the rest)
        if len(node) == width and all(map(_is, node, out)):
            return node
    return tuple(out)


def merge_all(vectors: Iterable[Vector]) -> Vector:
    """:func:`merge` of any number of vectors in one walk (the first where it covers the
    rest): an entry naming a dozen parents merges their vectors at once, not a dozen times."""
    distinct = list({id(vector): vector for vector in vectors if vector[1]}.values())
    if not distinct:
        return EMPTY
    if len(distinct) == 1:
        return distinct[0]
    shift = max([vector[0] for vector in distinct])
    grown = [vector if vector[0] == shift else _grow(vector, shift) for vector in distinct]
    node = _merge_all([vector[1] for vector in grown], shift)
    for vector, deeper in zip(distinct, grown, strict=True):
        if deeper[1] is node:
            return vector if vector[0] == shift else deeper
    return shift, node


def merge_roots(a: Node, b: Node) -> Node:
    """The root of :func:`merge` of two two-level vectors (shift ``BITS``, up to 1,024
    authors) given by their roots, in one frame: at 100 authors the in-order intake merges
    a parent's vector into an entry's for most entries, and the general walk's frames (one
    per leaf, each mapping ``max`` over 32 slots) were most of it.  Here a leaf is copied
    only where the other raises a slot (found in C), and ``a`` (or ``b``) itself is
    returned where it covers the other, as :func:`merge` does."""
    if a is b or not b:
        return a
    if not a:
        return b
    size_a = len(a)
    out: list[Node] | None = None
    for k, y in enumerate(b):
        x = a[k] if k < size_a else ()
        if x is y or not y:
            continue
        if x:
            size_x = len(x)
            size_y = len(y)
            common = size_x if size_x < size_y else size_y
            raised = list(compress(range(common), map(_lt, x, y)))
            if not raised and size_x >= size_y:
                continue  # x covers y
            if len(raised) < common or size_x > size_y:
                slots = list(x) if size_x >= size_y else [*x, *y[size_x:]]
                for j in raised:
                    slots[j] = y[j]
                y = tuple(slots)
            # (else y covers x: y itself)
        if out is None:
            out = [*a, *((),) * (len(b) - size_a)] if len(b) > size_a else list(a)
        out[k] = y
    if out is None:
        return a
    if len(out) == len(b) and all(map(_is, out, b)):
        return b
    return tuple(out)


def _minimum(nodes: list[Node], shift: int) -> Node:
    first = nodes[0]
    if all(node is first for node in nodes):
        return first
    if not all(nodes):
        return ()
    width = min(map(len, nodes))
    if not shift:
        return tuple(map(min, *nodes)) if len(nodes) > 1 else first[:width]
    low = shift - BITS
    return tuple(_minimum([node[j] for node in nodes], low) for j in range(width))


def minimum(vectors: list[Vector]) -> Vector:
    """The slot-wise minimum of one or more vectors (stability: what every member has seen).
    Subtrees that one vector lacks, or that all share, are not walked."""
    shift = max(v[0] for v in vectors)
    return shift, _minimum([_grow(v, shift)[1] for v in vectors], shift)


def _covers(a: Node, b: Node, shift: int) -> bool:
    if a is b or not b:
        return True
    if not shift:
        return all(x >= y for x, y in zip_longest(a, b, fillvalue=0))
    low = shift - BITS
    return all(_covers(x, y, low) for x, y in zip_longest(a, b, fillvalue=()))


def covers(a: Vector, b: Vector) -> bool:
    """Is every slot of ``a`` at least ``b``'s?  (Stops at the first that is not.)"""
    shift = max(a[0], b[0])
    return _covers(_grow(a, shift)[1], _grow(b, shift)[1], shift)


def _items(node: Node, shift: int, base: int) -> Iterator[tuple[int, int]]:
    if not shift:
        for j, x in enumerate(node):
            if x:
                yield base + j, x
        return
    for j, child in enumerate(node):
        if child:
            yield from _items(child, shift - BITS, base + (j << shift))


def items(vector: Vector) -> Iterator[tuple[int, int]]:
    """The non-zero slots, ``(index, value)`` in index order."""
    return _items(vector[1], vector[0], 0)


def _diff(old: Node, new: Node, shift: int, base: int, out: list[int]) -> None:
    if old is new:
        return
    if not shift:
        width = max(len(old), len(new))
        if len(old) < width:
            old = (*old, *(0,) * (width - len(old)))
        elif len(new) < width:
            new = (*new, *(0,) * (width - len(new)))
        for j in compress(range(width), map(_ne, old, new)):
            out += (base + j, new[j])
        return
    for j, (x, y) in enumerate(zip_longest(old, new, fillvalue=())):
        if x is not y:
            _diff(x, y, shift - BITS, base + (j << shift), out)


def diff(old: Vector, new: Vector) -> list[int]:
    """The slots where ``new`` differs from ``old``, flat ``[index, value, …]`` in index order
    (``value`` is ``new``'s, 0 where ``new`` has none): ``apply(old, diff(old, new))`` equals
    ``new``.  Shared subtrees are skipped, so it costs what the two do not share."""
    if not old[0] and not new[0]:
        return _diff_leaves(old[1], new[1])
    shift = max(old[0], new[0])
    out: list[int] = []
    _diff(_grow(old, shift)[1], _grow(new, shift)[1], shift, 0, out)
    return out


def _diff_leaves(old: Node, new: Node) -> list[int]:
    """:func:`diff` of two one-leaf vectors (up to 32 authors), in one frame: the archive
    encodes every archived record as its difference from the previous one, and the calls
    and padding of the general walk were a third of that."""
    width = len(new)
    if len(old) != width:
        if len(old) < width:
            old = (*old, *(0,) * (width - len(old)))
        else:
            width = len(old)
            new = (*new, *(0,) * (width - len(new)))
    out: list[int] = []
    for j in compress(range(width), map(_ne, old, new)):
        out += (j, new[j])
    return out


def _set_leaf(node: Node, shift: int, base: int, leaf: Node) -> Node:
    """``node`` with the leaf covering author indexes ``base``… replaced by ``leaf`` (path copy)."""
    if not shift:
        return leaf
    j = (base >> shift) & MASK
    child = node[j] if j < len(node) else ()
    new = _set_leaf(child, shift - BITS, base, leaf)
    if j < len(node):
        return (*node[:j], new, *node[j + 1:])
    return (*node, *(((),) * (j - len(node))), new)


def _leaf(node: Node, shift: int, base: int) -> Node:
    """The leaf covering author indexes ``base``… (``()`` where there is none)."""
    while shift:
        j = (base >> shift) & MASK
        if j >= len(node):
            return ()
        node = node[j]
        shift -= BITS
    return node


def apply(vector: Vector, flat: Iterable[int]) -> Vector:
    """``vector`` with the slots of a flat ``[index, value, …]`` list set.

    The slots are set leaf by leaf, one path copy per leaf changed rather than one per slot:
    decoding an archived record applies a whole segment's differences (hundreds of slots
    over a few leaves), and per-slot path copies made that cost grow with the segment."""
    flat = flat if isinstance(flat, (list, tuple)) else list(flat)
    if not flat:
        return vector
    indexes = flat[0::2]
    shift, node = vector
    if not shift and max(indexes) < WIDTH:
        # One leaf (up to 32 authors): one copy, not one per slot (resuming a checkpoint).
        leaf = list(node)
        for index, value in zip(indexes, flat[1::2], strict=True):
            if index >= len(leaf):
                leaf.extend([0] * (index + 1 - len(leaf)))
            leaf[index] = value
        while leaf and not leaf[-1]:
            leaf.pop()
        return (0, tuple(leaf))
    top = max(indexes)
    values = flat[1::2]
    if not shift and not node and top < 4 * len(indexes) and all(values):
        return _from_dense(indexes, values, top)  # (decoding a record: the whole vector at once)
    while top >> shift >> BITS:
        shift += BITS
    shift, node = _grow(vector, shift)
    leaves: dict[int, list[int]] = {}  # leaf base -> its slots, as they become
    for index, value in zip(indexes, values, strict=True):
        base = index & ~MASK
        got = leaves.get(base)
        if got is None:
            got = leaves[base] = list(_leaf(node, shift, base))
        j = index & MASK
        if j < len(got):
            got[j] = value
        elif value:  # (as put: a zero beyond the leaf changes nothing)
            got.extend([0] * (j - len(got)))
            got.append(value)
    for base, slots in leaves.items():
        new = tuple(slots)
        if new != _leaf(node, shift, base):
            node = _set_leaf(node, shift, base, new)
    return (shift, node)


def _from_dense(indexes: list[int] | tuple[int, ...], values: list[int] | tuple[int, ...], top: int) -> Vector:
    """The vector with these non-zero slots set (later pairs win), built bottom-up from a
    dense list: what :func:`apply` gives from the empty vector, in one pass instead of one
    leaf lookup per slot (a record decoded from the archive applies a segment's differences,
    hundreds of slots).  Only where the slots are dense enough that the list costs no more
    than the pairs (``top`` is the highest index)."""
    dense = [0] * (top + 1)
    for index, value in zip(indexes, values, strict=True):
        dense[index] = value
    level: list[Any] = []
    for start in range(0, top + 1, WIDTH):
        leaf = dense[start:start + WIDTH]
        while leaf and not leaf[-1]:
            leaf.pop()
        level.append(tuple(leaf))
    shift = 0
    while len(level) > 1 or top >> shift >> BITS:
        parents: list[Any] = []
        for start in range(0, len(level), WIDTH):
            node = level[start:start + WIDTH]
            while node and not node[-1]:
                node.pop()
            parents.append(tuple(node))
        level = parents
        shift += BITS
    return shift, level[0]


def of(pairs: Iterable[tuple[int, int]]) -> Vector:
    """A vector from ``(index, value)`` pairs."""
    vector = EMPTY
    for index, value in pairs:
        vector = put(vector, index, value)
    return vector


def dense(vector: Vector, width: int) -> list[int]:
    """The first ``width`` slots as a list (for queries over all authors, not per entry)."""
    out = [0] * width
    for index, value in items(vector):
        if index < width:
            out[index] = value
    return out


def count_nodes(vectors: Iterable[Vector]) -> tuple[int, int]:
    """``(distinct nodes, slots in them)`` over many vectors, shared nodes counted once: what
    the vectors of a fold actually hold (tests bound it: linear in entries)."""
    seen: set[int] = set()
    slots = 0
    stack: list[Node] = [v[1] for v in vectors]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        slots += len(node)
        stack.extend(x for x in node if isinstance(x, tuple) and x)
    return len(seen), slots
