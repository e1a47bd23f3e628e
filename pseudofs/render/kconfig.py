"""Kernel versions and options a profile is made of (docs/profiles.md).

A profile is one kernel version and a set of options. The versions are the LTS lines and
``7.0``, the mm tree of spring 2026 the percpu patch applies to. The options are the Kconfig
symbols (without ``CONFIG_``) that gate keys and files in the memory accounting files, plus
two settings that are not Kconfig symbols: the ``swapaccount`` boot parameter (5.10/5.15:
memory.swap.* need it) and the cgroup2 mount option ``memory_hugetlb_accounting`` (the
``hugetlb`` line of memory.stat). Everything else a table gates on is fixed to what an
x86-64 kernel has (FIXED_X86_64).
"""

VERSIONS = ("5.10", "5.15", "6.1", "6.6", "6.12", "6.18", "7.0")
DEFAULT_VERSION = "7.0"

#: /proc/version and osrelease per profile: a stable point release of the line (the ones the
#: key lists of docs/profiles.md were read from where there is one), Debian-style suffix.
RELEASES = {
    "5.10": "5.10.0-35-amd64",
    "5.15": "5.15.0-140-generic",
    "6.1": "6.1.0-37-amd64",
    "6.6": "6.6.87",
    "6.12": "6.12.19",
    "6.18": "6.18.9",
    "7.0": "7.0.0-rc1-mm",
}

#: /proc/version's compiler part per profile (linux_banner: "Linux version %s (%s@%s) (%s) %s").
COMPILERS = {
    "5.10": "gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2",
    "5.15": "gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38",
    "6.1": "gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40",
    "6.6": "gcc (GCC) 13.2.0, GNU ld (GNU Binutils) 2.41",
    "6.12": "gcc (GCC) 14.2.0, GNU ld (GNU Binutils) 2.43",
    "6.18": "gcc (GCC) 15.2.0, GNU ld (GNU Binutils) 2.45",
    "7.0": "gcc (GCC) 15.2.0, GNU ld (GNU Binutils) 2.45",
}

#: The options `kernel.config` may set, with their defaults: the option set pseudofs rendered
#: before profiles existed (the x86-64 6.18 VM its formats were checked against). A
#: distribution kernel (Debian, Ubuntu) differs in CMA and MEMORY_FAILURE (on there) and in
#: PSI (built in, but Debian boots it disabled: psi=0 unless psi=1).
OPTIONS = {
    "ZSWAP": True,
    "SWAP": True,
    "TRANSPARENT_HUGEPAGE": True,
    "HUGETLB_PAGE": True,
    "NUMA_BALANCING": True,
    "CMA": False,
    "MEMORY_FAILURE": False,
    "UNACCEPTED_MEMORY": False,
    "SHADOW_CALL_STACK": False,   # arm64 only; kept to test parsers on its lines
    "ZSMALLOC": True,
    "MIGRATION": True,
    "COMPACTION": True,
    "KSM": True,
    "MEMORY_BALLOON": True,
    "PSI": False,
    "swapaccount": True,                  # boot parameter (5.10/5.15: memory.swap.*)
    "memory_hugetlb_accounting": False,   # cgroup2 mount option (memory.stat hugetlb)
}

#: Gates every x86-64 profile has on (or that are runtime facts of such a machine):
#: zones DMA/DMA32/DEVICE, NUMA, IOMMU, PUD-sized THP, balloon page migration, memcg with
#: kmem accounting, and direct_gbpages (DirectMap1G, see meminfo.py).
FIXED_X86_64 = frozenset({
    "MMU", "X86", "X86_64", "DIRECT_GBPAGES",
    "ZONE_DMA", "ZONE_DMA32", "ZONE_DEVICE", "NUMA", "IOMMU_SUPPORT",
    "HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD", "BALLOON_COMPACTION",
    "VM_EVENT_COUNTERS", "MEMCG", "MEMCG_V1", "MEMCG_KMEM",
})


def version_key(version: str) -> tuple:
    """"6.12" -> (6, 12), for ordering."""
    return tuple(int(p) for p in version.split("."))


def nearest_version(release: str) -> str:
    """The profile version for a kernel release string ("6.8.0-45-generic" -> "6.6"): the
    newest profile not newer than the release, the oldest profile for older kernels."""
    digits = []
    for part in release.split("-")[0].split(".")[:2]:
        num = "".join(c for c in part if c.isdigit())
        digits.append(int(num) if num else 0)
    key = tuple(digits + [0] * (2 - len(digits)))
    best = VERSIONS[0]
    for v in VERSIONS:
        if version_key(v) <= key:
            best = v
    return best
