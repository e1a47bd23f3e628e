"""Reading YAML with line numbers: typed readers over PyYAML's node tree (compose API keeps the
marks) that report each problem as "FILE, line N: key.path: what" and go on, so a config's
problems are all collected at once. Generic; the config's meaning is in config_check.py."""

import errno

import yaml

from . import kparse
from .errors import ConfigError, ModelError
from .model.cgroup import CONTROLLERS
from .model.limits import ULLONG_MAX
from .model.topology import MAX_NR_CPUS

NULL_TAG = "tag:yaml.org,2002:null"
BAD = object()   # a value already reported as a problem


def read_text(path) -> str:
    """A YAML file's text; ConfigError naming the file when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read: {e}"]) from None


def join(path, key):
    return f"{path}.{key}" if path else key


def pow2(n):
    return n > 0 and n & (n - 1) == 0


class YamlReader:
    def __init__(self, source: str):
        self.source = source
        self.problems = []   # (line, column, seq, message), sorted into file order at the end
        self.bad_cpulists = 0
        self.ctor = yaml.constructor.SafeConstructor()

    def err(self, node, path, msg):
        line = node.start_mark.line + 1 if node is not None else 0
        column = node.start_mark.column if node is not None else 0
        where = f"{self.source}, line {line}" if line else self.source
        self.problems.append((line, column, len(self.problems), f"{where}: {path}: {msg}"))

    # --- typed readers: each reports its own problem and returns BAD --------------------

    def mapping(self, node, path, keys):
        """{key: (key node, value node)} in file order; unknown and repeated keys reported."""
        if node is None or node.tag == NULL_TAG:
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.err(node, path or "(top level)", "expected a mapping of keys")
            return {}
        out = {}
        for knode, vnode in node.value:
            key = knode.value if isinstance(knode, yaml.ScalarNode) else None
            kpath = join(path, str(key))
            if key not in keys:
                self.err(knode, kpath, f"unknown key (expected one of: {', '.join(keys)})")
            elif key in out:
                self.err(knode, kpath, "key given twice")
            else:
                out[key] = (knode, vnode)
        return out

    def sequence(self, node, path):
        if node.tag == NULL_TAG:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.err(node, path, "expected a list")
            return []
        return node.value

    def raw(self, node, path):
        """The scalar's source text (so "0-3", "16G", "0x10" reach the kernel parsers as typed)."""
        if isinstance(node, yaml.ScalarNode) and node.tag != NULL_TAG:
            return node.value
        self.err(node, path, "missing value" if node.tag == NULL_TAG else "expected a single value")
        return BAD

    def const(self, node, path):
        try:
            return self.ctor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            self.err(node, path, f"bad value: {getattr(e, 'problem', e)}")
            return BAD

    def integer(self, node, path, lo, hi):
        v = self.const(node, path)
        if v is BAD:
            return BAD
        if type(v) is not int:
            self.err(node, path, f"expected an integer, got {type(v).__name__} {v!r}")
            return BAD
        if not lo <= v <= hi:
            self.err(node, path, f"must be {lo}..{hi}, got {v}")
            return BAD
        return v

    def size(self, node, path, lo=0, hi=ULLONG_MAX):
        text = self.raw(node, path)
        if text is BAD:
            return BAD
        try:
            v = kparse.parse_size(text)
        except ModelError:
            self.err(node, path, f"not a size: {text!r} (a number, optional suffix K M G T P E)")
            return BAD
        if not lo <= v <= hi:
            self.err(node, path, f"must be {lo}..{hi} bytes, got {v}")
            return BAD
        return v

    def string(self, node, path):
        v = self.const(node, path)
        if v is not BAD and not isinstance(v, str):
            self.err(node, path, f"expected a string, got {type(v).__name__} {v!r}")
            return BAD
        return v

    def boolean(self, node, path):
        v = self.const(node, path)
        if v is BAD or isinstance(v, bool):
            return v
        if type(v) is int and v in (0, 1):
            return bool(v)
        self.err(node, path, f"expected true/false or 0/1, got {v!r}")
        return BAD

    def cpulist(self, node, path):
        v = self._cpulist(node, path)
        self.bad_cpulists += v is BAD
        return v

    def _cpulist(self, node, path):
        if isinstance(node, yaml.SequenceNode):
            cpus = [self.integer(n, path, 0, MAX_NR_CPUS - 1) for n in node.value]
            return BAD if BAD in cpus else frozenset(cpus)
        text = self.raw(node, path)
        if text is BAD:
            return BAD
        if "N" in text or "all" in text.lower():
            self.err(node, path, f"bad cpulist {text!r}: 'N' and 'all' are not allowed here")
            return BAD
        try:
            return kparse.parse_cpulist(text, MAX_NR_CPUS)
        except ModelError as e:
            why = f"a CPU above {MAX_NR_CPUS - 1}" if e.errno == errno.ERANGE else e.msg
            self.err(node, path, f"bad cpulist {text!r}: {why}")
            return BAD

    def controllers(self, node, path):
        v = self.const(node, path)
        names = v.split() if isinstance(v, str) else [] if v is None else v
        if v is BAD or not isinstance(names, list) or not all(isinstance(c, str) for c in names):
            if v is not BAD:
                self.err(node, path, "expected a list of controller names")
            return ()
        for c in names:
            if c not in CONTROLLERS:
                self.err(node, path,
                         f"unknown controller {c!r} (modeled: {', '.join(CONTROLLERS)})")
        return tuple(dict.fromkeys(c for c in names if c in CONTROLLERS))

    def field(self, m, key, reader, path, default, *args):
        """m[key] read with `reader`, or `default` when absent or bad."""
        if key not in m:
            return default
        v = reader(m[key][1], join(path, key), *args)
        return default if v is BAD else v

