"""The pure core: call flow, IVR, hunting and rota logic.

Nothing under this package imports asyncio, performs I/O or reads a clock. Every function that
needs the time takes ``now`` (POSIX seconds, float) as an argument.
"""
