"""State that knows itself: each model class names its fields, so rollback and identity need no
field list kept elsewhere (docs/ARCHITECTURE.md, "State").

A stateful class declares
- STATE: what commands change; snapshotted, restored and digested;
- CACHE: derived values kept for speed; snapshotted and restored, never digested;
- KEPT:  STATE that a failed command keeps (the memcg events the kernel counts for it);
- FIXED: set at creation and never changed (references to the rest of the model included).
tests/test_state_fields.py fails when an instance holds a field none of them names, so a new
field cannot escape rollback or the digest unnoticed.
"""

from typing import Iterator, Tuple

_SCALARS = (int, float, str, bytes, bool, type(None), frozenset)


def fields(obj):
    cls = type(obj)
    return (getattr(cls, "STATE", ()), getattr(cls, "CACHE", ()), getattr(cls, "KEPT", ()),
            getattr(cls, "FIXED", ()))


_CONTAINERS = frozenset({list, dict, set, bytearray})


def _copy(v):
    """Containers copied all the way down; model objects (and scalars) by reference: each model
    object snapshots its own fields. A container of scalars or objects is copied in one step
    (the type scan runs in C): a command's rollback snapshot is on the write path."""
    t = type(v)
    if t is list:
        if _CONTAINERS.isdisjoint(map(type, v)):
            return v[:]
        return [_copy(i) for i in v]
    if t is dict:
        if _CONTAINERS.isdisjoint(map(type, v.values())):
            return v.copy()
        return {k: _copy(i) for k, i in v.items()}
    if t is set:
        return set(v)
    if t is bytearray:
        return bytearray(v)
    return v


def snapshot(obj) -> dict:
    """What a failed command must put back: STATE and CACHE but KEPT."""
    state, cache, kept, _ = fields(obj)
    return {f: _copy(getattr(obj, f)) for f in state + cache if f not in kept}


def restore(obj, snap: dict) -> None:
    for f, v in snap.items():
        setattr(obj, f, _copy(v))


def canon(v):
    """A value with model objects replaced by their stable keys, containers as sorted tuples."""
    if isinstance(v, _SCALARS):
        return tuple(sorted(v)) if isinstance(v, frozenset) else v
    if isinstance(v, bytearray):
        return bytes(v)
    if isinstance(v, (list, tuple)):
        return tuple(canon(i) for i in v)
    if isinstance(v, set):
        return tuple(sorted(canon(i) for i in v))
    if isinstance(v, dict):
        return tuple(sorted((canon(k), canon(i)) for k, i in v.items()))
    return v.state_key()


def state_of(obj, but_kept: bool = False) -> tuple:
    """(field, canonical value) of every STATE field (but the KEPT ones, if asked)."""
    state, _, kept, _ = fields(obj)
    return tuple((f, canon(getattr(obj, f))) for f in state if not (but_kept and f in kept))


def objects(model) -> Iterator[Tuple[tuple, object]]:
    """(key, object) of every stateful object of a model."""
    k = model.kernel
    yield ("model",), model
    yield ("topology",), model.topo
    yield ("nodestat",), k.nodestat
    yield ("allocator",), k.pcpu
    yield ("stocks",), k.stocks
    yield ("groups",), model.groups
    yield ("members",), model.members
    yield ("cputime",), model.cputime
    chunks = k.pcpu.chunks() + ([k.pcpu.reserved_chunk] if k.pcpu.reserved_chunk else [])
    for c in sorted(chunks, key=lambda c: c.id):
        yield c.state_key(), c
    for cg in [model.root, *model.root.descendants()]:
        yield cg.state_key(), cg
        m = cg.memcg
        if m is None:
            continue
        yield m.state_key(), m
        yield m.state_key() + ("memory",), m.memory
        for o in m.objcg_list:
            yield o.state_key(), o
        for obj in m.own_objects:
            yield obj.state_key(), obj
    for g in model.groups.groups.values():
        yield g.state_key(), g
        for obj in g.objects:
            yield obj.state_key(), obj


def digest(model, but_kept: bool = False) -> tuple:
    """Everything a command changes, as one comparable value: equal digests, equal models.
    `but_kept` leaves out what a failed command may still change (the memcg events), so a
    digest before and after a refused command must be equal. The lazy per-node sums are
    settled first, so a digest never depends on when they were read."""
    model.root.memcg.flush_node_stats()
    return tuple((key, state_of(obj, but_kept)) for key, obj in objects(model))
