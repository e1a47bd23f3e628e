"""The simplest kernel text shapes: "name value" lines, a decimal, a limit.

Every printer here takes signed Python ints and prints them the way the
kernel prints an unsigned value it computed from a signed counter: clamped
at 0 (the SMP readers clamp negatives, e.g. global_node_page_state,
memcg_page_state, lruvec_page_state).
"""


def u(value) -> int:
    """A value the kernel prints unsigned after clamping a signed counter."""
    value = int(value)
    return value if value > 0 else 0


def kv(pairs) -> bytes:
    """``"%s %lu\\n"`` per (name, value) pair; values clamped at 0."""
    return "".join("%s %d\n" % (name, u(value)) for name, value in pairs).encode()


def decimal(value) -> bytes:
    """``"%d\\n"`` (signed, not clamped): kernel_max, cgroup.freeze, ..."""
    return b"%d\n" % int(value)


def limit(pages, page_size, page_counter_max) -> bytes:
    """A page-counter limit (memory.max/high/low/min, swap.*, zswap.max):
    "max" when it equals PAGE_COUNTER_MAX, else bytes (mm/memcontrol.c,
    seq_puts_memcg_tunable)."""
    if pages == page_counter_max:
        return b"max\n"
    return b"%d\n" % (u(pages) * page_size)
