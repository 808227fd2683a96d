"""The worker's gate: a pjsip module, registered through ctypes, that judges every request
(``worker_screen``) before pjsip's transaction layer, its dialogs and pjsua see it.

pjsua2 wraps no module API, but the extension exports the C one, so a ``pjsip_module`` built
with ctypes and registered at a priority below the transaction layer's gets each parsed request
first. Refusing one answers it statelessly and stops it there: no transaction, no call slot, no
media sockets, no pjsua parser (pjsua's dtmf-relay parser aborts the process on a long body; a
scan that reached pjsua opened media for every INVITE until the select ioqueue's 64 handles ran
out and the process aborted).

The callback gets a ``pjsip_rx_data *``. The wheel ships no headers, so where the datagram, its
length and its source sit in that struct is measured at start-up: ``calibrate`` sends the
endpoint one OPTIONS carrying a random token from a socket of our own, finds the token at the
packet's offset, the message pointer that points back at it, and checks the length and source
fields around it against what was sent. Until that succeeds (or if it fails, on a build laid
out otherwise) the gate lets everything through and ``armed`` is False.

Everything here runs on the pj thread (the callback fires inside ``libHandleEvents``).
"""

from __future__ import annotations

import ctypes
import secrets
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callrouter.sip import protocol as p
from callrouter.sip.worker_ipc import Outbox
from callrouter.sip.worker_native import function
from callrouter.sip.worker_screen import DROP, FORBIDDEN, InviteBudget, Verdict, screen_request
from callrouter.sip.worker_sipmsg import header, name_addr, request_uri_user

_POINTER = ctypes.sizeof(ctypes.c_void_p)
# pjsip_rx_data starts with tp_info (pool, transport, tp_data, then an ioqueue op key of 34
# pointers and the rdata pointer), then pkt_info's timestamp (two longs) and its packet buffer.
_OP_KEY_RDATA = _POINTER * 37  # tp_info.op_key.rdata: points back at the rdata itself
_PACKET = _POINTER * 38 + ctypes.sizeof(ctypes.c_long) * 2
# Behind the packet buffer: zero (u32), len (ssize), src_addr (28), src_addr_len (int),
# src_name (46 chars), src_port (int); then msg_info, whose first member is msg_buf. Measured
# from msg_buf back (x86-64, verified against the probe before use).
_LEN_BACK = 96
_NAME_BACK = 56
_PORT_BACK = 8
_NAME_SIZE = 46
_SCAN_LIMIT = 16384 + 512  # receive buffers up to 16 KB; a bigger build leaves the gate off
_PRIORITY = 8  # pjsip calls modules lowest first: before the transaction layer (16)
_NOTE_SECONDS = 60.0  # each (reason, source) is logged once a minute
_NOTE_KEYS = 256
_UNSPECIFIED = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # a socket bound to every address

_RxCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class _PjStr(ctypes.Structure):
    _fields_ = (("ptr", ctypes.c_char_p), ("slen", ctypes.c_ssize_t))


class _HeaderHead(ctypes.Structure):
    """The list head of a ``pjsip_hdr`` list (the PJSIP_DECL_HDR_MEMBER prefix)."""

    _fields_ = (
        ("prev", ctypes.c_void_p),
        ("next", ctypes.c_void_p),
        ("type", ctypes.c_int),
        ("name", _PjStr),
        ("sname", _PjStr),
        ("vptr", ctypes.c_void_p),
    )


class _Module(ctypes.Structure):
    """``pjsip_module`` (sip_module.h): list links, name, id, priority, nine callbacks."""

    _fields_ = (
        ("prev", ctypes.c_void_p),
        ("next", ctypes.c_void_p),
        ("name", _PjStr),
        ("id", ctypes.c_int),
        ("priority", ctypes.c_int),
        ("load", ctypes.c_void_p),
        ("start", ctypes.c_void_p),
        ("stop", ctypes.c_void_p),
        ("unload", ctypes.c_void_p),
        ("on_rx_request", _RxCallback),
        ("on_rx_response", ctypes.c_void_p),
        ("on_tx_request", ctypes.c_void_p),
        ("on_tx_response", ctypes.c_void_p),
        ("on_tsx_state", ctypes.c_void_p),
    )


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the fields the gate reads sit in ``pjsip_rx_data`` (byte offsets)."""

    length: int
    source: int
    capacity: int  # the receive buffer's size: a datagram that filled it was cut short


class Gate:
    """Screens requests for one endpoint; ``install`` then ``calibrate`` before serving."""

    def __init__(
        self,
        outbox: Outbox,
        allowed: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
        budget: InviteBudget | None = None,
    ) -> None:
        self._outbox = outbox
        self._allowed = allowed
        self._clock = clock
        self._layout: _Layout | None = None
        self._probe = b""
        self._probe_from: tuple[str, int] = ("", 0)
        self._endpoint: int | None = None
        self._respond_stateless: Any = None
        self._string_header: Any = None
        self._budget = InviteBudget() if budget is None else budget  # shared with the Dials
        self._callback = _RxCallback(self._on_rx_request)  # held: pjsip keeps a raw pointer
        self._name = b"mod-callrouter-gate"
        self._module = _Module()
        self._noted: dict[tuple[str, str], float] = {}

    @property
    def armed(self) -> bool:
        return self._layout is not None

    def install(self) -> bool:
        """Register the module with pjsua's endpoint (after libInit); False if unavailable."""
        get_endpoint = function("pjsua_get_pjsip_endpt", ctypes.c_void_p, [])
        register = function(
            "pjsip_endpt_register_module", ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]
        )
        self._respond_stateless = function(
            "pjsip_endpt_respond_stateless",
            ctypes.c_int,
            [ctypes.c_void_p] * 2 + [ctypes.c_int] + [ctypes.c_void_p] * 3,
        )
        self._string_header = function(
            "pjsip_generic_string_hdr_create", ctypes.c_void_p, [ctypes.c_void_p] * 3
        )
        needed = (get_endpoint, register, self._respond_stateless, self._string_header)
        if any(fn is None for fn in needed):
            return False
        self._endpoint = get_endpoint()
        if not self._endpoint:
            return False
        module = self._module
        module.name = _PjStr(self._name, len(self._name))
        module.id = -1
        module.priority = _PRIORITY
        module.on_rx_request = self._callback
        return int(register(self._endpoint, ctypes.byref(module))) == 0

    def calibrate(self, host: str, port: int, poll: Callable[[], None], limit: float) -> bool:
        """Send the probe to our own SIP port and poll until the gate has measured it."""
        token = secrets.token_hex(12)
        host = _UNSPECIFIED.get(host, host)  # bound to every address: probe over loopback
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
            self._probe_from = (host, int(sock.getsockname()[1]))
            self._probe = _probe(token, host, port, self._probe_from[1])
            sock.sendto(self._probe, (host, port))
            deadline = self._clock() + limit
            while self._layout is None and self._probe and self._clock() < deadline:
                poll()
        self._probe = b""  # measured or given up: a late probe is just an OPTIONS
        return self.armed

    # ------------------------------------------------------------------ the callback

    def _on_rx_request(self, rdata: int) -> int:
        """pjsip's on_rx_request: non-zero means "handled, go no further"."""
        try:
            if self._layout is None:
                return int(self._measure(rdata))
            return int(self._judge(rdata, self._layout))
        except Exception as exc:  # nothing may escape into pjsip's C stack
            detail = "".join(traceback.format_exception_only(exc)).strip()
            self._outbox.send(p.Log(level=1, message=f"gate failed: {detail}"))
            return 0

    def _judge(self, rdata: int, layout: _Layout) -> bool:
        length = ctypes.c_ssize_t.from_address(rdata + layout.length).value
        if not 0 < length <= layout.capacity:
            return False
        datagram = ctypes.string_at(rdata + _PACKET, length)
        source = _c_string(rdata + layout.source, _NAME_SIZE)
        verdict = screen_request(
            datagram,
            source,
            capacity=layout.capacity,
            allowed=self._allowed,
            budget=lambda: self._budget.take(self._clock()),
        )
        if verdict is None:
            return False
        if verdict.status != DROP:
            self._respond(rdata, verdict)
        self._report(datagram, source, verdict)
        return True

    def _respond(self, rdata: int, verdict: Verdict) -> None:
        reason = verdict.reason.encode()
        text = _PjStr(reason, len(reason))
        head = None
        if verdict.retry_after is not None:
            head = self._header_list(rdata, b"Retry-After", str(verdict.retry_after).encode())
        self._respond_stateless(
            self._endpoint,
            rdata,
            verdict.status,
            ctypes.byref(text),
            None if head is None else ctypes.byref(head),
            None,
        )

    def _header_list(self, rdata: int, name: bytes, value: bytes) -> _HeaderHead | None:
        """A one-header list for a stateless response; the header lives in rdata's pool."""
        pool = ctypes.c_void_p.from_address(rdata).value  # tp_info.pool, the first member
        name_str, value_str = _PjStr(name, len(name)), _PjStr(value, len(value))
        made = self._string_header(pool, ctypes.byref(name_str), ctypes.byref(value_str))
        if not made:
            return None
        head = _HeaderHead()
        head.prev = head.next = made
        ctypes.c_void_p.from_address(made).value = ctypes.addressof(head)  # its prev
        ctypes.c_void_p.from_address(made + _POINTER).value = ctypes.addressof(head)  # next
        return head

    def _report(self, datagram: bytes, source: str, verdict: Verdict) -> None:
        """A refused call to the engine as ``Refused``; the rest logged once a minute."""
        method = datagram.split(b" ", 1)[0].decode("ascii", "replace")
        if verdict is FORBIDDEN and method == "INVITE":
            message = datagram.decode("utf-8")  # the screen passed it: it is UTF-8
            self._outbox.send(
                p.Refused(
                    status=verdict.status,
                    from_user=name_addr(header(message, "From") or "")[1],
                    to_user=request_uri_user(message),
                    source_host=source,
                )
            )
            return
        now = self._clock()
        key = (verdict.reason, source)
        if now - self._noted.get(key, -_NOTE_SECONDS) < _NOTE_SECONDS:
            return
        if len(self._noted) >= _NOTE_KEYS:
            self._noted.clear()
        self._noted[key] = now
        self._outbox.send(
            p.Log(
                level=2,
                message=f"refused {method[:16]} from {source} ({len(datagram)} bytes): "
                f"{verdict.status or 'dropped'} {verdict.reason} (once a minute per source)",
            )
        )

    def _measure(self, rdata: int) -> bool:
        """The probe: find and check the layout. Anything else before it: let it in."""
        probe = self._probe
        if not probe or ctypes.string_at(rdata + _PACKET, len(probe)) != probe:
            return False
        if ctypes.c_void_p.from_address(rdata + _OP_KEY_RDATA).value != rdata:
            self._probe = b""  # not the layout we know: leave the gate off
            return True
        start = _PACKET + (len(probe) + _POINTER - 1) // _POINTER * _POINTER
        for offset in range(start, _PACKET + _SCAN_LIMIT, _POINTER):
            if ctypes.c_void_p.from_address(rdata + offset).value == rdata + _PACKET:
                self._layout = self._checked(rdata, offset)
                break
        self._probe = b""
        return True

    def _checked(self, rdata: int, msg_buf: int) -> _Layout | None:
        layout = _Layout(
            length=msg_buf - _LEN_BACK,
            source=msg_buf - _NAME_BACK,
            capacity=msg_buf - _LEN_BACK - 8 - _PACKET,
        )
        sent = len(self._probe)
        host, port = self._probe_from
        fits = (
            ctypes.c_ssize_t.from_address(rdata + layout.length).value == sent
            and ctypes.c_int.from_address(rdata + msg_buf + _POINTER).value == sent
            and ctypes.c_int.from_address(rdata + msg_buf - _PORT_BACK).value == port
            and _c_string(rdata + layout.source, _NAME_SIZE) == host
            and layout.capacity > sent
        )
        return layout if fits else None


def _c_string(address: int, size: int) -> str:
    raw = ctypes.string_at(address, size)
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def _probe(token: str, host: str, port: int, from_port: int) -> bytes:
    """The calibration OPTIONS: well-formed, so pjsip parses it and hands it to the gate."""
    uri_host = f"[{host}]" if ":" in host else host
    return (
        f"OPTIONS sip:gate@{uri_host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {uri_host}:{from_port};branch=z9hG4bKgate{token}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:gate@{uri_host}:{from_port}>;tag={token}\r\n"
        f"To: <sip:gate@{uri_host}:{port}>\r\n"
        f"Call-ID: gate-{token}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
