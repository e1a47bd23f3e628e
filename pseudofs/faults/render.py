"""`pseudofs render --faults PLAN`: a plan's content edits on the rendered files, for machines
without FUSE. Only `mutate` rules of op read count; errnos, delays, short and torn reads need a
mount. A comm filter is ignored (no process reads here); triggers count one read per file, in
the order render walks the tree."""

import dataclasses
from typing import Callable

from pseudofs.errors import ConfigError
from pseudofs.faults.engine import FaultEngine
from pseudofs.faults.plan import PlanError, parse_plan_text


def plan_editor(plan_path: str) -> Callable[[str, bytes], bytes]:
    try:
        with open(plan_path, encoding="utf-8") as f:
            plan = parse_plan_text(f.read())
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(["%s: cannot read: %s" % (plan_path, e)]) from None
    except PlanError as e:
        raise ConfigError(["%s: %s" % (plan_path, e)]) from None
    rules = tuple(dataclasses.replace(r, comm=None) for r in plan.rules
                  if r.action == "mutate")
    engine = FaultEngine(comm_of=lambda pid: "")
    engine.load(dataclasses.replace(plan, rules=rules))
    return lambda path, data: engine.mutate(path, data)
