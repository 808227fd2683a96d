"""Two pjsua/pjsip C functions that pjsua2 does not wrap, reached through ctypes.

The pjsua2 extension module exports the whole pjproject C API, so ctypes can call it in the
same process, on the pj thread, with the same library state:

- ``pjsua_call_get_max_count``: the real call cap after libInit silently clipped ``maxCalls``.
- ``pjsip_dlg_respond``: answer an in-dialog request pjsua leaves unhandled (INFO with
  ``application/dtmf``), so the caller gets 200 instead of "500 Unhandled by dialog usages".

``function`` looks any other one up (the gate in ``worker_gate`` registers a pjsip module).
If a build hides a symbol, the lookup gives None and callers fall back (see each function).
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any


@cache
def _lib() -> ctypes.CDLL | None:
    try:
        from pjsua2 import _pjsua2  # noqa: PLC0415 - only to find the loaded module's path

        return ctypes.CDLL(_pjsua2.__file__)
    except (OSError, ImportError, AttributeError):
        return None


def function(name: str, restype: Any, argtypes: list[Any]) -> Any:
    """The C function ``name`` of the loaded pjproject, typed; None if the build hides it."""
    lib = _lib()
    fn = getattr(lib, name, None) if lib is not None else None
    if fn is not None:
        fn.restype = restype
        fn.argtypes = argtypes
    return fn


def max_calls(fallback: int) -> int:
    """pjsua's effective maximum number of calls, or ``fallback`` if it cannot be read."""
    fn = function("pjsua_call_get_max_count", ctypes.c_uint, [])
    return int(fn()) if fn is not None else fallback


def respond_in_dialog(rdata: Any, status: int) -> bool:
    """Send ``status`` for the in-dialog request ``rdata`` (a pjsua2 ``SipRxData``).

    Call only on the pj thread, from inside the callback that delivered ``rdata``.
    Returns False if it could not be sent (the dialog layer then answers 500 itself).
    """
    get_dlg = function("pjsip_rdata_get_dlg", ctypes.c_void_p, [ctypes.c_void_p])
    respond = function(
        "pjsip_dlg_respond",
        ctypes.c_int,
        [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ],
    )
    if get_dlg is None or respond is None:
        return False
    pointer = int(rdata.pjRxData)
    if not pointer:
        return False
    dialog = get_dlg(pointer)
    if not dialog:
        return False
    return int(respond(dialog, pointer, status, None, None, None)) == 0
