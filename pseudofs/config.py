"""Configuration: YAML -> the checked, frozen dataclasses of config_schema.py, once at start.

Every key has a default. All problems are collected in file order, each as
"FILE, line N: key.path: what is wrong", and raised together as one ConfigError
(config_check.py). Sizes take memparse suffixes (K M G ...); a cgroup file's value is checked by
the same parser a write to that file goes through (pseudofs/files/cgroup.py), so a config is
refused for exactly what the kernel would refuse.
"""

from .config_check import Checker
from .config_schema import Config
from .config_yaml import read_text

DEFAULT_YAML = """\
# pseudofs default configuration: a small asymmetric machine (also configs/default.yaml)
kernel:
  accounting: per-node
  page_size: 4096
  nr_cpus: 512
topology:
  nodes:
    - {id: 0, cpus: "0-3", memory: 8G}
    - {id: 1, cpus: "4-5", hotplug_cpus: "6-7", memory: 4G}
    - {id: 2, cpus: "", memory: 4G}        # memory-only node
percpu:
  static_size: 185496
  reserved_size: 8192
  dyn_size: 28672
  atom_size: 2M
  first_chunk_free: 0
root_subtree_control: [memory]
cgroups:
  - path: /app
    subtree_control: [memory]
    memory.max: 256M
    allocations:
      - {size: 64, count: 1000, tag: warm}
  - path: /app/web
    memory.high: 64M
    allocations:
      - {size: 256, count: 100, align: 64, tag: web}
  - path: /batch
    allocations:
      - {size: 8, count: 500, tag: batch-unaccounted, account: 0}
"""


def load_config(path=None) -> Config:
    """Load and check a config file; None gives the built-in defaults (DEFAULT_YAML)."""
    if path is None:
        return parse_config(DEFAULT_YAML, "<built-in defaults>")
    return parse_config(read_text(path), str(path))


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse and check YAML text; `source` names the file in every problem."""
    return Checker(source).run(text)
