"""FlopCounterMode's table: torch's rows (module, FLOP with the total's suffix, % of the total)
in the layout torch gets from `tabulate` (format "simple", columns aligned left/right/right,
whitespace kept), written here so that descent needs no tabulate."""

from __future__ import annotations

SUFFIXES = ["", "K", "M", "B", "T"]


def get_suffix_str(number: int) -> str:
    """The suffix of a count: one step per three digits, with one digit of overflow
    (1.01B shows as 1001M)."""
    return SUFFIXES[max(0, min(len(SUFFIXES) - 1, (len(str(number)) - 2) // 3))]


def convert_num_with_suffix(number: int, suffix: str) -> str:
    return f"{number / 1000 ** SUFFIXES.index(suffix):.3f}" + suffix


def convert_to_percent_str(num: int, denom: int) -> str:
    return "0%" if denom == 0 else f"{num / denom:.2%}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _tabulate(rows: list, headers: list) -> str:
    """tabulate(rows, headers, colalign=("left", "right", "right")) with PRESERVE_WHITESPACE:
    a column of numbers only is printed as numbers (format "g": "640.000" becomes "640")."""
    cols = [list(c) for c in zip(*rows, strict=True)]
    for c in cols:
        if all(_is_number(v) for v in c):
            c[:] = [format(float(v), "g") if not v.strip().lstrip("-").isdigit() else v.strip()
                    for v in c]  # fmt: skip
    widths = [max([len(h) + 2] + [len(v) for v in c]) for h, c in zip(headers, cols, strict=True)]
    aligns = ["left", "right", "right"]

    def line(cells) -> str:
        out = [v.ljust(w) if a == "left" else v.rjust(w)
               for v, w, a in zip(cells, widths, aligns, strict=True)]  # fmt: skip
        return "  ".join(out)

    body = [line(r) for r in zip(*cols, strict=True)]
    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *body])


def flop_table(flop_counts: dict, global_flops: int, depth: int) -> str:
    """torch's get_table: modules sorted by name down to `depth`, each with its ops; a "Global"
    block first when some FLOPs are outside every module."""
    global_suffix = get_suffix_str(global_flops)
    subsumed = False

    def rows_of(mod_name: str, level: int) -> list:
        nonlocal subsumed
        counts = flop_counts.get(mod_name, {})
        total = sum(counts.values())
        subsumed |= total >= global_flops
        pad = " " * level
        rows = [[pad + mod_name, convert_num_with_suffix(total, global_suffix),
                 convert_to_percent_str(total, global_flops)]]  # fmt: skip
        for k, v in counts.items():
            rows.append([pad + " - " + str(k), convert_num_with_suffix(v, global_suffix),
                         convert_to_percent_str(v, global_flops)])  # fmt: skip
        return rows

    values: list = []
    for mod in sorted(flop_counts.keys()):
        if mod == "Global":
            continue
        mod_depth = mod.count(".") + 1
        if mod_depth > depth:
            continue
        values.extend(rows_of(mod, mod_depth - 1))
    if "Global" in flop_counts and not subsumed:
        for v in values:
            v[0] = " " + v[0]
        values = rows_of("Global", 0) + values
    if not values:
        values = [["Global", "0", "0%"]]
    return _tabulate(values, ["Module", "FLOP", "% Total"])
