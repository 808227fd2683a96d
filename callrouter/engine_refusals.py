"""Refused calls: every one counted, the first per (reason, source network) logged in full, the
rest in one summary line per interval. The limiter counts in wall time (its summaries say since
when); the timer that brings a summary waits on the monotonic clock."""

from __future__ import annotations

import structlog

from callrouter.engine_ports import Clock, RefusalCounter, Timer
from callrouter.refusal_log import RefusalLimiter, source_network

log = structlog.get_logger("callrouter.engine")


class Refusals:
    def __init__(
        self, clock: Clock, counter: RefusalCounter | None, limiter: RefusalLimiter | None
    ) -> None:
        self._clock = clock
        self._counter = counter
        self._limiter = RefusalLimiter() if limiter is None else limiter
        self._timer: Timer | None = None

    def refused(self, reason: str, status: int, source: str, caller: str, called: str) -> None:
        """Count every refusal; log the first per (reason, source network), then summaries."""
        if self._counter is not None:
            self._counter.call_refused(reason, status)
        now = self._clock.wall()
        self.log_summary()
        if self._limiter.refused(reason, source, now):
            log.info(
                "call_refused",
                reason=reason,
                status=status,
                source=source,
                called=called,
                caller=caller,
                network=source_network(source),  # more from it: in the summaries
            )
        elif self._timer is None:
            self._arm()

    def _arm(self) -> None:
        due = self._limiter.next_summary_at()
        if due is not None:
            delay = max(0.0, due - self._clock.wall())
            self._timer = self._clock.call_at(self._clock.monotonic() + delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.log_summary()
        self._arm()  # the wall clock lagged the timer, or more were held since

    def log_summary(self, *, final: bool = False) -> None:
        now = self._clock.wall()
        if final:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            due = self._limiter.next_summary_at()
            now = max(now, due) if due is not None else now
        summary = self._limiter.summary_due(now)
        if summary is not None:
            log.warning("calls_refused_summary", **summary.as_log())
