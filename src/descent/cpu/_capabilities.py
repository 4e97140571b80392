"""torch.cpu.get_capabilities(): the CPU's instruction sets and caches, read from Linux's
/proc/cpuinfo and /sys (PyTorch asks the cpuinfo library, which runs CPUID itself)."""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ._brand import package_name

# PyTorch's key -> the flag names Linux prints for it (x86: /proc/cpuinfo's "flags" line)
_X86 = {
    "sse": ("sse",), "sse2": ("sse2",), "sse3": ("pni",), "ssse3": ("ssse3",),
    "sse4_1": ("sse4_1",), "sse4_2": ("sse4_2",), "sse4a": ("sse4a",), "avx": ("avx",),
    "avx2": ("avx2",), "avx_vnni": ("avx_vnni",), "avx512_f": ("avx512f",),
    "avx512_cd": ("avx512cd",), "avx512_dq": ("avx512dq",), "avx512_bw": ("avx512bw",),
    "avx512_vl": ("avx512vl",), "avx512_ifma": ("avx512ifma",), "avx512_vbmi": ("avx512vbmi",),
    "avx512_vbmi2": ("avx512_vbmi2",), "avx512_bitalg": ("avx512_bitalg",),
    "avx512_vpopcntdq": ("avx512_vpopcntdq",), "avx512_vnni": ("avx512_vnni",),
    "avx512_bf16": ("avx512_bf16",), "avx512_fp16": ("avx512_fp16",),
    "avx512_vp2intersect": ("avx512_vp2intersect",), "avx512_4vnniw": ("avx512_4vnniw",),
    "avx512_4fmaps": ("avx512_4fmaps",), "avx10_1": ("avx10_1", "avx10"),
    "avx10_2": ("avx10_2",), "avx_vnni_int8": ("avx_vnni_int8",),
    "avx_vnni_int16": ("avx_vnni_int16",), "avx_ne_convert": ("avx_ne_convert",),
    "amx_bf16": ("amx_bf16",), "amx_tile": ("amx_tile",), "amx_int8": ("amx_int8",),
    "amx_fp16": ("amx_fp16",), "fma3": ("fma",), "fma4": ("fma4",), "f16c": ("f16c",),
    "bmi": ("bmi1",), "bmi2": ("bmi2",), "popcnt": ("popcnt",), "lzcnt": ("abm", "lzcnt"),
    "aes": ("aes",), "sha": ("sha_ni",), "clflush": ("clflush",),
    "clflushopt": ("clflushopt",), "clwb": ("clwb",),
}  # fmt: skip
# ARM64: /proc/cpuinfo's "Features" line
_ARM = {
    "neon": ("asimd",), "fp16_arith": ("asimdhp",), "bf16": ("bf16",), "i8mm": ("i8mm",),
    "dot": ("asimddp",), "sve": ("sve",), "sve2": ("sve2",), "sve_bf16": ("svebf16",),
    "sme": ("sme",), "sme2": ("sme2",), "atomics": ("atomics",), "fhm": ("asimdfhm",),
    "rdm": ("asimdrdm",), "crc32": ("crc32",), "aes": ("aes",), "sha1": ("sha1",),
    "sha2": ("sha2",), "pmull": ("pmull",),
}  # fmt: skip


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical CPU ([] where there is none: not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return []
    cpus = []
    for block in text.strip().split("\n\n"):
        entry = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            entry[key.strip()] = value.strip()
        cpus.append(entry)
    return cpus


def _cache_size(level: int, kinds: tuple[str, ...]) -> int | None:
    """cpu0's cache of that level and type in bytes (sysfs), None where unknown."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(base)):
            path = os.path.join(base, index)
            if not index.startswith("index"):
                continue
            with open(os.path.join(path, "level")) as f:
                if int(f.read()) != level:
                    continue
            with open(os.path.join(path, "type")) as f:
                if f.read().strip() not in kinds:
                    continue
            with open(os.path.join(path, "size")) as f:
                size = f.read().strip()
            scale = {"K": 1024, "M": 1024**2}.get(size[-1:], 1)
            return int(size.rstrip("KM")) * scale
    except (OSError, ValueError):
        return None
    return None


@functools.lru_cache(None)
def get_capabilities() -> Mapping[str, Any]:
    """An immutable mapping of the CPU's capabilities, as PyTorch's: one bool per instruction
    set (x86: sse ... avx512_*, amx_*, fma3, bmi, aes, sha ...; ARM64: neon, sve, sme ...),
    `architecture`, and on x86 the core counts, cache sizes and `cpu_name`. Read once (cached).

    Example:
        >>> caps = descent.cpu.get_capabilities()
        >>> caps.get("avx2", False)
    """
    arch = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    cpus = _cpuinfo()
    first = cpus[0] if cpus else {}
    caps: dict[str, Any] = {}
    if arch in ("x86_64", "i686", "x86"):
        flags = set(first.get("flags", "").split())
        caps.update({key: any(f in flags for f in names) for key, names in _X86.items()})
        caps["l1d_cache_size"] = _cache_size(1, ("Data",))
        caps["l2_cache_size"] = _cache_size(2, ("Unified", "Data"))
        cores = {(c.get("physical id"), c.get("core id")) for c in cpus}
        caps["num_logical_cores"] = len(cpus) or os.cpu_count()
        caps["num_physical_cores"] = len(cores) or os.cpu_count()
        caps["num_sockets"] = len({c.get("physical id") for c in cpus}) or 1
        # cpuinfo's shortened name after the vendor's ("Intel(R) Xeon(R) Processor" is
        # "Intel Xeon"), as PyTorch prints it
        caps["cpu_name"] = package_name(
            first.get("vendor_id", ""), first.get("model name", platform.processor())
        )
        caps = {k: v for k, v in caps.items() if v is not None}
    elif arch == "aarch64":
        flags = set(first.get("Features", "").split())
        caps.update({key: any(f in flags for f in names) for key, names in _ARM.items()})
    caps["architecture"] = arch
    return MappingProxyType(caps)
