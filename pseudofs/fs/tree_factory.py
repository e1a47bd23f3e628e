"""How a mount gets its tree: from a configuration, or from a state file that is replayed
(fs/statelog.py). The one place `pseudofs mount` (cli.py) asks; the daemon (fs/daemon.py) calls
the factory after it detached, and problems found before then refuse the mount at once."""

import os
from typing import Callable, Optional, Tuple

from pseudofs.config_yaml import read_text
from pseudofs.errors import ConfigError
from pseudofs.fs import statelog


def tree_factory(config_path: Optional[str], state_path: Optional[str] = None,
                 warn: Callable[[str], None] = statelog.log.warning,
                 clock_default: str = "frozen") -> Callable[[], object]:
    """A factory of the mount's Tree. Checks the configuration now (ConfigError), unless a
    state file that already holds a state will supply it. `clock_default`: kernel.clock where
    the configuration leaves it unset."""
    if state_path:
        return mount_factory(state_path, config_path, warn=warn, clock_default=clock_default)
    from pseudofs.config import load_config
    from pseudofs.fs.routes import build_tree
    config = load_config(config_path)
    return lambda: build_tree(config, clock_default=clock_default)


def read_config_text(config_path: Optional[str]) -> Tuple[str, str]:
    """(YAML text, source name) of a config file, or of the built-in defaults for None."""
    from pseudofs.config import DEFAULT_YAML
    if config_path is None:
        return DEFAULT_YAML, "<built-in defaults>"
    return read_text(config_path), str(config_path)


def has_state(path: str) -> bool:
    """Does `path` hold a state (at least a header) to mount?"""
    try:
        return os.path.getsize(path) > len(statelog.MAGIC)
    except OSError:
        return False


def mount_factory(state_path: str, config_path: Optional[str], host=None,
                  warn: Callable[[str], None] = statelog.log.warning,
                  clock_default: str = "frozen") -> Callable[[], statelog.StateLog]:
    """For `pseudofs mount --state FILE [-c CONFIG]`: checks the config now (ConfigError) when
    FILE holds no state yet; the returned factory opens, locks and replays FILE in the daemon.
    Paths are made absolute: the daemon changes to /."""
    state_path = os.path.abspath(state_path)
    config_path = os.path.abspath(config_path) if config_path else None
    text, source = None, None
    if not has_state(state_path):
        from pseudofs.config import parse_config
        text, source = read_config_text(config_path)
        parse_config(text, source)
    else:
        try:
            text, source = read_config_text(config_path)
        except ConfigError:
            source = config_path            # the recorded configuration wins anyway

    def factory():
        return statelog.open_state(state_path, text, source or "<built-in defaults>", host,
                                   explicit_config=config_path is not None, warn=warn,
                                   clock_default=clock_default)
    return factory
