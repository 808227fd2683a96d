"""How much of a flood of refused calls reaches the log. Pure: the caller passes ``now``.

A scan at 100 INVITEs a second must not write a line per INVITE. The first refusal of each
(reason, source network) is logged in full; later ones are only counted, and at most one summary
line per ``interval`` says how many were refused since when, by reason. The source network is the
IPv4 /24 or IPv6 /48 (a scanner rotates addresses inside one), or the host itself if it is not an
address. A key is logged in full again once ``forget_after`` has passed since it last was, and
at most ``max_keys`` keys are remembered, so a scan from many networks costs bounded memory:
beyond that, new networks are only counted (``unlogged_sources`` in the summary).

    limiter = RefusalLimiter()
    if limiter.refused("forbidden", "192.0.2.7", now):
        log.info("call_refused", ...)          # the first from 192.0.2.0/24 for this reason
    ...
    summary = limiter.summary_due(now)         # at limiter.next_summary_at(), and when noting
    if summary is not None:
        log.warning("calls_refused_summary", **summary.as_log())
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass

# The refusal reason when pjsua refused an INVITE itself (every call slot taken), with 486;
# the engine's own refusals are named after core.admission.Admission members, lower case.
WORKER_BUSY = "worker_busy"
IPV4_PREFIX = 24
IPV6_PREFIX = 48


def source_network(host: str) -> str:
    """``192.0.2.7`` → ``192.0.2.0/24``; IPv6 to its /48; anything else unchanged."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    prefix = IPV4_PREFIX if isinstance(address, ipaddress.IPv4Address) else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass(frozen=True, slots=True)
class RefusalSummary:
    """Refusals counted but not logged one by one, from ``since`` up to ``until``."""

    count: int
    since: float
    until: float
    by_reason: dict[str, int]
    unlogged_sources: int

    def as_log(self) -> dict[str, object]:
        return {
            "refused": self.count,
            "since": self.since,
            "seconds": round(self.until - self.since, 3),
            "by_reason": dict(sorted(self.by_reason.items())),
            "unlogged_sources": self.unlogged_sources,
        }


class RefusalLimiter:
    """Decides which refusals are logged in full and when a summary line is due."""

    def __init__(
        self, interval: float = 10.0, forget_after: float = 3600.0, max_keys: int = 1024
    ) -> None:
        if interval <= 0 or forget_after <= 0 or max_keys < 1:
            raise ValueError("interval and forget_after must be > 0, max_keys >= 1")
        self.interval = interval
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._logged: dict[tuple[str, str], float] = {}  # key -> when last logged in full
        self._held: Counter[str] = Counter()  # reason -> refusals not logged, this window
        self._held_since: float | None = None
        self._unlogged_sources: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"<RefusalLimiter keys={len(self._logged)} held={sum(self._held.values())}>"

    def refused(self, reason: str, source_host: str, now: float) -> bool:
        """Note one refusal; True if this one should be logged in full."""
        key = (reason, source_network(source_host))
        last = self._logged.get(key)
        if last is not None and now - last < self.forget_after:
            self._hold(reason, now)
            return False
        if last is None and len(self._logged) >= self.max_keys:
            self._forget_old(now)
            if len(self._logged) >= self.max_keys:
                if len(self._unlogged_sources) < self.max_keys:
                    self._unlogged_sources.add(key)
                self._hold(reason, now)
                return False
        self._logged[key] = now
        return True

    def next_summary_at(self) -> float | None:
        """When a summary will be due, if any refusal is being held back."""
        return None if self._held_since is None else self._held_since + self.interval

    def summary_due(self, now: float) -> RefusalSummary | None:
        """The summary of held refusals once ``interval`` has passed since the first; resets."""
        due = self.next_summary_at()
        if due is None or now < due:
            return None
        assert self._held_since is not None  # due is not None
        summary = RefusalSummary(
            count=sum(self._held.values()),
            since=self._held_since,
            until=now,
            by_reason=dict(self._held),
            unlogged_sources=len(self._unlogged_sources),
        )
        self._held.clear()
        self._held_since = None
        self._unlogged_sources.clear()
        return summary

    def _hold(self, reason: str, now: float) -> None:
        if self._held_since is None:
            self._held_since = now
        self._held[reason] += 1

    def _forget_old(self, now: float) -> None:
        self._logged = {key: at for key, at in self._logged.items() if now - at < self.forget_after}
