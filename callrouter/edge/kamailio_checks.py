"""Pieces of the edge's request route (see ``kamailio_cfg``): hostile shapes refused before
anything else (step 1), and the engine switching a worker in or out (step 7). Pure text: lines
of kamailio.cfg."""

from __future__ import annotations

WORKER_STATE_HEADER = "X-Callrouter-Worker-State"  # "<port> ap" in, "<port> d" out
DISPATCH_SET = 1

MAX_MESSAGE_BYTES = 16384  # a real INVITE with SDP is 1-5 KB; larger gets 513 at the edge
MAX_DTMF_BODY_BYTES = 64  # "Signal=5\r\nDuration=160\r\n" is 24
# One key on its own line: textops matches without case and line by line (REG_NEWLINE).
DTMF_SIGNAL = '"^Signal= *[0-9a-d*#] *\\r?$"'


def _not_utf8() -> str:
    """A POSIX extended regex (over bytes, C locale) matching any byte sequence that is not
    UTF-8: a byte UTF-8 never uses, a continuation byte without a lead, a lead byte without
    enough continuations (at the end too), or one with too many. Lead and continuation bytes
    never overlap, so every match starts at a real fault. The characters are Latin-1 here and
    are written to kamailio.cfg as the raw bytes."""
    cont, other, ascii_ = "[\x80-\xbf]", "[^\x80-\xbf]", "[^\x80-\xff]"
    lead2, lead3, lead4 = "[\xc2-\xdf]", "[\xe0-\xef]", "[\xf0-\xf4]"
    return "|".join(
        (
            "[\xc0\xc1\xf5-\xff]",
            ascii_ + cont,
            f"{lead2}({other}|$)",
            f"{lead3}({other}|{cont}{other}|{cont}?$)",
            f"{lead4}({other}|{cont}{other}|{cont}{cont}{other}|{cont}{{0,2}}$)",
            lead2 + cont * 2,
            lead3 + cont * 3,
            lead4 + cont * 4,
        )
    )


SANITY_CHECKS = 17895  # request line, scheme, headers, Via, CSeq, Content-Length, URIs, tags
SANITY_URIS = 7  # Request-URI, From, To


def shape_checks() -> list[str]:
    """Max-Forwards, size, UTF-8, the dtmf-relay body, then ``sanity_check``: each refusal
    logged through ``route(BAD_INPUT_LOG)``."""
    return [
        '    if (!mf_process_maxfwd_header("10")) {',
        '        sl_send_reply("483", "Too Many Hops");',
        "        exit;",
        "    }",
        f"    if ($ml > {MAX_MESSAGE_BYTES}) {{",
        "        route(BAD_INPUT_LOG);",
        '        if (!is_method("ACK")) sl_send_reply("513", "Message Too Large");',
        "        exit;",
        "    }",
        f'    if (search("{_not_utf8()}")) {{',
        "        route(BAD_INPUT_LOG);",
        '        if (!is_method("ACK")) sl_send_reply("400", "Bad Request: not UTF-8");',
        "        exit;",
        "    }",
        '    if (is_method("INFO") && has_body("application/dtmf-relay")) {',
        f"        if ($bs > {MAX_DTMF_BODY_BYTES} || !search_body({DTMF_SIGNAL})) {{",
        "            route(BAD_INPUT_LOG);",
        '            sl_send_reply("400", "Bad Request: dtmf-relay body");',
        "            exit;",
        "        }",
        "    }",
        f'    if (!sanity_check("{SANITY_CHECKS}", "{SANITY_URIS}")) {{',
        "        route(BAD_INPUT_LOG);",
        "        exit;",
        "    }",
    ]


def worker_state_route(worker_host: str) -> list[str]:
    """The engine growing or retiring a worker: ``dispatcher.set_state`` on its URI."""
    name = f"hdr({WORKER_STATE_HEADER})"
    header = f"${name}"
    where = f"[{worker_host}]" if ":" in worker_host else worker_host
    uri = f"sip:{where}:$var(port)"
    rpc = (
        '{"jsonrpc": "2.0", "method": "dispatcher.set_state", "params": ["$var(state)", '
        f'{DISPATCH_SET}, "{uri}"], "id": 1}}'
    )
    return [
        f'    if ($si=="{worker_host}" && is_method("OPTIONS")'
        f' && is_present_hf("{WORKER_STATE_HEADER}")) {{',
        f'        if ({header} =~ "^[0-9]{{1,5}} (ap|d)$") {{',
        f"            $var(port) = $({name}{{s.select,0, }});",
        f"            $var(state) = $({name}{{s.select,1, }});",
        f"            jsonrpc_exec('{rpc}');",
        '            xlog("L_INFO", "edge_worker_state port=$var(port) state=$var(state)'
        ' rpc=$jsonrpl(code)\\n");',
        '            sl_send_reply("200", "OK");',
        "        } else {",
        '            sl_send_reply("400", "Bad Request: worker state");',
        "        }",
        "        exit;",
        "    }",
    ]
