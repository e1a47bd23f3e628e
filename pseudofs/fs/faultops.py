"""The mount's fault hooks: fuseops calls them only while a plan is live (FuseOps.faults is
None otherwise, so a mount without a plan pays one attribute test per call).

Actions: errno raises ModelError (the adapter's wrapper returns it), delay_ms sleeps outside
the tree lock, short_read caps what one read returns, torn runs its control command through
the tree's own write (logged and, with --state, recorded like any write) after the chunk and
drops the handle's snapshot, so the next chunk comes from the file as it is then; mutate edits
each new snapshot."""

import time

from pseudofs.errors import ModelError
from pseudofs.faults.engine import CONTROL, FaultEngine
from pseudofs.fs.tree import Caller, OpenFile, render

PER_CALL = ("errno", "delay_ms", "short_read", "torn")
TORN_PATH = "/" + CONTROL


class FaultHooks:
    """`pid()` gives the calling thread's id; it is asked only when a rule's glob matches."""

    def __init__(self, engine: FaultEngine, tree, pid):
        self.engine = engine
        self.tree = tree
        self.pid = pid

    def before(self, op: str, path) -> None:
        """getattr, open, readdir, write: errno and delay_ms."""
        for r in self.engine.match(op, path, self.pid):
            if r.action == "delay_ms":
                time.sleep(r.value / 1000.0)
            elif r.action == "errno":
                raise ModelError(r.value, "fault plan rule %d" % r.index)

    def read(self, of: OpenFile, size: int, offset: int) -> bytes:
        limit, torn = size, []
        for r in self.engine.match("read", of.path, self.pid, PER_CALL):
            if r.action == "delay_ms":
                time.sleep(r.value / 1000.0)
            elif r.action == "errno":
                raise ModelError(r.value, "fault plan rule %d" % r.index)
            elif r.action == "short_read":
                limit = min(limit, r.value)
            else:
                torn.append(r.value)
        snap = of.snapshot
        if offset == 0 or snap is None:
            snap = of.snapshot = self.engine.mutate(of.path, render(self.tree, of), self.pid)
        chunk = snap[offset:offset + limit]
        if torn:
            for target, line in torn:
                self._command(target, line)
            of.snapshot = None        # the next chunk is rendered anew, at its offset
        return chunk

    def _command(self, target: str, line: bytes) -> None:
        cmd = OpenFile(TORN_PATH + target, 1, Caller())
        with self.tree.lock:
            try:
                self.tree.write(cmd, line)
            except ModelError as e:    # the fault log shows the rule fired; the reader reads on
                self.engine.note("torn %s %s refused: %s" % (target, line.decode().strip(), e))
            finally:
                self.tree.release(cmd)


def attach(ops, tree, pid) -> None:
    """Point `ops.faults` at the hooks while the tree's engine holds a plan, else None."""
    engine = getattr(tree, "faults", None)
    if engine is None:
        return
    hooks = FaultHooks(engine, tree, pid)

    def live(on: bool) -> None:
        ops.faults = hooks if on else None
    engine.listeners.append(live)
    live(engine.plan is not None)
