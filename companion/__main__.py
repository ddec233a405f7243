"""``python -m companion``: the same as ``glocal reproduce``."""

from companion.runner import main

raise SystemExit(main())
