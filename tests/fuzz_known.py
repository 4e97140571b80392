"""Known mismatches of the differential fuzz (generated)."""

KNOWN = []
