"""kamailio.cfg and the dispatcher list for the edge, rendered from an ``EdgePlan``. Pure text.

What the generated Kamailio does with each request, in order:

1. Hostile shapes: a message over ``MAX_MESSAGE_BYTES`` gets 513; one with bytes that are not
   UTF-8 anywhere (headers or body) gets 400; an INFO ``application/dtmf-relay`` whose body is
   not one ``Signal=`` key (a digit, ``*``, ``#`` or A-D) and a short ``Duration`` gets 400.
   Then ``sanity_check`` (request line, Via, CSeq, Content-Length against the datagram, URIs…):
   a broken message gets the module's 400 or is dropped. Each kind is logged once a minute per
   source. Nothing broken reaches a worker.
2. ``pike``: a source (other than a worker) sending more than ``pike_requests`` requests in
   ``pike_seconds`` is dropped silently until it calms down.
3. OPTIONS to the edge itself: 200 (keep-alives, and ``callrouter run``'s readiness probe).
4. A new request from a source outside ``trunk_allow`` (workers excepted): 403 from the edge,
   logged once per source per minute (an htable remembers who was logged). A CANCEL, and a
   request in a dialog the edge keeps (``is_known_dlg``: a consultant's BYE, re-INVITE, INFO),
   are not new: consultants need not be on the allow-list. Nor is a request in a dialog whose
   Request-URI names a worker (the edge restarted and lost its dialogs; the worker answers 481
   to a dialog it does not have).
5. In-dialog requests follow their Record-Route (``loose_route``) to the worker that took the
   call, and back (a peer that sends them to the edge without the Route set is relayed to the
   call's worker, remembered by Call-ID, or, in a dialog a worker placed, to the Request-URI);
   BYE and CANCEL of a GP's call release the call's load on its worker.
6. A new INVITE goes to the worker with fewest calls (dispatcher algorithm 10, ``maxload`` = the
   calls it can hold); a 503, 486, 408 or timeout from it moves the call to the next worker
   (a silent one is marked inactive until an OPTIONS probe brings it back); none left, or all
   full: 503 with Retry-After from the edge itself. Other new requests: 405.
   A new INVITE *from a worker* (a consultant's leg: the worker's account has the edge as
   outbound proxy, its own socket is on loopback) is relayed to its Request-URI instead,
   record-routed (two entries when it leaves by another socket), as a dialog: no dispatching,
   no load, no failover, no pike, no allow-list. A consultant silent for
   ``OUTBOUND_NO_ANSWER_MS`` gets the worker a 408.
7. The engine starts and stops workers on demand (``sip.max_workers``): every worker there may
   be is in the dispatcher list, those standing by inactive (probes find them once they answer,
   e.g. after an edge restart); an OPTIONS with ``X-Callrouter-Worker-State: <port> ap|d`` from
   ``worker_host`` puts one in at once or takes one out (``dispatcher.set_state`` through
   ``jsonrpc_exec``; ``d``, disabled, is not probed either, so a retiring worker that still
   answers is not put back). Only a 2xx answers a probe: tm's own 408 for an unanswered one
   would otherwise mark a dead or absent worker active.
8. Each call is a dialog (``dialog`` module) in the profile of the worker that answered it.
   When a worker dies the engine sends the edge an OPTIONS with ``X-Callrouter-Worker-Down:
   <host>:<port>`` (only honoured from ``worker_host``); the edge times those dialogs out at once
   and ends each with a BYE to the GP (``send_bye``), so no caller is left on dead air. The
   dead worker's consultant legs are not in that profile: the engine ends them (its reaper
   sends the BYE or CANCEL the worker wrote while alive, through this edge like the worker's
   own requests): the ``dialog`` module cannot cancel a consultant still ringing.
9. Workers of other engine nodes (``edge.remote_workers``) are listed by their address and take
   calls like this host's: what they send counts as a worker's (no pike, no allow-list), and
   ``mhomed`` sends each message out of the socket whose route reaches its host. The edge
   listens on ``listen_host``, ``worker_host`` and ``outside_host`` (``sip.listen_host``, where
   consultants are reached), ``mhomed`` picking the socket for each destination. Only this
   host's engine reports dead workers; another node's dead worker stops getting calls when a
   probe or an INVITE goes unanswered, but its calls are not ended by the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from callrouter.edge.kamailio_checks import (
    DISPATCH_SET,
    SANITY_CHECKS,
    shape_checks,
    worker_state_route,
)

MODULES = (
    "tm",
    "tmx",
    "sl",
    "rr",
    "pv",
    "maxfwd",
    "textops",
    "siputils",
    "xlog",
    "sanity",
    "pike",
    "ipops",
    "htable",
    "dispatcher",
    "dialog",
    "jsonrpcs",  # only for jsonrpc_exec (dispatcher.set_state) from the route below
)
WORKER_DOWN_HEADER = "X-Callrouter-Worker-Down"  # OPTIONS from the engine: end that worker's calls
# a consultant that does not answer a worker's INVITE at all (not even 100) this long: 408
OUTBOUND_NO_ANSWER_MS = 10000
DS_INACTIVE = 1  # dispatcher list flag: not chosen until an OPTIONS probe gets an answer


@dataclass(frozen=True, slots=True)
class EdgeWorker:
    """One worker as the edge sees it: where it listens (``host`` None: this host's
    ``worker_host``; else another engine node's address), and how many calls it may be given."""

    name: str
    port: int
    max_calls: int
    host: str | None = None  # another engine node's worker; None: this host's worker_host
    standby: bool = False  # started on demand: out of the dispatching until the engine says


@dataclass(frozen=True, slots=True)
class EdgePlan:
    """Everything the generated files depend on."""

    listen_host: str
    listen_port: int
    worker_host: str
    workers: tuple[EdgeWorker, ...]
    trunk_allow: tuple[str, ...]  # networks, as written in config.yaml (normalised)
    run_dir: Path
    # where consultants are reached from (sip.listen_host): the edge listens there too, so the
    # workers' calls to them leave by a socket that can reach them; None: listen_host does
    outside_host: str | None = None
    retry_after_seconds: int = 30
    pike_requests: int = 200
    pike_seconds: int = 2
    max_call_seconds: int = 3600
    probe_seconds: int = 2
    module_dir: Path = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")

    @property
    def config_file(self) -> Path:
        return self.run_dir / "kamailio.cfg"

    @property
    def dispatcher_file(self) -> Path:
        return self.run_dir / "dispatcher.list"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "kamailio.pid"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def worker_address(plan: EdgePlan, worker: EdgeWorker) -> str:
    return worker.host or plan.worker_host


def dispatcher_list(plan: EdgePlan) -> str:
    """One line per worker: ``set uri flags priority attrs``; a worker standing by is listed
    inactive (flag 1: not chosen until an OPTIONS probe is answered, or the engine puts it in)."""
    lines = ["# generated by callrouter from config.yaml: edits are overwritten"]
    for worker in plan.workers:
        uri = f"sip:{_host(worker_address(plan, worker))}:{worker.port}"
        flags = DS_INACTIVE if worker.standby else 0
        attrs = f"duid={worker.name};maxload={worker.max_calls}"
        lines.append(f"{DISPATCH_SET} {uri} {flags} 0 {attrs}")
    return "\n".join(lines) + "\n"


def _remote(plan: EdgePlan) -> bool:
    return any(worker.host is not None for worker in plan.workers)


def _addresses(plan: EdgePlan) -> list[str]:
    """The edge's sockets: the GPs' side, the workers' side, the consultants' side (once each)."""
    found: list[str] = []
    for host in (plan.listen_host, plan.worker_host, plan.outside_host):
        if host is not None and host not in found:
            found.append(host)
    return found


def _listens(plan: EdgePlan) -> list[str]:
    return [f"listen=udp:{_host(host)}:{plan.listen_port}" for host in _addresses(plan)]


def _to_a_worker(plan: EdgePlan) -> str:
    """The Request-URI names a worker (a consultant's request in a worker's dialog)."""
    each = [
        f'($rd=="{worker_address(plan, worker)}" && $rp=={worker.port})' for worker in plan.workers
    ]
    return "(" + " || ".join(each) + ")"


def _from_a_worker(plan: EdgePlan) -> str:
    by_host: dict[str, list[int]] = {}
    for worker in plan.workers:
        by_host.setdefault(worker_address(plan, worker), []).append(worker.port)
    each = []
    for host, ports in by_host.items():
        any_port = " || ".join(f"$sp=={port}" for port in ports)
        each.append(f'($si=="{host}" && ({any_port}))')
    return "(" + " || ".join(each) + ")"


def render(plan: EdgePlan) -> str:
    """The whole kamailio.cfg."""
    retry = f'append_to_reply("Retry-After: {plan.retry_after_seconds}\\r\\n");'
    allow = ",".join(plan.trunk_allow)
    lines = [
        "#!KAMAILIO",
        "# generated by callrouter from config.yaml: edits are overwritten",
        "debug=2",
        "log_stderror=yes",
        'log_prefix="{$mt $hdr(CSeq) $ci} "',
        "fork=yes",
        "children=1",  # one SIP reader: dispatcher load picks and counts without racing
        "auto_aliases=no",
        "disable_tcp=yes",
        "sip_warning=0",
        'server_header="Server: callrouter-edge"',
        'user_agent_header="User-Agent: callrouter-edge"',
        f'rundir="{plan.run_dir}"',
        *_listens(plan),
        # several sockets (or workers on other hosts): each message leaves by the socket the
        # kernel's route to its destination takes (a worker on loopback, a consultant outside)
        *(["mhomed=1"] if _remote(plan) or len(_addresses(plan)) > 1 else []),
        f'mpath="{plan.module_dir}/"',
        *(f'loadmodule "{module}.so"' for module in MODULES),
        'modparam("tm", "fr_timer", 2000)',  # a worker that says nothing for 2 s: next worker
        'modparam("tm", "fr_inv_timer", 120000)',
        'modparam("rr", "enable_full_lr", 0)',
        'modparam("rr", "append_fromtag", 1)',
        f'modparam("sanity", "default_checks", {SANITY_CHECKS})',
        f'modparam("pike", "sampling_time_unit", {plan.pike_seconds})',
        f'modparam("pike", "reqs_density_per_unit", {plan.pike_requests})',
        'modparam("pike", "remove_latency", 4)',
        'modparam("htable", "htable", "refused=>size=8;autoexpire=60;")',
        'modparam("htable", "htable", "flooding=>size=8;autoexpire=60;")',
        'modparam("htable", "htable", "badinput=>size=8;autoexpire=60;")',
        'modparam("htable", "htable", "dialogs=>size=10;autoexpire='
        f'{plan.max_call_seconds + 120};")',
        'modparam("jsonrpcs", "transport", 2)',  # FIFO only (HTTP needs xhttp), in run_dir
        f'modparam("jsonrpcs", "fifo_name", "{plan.run_dir / "rpc.fifo"}")',
        f'modparam("dispatcher", "list_file", "{plan.dispatcher_file}")',
        'modparam("dispatcher", "flags", 2)',  # keep the other workers for failover
        'modparam("dispatcher", "ds_hash_size", 9)',
        f'modparam("dispatcher", "ds_hash_expire", {plan.max_call_seconds + 120})',
        'modparam("dispatcher", "ds_hash_initexpire", 180)',
        'modparam("dispatcher", "ds_hash_check_interval", 10)',
        f'modparam("dispatcher", "ds_ping_interval", {plan.probe_seconds})',
        'modparam("dispatcher", "ds_probing_mode", 1)',
        'modparam("dispatcher", "ds_probing_threshold", 1)',
        'modparam("dispatcher", "ds_inactive_threshold", 1)',
        # only a real answer: tm's own 408 for a probe nobody answered is class 4 too
        'modparam("dispatcher", "ds_ping_reply_codes", "class=2")',
        f'modparam("dispatcher", "ds_ping_from", "sip:edge@{_host(plan.worker_host)}")',
        'modparam("dialog", "profiles_with_value", "worker")',
        'modparam("dialog", "send_bye", 1)',  # a dialog that times out is ended with BYEs
        # in-dialog requests sent without our Route (a peer that dropped Record-Route) too
        'modparam("dialog", "dlg_match_mode", 1)',
        f'modparam("dialog", "default_timeout", {plan.max_call_seconds + 120})',
        "",
        "request_route {",
        *shape_checks(),
        f'    if ($si=="{plan.worker_host}" && is_method("OPTIONS")'
        f' && is_present_hf("{WORKER_DOWN_HEADER}")) {{',
        f'        xlog("L_WARN", "edge_worker_down port=$hdr({WORKER_DOWN_HEADER}):'
        ' its calls are ended with BYE\\n");',
        f'        dlg_set_timeout_by_profile("worker", "$hdr({WORKER_DOWN_HEADER})", "1");',
        '        sl_send_reply("200", "OK");',
        "        exit;",
        "    }",
        *worker_state_route(plan.worker_host),
        f"    if (!{_from_a_worker(plan)}) {{",
        "        if (!pike_check_req()) {",
        "            if ($sht(flooding=>$si) == $null) {",
        "                $sht(flooding=>$si) = 1;",
        '                xlog("L_WARN", "edge_flood src=$si: dropped for a while\\n");',
        "            }",
        "            exit;",
        "        }",
        '        if (is_method("OPTIONS") && uri==myself && $rU==$null && !has_totag()) {',
        '            sl_send_reply("200", "OK");',
        "            exit;",
        "        }",
        "        # only new requests answer to trunk_allow: a consultant's requests in a dialog",
        "        # a worker started through here (and a CANCEL, matched to its INVITE below) pass",
        f'        if (!is_in_subnet("$si", "{allow}") && !is_method("CANCEL")'
        f" && !(has_totag() && (is_known_dlg() || {_to_a_worker(plan)}))) {{",
        "            if ($sht(refused=>$si) == $null) {",
        "                $sht(refused=>$si) = 1;",
        '                xlog("L_WARN", "edge_refused src=$si method=$rm: not in trunk_allow'
        ' (once a minute per source)\\n");',
        "            }",
        '            if (!is_method("ACK")) sl_send_reply("403", "Forbidden");',
        "            exit;",
        "        }",
        "    }",
        "    if (has_totag()) {",
        '        if (is_method("ACK")) t_check_trans();  # the ACK of a 4xx-6xx stops here',
        "        if (loose_route()) {",
        "            route(IN_DIALOG);",
        "        }",
        "        # a peer that ignored our Record-Route: the call's worker, by Call-ID",
        "        if (uri==myself && $sht(dialogs=>$ci) != $null) {",
        "            $du = $sht(dialogs=>$ci);",
        "            dlg_manage();",
        "            route(IN_DIALOG);",
        "        }",
        "        # a peer that dropped it in a call a worker placed: to the Request-URI",
        "        if (is_known_dlg()) {",
        "            dlg_manage();",
        "            route(IN_DIALOG);",
        "        }",
        '        if (is_method("ACK") && t_check_trans()) route(RELAY);',
        '        if (!is_method("ACK")) sl_send_reply("404", "Not Here");',
        "        exit;",
        "    }",
        '    if (is_method("CANCEL")) {',
        "        if (t_check_trans()) {",
        "            if ($sht(dialogs=>$ci) != $null) ds_load_update();  # a GP's call",
        "            route(RELAY);",
        "        }",
        "        exit;",
        "    }",
        "    if (t_precheck_trans()) {",
        "        t_check_trans();",
        "        exit;",
        "    }",
        "    t_check_trans();",
        '    remove_hf("Route");',
        '    if (!is_method("INVITE")) {',
        '        if (!is_method("ACK")) sl_send_reply("405", "Method Not Allowed");',
        "        exit;",
        "    }",
        f"    if ({_from_a_worker(plan)}) route(OUTBOUND);",
        "    dlg_manage();",
        "    record_route();",
        f'    if (!ds_select_dst("{DISPATCH_SET}", "10")) {{',
        '        xlog("L_INFO", "edge_full: every worker is full or down\\n");',
        f"        {retry}",
        '        sl_send_reply("503", "All Workers Busy");',
        "        exit;",
        "    }",
        "    $sht(dialogs=>$ci) = $du;",
        '    t_on_failure("FAILOVER");',
        '    t_on_reply("REPLY");',
        "    route(RELAY);",
        "}",
        "",
        "route[BAD_INPUT_LOG] {",
        "    if ($sht(badinput=>$si) == $null) {",
        "        $sht(badinput=>$si) = 1;",
        '        xlog("L_WARN", "edge_bad_input src=$si method=$rm length=$ml: refused'
        ' (once a minute per source)\\n");',
        "    }",
        "}",
        "",
        "# a worker calling a consultant: out to the Request-URI by the socket that reaches it,",
        "# recording the route so the dialog's requests both ways come through here; no",
        "# dispatching, no load counted, no failover (the worker's hunt decides what is next)",
        "route[OUTBOUND] {",
        "    dlg_manage();",
        "    record_route();",
        f"    t_set_fr(0, {OUTBOUND_NO_ANSWER_MS});  # not even a 100 Trying: 408 to the worker",
        "    route(RELAY);",
        "}",
        "",
        "route[IN_DIALOG] {",
        '    if (is_method("BYE") && $sht(dialogs=>$ci) != $null) ds_load_update();  # a GP\'s',
        "    route(RELAY);",
        "}",
        "",
        "route[RELAY] {",
        "    if (!t_relay()) sl_reply_error();",
        "    exit;",
        "}",
        "",
        "onreply_route[REPLY] {",
        '    if (is_method("INVITE") && status=~"^2[0-9][0-9]$") {',
        "        ds_load_update();",
        '        set_dlg_profile("worker", "$si:$sp");  # the worker that answered',
        "    }",
        "}",
        "",
        "failure_route[FAILOVER] {",
        "    if (t_is_canceled()) exit;",
        "    if (t_branch_timeout() && !t_branch_replied()) {",
        '        xlog("L_WARN", "edge_worker_silent dst=$du: marked inactive until probed\\n");',
        '        ds_mark_dst("ip");',
        "    }",
        '    if (t_check_status("503|486|408|500") || t_branch_timeout()) {',
        "        if (ds_next_dst()) {",
        "            $sht(dialogs=>$ci) = $du;",
        '            t_on_failure("FAILOVER");',
        '            t_on_reply("REPLY");',
        "            route(RELAY);",
        "        }",
        "        ds_load_unset();",
        '        xlog("L_INFO", "edge_full: no worker took the call\\n");',
        f"        {retry}",
        '        t_reply("503", "All Workers Busy");',
        "        exit;",
        "    }",
        "    ds_load_unset();",
        "}",
    ]
    return "\n".join(lines) + "\n"
