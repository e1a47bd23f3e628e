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

#: utsname()->release per profile (/proc/sys/kernel/osrelease, uname -r, /proc/version): a
#: distribution build of the line where one ships it (Debian 11: 5.10, Ubuntu 22.04: 5.15,
#: Debian 12: 6.1, Debian 13: 6.12), a stable point release otherwise; 7.0 is the mm tree.
RELEASES = {
    "5.10": "5.10.0-35-amd64",
    "5.15": "5.15.0-140-generic",
    "6.1": "6.1.0-37-amd64",
    "6.6": "6.6.87",
    "6.12": "6.12.43+deb13-amd64",
    "6.18": "6.18.9",
    "7.0": "7.0.0-rc1-mm",
}

#: The rest of linux_proc_banner per profile: "(BUILDER@HOST) (COMPILER)" and
#: utsname()->version (PREEMPT_DYNAMIC in it from 5.12).
_DEBIAN = "debian-kernel@lists.debian.org"
BANNERS = {
    "5.10": (_DEBIAN, "gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for "
             "Debian) 2.35.2", "#1 SMP Debian 5.10.237-1 (2025-05-19)"),
    "5.15": ("buildd@lcy02-amd64-001", "x86_64-linux-gnu-gcc-11 (Ubuntu 11.4.0-1ubuntu1~22.04)"
             " 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38",
             "#150-Ubuntu SMP Sat Apr 12 06:00:09 UTC 2025"),
    "6.1": (_DEBIAN, "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for "
            "Debian) 2.40", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.140-1 (2025-05-22)"),
    "6.6": ("builder@localhost", "gcc (GCC) 13.3.0, GNU ld (GNU Binutils) 2.42",
            "#1 SMP PREEMPT_DYNAMIC Thu Apr 10 12:00:00 UTC 2025"),
    "6.12": (_DEBIAN, "x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0, GNU ld (GNU Binutils"
             " for Debian) 2.44", "#1 SMP PREEMPT_DYNAMIC Debian 6.12.43-1 (2025-08-27)"),
    "6.18": ("builder@localhost", "gcc (GCC) 15.2.0, GNU ld (GNU Binutils) 2.45",
             "#1 SMP PREEMPT_DYNAMIC Sat Jan 31 12:00:00 UTC 2026"),
    "7.0": ("builder@localhost", "gcc (GCC) 15.2.0, GNU ld (GNU Binutils) 2.45",
            "#1 SMP PREEMPT_DYNAMIC Sun Mar  1 12:00:00 UTC 2026"),
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
