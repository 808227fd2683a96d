"""Busy claims between engine nodes (callrouter.core.claims): the order, the race, expiry."""

from __future__ import annotations

import pytest

from callrouter.core.claims import Claim, ClaimBook, Phase, TooManyClaimsError

TTL = 60.0


def other(node: str, member: str, phase: Phase, at: float, until: float = 1e12) -> Claim:
    return Claim(node, member, phase, at, until)


class TestOrder:
    """Rule 2: phase first, then the earlier claim, then the lower node id."""

    def test_a_stronger_phase_beats_an_earlier_claim(self) -> None:
        ringing = other("a", "m", Phase.RINGING, at=1.0)
        answered = other("b", "m", Phase.ANSWERED, at=9.0)
        assert answered.beats(ringing)
        assert not ringing.beats(answered)

    def test_in_one_phase_the_earlier_claim_wins(self) -> None:
        first = other("z", "m", Phase.RINGING, at=1.000)
        second = other("a", "m", Phase.RINGING, at=1.001)
        assert first.beats(second)
        assert not second.beats(first)

    def test_at_the_same_instant_the_lower_node_id_wins(self) -> None:
        a = other("node-a", "m", Phase.RINGING, at=5.0)
        b = other("node-b", "m", Phase.RINGING, at=5.0)
        assert a.beats(b)
        assert not b.beats(a)

    def test_no_claim_beats_itself(self) -> None:
        claim = other("a", "m", Phase.TALKING, at=5.0)
        assert not claim.beats(claim)


class TestRace:
    """Two nodes ring one member before hearing of each other: exactly one yields."""

    @pytest.mark.parametrize(("at_a", "at_b"), [(10.0, 10.002), (10.002, 10.0), (10.0, 10.0)])
    def test_both_nodes_reach_the_same_verdict(self, at_a: float, at_b: float) -> None:
        a, b = ClaimBook("a", TTL), ClaimBook("b", TTL)
        claim_a = a.claim("m", Phase.RINGING, at_a)
        claim_b = b.claim("m", Phase.RINGING, at_b)
        assert claim_a is not None
        assert claim_b is not None
        now = 10.01
        a_yields = a.seen(claim_b, now)
        b_yields = b.seen(claim_a, now)
        assert a_yields != b_yields  # one and only one
        winner = "a" if b_yields else "b"
        expected = "a" if (at_a, "a") < (at_b, "b") else "b"
        assert winner == expected

    def test_an_answered_leg_is_never_yielded(self) -> None:
        book = ClaimBook("b", TTL)
        book.claim("m", Phase.RINGING, 10.5)
        book.claim("m", Phase.ANSWERED, 10.6)
        assert not book.seen(other("a", "m", Phase.RINGING, at=10.0), 10.7)

    def test_a_ringing_leg_yields_to_one_answered_elsewhere_even_if_claimed_first(self) -> None:
        book = ClaimBook("a", TTL)
        book.claim("m", Phase.RINGING, 10.0)
        assert book.seen(other("b", "m", Phase.ANSWERED, at=10.5), 10.7)

    def test_a_claim_for_another_member_changes_nothing(self) -> None:
        book = ClaimBook("a", TTL)
        book.claim("m", Phase.RINGING, 10.5)
        assert not book.seen(other("b", "n", Phase.RINGING, at=1.0), 10.7)
        assert book.busy_elsewhere("n", 10.7)
        assert not book.busy_elsewhere("m", 10.7)

    def test_a_claim_in_our_own_name_is_refused(self) -> None:
        book = ClaimBook("a", TTL)
        with pytest.raises(ValueError, match="own name"):
            book.seen(other("a", "m", Phase.RINGING, at=1.0), 2.0)


class TestOwnClaims:
    """Rule 1: claim, strengthen, release, refresh."""

    def test_strengthening_keeps_the_first_instant_and_weaker_changes_nothing(self) -> None:
        book = ClaimBook("a", TTL)
        first = book.claim("m", Phase.RINGING, 100.0)
        assert first == Claim("a", "m", Phase.RINGING, 100.0, 100.0 + TTL)
        assert book.claim("m", Phase.RINGING, 101.0) is None
        talking = book.claim("m", Phase.TALKING, 102.0)
        assert talking == Claim("a", "m", Phase.TALKING, 100.0, 102.0 + TTL)
        assert book.claim("m", Phase.ANSWERED, 103.0) is None
        assert book.own("m") == talking

    def test_release_says_whether_there_was_a_claim(self) -> None:
        book = ClaimBook("a", TTL)
        book.claim("m", Phase.RINGING, 1.0)
        assert book.release("m")
        assert not book.release("m")
        assert book.held() == []

    def test_refresh_renews_only_claims_past_a_third_of_their_life(self) -> None:
        book = ClaimBook("a", TTL)
        book.claim("old", Phase.TALKING, 0.0)
        book.claim("new", Phase.RINGING, 15.0)
        renewed = book.refresh(21.0)
        assert [(c.member_id, c.until) for c in renewed] == [("old", 21.0 + TTL)]
        assert book.refresh(21.0) == []
        assert {c.member_id: c.until for c in book.renew_all(30.0)} == {
            "old": 30.0 + TTL,
            "new": 30.0 + TTL,
        }


class TestExpiry:
    """Rule 5: claims end by themselves; an offline node's claims go at once."""

    def test_a_claim_counts_until_its_until_and_not_after(self) -> None:
        book = ClaimBook("a", TTL)
        book.seen(other("b", "m", Phase.TALKING, at=0.0, until=60.0), 1.0)
        assert book.busy_elsewhere("m", 59.9)
        assert not book.busy_elsewhere("m", 60.0)
        assert book.others(60.0) == {}

    def test_an_expired_claim_is_ignored_on_arrival(self) -> None:
        book = ClaimBook("a", TTL)
        book.claim("m", Phase.RINGING, 100.0)
        assert not book.seen(other("b", "m", Phase.TALKING, at=0.0, until=50.0), 100.0)
        assert not book.busy_elsewhere("m", 100.0)

    def test_an_offline_node_loses_its_claims_until_it_is_back(self) -> None:
        book = ClaimBook("a", TTL)
        book.seen(other("b", "m", Phase.TALKING, at=0.0), 1.0)
        book.seen(other("b", "n", Phase.RINGING, at=0.0), 1.0)
        book.seen(other("c", "n", Phase.RINGING, at=0.0), 1.0)
        assert book.node_offline("b") == 2
        assert book.others(2.0) == {"n": ["c"]}
        book.seen(other("b", "m", Phase.TALKING, at=0.0), 2.0)  # a late retained copy
        assert not book.busy_elsewhere("m", 2.0)
        book.node_online("b")
        book.seen(other("b", "m", Phase.RINGING, at=3.0), 3.0)
        assert book.busy_elsewhere("m", 3.0)

    def test_cleared_releases_one_node_only(self) -> None:
        book = ClaimBook("a", TTL)
        book.seen(other("b", "m", Phase.RINGING, at=0.0), 1.0)
        book.seen(other("c", "m", Phase.RINGING, at=0.0), 1.0)
        book.cleared("b", "m")
        assert book.others(1.0) == {"m": ["c"]}
        book.cleared("c", "m")
        assert not book.busy_elsewhere("m", 1.0)


class TestBounded:
    """A publisher inventing members or nodes cannot grow the table without bound."""

    def test_the_table_refuses_past_its_limit_after_dropping_expired(self) -> None:
        book = ClaimBook("a", TTL, limit=2)
        book.seen(other("b", "m1", Phase.RINGING, at=0.0, until=5.0), 1.0)
        book.seen(other("b", "m2", Phase.RINGING, at=0.0), 1.0)
        with pytest.raises(TooManyClaimsError):
            book.seen(other("b", "m3", Phase.RINGING, at=0.0), 2.0)
        book.seen(other("b", "m3", Phase.RINGING, at=0.0), 6.0)  # m1 expired: room again
        assert book.others(6.0) == {"m2": ["b"], "m3": ["b"]}
        book.seen(other("b", "m3", Phase.TALKING, at=0.0), 6.0)  # an update needs no room
