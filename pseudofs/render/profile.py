"""Kernel profiles: which gated lines of the kernel's text tables exist.

A profile is a frozenset of names (hashable: the name lists are cached per
profile): the Kconfig symbols that are on (without ``CONFIG_``), a few runtime
facts marked below, and one version marker ``"@<version>"`` (see
:mod:`.kconfig` for the versions and options; docs/profiles.md for how the
tables use them). Every table in ``pseudofs.render`` carries a gate per row,
evaluated by :func:`enabled`:

* ``None``: always present;
* ``"NAME"``: present when NAME is in the profile;
* ``"!NAME"``: present when NAME is NOT in the profile;
* ``">=6.8"`` / ``"<6.8"``: present from / until that kernel version;
* a tuple of those: present when all of them hold.

A version gate names the mainline release that made the change where the
comment says so, else the first profile version that shows the change.

``PATCH_BASE`` (version 7.0, the default) is the mm tree the 2026 percpu patch
applies to, with the default options; ``LINUX_6_18`` is the same options on
6.18, which the real files of a 6.18 x86-64 VM (tests/data/samples-linux-6.18)
show byte for byte.
"""

from functools import lru_cache

from .kconfig import DEFAULT_VERSION, FIXED_X86_64, OPTIONS, version_key

VERSION_MARK = "@"
#: mm tree early 2026 (version 7.0): pgsteal_*/pgscan_*/pgrefill are node stat
#: items (in vmstat_text[] between pgdemote_proactive and nr_hugetlb, and in
#: memcg's memory_stats[]) instead of vm events; vmalloc is a node item
#: (nr_vmalloc, memcg `vmalloc` from NR_VMALLOC); memory.stat has zswap_incomp.
MM_2026 = ">=7.0"
#: nodeN/meminfo has a "Balloon:" line. Present in the newest drivers/base/node.c
#: copy read (which also has the later GPU lines), absent on 6.18 (sample);
#: not confirmed for the patch base, so in no profile (the sample wins).
NODE_MEMINFO_BALLOON = "NODE_MEMINFO_BALLOON"
# Runtime facts (not Kconfig symbols).
#: x86 direct_gbpages: /proc/meminfo prints DirectMap1G (arch_report_meminfo).
DIRECT_GBPAGES = "DIRECT_GBPAGES"
#: CONFIG_MEMTEST and the boot memtest ran: /proc/meminfo EarlyMemtestBad.
MEMTEST_DONE = "MEMTEST_DONE"


def make_profile(version=DEFAULT_VERSION, options=None) -> frozenset:
    """The profile of `version` with `options` ({name: bool}, missing names take
    kconfig.OPTIONS' defaults) on top of the fixed x86-64 gates."""
    chosen = dict(OPTIONS)
    chosen.update(options or {})
    on = {name for name, value in chosen.items() if value}
    return frozenset(FIXED_X86_64 | on | {VERSION_MARK + version})


@lru_cache(maxsize=None)
def profile_version(profile) -> str:
    """The version marker's version."""
    for name in profile:
        if name.startswith(VERSION_MARK):
            return name[1:]
    return DEFAULT_VERSION


def profile_of_kernel(kernel) -> frozenset:
    """The profile of a KernelConfig (`version`, `options`)."""
    return _profile(kernel.version, tuple(sorted(dict(kernel.options).items())))


@lru_cache(maxsize=None)
def _profile(version, options):
    return make_profile(version, dict(options))


LINUX_6_18 = make_profile("6.18")
PATCH_BASE = make_profile(DEFAULT_VERSION)
DEFAULT_PROFILE = PATCH_BASE


def enabled(gate, profile) -> bool:
    """True when a table row with this gate exists under `profile`."""
    if gate is None:
        return True
    if isinstance(gate, tuple):
        return all(enabled(g, profile) for g in gate)
    if gate.startswith(">="):
        return version_key(profile_version(profile)) >= version_key(gate[2:])
    if gate.startswith("<"):
        return version_key(profile_version(profile)) < version_key(gate[1:])
    if gate.startswith("!"):
        return gate[1:] not in profile
    return gate in profile


def select(rows, profile):
    """The rows of a ``(name, gate, ...)`` table present under `profile`."""
    return [row for row in rows if enabled(row[1], profile)]
