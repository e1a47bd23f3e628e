"""Checkpoints of the state file (`pseudofs mount --state FILE`): a mount restores the latest
checkpoint and replays only the records after it, so a restart takes a time bounded by the
model's size and the checkpoint interval, whatever the history. docs/state.md argues the design.

A checkpoint is one record of the state file (pseudofs/fs/statefile.py), right after the header:

    {"kind": "checkpoint", "version": 1, "format": "pickle", "protocol": 5,
     "commands": N, "code": sha256 of the model's source, "pseudofs": version,
     "sha256": of the pickle, "model": base64(zlib(pickle of the Model))}

Every EVERY_RECORDS records (or EVERY_BYTES bytes) after the last checkpoint, the daemon
compacts: it writes FILE.tmp = magic + the same header + a checkpoint of the model now, fsyncs
it, renames it over FILE and fsyncs the directory; the history before is gone. Until the rename
the old FILE is complete and is what a restart reads; a FILE.tmp left by a crash is removed at
the next mount. A checkpoint that is damaged, or was written by other model code, refuses the
mount with the file and its byte offset: the records after it cannot be replayed without it.
"""

import base64
import fcntl
import glob
import hashlib
import io
import logging
import os
import pickle
import stat
import zlib
from typing import List, Optional, Tuple

from pseudofs.fs.statefile import (HEAD_LEN, MAGIC, StateError, _fsync_dir, _lock,
                                   encode_record)

log = logging.getLogger("pseudofs")

VERSION = 1
EVERY_RECORDS = 10000           # records after the checkpoint before the next one (0: never)
EVERY_BYTES = 8 << 20           # or bytes of them
ENV = "PSEUDOFS_CHECKPOINT_EVERY"   # "RECORDS[,BYTES]": maintainers' and tests' override
_MODEL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "model")


def policy() -> Tuple[int, int]:
    """(records, bytes) between checkpoints; 0 records: never checkpoint."""
    raw = os.environ.get(ENV)
    if not raw:
        return EVERY_RECORDS, EVERY_BYTES
    parts = [int(p) for p in raw.split(",")]
    return parts[0], parts[1] if len(parts) > 1 else EVERY_BYTES


# --- the serialized model ---------------------------------------------------------------------
_code = None


def code_fingerprint() -> str:
    """sha256 of the source of the classes a checkpoint holds (pseudofs/model/*.py and the
    parsed config): a pickle restores attributes by name, so other code may misread it."""
    global _code
    if _code is None:
        h = hashlib.sha256()
        files = sorted(glob.glob(os.path.join(_MODEL_DIR, "*.py")))
        files.append(os.path.join(os.path.dirname(_MODEL_DIR), "config_schema.py"))
        for f in files:
            with open(f, "rb") as src:
                h.update(os.path.basename(f).encode() + b"\0" + src.read() + b"\0")
        _code = h.hexdigest()
    return _code


def _method(obj, name):
    """A bound method the model keeps (Stocks.release_objcg): restored by name, only for a
    public method of a model class."""
    if not type(obj).__module__.startswith("pseudofs.model.") or name.startswith("_"):
        raise pickle.UnpicklingError("not a model method: %s.%s" % (type(obj).__name__, name))
    return getattr(obj, name)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        if hasattr(obj, "__self__") and hasattr(obj, "__func__"):       # a bound method
            return _method, (obj.__self__, obj.__func__.__name__)
        return NotImplemented


_SAFE = {("builtins", n) for n in ("int", "float", "str", "bytes", "bytearray", "list", "dict",
                                    "set", "frozenset", "tuple", "bool", "complex")} | {
    ("collections", n) for n in ("defaultdict", "OrderedDict", "Counter", "deque")} | {
    (__name__, "_method")}


class _Unpickler(pickle.Unpickler):
    """Loads model classes and plain containers only: a state file cannot make the daemon
    call anything else."""

    def find_class(self, module, name):
        if (module, name) in _SAFE:
            return super().find_class(module, name)
        if module.startswith("pseudofs.model.") or module == "pseudofs.config_schema":
            obj = super().find_class(module, name)
            if isinstance(obj, type) and obj.__module__ == module:
                return obj
        raise pickle.UnpicklingError("refused global %s.%s" % (module, name))


def serialize(model) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(model)
    return buf.getvalue()


def deserialize(blob: bytes):
    model = _Unpickler(io.BytesIO(blob)).load()
    # every file was closed by the restart: per-fd memory.peak values go, as a replay releases
    # each file it wrote (and the ids that keyed them mean nothing in this process)
    for cg in (model.root, *model.root.descendants()):
        if cg.memcg is not None:
            cg.memcg.peak_fds.clear()
    return model


def make_record(model, commands: int) -> dict:
    from pseudofs import __version__
    blob = serialize(model)
    return {"kind": "checkpoint", "version": VERSION, "format": "pickle", "protocol": 5,
            "commands": commands, "code": code_fingerprint(), "pseudofs": __version__,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "model": base64.b64encode(zlib.compress(blob, 1)).decode()}


def is_checkpoint(rec: dict) -> bool:
    return rec.get("kind") == "checkpoint"


def load_record(path: str, offset: int, rec: dict):
    """The Model a checkpoint record holds; StateError naming the file and offset if not."""
    def refuse(what):
        return StateError(path, "checkpoint " + what, offset)
    if rec.get("version") != VERSION or rec.get("format") != "pickle":
        raise refuse("of an unknown version %r/%r" % (rec.get("version"), rec.get("format")))
    if rec.get("code") != code_fingerprint():
        raise refuse("was written by other model code (pseudofs %s): mount it with the pseudofs "
                     "that wrote it" % rec.get("pseudofs"))
    try:
        blob = zlib.decompress(base64.b64decode(rec["model"], validate=True))
    except (KeyError, TypeError, ValueError, zlib.error) as e:
        raise refuse("cannot be decoded (%s)" % e) from None
    if hashlib.sha256(blob).hexdigest() != rec.get("sha256"):
        raise refuse("sha256 mismatch")
    try:
        return deserialize(blob)
    except Exception as e:                  # any failure of a foreign pickle is a refusal
        raise refuse("does not load (%s: %s)" % (type(e).__name__, e)) from None


# --- mount: open, restore ----------------------------------------------------------------------
def open_locked(path: str) -> int:
    """Open and flock FILE. A compaction renames a new file over FILE: a daemon that waited
    on the lock of the old one opens FILE again. A FILE.tmp a crash left is removed."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StateError(path, "cannot open: %s" % e.strerror) from None
        try:
            _lock(fd, path)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        os.unlink(path + ".tmp")
    except FileNotFoundError:
        pass
    except OSError as e:
        os.close(fd)
        raise StateError(path, "cannot remove %s.tmp: %s" % (path, e.strerror)) from None
    return fd


def restore(path: str, parsed, host=None) -> Tuple[Optional[object], List[Tuple[int, dict]]]:
    """(the route table over the checkpoint's model, the records after it), or (None, every
    record) when FILE holds no checkpoint. A checkpoint anywhere but first is damage."""
    records = parsed.records
    for off, rec in records[1:]:
        if is_checkpoint(rec):
            raise StateError(path, "a checkpoint after other records", off)
    if not records or not is_checkpoint(records[0][1]):
        return None, records
    from pseudofs.fs.host import ProcHost
    from pseudofs.fs.routes import Routes
    off, rec = records[0]
    model = load_record(path, off, rec)
    return Routes(model, host or ProcHost()), records[1:]


# --- the running daemon: when and how to checkpoint ---------------------------------------------
class Checkpoints:
    """Counts the records after the last checkpoint; past the policy, compacts FILE."""

    def __init__(self, logfile, parsed, every: Optional[Tuple[int, int]] = None):
        self.every_records, self.every_bytes = every or policy()
        hsize = int(os.pread(logfile.fd, HEAD_LEN, len(MAGIC))[:8], 16)
        self.header = os.pread(logfile.fd, HEAD_LEN + hsize + 1, len(MAGIC))
        recs = parsed.records
        first = recs[0][1] if recs else {}
        self.base = first.get("commands", 0) if is_checkpoint(first) else 0
        self.tail = len(recs) - (1 if is_checkpoint(first) else 0)
        self.tail_start = recs[1][0] if is_checkpoint(first) and len(recs) > 1 else (
            logfile.end if is_checkpoint(first) else len(MAGIC) + len(self.header))
        self.retry_at = 0

    def due(self, logfile) -> bool:
        if not self.every_records or self.tail < self.retry_at:
            return False
        return self.tail >= self.every_records or (
            logfile.end - self.tail_start >= self.every_bytes > 0)

    def appended(self, slog) -> None:
        """After a record is on disk: checkpoint if due. Never fails the command: it is
        recorded; a checkpoint that cannot be written is tried again later."""
        self.tail += 1
        if self.due(slog.log):
            self.write(slog.tree.model, slog.log)

    def write(self, model, logfile) -> bool:
        commands = self.base + self.tail
        tmp = logfile.path + ".tmp"
        try:
            data = MAGIC + self.header + encode_record(make_record(model, commands))
        except Exception:               # a bug (something in the model does not pickle)
            log.exception("state %s: cannot serialize the model for a checkpoint", logfile.path)
            self.retry_at = self.tail + max(self.every_records, 1)
            return False
        fd = -1
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # FILE's lock, once renamed
            st = os.fstat(logfile.fd)                           # FILE's mode and owner stay
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except PermissionError:
                    pass
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            os.rename(tmp, logfile.path)
        except OSError as e:
            log.warning("state %s: cannot write a checkpoint (%s); the log goes on growing",
                        logfile.path, e.strerror)
            if fd >= 0:
                os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            self.retry_at = self.tail + max(self.every_records, 1)
            return False
        old, logfile.fd, logfile.end = logfile.fd, fd, len(data)
        os.close(old)
        try:
            _fsync_dir(logfile.path)
        except OSError as e:        # the rename may not survive a crash: appending is unsafe
            logfile.failed = "%s: directory fsync: %s" % (logfile.path, e.strerror)
            log.error("state %s: cannot fsync the directory after a checkpoint: %s",
                      logfile.path, e.strerror)
            return False
        self.base, self.tail, self.tail_start, self.retry_at = commands, 0, len(data), 0
        log.info("state %s: checkpoint of %d commands (%d bytes)", logfile.path, commands,
                 len(data))
        return True


__all__ = ["Checkpoints", "open_locked", "restore", "serialize", "deserialize"]
