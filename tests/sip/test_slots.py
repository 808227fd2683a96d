"""One worker's slot book: reservations for admitted GPs, Dials that wait for a closing leg's
slot, and a slot freed only by LegClosed. Pure, so driven directly and by random sequences."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.sip import protocol as p
from callrouter.sip.slots import Placed, SlotBook
from callrouter.sip.worker_slot_waits import SlotWaits


def dial(leg: str) -> p.Dial:
    return p.Dial(leg, f"sip:{leg}@127.0.0.1")


def admitted(book: SlotBook, gp: str) -> bool:
    """What the engine does with an Incoming: the leg holds a slot, then a reservation."""
    book.legs.add(gp)
    return book.reserve(gp)


class TestReservations:
    """An admitted GP keeps one slot for its first consultant leg."""

    def test_four_slots_take_two_gps(self) -> None:
        book = SlotBook(capacity=4)
        assert admitted(book, "gp1")
        assert admitted(book, "gp2")
        assert not admitted(book, "gp3")  # its own leg and two reservations fill the worker
        assert book.free == 0
        # until pjsua lets go of gp3's refused INVITE, gp1's first Dial waits for its slot
        assert book.place(dial("a"), "gp1") is Placed.WAITING
        assert book.closed("gp3") == [dial("a")]
        assert book.place(dial("b"), "gp2") is Placed.SENT  # gp1's dial did not take gp2's

    def test_a_lone_gp_may_ring_three_at_once(self) -> None:
        book = SlotBook(capacity=4)
        assert admitted(book, "gp1")
        assert book.free_for("gp1") == 3
        assert book.free == 2  # for anyone else, gp1's reservation is taken

    def test_the_reservation_goes_with_the_gps_leg(self) -> None:
        book = SlotBook(capacity=4)
        admitted(book, "gp1")
        admitted(book, "gp2")
        assert book.closed("gp1") == []
        assert book.free == 2  # gp1's leg and reservation are both free again
        assert admitted(book, "gp3")


class TestWaiting:
    """A Dial waits for a slot still held by a leg pjsua has not let go of."""

    def test_dial_waits_until_the_cancelled_leg_closes(self) -> None:
        book = SlotBook(capacity=4)
        admitted(book, "gp1")
        for leg in ("a", "b", "c"):
            assert book.place(dial(leg), "gp1") is Placed.SENT
        assert book.place(dial("d"), "gp1") is Placed.WAITING  # "a" hung up, not yet closed
        assert "d" in book
        assert book.closed("a") == [dial("d")]
        assert book.legs == {"gp1", "b", "c", "d"}

    def test_a_dial_hung_up_while_waiting_never_goes_out(self) -> None:
        book = SlotBook(capacity=2)
        admitted(book, "gp1")
        assert book.place(dial("a"), "gp1") is Placed.SENT
        assert book.place(dial("b"), "gp1") is Placed.WAITING
        assert book.drop_waiting("b")
        assert book.closed("a") == []
        assert "b" not in book

    def test_a_dial_of_no_gp_with_no_slot_is_refused(self) -> None:
        book = SlotBook(capacity=1)
        book.legs.add("x")
        assert book.place(dial("y"), None) is Placed.NO_SLOT
        assert "y" not in book

    def test_a_dead_worker_loses_waiting_dials_too(self) -> None:
        book = SlotBook(capacity=2)
        admitted(book, "gp1")
        book.place(dial("a"), "gp1")
        book.place(dial("b"), "gp1")
        assert book.clear() == ["a", "gp1", "b"]
        assert "gp1" not in book
        assert book.legs == set()
        assert book.place(dial("c"), None) is Placed.NO_SLOT  # nothing goes to a dead worker


_OPS = st.lists(
    st.tuples(st.sampled_from(["gp", "dial", "hangup", "close"]), st.integers(0, 7)),
    max_size=60,
)


@given(ops=_OPS)
@settings(max_examples=300, deadline=None)
def test_never_more_legs_than_slots_and_an_idle_reservation_always_dials(
    ops: list[tuple[str, int]],
) -> None:
    """Whatever happens, the worker is never asked for more legs than it has, no Dial of an
    admitted GP is refused, and one whose call holds no consultant leg dials at once (once any
    refused GP's INVITE has gone)."""
    book = SlotBook(capacity=4)
    gps: list[str] = []
    outbound: dict[str, str] = {}  # leg -> gp
    closing: list[str] = []  # hung up, LegClosed not yet
    serial = 0
    for op, n in ops:
        if op == "gp":
            gp = f"gp{serial}"
            serial += 1
            if len(book.legs) < book.capacity:  # pjsua takes the INVITE only with a slot
                book.legs.add(gp)
                if book.reserve(gp):
                    gps.append(gp)
                else:
                    closing.append(gp)  # refused: its leg holds a slot until it closes
        elif op == "dial" and gps:
            gp = gps[n % len(gps)]
            leg = f"L{serial}"
            serial += 1
            idle = not any(g == gp and leg_ in book.legs for leg_, g in outbound.items())
            placed = book.place(dial(leg), gp)
            assert placed is not Placed.NO_SLOT
            refused_open = any(leg_.startswith("gp") for leg_ in closing)
            if idle and not refused_open:
                assert placed is Placed.SENT
            outbound[leg] = gp
        elif op == "hangup" and outbound:
            leg = sorted(outbound)[n % len(outbound)]
            if book.drop_waiting(leg):
                del outbound[leg]
            elif leg in book.legs and leg not in closing:
                closing.append(leg)
        elif op == "close" and (closing or gps):
            leg = closing.pop(n % len(closing)) if closing else gps.pop(n % len(gps))
            if leg in gps:
                gps.remove(leg)
            for sent in book.closed(leg):
                assert sent.leg in outbound  # a waiting Dial goes out
            outbound.pop(leg, None)
            for other, gp in list(outbound.items()):  # a GP gone: its legs are hung up too
                if gp == leg and not book.drop_waiting(other) and other not in closing:
                    closing.append(other)
        assert len(book.legs) <= book.capacity
        assert book.free >= 0


class TestWorkerSlotWaits:
    """In the worker: a Dial with no pjsua slot yet is tried again until ``patience`` runs out."""

    def test_waits_then_gives_up(self) -> None:
        now = [100.0]
        waits = SlotWaits(lambda: now[0], patience=2.0)
        assert waits.wait(dial("a"), None)
        [(again, until)] = waits.take()
        assert (again, until, len(waits)) == (dial("a"), 102.0, 0)
        now[0] = 101.9
        assert waits.wait(again, until)  # still within its patience
        now[0] = 102.0
        [(again, until)] = waits.take()
        assert not waits.wait(again, until)  # fail it now
        assert len(waits) == 0

    def test_a_dial_hung_up_while_it_waits_is_dropped(self) -> None:
        waits = SlotWaits(lambda: 0.0)
        waits.wait(dial("a"), None)
        assert waits.drop("a")
        assert not waits.drop("a")
        assert waits.take() == []
