"""C integer limits of the 64-bit kernel (include/vdso/limits.h) and the counter maxima built on
them: the one home of these numbers for the model, the parsers and the configuration."""

INT_MAX = (1 << 31) - 1
INT_MIN = -(1 << 31)
UINT_MAX = (1 << 32) - 1
LONG_MAX = (1 << 63) - 1
ULLONG_MAX = (1 << 64) - 1


def page_counter_max(page_size: int) -> int:
    """include/linux/page_counter.h PAGE_COUNTER_MAX on 64-bit: LONG_MAX / PAGE_SIZE pages."""
    return LONG_MAX // page_size
