"""From a configuration to a running model: the topology and allocator as booted, then the
configuration's cgroups applied through the same `parse` and `apply` of the file table that a
write to those files goes through (pseudofs/files/cgroup.py)."""

import dataclasses

from pseudofs.errors import ConfigError, ModelError
from pseudofs.files.cgroup import ROW_BY_NAME
from pseudofs.files.rows import Ctx
from pseudofs.model.model import Model
from pseudofs.model.procs import NoHost


class _Boot:
    """The environment a row's apply sees at boot: the model, and no real process."""

    def __init__(self, model):
        self.model = model
        self.host = NoHost()


def _write(env, cg, name: str, text: str) -> None:
    """A configured value, as a write of `text` to the cgroup's file `name` would apply it."""
    row = ROW_BY_NAME[name]
    value = row.write.parse(text.encode(), env.model.page_size)
    row.write.apply(Ctx(env, cg), value, None)


def build_model(config) -> Model:
    model = Model(config)
    env = _Boot(model)
    try:
        _write(env, model.root, "cgroup.subtree_control",
               " ".join("+" + c for c in config.root_subtree_control))
        for cg_cfg in config.cgroups:
            cg = model.mkdir(cg_cfg.path)
            for name, raw in cg_cfg.files:
                _write(env, cg, name, str(raw))
            if cg_cfg.subtree_control:
                _write(env, cg, "cgroup.subtree_control",
                       " ".join("+" + c for c in cg_cfg.subtree_control))
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
