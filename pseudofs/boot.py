"""From a configuration to a running model: the topology and allocator as booted, then the
config's cgroups applied through the same write handlers a user's writes take."""

import dataclasses

from pseudofs import control
from pseudofs.errors import ConfigError, ModelError
from pseudofs.fs.cgroup_files import CGROUP_FILES
from pseudofs.fs.tree import Caller, OpenFile
from pseudofs.model.model import Model
from pseudofs.model.procs import NoHost


class _Writer:
    """Enough of the route table for CGROUP_FILES write handlers at boot."""

    def __init__(self, model):
        self.model = model
        self.host = NoHost()


def build_model(config) -> Model:
    model = Model(config)
    w = _Writer(model)
    try:
        control.subtree_control(model, model.root,
                                " ".join("+" + c for c in config.root_subtree_control).encode())
        for cg_cfg in config.cgroups:
            cg = model.mkdir(cg_cfg.path)
            for name, raw in cg_cfg.files:
                of = OpenFile(cg_cfg.path + "/" + name, 1, Caller())
                CGROUP_FILES[name].write(w, cg, str(raw).encode(), of)
            if cg_cfg.subtree_control:
                control.subtree_control(model, cg, " ".join(
                    "+" + c for c in cg_cfg.subtree_control).encode())
            for a in cg_cfg.allocations:
                model.groups.alloc(a.size, a.count, a.align, cg, a.tag, a.account)
    except ModelError as e:
        raise ConfigError([f"{config.source}: applying cgroups: {e}"]) from None
    return model


def with_clock(config, clock: str, force: bool = False):
    """`config` with kernel.clock set to `clock` where it is unset (or always, with force):
    `pseudofs mount` defaults to live, render and tests to frozen (docs/time.md)."""
    if config.kernel.clock is not None and not force:
        return config
    return dataclasses.replace(config, kernel=dataclasses.replace(config.kernel, clock=clock))


def build_tree(config, host=None, clock_default: str = "frozen"):
    from pseudofs.fs.host import ProcHost
    from pseudofs.fs.routes import Routes
    return Routes(build_model(with_clock(config, clock_default)), host or ProcHost())
