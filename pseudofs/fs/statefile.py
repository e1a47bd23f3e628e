"""The state file of `pseudofs mount --state FILE`: its format, its validation, its lock.
The format and the damage rules are described in pseudofs/fs/statelog.py."""

import fcntl
import json
import logging
import os
import re
import time
import zlib
from typing import List, Optional, Tuple

from pseudofs.errors import ConfigError

log = logging.getLogger("pseudofs")

MAGIC = b"pseudofs-state 1\n"
VERSION = 1
HEAD_LEN = 23                                   # b"%08x %08x %04x\n"
_HEAD_RX = re.compile(rb"([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{4})\n\Z")
_HEAD_SHAPE = b"xxxxxxxx xxxxxxxx xxxx\n"       # x: a hex digit
LOCK_WAIT = 3.0                                 # seconds for a dying daemon to let go


class StateError(ConfigError):
    """The state file cannot be used: one problem, naming the file (and the byte offset)."""

    def __init__(self, path: str, what: str, offset: Optional[int] = None):
        where = path if offset is None else "%s: byte offset %d" % (path, offset)
        super().__init__(["state %s: %s" % (where, what)])
        self.path, self.offset, self.what = path, offset, what


# --- records ---------------------------------------------------------------------------------
def encode_record(obj: dict) -> bytes:
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    head = b"%08x %08x" % (len(payload), zlib.crc32(payload))
    return head + b" %04x\n" % (zlib.crc32(head) & 0xffff) + payload + b"\n"


def _is_head_prefix(tail: bytes) -> bool:
    """Could `tail` be the start of a record header cut by a crash?"""
    if len(tail) >= HEAD_LEN:
        return False
    for have, want in zip(tail, _HEAD_SHAPE):
        if want == ord("x"):
            if have not in b"0123456789abcdef":
                return False
        elif have != want:
            return False
    return True


class Parsed:
    """What a state file holds: the header, the records after it (with their offsets), where
    the good part ends, and the torn tail (offset, length) if there is one."""

    def __init__(self):
        self.header: Optional[dict] = None
        self.records: List[Tuple[int, dict]] = []
        self.end = 0
        self.torn: Optional[Tuple[int, int]] = None


def parse(path: str, data: bytes) -> Parsed:
    """Validate the whole file; StateError on any damage but a torn last record."""
    out = Parsed()
    if len(data) < len(MAGIC):
        if MAGIC.startswith(data):             # empty, or the magic line itself was cut
            out.torn = (0, len(data)) if data else None
            return out
        raise StateError(path, "not a pseudofs state file (bad magic)", 0)
    if not data.startswith(MAGIC):
        raise StateError(path, "not a pseudofs state file (bad magic)", 0)
    pos = len(MAGIC)
    out.end = pos
    while pos < len(data):
        tail = data[pos:pos + HEAD_LEN]
        m = _HEAD_RX.match(tail)
        if not m or int(m.group(3), 16) != zlib.crc32(tail[:17]) & 0xffff:
            if _is_head_prefix(tail) or data.count(b"\0", pos) == len(data) - pos:
                out.torn = (pos, len(data) - pos)     # cut, or zeros a crash left
                break
            raise StateError(path, "bad record header", pos)
        size, crc = int(m.group(1), 16), int(m.group(2), 16)
        end = pos + HEAD_LEN + size + 1
        if end > len(data):
            out.torn = (pos, len(data) - pos)
            break
        payload = data[pos + HEAD_LEN:end - 1]
        if data[end - 1:end] != b"\n" or zlib.crc32(payload) != crc:
            raise StateError(path, "record checksum mismatch", pos)
        try:
            obj = json.loads(payload)
        except ValueError as e:
            raise StateError(path, "record is not JSON: %s" % e, pos) from None
        if not isinstance(obj, dict):
            raise StateError(path, "record is not an object", pos)
        if out.header is None:
            if obj.get("kind") != "header" or obj.get("version") != VERSION \
                    or not isinstance(obj.get("config_yaml"), str):
                raise StateError(path, "the first record is not a version %d header" % VERSION,
                                 pos)
            out.header = obj
        else:
            out.records.append((pos, obj))
        pos = out.end = end
    return out


# --- the file ------------------------------------------------------------------------------------
def _lock_holder(fd: int) -> Optional[int]:
    """The pid holding a flock on fd's file, from /proc/locks (best effort)."""
    st = os.fstat(fd)
    dev = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    try:
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if "FLOCK" in parts and "->" not in parts and dev in parts:
                    return int(parts[parts.index(dev) - 1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _lock(fd: int, path: str) -> None:
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                pid = _lock_holder(fd)
                raise StateError(path, "in use by another pseudofs daemon%s" % (
                    " (pid %d)" % pid if pid else "")) from None
            time.sleep(0.05)


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LogFile:
    """The open, locked state file; `append` returns once the record is on disk."""

    def __init__(self, path: str, fd: int, end: int):
        self.path, self.fd, self.end = path, fd, end
        self.records = 0
        self.failed: Optional[str] = None

    def append(self, obj: dict) -> None:
        data = encode_record(obj)
        try:
            view = memoryview(data)
            while view:
                n = os.pwrite(self.fd, view, self.end + len(data) - len(view))
                view = view[n:]
            os.fdatasync(self.fd)
        except OSError as e:
            self.failed = "%s: %s" % (self.path, e.strerror)
            try:                        # leave the file as it was: no half record
                os.ftruncate(self.fd, self.end)
            except OSError:
                pass
            raise
        self.end += len(data)
        self.records += 1

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)           # drops the flock
            self.fd = -1
