"""RefusalLimiter on a hand-advanced clock: what is logged in full, what is summarised, when."""

from __future__ import annotations

import pytest

from callrouter.refusal_log import RefusalLimiter, source_network


class TestSourceNetwork:
    """Keys group a scanner's rotating addresses."""

    @pytest.mark.parametrize(
        ("host", "network"),
        [
            ("192.0.2.7", "192.0.2.0/24"),
            ("192.0.2.250", "192.0.2.0/24"),
            ("2001:db8:1:2::7", "2001:db8:1::/48"),
            ("[2001:db8:1:2::7]", "2001:db8:1::/48"),
            ("edge.example", "edge.example"),
        ],
    )
    def test_masking(self, host: str, network: str) -> None:
        assert source_network(host) == network


class TestLimiter:
    """First per (reason, network) in full; the rest counted into one summary per interval."""

    def test_first_in_full_then_held_then_summary(self) -> None:
        limiter = RefusalLimiter(interval=10.0)
        assert limiter.refused("forbidden", "192.0.2.1", 100.0)
        assert not limiter.refused("forbidden", "192.0.2.2", 101.0)
        assert limiter.refused("unknown_number", "192.0.2.2", 101.5)  # other reason: new key
        assert not limiter.refused("unknown_number", "192.0.2.3", 102.0)
        assert not limiter.refused("forbidden", "192.0.2.3", 103.0)
        assert limiter.next_summary_at() == 111.0
        assert limiter.summary_due(110.9) is None
        summary = limiter.summary_due(111.0)
        assert summary is not None
        assert (summary.count, summary.since, summary.until) == (3, 101.0, 111.0)
        assert summary.by_reason == {"forbidden": 2, "unknown_number": 1}
        assert summary.as_log()["seconds"] == 10.0
        assert limiter.next_summary_at() is None  # reset
        assert limiter.summary_due(500.0) is None
        assert repr(limiter) == "<RefusalLimiter keys=2 held=0>"

    def test_key_logged_again_after_forget_after(self) -> None:
        limiter = RefusalLimiter(interval=10.0, forget_after=60.0)
        assert limiter.refused("forbidden", "192.0.2.1", 0.0)
        assert not limiter.refused("forbidden", "192.0.2.1", 59.0)
        assert limiter.refused("forbidden", "192.0.2.1", 60.0)

    def test_many_networks_cost_bounded_memory(self) -> None:
        limiter = RefusalLimiter(interval=10.0, forget_after=3600.0, max_keys=3)
        logged = [limiter.refused("forbidden", f"10.0.{n}.1", float(n)) for n in range(10)]
        assert logged == [True] * 3 + [False] * 7
        summary = limiter.summary_due(100.0)
        assert summary is not None
        # 7 held back; distinct unlogged networks are themselves counted up to max_keys.
        assert (summary.count, summary.unlogged_sources) == (7, 3)
        assert repr(limiter) == "<RefusalLimiter keys=3 held=0>"
        # Once the old keys are forgotten, room is made for new networks.
        assert limiter.refused("forbidden", "10.0.99.1", 4000.0)

    @pytest.mark.parametrize("kwargs", [{"interval": 0.0}, {"forget_after": -1.0}, {"max_keys": 0}])
    def test_bad_settings_rejected(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="must be"):
            RefusalLimiter(**kwargs)  # type: ignore[arg-type]
