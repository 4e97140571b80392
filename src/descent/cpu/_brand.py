"""The CPU's name as PyTorch's `get_capabilities()["cpu_name"]` prints it.

PyTorch asks the cpuinfo library, which shortens the x86 brand string before printing it after
the vendor's name: "Intel(R) Xeon(R) Processor" is "Intel Xeon", "Intel(R) Core(TM) i7 CPU X 990
@ 3.47GHz" is "Intel Core i7 990X", "AMD EPYC 7B13" stays "AMD EPYC 7B13". The rules below are
cpuinfo's, token by token: what is in parentheses goes ("(R)", "(TM)"), so do the vendor's own
name, "CPU", "Processor", "-Core" counts it knows, a frequency after "@" once a model number was
seen, and everything from an APU's "APU" / "Radeon" on; an engineering sample has no name.
"""

from __future__ import annotations

import re

# vendor_id (Linux's /proc/cpuinfo) -> the name cpuinfo prints first
VENDORS = {
    "GenuineIntel": "Intel", "AuthenticAMD": "AMD", "CentaurHauls": "VIA", "  Shanghai  ": "VIA",
    "HygonGenuine": "Hygon", "GenuineTMx86": "Transmeta", "TransmetaCPU": "Transmeta",
    "CyrixInstead": "Cyrix", "RiseRiseRise": "Rise", "Geode by NSC": "NSC", "SiS SiS SiS ": "SiS",
    "NexGenDriven": "NexGen", "UMC UMC UMC ": "UMC", "Vortex86 SoC": "DM&P",
}  # fmt: skip
# tokens erased wherever they stand
_ERASE = {
    "CPU", "AMD", "VIA", "IDT", "Intel", "Cyrix", "family", "Genuine", "12-Core", "16-Core",
    "Processor", "processor", "Transmeta", "QuadCore", "Six-Core", "Dual-Core", "Quad-Core",
    "Eight-Core", "Triple-Core",
}  # fmt: skip
_CORE_WORDS = {"QuadCore", "Six-Core", "Dual-Core", "Quad-Core", "Eight-Core", "Triple-Core"}
# tokens that end the name (the token and all after it go)
_STOP = {"w/", "SOC", "MMX", "APU", "Radeon", "RADEON"}


def _model_number(token: str) -> bool:
    return any(a.isdigit() and b.isdigit() for a, b in zip(token, token[1:]))


def _frequency(token: str) -> bool:
    return len(token) > 3 and token[-2:] == "Hz" and token[-3] in "KMG"


def normalize_brand(raw: str) -> str:
    """cpuinfo's shortened brand string ("" when nothing but a frequency is left)."""
    raw = raw[:48]
    at = raw.find("@")
    text = re.sub(r"\([^)]*\)?", lambda m: " " * len(m.group()), raw)
    text = text.replace("@", " ").replace("\t", " ").replace("\0", " ")
    tokens = [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]
    out: list[tuple[int, str] | None] = []  # (where, token) kept, None erased
    parsed_model = frequency = engineering_sample = False
    prev_dual = prev_core = prev_model = prev_eng = prev_letter = None
    for start, tok in tokens:
        dual, core, model, eng, letter = prev_dual, prev_core, prev_model, prev_eng, prev_letter
        prev_dual = prev_core = prev_model = prev_eng = prev_letter = None
        if at >= 0 and start > at and parsed_model:
            out.append(None)
            continue
        if len(tok) > 2 and (tok[-3].isdigit() or tok[-3].isupper()) and tok.endswith("tm"):
            tok = tok[:-2]
        if len(tok) > 4 and tok.startswith("AMD-"):
            tok = tok[4:]
        if tok in _STOP or tok == "Geode":
            if tok == "Geode":
                out.append((start, tok))
            break
        if tok == "Sample" and eng is not None or tok in ("Sample,", "Sample:") and eng is not None:
            engineering_sample = True
            break
        if len(tok) == 1 and "A" <= tok <= "Z":
            prev_letter = len(out)
            out.append((start, tok))
            continue
        if len(tok) == 2 and tok[0] == "V" and tok[1].isdigit():
            out.append((start, "v" + tok[1]))
            continue
        if tok in _ERASE:
            if tok in _CORE_WORDS:
                prev_core = True
            out.append(None)
            continue
        if tok == "Dual":
            prev_dual = len(out)
        elif tok == "Core" and dual is not None:
            out[dual] = None
            prev_core = True
            out.append(None)
            continue
        elif tok == "Mobile" and core is not None:
            out.append(None)
            continue
        elif tok == "model":  # erased only as "model unknown"
            prev_model = len(out)
            out.append((start, tok))
            continue
        elif tok == "unknown" and model is not None:
            out[model] = None
            out.append(None)
            continue
        elif tok in ("Eng", "Engineering"):  # a sample's name when "Sample" follows
            prev_eng = True
        if tok.isdigit() and set(tok) == {"0"}:
            out.append(None)
            continue
        if letter is not None and 2 <= len(tok) <= 5 and tok.isdigit():
            tok, out[letter] = tok + out[letter][1], None
        if at >= 0 and _model_number(tok):
            parsed_model = True
        if _frequency(tok):
            frequency = True
        out.append((start, tok))
    if engineering_sample:
        return ""
    if at >= 0 and not any(t and t[0] < at for t in out):
        return ""  # only a frequency
    kept = [t[1] for t in out if t]
    name = ""
    for t in kept:  # one space between tokens, none next to a dash
        name += t if not name or name.endswith("-") or t.startswith("-") else " " + t
    if frequency and len(kept) <= 1:
        return ""
    return name


def package_name(vendor_id: str, model_name: str) -> str:
    """PyTorch's cpu_name: the vendor's name, then the shortened brand string."""
    brand = normalize_brand(model_name)
    if not brand:
        return ""
    vendor = VENDORS.get(vendor_id)
    return f"{vendor} {brand}" if vendor else brand
