"""`torch._higher_order_ops`: `cond`, `while_loop`, `scan`, `map`, `associative_scan`, run
eagerly (descent/control_flow.py has the semantics)."""

from .control_flow import associative_scan, cond, map, scan, while_loop  # noqa: A004

__all__ = ["cond", "while_loop", "scan", "map", "associative_scan"]
