"""Small, pure readers and writers of SIP and SDP text used by the worker.

pjsua2 hands us whole messages as strings; these functions pull out the few things the engine
needs (called number, caller, source) and rewrite our SDP offer's telephone-event payload type.
No pjsua2 import here, so all of it is unit-tested on plain strings.
"""

from __future__ import annotations

import re

# Compact header forms (RFC 3261 §7.3.3) that matter to us.
_COMPACT = {"from": "f", "to": "t", "call-id": "i", "content-type": "c"}
_URI_USER = re.compile(r"^(?:sips?|tel):(?P<user>[^@;?>]*)(?:@|$)", re.IGNORECASE)
_NAME_ADDR = re.compile(
    r'^\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^<"]*?))\s*<(?P<uri>[^>]*)>', re.DOTALL
)
_RTPMAP_EVENT = re.compile(r"^a=rtpmap:(?P<pt>\d+) telephone-event/8000\s*$", re.IGNORECASE)

DTMF_DIGITS = frozenset("0123456789*#ABCD")


def request_uri_user(message: str) -> str:
    """The user part of the Request-URI (the called number), or "" if there is none."""
    first = message.split("\n", 1)[0].strip()
    parts = first.split()
    if len(parts) < 3:
        return ""
    return uri_user(parts[1])


def uri_user(uri: str) -> str:
    """The user part of a bare SIP/tel URI, percent-escapes left as they are."""
    match = _URI_USER.match(uri.strip().lstrip("<"))
    return match.group("user") if match else ""


def header(message: str, name: str) -> str | None:
    """The first value of header ``name`` (or its compact form) in the header block."""
    wanted = {name.lower(), _COMPACT.get(name.lower(), name.lower())}
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    for line in head.split("\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in wanted:
            return value.strip()
    return None


def body(message: str) -> str:
    """The message body (after the blank line), "" if none."""
    normal = message.replace("\r\n", "\n")
    return normal.split("\n\n", 1)[1] if "\n\n" in normal else ""


def name_addr(value: str) -> tuple[str, str]:
    """(display name, user) of a From/To value such as ``"Dr A" <sip:123@host>;tag=x``."""
    match = _NAME_ADDR.match(value)
    if match is None:  # addr-spec without angle brackets: sip:123@host;tag=x
        return "", uri_user(value.split(";", 1)[0])
    quoted = match.group("quoted")
    display = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match.group("token")
    return display.strip(), uri_user(match.group("uri"))


def split_host_port(address: str) -> tuple[str, int]:
    """``"127.0.0.1:5060"`` or ``"[::1]:5060"`` → (host, port); port 0 if absent."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = address.rpartition(":") if address.count(":") == 1 else (address, "", "")
    return host, int(port) if port.isdigit() else 0


def quote_display(display: str) -> str:
    """A display name as a SIP quoted-string."""
    cleaned = "".join(ch for ch in display if ch >= " ")  # no CR/LF/control characters
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dtmf_from_info(content_type: str, text: str) -> str | None:
    """The digit carried by a SIP INFO body, for dtmf-relay and plain application/dtmf."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/dtmf-relay":
        for line in text.replace("\r\n", "\n").split("\n"):
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "signal":
                return _digit(value)
        return None
    if kind == "application/dtmf":
        return _digit(text)
    return None


def _digit(raw: str) -> str | None:
    value = raw.strip().upper()
    named = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}
    value = named.get(value, value)
    return value if value in DTMF_DIGITS and len(value) == 1 else None


def offer_event_pt(sdp: str, pt: int = 101) -> str:
    """Renumber telephone-event/8000 in our own SDP offer to ``pt``.

    pjsua offers telephone-event with a dynamic payload type of its choosing (121 in the
    wheels we use); many peers, and sipp's recorded DTMF pcaps, send 101 whatever we offer.
    Offering 101 makes the answer, and so both directions of the stream, use it.
    Left unchanged if there is no such line or ``pt`` is already taken.
    """
    lines = sdp.replace("\r\n", "\n").split("\n")
    old = next((m.group("pt") for ln in lines if (m := _RTPMAP_EVENT.match(ln))), None)
    if old is None or old == str(pt):
        return sdp
    taken = {m.group(1) for ln in lines if (m := re.match(r"^a=rtpmap:(\d+) ", ln))}
    if str(pt) in taken:
        return sdp
    return "\r\n".join(_renumber(line, old, str(pt)) for line in lines)


def _renumber(line: str, old: str, new: str) -> str:
    if line.startswith("m=audio "):
        head = line.split(" ")
        return " ".join(head[:3] + [new if f == old else f for f in head[3:]])
    if line.startswith((f"a=rtpmap:{old} ", f"a=fmtp:{old} ")):
        return line.replace(f":{old} ", f":{new} ", 1)
    return line
