"""Durable state for `pseudofs mount MNT --state FILE`: every command that changed the model is
appended to FILE (and fsync'ed) before its write(2), mkdir(2), ... returns; the next mount
replays FILE on the deterministic model and renders every file as before, history included.

`StateLog` wraps the route table (a `Tree`, pseudofs/fs/tree.py) and records its mutating calls:
write, mkdir, rmdir, chown, chmod, refused ones included (a refused charge still counts its
memcg events, and a replay must refuse it the same way). Each record carries
what the command depended on besides the model: the caller (uid, gid, pid), the open flags,
the bytes written, and every answer the host gave about real processes while the command ran
(the writer's tgid and cgroup, the start times a cgroup.procs write compares ...), so a replay
never asks a live process. It also carries the outcome (0 or the errno): a replay that ends
differently means the file does not belong to this model, and the mount is refused.

File format (FILE, append-only):

    b"pseudofs-state 1\\n"                          the magic line
    record...                                       each one is
        b"%08x %08x %04x\\n" % (len(payload), crc32(payload), crc32(those 17 bytes) & 0xffff)
        payload (JSON, UTF-8)  b"\\n"

The first record is the header: {"kind": "header", "version": 1, "owner_uid": ...,
"config_source": ..., "config_yaml": ...}: the daemon's user (replay decides permissions as it
did) and the configuration the state started from (its YAML text). While FILE
exists, it wins over any `-c` config: its cgroups were applied once, at the first mount.

Damage: a last record cut short (the file ends inside it, or in zero bytes) was being written
when the daemon died, so it was never acknowledged: it is dropped with a warning and cut off
the file. Anything else (bad magic, a record header or checksum that does not match, a record
that replays differently) refuses the mount with the file and the byte offset; nothing is half
loaded. FILE is locked (flock) while a daemon uses it; the kernel drops the lock of a killed
daemon. Checkpoints (a record after the header; compaction) are pseudofs/fs/checkpoint.py's.
"""

import base64
import errno
import logging
import os
from typing import Callable, List, Optional, Tuple

from pseudofs.errors import ConfigError, ModelError
from pseudofs.fs.statefile import (MAGIC, VERSION, LogFile, StateError,  # noqa: F401 (API)
                                   _fsync_dir, encode_record, parse)
from pseudofs.files import perms
from pseudofs.fs import checkpoint
from pseudofs.fs.tree import Caller, OpenFile

log = logging.getLogger("pseudofs")

BUG = "bug"                                     # outcome of a call that raised a non-ModelError


# --- host facts --------------------------------------------------------------------------------


class _Questions:
    """The Host interface (pseudofs/model/procs.py), every question put through `_ask`."""

    def tgid(self, tid):
        return self._ask("tgid", tid)

    def ppid(self, pid):
        return self._ask("ppid", pid)

    def start_time(self, pid):
        return self._ask("start_time", pid)

    def now(self):
        return self._ask("now")

    def is_kernel_thread(self, pid):
        return self._ask("is_kernel_thread", pid)

    def clock(self):                        # the time of a CPU hotplug on a live clock
        return self._ask("clock")


class RecordingHost(_Questions):
    """Forwards to the live host and writes down every question and answer."""

    def __init__(self, host):
        self.host = host
        self.facts: list = []

    def _ask(self, name, *args):
        value = getattr(self.host, name)(*args)
        self.facts.append([name, list(args), value])
        return value


class ReplayHost(_Questions):
    """Answers from a record's facts, in the order they were given for each question; the
    last answer repeats; a question never asked then is answered as for a vanished process."""

    _UNKNOWN = {"tgid": None, "ppid": None, "start_time": None, "now": 0.0,
                "is_kernel_thread": False, "clock": 0.0}

    def __init__(self, facts):
        self._answers: dict = {}
        for name, args, value in facts:
            self._answers.setdefault((name, tuple(args)), []).append(value)

    def _ask(self, name, *args):
        answers = self._answers.get((name, args))
        if not answers:
            return self._UNKNOWN[name]
        return answers.pop(0) if len(answers) > 1 else answers[0]


# --- one call, live or replayed -----------------------------------------------------------------
def _run(tree, host, call) -> Tuple[object, Optional[BaseException]]:
    """Run `call()` with `host` as the tree's host; (outcome, exception)."""
    saved = tree.host
    tree.host = host
    try:
        call()
        return 0, None
    except ModelError as e:
        return e.errno, e
    except Exception as e:          # a bug: fuseops reports it; the record keeps the outcome
        return BUG, e
    finally:
        tree.host = saved


def _call(tree, rec: dict) -> Callable[[], None]:
    op, path = rec["op"], rec["path"]
    caller = Caller(*rec["caller"])
    if op == "write":
        data = base64.b64decode(rec["data"])

        def write():
            of = OpenFile(path, rec["flags"], caller,
                          writer=Caller(*rec["writer"]) if "writer" in rec else None)
            try:
                tree.write(of, data)
            finally:
                tree.release(of)        # the file was closed long ago
        return write
    if op == "mkdir":
        return lambda: tree.mkdir(path, rec["mode"], caller)
    if op == "rmdir":
        return lambda: tree.rmdir(path, caller)
    if op == "chown":
        return lambda: tree.chown(path, rec["uid"], rec["gid"], caller)
    if op == "chmod":
        return lambda: tree.chmod(path, rec["mode"], caller)
    raise KeyError(op)


def replay(tree, path: str, records: List[Tuple[int, dict]]) -> None:
    """Apply `records` to `tree` (the route table, not a StateLog); StateError on the first
    record that is malformed or ends differently than it did when it was recorded."""
    for offset, rec in records:
        try:
            call = _call(tree, rec)
            facts = rec["host"]
            want = rec["errno"]
        except (KeyError, TypeError, ValueError) as e:
            raise StateError(path, "malformed record (%s: %s)" % (type(e).__name__, e),
                             offset) from None
        got, exc = _run(tree, ReplayHost(facts), call)
        if got != want:
            name = lambda v: "success" if v == 0 else errno.errorcode.get(v, str(v))  # noqa
            raise StateError(path, "%s %s ended in %s when recorded but in %s now (%s): the "
                             "file does not belong to this model" % (
                                 rec["op"], rec["path"], name(want), name(got), exc or "ok"),
                             offset)


def open_state(path: str, config_text: Optional[str], config_source: str, host=None,
               explicit_config: bool = False, warn: Callable[[str], None] = log.warning,
               clock_default: str = "frozen"):
    """Open (or create) the state file, lock it, validate and replay it. Returns a StateLog
    over the route table; StateError (a ConfigError) if the file cannot be used. The config
    (YAML text) is used only for a new state file; None when it could not be read."""
    from pseudofs.fs.routes import build_tree
    from pseudofs.config import parse_config

    path = os.path.abspath(path)
    fd = checkpoint.open_locked(path)
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
        parsed = parse(path, data)
        if parsed.header is None and config_text is None:
            raise StateError(path, "holds no state yet, and no configuration could be read")
        if parsed.header is not None:
            if explicit_config and parsed.header["config_yaml"] != config_text:
                warn("state %s holds an earlier mount: its recorded configuration (from %s) "
                     "is used, not %s" % (path, parsed.header.get("config_source"),
                                          config_source))
            config_text = parsed.header["config_yaml"]
            config_source = str(parsed.header.get("config_source", path))
        tree, records = checkpoint.restore(path, parsed, host)
        try:
            if tree is None:
                tree = build_tree(parse_config(config_text, config_source), host, clock_default)
        except ConfigError as e:
            if parsed.header is None:
                raise
            raise StateError(path, "its header's configuration no longer loads: %s"
                             % "; ".join(e.problems), len(MAGIC)) from None
        owner = parsed.header.get("owner_uid") if parsed.header else None
        with perms.mount_owner(owner):          # None: files from before owners were recorded
            replay(tree, path, records)
        if parsed.torn is not None:
            off, n = parsed.torn
            warn("state %s: byte offset %d: dropped a torn last record (%d bytes): the daemon "
                 "stopped while writing it, so it was never acknowledged" % (path, off, n))
        if parsed.header is None:
            header = encode_record({"kind": "header", "version": VERSION,
                                    "owner_uid": os.geteuid(),
                                    "config_source": config_source,
                                    "config_yaml": config_text})
            os.ftruncate(fd, 0)
            os.pwrite(fd, MAGIC + header, 0)
            os.fsync(fd)
            _fsync_dir(path)
            end = len(MAGIC) + len(header)
        else:
            end = parsed.end
            if parsed.torn is not None:
                os.ftruncate(fd, end)
                os.fsync(fd)
        if records:
            log.info("state %s: replayed %d records", path, len(records))
        slog = StateLog(tree, LogFile(path, fd, end))
        slog.checkpoints = checkpoint.Checkpoints(slog.log, parsed)
        if slog.checkpoints.due(slog.log):          # a long tail: the next mount is quick
            slog.checkpoints.write(tree.model, slog.log)
        return slog
    except BaseException:
        os.close(fd)
        raise


# --- the Tree wrapper -------------------------------------------------------------------------
class StateLog:
    """A Tree that records every call that changed the model before the call returns."""

    def __init__(self, tree, logfile: LogFile):
        self.tree = tree
        self.lock = tree.lock
        self.log = logfile
        self.checkpoints = None             # pseudofs/fs/checkpoint.py, set by open_state

    def __getattr__(self, name):            # model, host, resolve ... of the route table
        return getattr(self.tree, name)

    # reads pass through
    def getattr(self, path, caller):
        return self.tree.getattr(path, caller)

    def readdir(self, path, caller):
        return self.tree.readdir(path, caller)

    def open(self, path, flags, caller):
        return self.tree.open(path, flags, caller)

    def read(self, of):
        return self.tree.read(of)

    def release(self, of):
        return self.tree.release(of)

    def truncate(self, path, caller):
        return self.tree.truncate(path, caller)

    # changes are recorded
    def write(self, of, data):
        w = of.current
        self._change({"op": "write", "path": of.path, "flags": of.flags,
                      "writer": [w.uid, w.gid, w.pid],
                      "data": base64.b64encode(bytes(data)).decode()}, of.caller,
                     lambda: self.tree.write(of, data))

    def mkdir(self, path, mode, caller):
        self._change({"op": "mkdir", "path": path, "mode": mode}, caller,
                     lambda: self.tree.mkdir(path, mode, caller))

    def rmdir(self, path, caller):
        self._change({"op": "rmdir", "path": path}, caller, lambda: self.tree.rmdir(path, caller))

    def chown(self, path, uid, gid, caller):
        self._change({"op": "chown", "path": path, "uid": uid, "gid": gid}, caller,
                     lambda: self.tree.chown(path, uid, gid, caller))

    def chmod(self, path, mode, caller):
        self._change({"op": "chmod", "path": path, "mode": mode}, caller,
                     lambda: self.tree.chmod(path, mode, caller))

    def _change(self, rec: dict, caller: Caller, call) -> None:
        if self.log.failed:
            raise ModelError(errno.EIO, "the state file cannot be written (%s): changes are "
                             "refused" % self.log.failed)
        recorder = RecordingHost(self.tree.host)
        outcome, exc = _run(self.tree, recorder, call)
        # Every call is recorded, refused ones too: a refusal may still have changed state (the
        # memcg events a refused charge counts), and its replay must end the same way.
        rec.update(caller=[caller.uid, caller.gid, caller.pid], host=recorder.facts,
                   errno=outcome)
        try:
            self.log.append(rec)
        except OSError:
            log.error("state %s: cannot record %s %s: %s; the change is not durable and "
                      "further changes are refused", self.log.path, rec["op"], rec["path"],
                      self.log.failed)
            raise ModelError(errno.EIO, "state file write failed") from None
        if self.checkpoints is not None:
            self.checkpoints.appended(self)
        if exc is not None:
            raise exc

    def close(self) -> None:
        self.log.close()
