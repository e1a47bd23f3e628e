"""Edits of rendered bytes (pure): what real kernels and vendors did to the text parsers read
(docs/faults.md). A line's key is its first field, without a trailing ':' (meminfo `MemTotal:`,
memory.stat `anon`, numa_stat `anon N0=...`), after an optional `Node N ` prefix (node meminfo);
a key may hold spaces (cpuinfo `model name`). A key not in the file leaves it unchanged."""

import re
from typing import Iterable, List, Tuple


def _key_rx(key: str) -> "re.Pattern":
    # group 1: everything up to the value's first field (key, ':', blanks); group 2: that field
    return re.compile(r"^((?:Node \d+ )?%s:?[ \t]*)(\S*)" % re.escape(key))


def _lines(data: bytes) -> Tuple[List[str], bool]:
    text = data.decode("latin-1")
    final = text.endswith("\n")
    return (text[:-1] if final else text).split("\n") if text else [], final


def _join(lines: List[str], final: bool) -> bytes:
    return ("\n".join(lines) + ("\n" if final and lines else "")).encode("latin-1")


def _has_key(line: str, key: str) -> bool:
    m = _key_rx(key).match(line)
    # the key must end where the line's key ends: `anon` is not `anon_thp`
    return bool(m) and (len(m.group(1)) > len(m.group(1).rstrip(" \t:")) or
                        m.end(1) == len(line))


def add_line(data: bytes, text: str, after: str = None, at: str = "end") -> bytes:
    lines, final = _lines(data)
    if after is not None:
        for i, line in enumerate(lines):
            if _has_key(line, after):
                lines.insert(i + 1, text)
                break
        else:
            return data
    elif at == "start":
        lines.insert(0, text)
    else:
        lines.append(text)
    return _join(lines, final or not data)


def drop_key(data: bytes, key: str) -> bytes:
    lines, final = _lines(data)
    return _join([ln for ln in lines if not _has_key(ln, key)], final)


def set_value(data: bytes, key: str, value: str) -> bytes:
    """The first field after the key becomes `value`; the blanks before it and what follows it
    (a unit, other columns) stay."""
    lines, final = _lines(data)
    rx = _key_rx(key)
    for i, line in enumerate(lines):
        if _has_key(line, key):
            m = rx.match(line)
            lines[i] = m.group(1) + value + line[m.end(2):]
    return _join(lines, final)


def replace(data: bytes, text: str) -> bytes:
    """The whole file is `text` (a newline added): `max` in memory.max, for instance."""
    return (text if text.endswith("\n") else text + "\n").encode("latin-1")


def blank_line(data: bytes, where: str) -> bytes:
    if where == "leading":
        return b"\n" + data
    if where == "trailing":
        return data + b"\n"
    return add_line(data, "", after=where[len("after "):])


def no_final_newline(data: bytes) -> bytes:
    return data[:-1] if data.endswith(b"\n") else data


def squeeze(data: bytes, key: str) -> bytes:
    """The field width overflowing: `ShadowCallStack:%8lu kB` with 8 digits has no blank left
    between the colon and the value (fs/proc/meminfo.c, meminfo_proc_show())."""
    lines, final = _lines(data)
    rx = _key_rx(key)
    for i, line in enumerate(lines):
        if _has_key(line, key):
            m = rx.match(line)
            lines[i] = m.group(1).rstrip(" \t") + line[m.start(2):]
    return _join(lines, final)


def empty(data: bytes) -> bytes:
    return b""


def whitespace_only(data: bytes) -> bytes:
    return b"\n"          # what an empty cpulist or mask prints (e.g. cpuset.cpus)


def apply(data: bytes, edits: Iterable[Tuple[str, object]]) -> bytes:
    """Apply a rule's edits (plan.py's parsed `mutate`) in order."""
    for name, arg in edits:
        if name == "add_line":
            data = add_line(data, arg["text"], arg.get("after"), arg.get("at", "end"))
        elif name == "drop_key":
            data = drop_key(data, arg)
        elif name == "set":
            for key, value in arg:
                data = set_value(data, key, value)
        elif name == "replace":
            data = replace(data, arg)
        elif name == "blank_line":
            data = blank_line(data, arg)
        elif name == "squeeze":
            data = squeeze(data, arg)
        else:                          # no_final_newline, empty, whitespace_only
            data = globals()[name](data)
    return data
