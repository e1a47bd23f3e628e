"""From a configuration to a running model: the topology and allocator as booted, then the
config's cgroups applied through the same write handlers a user's writes take."""

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


def build_tree(config, host=None):
    from pseudofs.fs.host import ProcHost
    from pseudofs.fs.routes import Routes
    tree = Routes(build_model(config), host or ProcHost())
    if getattr(config, "faults", None) is not None:
        tree.faults.load(config.faults)          # the configuration's `faults:` plan
    return tree
