"""``python -m cosinter``."""

from cosinter.cli import main

raise SystemExit(main())
