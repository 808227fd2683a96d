"""``python -m callrouter``: the same as the ``callrouter`` command."""

from callrouter.cli import main

raise SystemExit(main())
