"""The pure core: the call flow and its parts (IVR session, hunt, leg book, timers), hunt
strategies and what they learn.

Nothing under this package imports asyncio, performs I/O or reads a clock, and it imports
nothing but the standard library and itself (``tests/core/test_core_imports.py``): settings
arrive compiled into its own frozen values (``line.py``, ``plan.py``). Every function that needs
the time takes ``now`` (seconds, float) as an argument.
"""
