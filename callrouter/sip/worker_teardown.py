"""How a leg's far end is told the call is over if this worker dies: the SIP datagrams, written
while the worker is alive, from the INVITE transaction's own messages. Pure text, no pjsua2.

- An answered leg (our 2xx sent, or a 2xx received): a BYE in its dialog: Call-ID and both tags,
  the remote target (its Contact), the route set (Record-Route; reversed when we called), and a
  CSeq far above any a pjsip dialog starts from (it picks a 16-bit one).
- An outbound leg still ringing (a 1xx with a To tag received): a CANCEL matching our INVITE
  (its top Via, so the same branch; From, To without the tag, Call-ID, CSeq number), and the ACK
  for the 487 that CANCEL brings (To with the tag).

Behind a local edge the worker's own requests leave through it (``proxy``, its outbound proxy):
so do an outbound leg's CANCEL and ACK, and a BYE whose dialog has no route set (a peer that did
not copy the edge's Record-Route); the edge relays them to the consultant, whom a socket on the
workers' loopback could not reach.

The worker sends the latest ``Teardown`` of each leg to the pool, which sends its datagrams when
the process dies (``callrouter.sip.reaper``). A message too odd to read gives no teardown: the
peer then ends the leg by its own timers, as before.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from callrouter.sip import protocol as p

LOST_CSEQ = 1_000_000_000  # above any CSeq a pjsip dialog reaches (it starts below 65536)
_COMPACT = {"from": "f", "to": "t", "call-id": "i", "contact": "m", "via": "v"}
_STATUS = re.compile(r"^SIP/2\.0\s+(\d{3})\b")
_TAG = re.compile(r";\s*tag=[^;>\s]*", re.IGNORECASE)
_URI = re.compile(r"<([^>]*)>")


def values(message: str, name: str) -> list[str]:
    """Every value of header ``name`` (compact form too), comma lists split outside <>."""
    wanted = {name.lower(), _COMPACT.get(name.lower(), name.lower())}
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    found: list[str] = []
    for line in head.split("\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in wanted:
            found += (
                _split_list(value.strip()) if name.lower() == "record-route" else [value.strip()]
            )
    return found


def _split_list(value: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(value):
        depth += (ch == "<") - (ch == ">")
        if ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [part for part in parts if part]


def uri_of(value: str) -> str:
    """The URI of a name-addr (``"A" <sip:a@h>;tag=x`` → ``sip:a@h``) or of a bare addr-spec."""
    match = _URI.search(value)
    return match.group(1).strip() if match else value.split(";", 1)[0].strip()


def destination(uri: str) -> tuple[str, int]:
    """Host and port a request to this SIP URI goes to (5060 when it names none)."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    hostport = rest.rsplit("@", 1)[-1].split(";", 1)[0].split("?", 1)[0]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = tail.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    return host, int(port) if port.isdigit() else 5060


def _message(first: str, headers: list[tuple[str, str]]) -> str:
    lines = [first, *(f"{key}: {value}" for key, value in headers), "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


@dataclass(frozen=True, slots=True)
class _Invite:
    """What the response says of its INVITE."""

    leg: str
    message: str
    call_id: str
    from_: str
    to: str
    cseq: int
    request_uri: str


def teardown(
    leg: str,
    message: str,
    *,
    inbound: bool,
    remote_contact: str,
    via: str,
    request_uri: str = "",
    proxy: str = "",
) -> p.Teardown | None:
    """The teardown a response of a leg's INVITE transaction makes possible, or None.

    ``message``: a response we received (outbound leg) or sent (inbound leg); ``remote_contact``:
    the far end's Contact as pjsua knows it; ``via``: our ``host:port`` for a BYE's Via;
    ``request_uri``: what an outbound INVITE was sent to (a CANCEL must name it again);
    ``proxy``: the outbound proxy our requests go through ("" for none).
    """
    status_match = _STATUS.match(message)
    cseq = (values(message, "CSeq") or [""])[0].split()
    if status_match is None or len(cseq) != 2 or cseq[1].upper() != "INVITE":
        return None
    status = int(status_match.group(1))
    call_id = (values(message, "Call-ID") or [""])[0]
    from_, to = (values(message, "From") or [""])[0], (values(message, "To") or [""])[0]
    if not (call_id and from_ and to and _TAG.search(to) and cseq[0].isdigit()):
        return None
    invite = _Invite(leg, message, call_id, from_, to, int(cseq[0]), request_uri or uri_of(to))
    if 200 <= status < 300:
        if inbound:
            return _bye(invite, uri_of(remote_contact), via=via, inbound=True)
        contact = values(message, "Contact")
        target = uri_of(contact[0]) if contact else ""
        return _bye(invite, target, via=via, inbound=False, proxy=proxy)
    if 100 < status < 200 and not inbound:
        return _cancel(invite, proxy)
    return None


def _bye(
    invite: _Invite, target: str, *, via: str, inbound: bool, proxy: str = ""
) -> p.Teardown | None:
    if not target.lower().startswith(("sip:", "sips:")):
        return None
    routes = values(invite.message, "Record-Route")
    if inbound:  # we are the UAS: To is ours, the route set is Record-Route as it came
        local, remote = invite.to, invite.from_
    else:  # we called: From is ours, the route set is Record-Route reversed
        local, remote = invite.from_, invite.to
        routes.reverse()
    strict = bool(routes) and ";lr" not in uri_of(routes[0]).lower()
    if strict:  # RFC 2543 strict routing: the first route becomes the Request-URI
        request_uri, route_set = uri_of(routes[0]), [*routes[1:], f"<{target}>"]
    else:
        request_uri, route_set = target, routes
    host, port = destination(uri_of(routes[0]) if routes else proxy or target)
    headers = [("Via", f"SIP/2.0/UDP {via};rport;branch=z9hG4bK{secrets.token_hex(8)}")]
    headers += [("Max-Forwards", "70")]
    headers += [("Route", route) for route in route_set]
    headers += [("From", local), ("To", remote), ("Call-ID", invite.call_id)]
    headers += [("CSeq", f"{LOST_CSEQ} BYE"), ("Reason", 'SIP;cause=500;text="worker lost"')]
    bye = _message(f"BYE {request_uri} SIP/2.0", headers)
    return p.Teardown(leg=invite.leg, host=host, port=port, messages=(bye,), inbound=inbound)


def _cancel(invite: _Invite, proxy: str) -> p.Teardown:
    request_uri = invite.request_uri
    vias = values(invite.message, "Via")
    host, port = destination(proxy or request_uri)  # where the INVITE went
    common = [("Via", vias[0] if vias else ""), ("Max-Forwards", "70"), ("From", invite.from_)]
    number, call_id = invite.cseq, invite.call_id
    cancel = _message(
        f"CANCEL {request_uri} SIP/2.0",
        [
            *common,
            ("To", _TAG.sub("", invite.to)),
            ("Call-ID", call_id),
            ("CSeq", f"{number} CANCEL"),
        ],
    )
    ack = _message(
        f"ACK {request_uri} SIP/2.0",
        [*common, ("To", invite.to), ("Call-ID", call_id), ("CSeq", f"{number} ACK")],
    )
    return p.Teardown(leg=invite.leg, host=host, port=port, messages=(cancel, ack), inbound=False)
