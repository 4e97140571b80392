"""`python -m descent ...` is the `descent` command (see descent.cli)."""

from .cli import main

raise SystemExit(main())
