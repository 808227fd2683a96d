"""Records wait out a full disk: a real tmpfs filled with dd, real SQLite files, a kill -9.

Each test compares the records with a control run of the same events on a healthy disk: after
space returns they must be the same rows with the same values, nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from callrouter.adapters.metrics import Metrics
from callrouter.adapters.store_spool import (
    MIB,
    SpoolEntry,
    SpoolFile,
    SpoolInUseError,
    SpoolOptions,
    encode,
    parse,
)
from callrouter.adapters.store_sqlite import CallStore
from callrouter.core.domain import DomainEvent
from callrouter.settings.config import Config
from tests.tmpfs import mounted_tmpfs

from .scripted_calls import T0, abandoned_in_hunt, connected_call, ivr_hangup

REPO = Path(__file__).resolve().parents[2]
KIB = 1024
OPTIONS = SpoolOptions(
    reserve_bytes=256 * KIB,
    retry_min_seconds=0.05,
    retry_max_seconds=0.2,
    close_flush_seconds=1.0,
)
BEFORE_FILL = 4  # CallOffered .. SpecialtyChosen are written; the disk fills before LegStarted


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of its own, unmounted at the end whatever happened."""
    with mounted_tmpfs(tmp_path / "disk", "2m") as mount:
        yield mount


def fill(disk: Path) -> Path:
    """Fill the disk with dd until ENOSPC; delete the returned file to free the space."""
    filler = disk / "filler"
    result = subprocess.run(
        ["dd", "if=/dev/zero", f"of={filler}", "bs=4k"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "No space left on device" in result.stderr
    return filler


def table(path: Path, name: str) -> list[dict[str, Any]]:
    """Every row of a table, read by a second connection (what another process would see)."""
    db = sqlite3.connect(path)
    try:
        db.row_factory = sqlite3.Row
        order = {"calls": "call_id", "legs": "call_id, leg", "spool_marks": "epoch"}[name]
        return [
            dict(r) for r in db.execute(f"SELECT * FROM {name} ORDER BY {order}")
        ]  # fixed names
    finally:
        db.close()


def records(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return table(path, "calls"), table(path, "legs")


def control(tmp_path: Path, events: Iterable[DomainEvent]) -> tuple[list[Any], list[Any]]:
    """The same events written to a healthy disk, without a spool."""
    path = tmp_path / "control" / "calls.db"

    async def run() -> None:
        async with await CallStore.open(path) as store:
            for event in events:
                await store.handle(event)

    asyncio.run(run())
    return records(path)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, name
    return value


def failures(metrics: Metrics, kind: str) -> float:
    return sample(metrics, "callrouter_store_write_failures_total", kind=kind)


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


def spool_data(path: Path) -> bytes:
    """The spool file's records: everything before the zeroed reservation."""
    return path.read_bytes().split(b"\0", 1)[0]


def write_spool(path: Path, records: Sequence[DomainEvent]) -> list[SpoolEntry]:
    """A spool file as a previous process would have left it."""
    spool, found = SpoolFile.open(path, 0)
    assert found == []
    entries = [spool.entry(record) for record in records]
    spool.append(b"".join(encode(entry) for entry in entries))
    spool.close()
    return entries


# -- tests --------------------------------------------------------------------------------------


class TestFreshPath:
    """The database's missing directories are made (0750), as the spool's are."""

    def test_missing_parents_are_created(self, tmp_path: Path) -> None:
        path = tmp_path / "a" / "b" / "c" / "db.sqlite3"
        spool_dir = tmp_path / "s" / "t"
        old = os.umask(0o022)
        try:

            async def run() -> None:
                options = replace(OPTIONS, directory=spool_dir)
                async with await CallStore.open(path, spool=options) as store:
                    await store.handle(ivr_hangup()[0])

            asyncio.run(run())
        finally:
            os.umask(old)
        assert [r["call_id"] for r in table(path, "calls")] == ["c-ivr"]
        for made in (
            tmp_path / "a",
            tmp_path / "a" / "b",
            path.parent,
            spool_dir.parent,
            spool_dir,
        ):
            assert stat.S_IMODE(made.stat().st_mode) == 0o750, made
        spool = spool_dir / "db.sqlite3.spool"
        assert stat.S_IMODE(spool.stat().st_mode) == 0o600  # it holds NHS numbers

    def test_spool_space_is_reserved(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"

        async def run() -> None:
            async with await CallStore.open(path, spool=OPTIONS):
                pass

        asyncio.run(run())
        spool = OPTIONS.path_for(path).stat()
        assert spool.st_size == OPTIONS.reserve_bytes
        assert spool.st_blocks * 512 >= OPTIONS.reserve_bytes  # allocated, not a sparse hole

    def test_settings(self, tmp_path: Path) -> None:
        """database.spool_* in config.yaml: defaults, and a relative spool_dir resolved."""
        catalogue = {"cardiology": "Cardiology"}
        defaults = Config.model_validate({"specialties": catalogue}).database
        assert (defaults.spool_dir, defaults.spool_max_events) == (None, 100_000)
        assert defaults.spool_reserve_mib * MIB == SpoolOptions().reserve_bytes
        config = Config.model_validate(
            {"specialties": catalogue, "database": {"spool_dir": "spool", "spool_max_events": 5}},
            context={"base_dir": tmp_path},
        )
        assert config.database.spool_dir == tmp_path / "spool"
        with pytest.raises(ValidationError, match="spool_max_events"):
            Config.model_validate({"specialties": catalogue, "database": {"spool_max_events": 0}})


class TestBusy:
    """Another process holding the write lock past the busy timeout: the record waits too."""

    def test_locked_database_waits_then_writes(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"
        events = ivr_hangup()
        metrics = Metrics("test")

        async def run() -> int:
            async with await CallStore.open(
                path, busy_timeout_ms=50, spool=OPTIONS, observer=metrics
            ) as store:
                await store.handle(events[0])
                other = sqlite3.connect(path, isolation_level=None)
                try:
                    other.execute("BEGIN IMMEDIATE")  # e.g. a long backup or a manual session
                    for event in events[1:]:
                        await store.handle(event)
                    waiting = store.waiting
                    other.execute("COMMIT")
                finally:
                    other.close()
                await wait_for(lambda: store.waiting == 0)
                return waiting

        assert asyncio.run(run()) == len(events) - 1
        assert failures(metrics, "busy") >= 1
        assert records(path) == control(tmp_path, events)


class TestDiskFull:
    """A disk that fills mid-call: the call's records wait, then land complete and correct."""

    def test_without_spool_the_real_error_is_raised(self, disk: Path) -> None:
        path = disk / "calls.db"
        metrics = Metrics("test")

        async def run() -> None:
            async with await CallStore.open(path, observer=metrics) as store:
                for event in connected_call()[:BEFORE_FILL]:
                    await store.handle(event)
                fill(disk)
                with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
                    await store.handle(connected_call()[BEFORE_FILL])

        asyncio.run(run())
        assert failures(metrics, "full") == 1

    def test_filled_mid_call_then_freed(self, disk: Path, tmp_path: Path) -> None:
        path = disk / "calls.db"
        events = connected_call()
        metrics = Metrics("test")
        seen: dict[str, Any] = {}

        async def run() -> None:
            async with await CallStore.open(path, spool=OPTIONS, observer=metrics) as store:
                for event in events[:BEFORE_FILL]:
                    await store.handle(event)
                filler = fill(disk)
                for event in events[BEFORE_FILL:]:
                    await store.handle(event)  # returns: the call goes on
                seen["waiting"] = store.waiting
                seen["gauge"] = sample(metrics, "callrouter_store_spooled_events")
                seen["records"] = records(path)
                seen["spooled"] = len(parse(spool_data(OPTIONS.path_for(path)))[0])
                filler.unlink()
                await wait_for(lambda: store.waiting == 0)
                seen["gauge_after"] = sample(metrics, "callrouter_store_spooled_events")

        asyncio.run(run())
        waiting = len(events) - BEFORE_FILL
        assert seen["waiting"] == seen["gauge"] == seen["spooled"] == waiting
        calls, legs = seen["records"]
        assert [c["specialty"] for c in calls] == ["cardiology"]  # as far as the disk allowed
        assert legs == []
        assert failures(metrics, "full") >= 1
        assert seen["gauge_after"] == 0
        assert records(path) == control(tmp_path, events)
        assert spool_data(OPTIONS.path_for(path)) == b""  # zeroed once written
        assert table(path, "spool_marks") == []
        assert sample(metrics, "callrouter_store_spool_dropped_total") == 0
        assert failures(metrics, "rejected") == 0

    def test_many_calls_while_dd_fills_the_disk(self, disk: Path, tmp_path: Path) -> None:
        """Twenty calls write while dd runs; each waits for the disk to be full half-way."""
        path = disk / "calls.db"
        calls = [connected_call(f"c{n:02d}", T0 + n) for n in range(20)]
        metrics = Metrics("test")

        async def run() -> None:
            async with await CallStore.open(path, spool=OPTIONS, observer=metrics) as store:
                full = asyncio.Event()

                async def one_call(events: list[DomainEvent]) -> None:
                    for i, event in enumerate(events):
                        if i == len(events) // 2:
                            await full.wait()
                        await store.handle(event)

                async def filler() -> None:
                    dd = await asyncio.create_subprocess_exec(
                        "dd",
                        "if=/dev/zero",
                        f"of={disk / 'filler'}",
                        "bs=4k",
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                    await asyncio.wait_for(dd.wait(), 30)
                    full.set()

                async with asyncio.TaskGroup() as group:
                    group.create_task(filler())
                    for events in calls:
                        group.create_task(one_call(events))
                assert store.waiting > 0
                (disk / "filler").unlink()
                await wait_for(lambda: store.waiting == 0)

        asyncio.run(run())
        assert failures(metrics, "full") >= 1
        assert records(path) == control(tmp_path, [e for events in calls for e in events])

    def test_bound_drops_new_records_and_counts_them(self, disk: Path, tmp_path: Path) -> None:
        path = disk / "calls.db"
        events = connected_call()
        metrics = Metrics("test")
        options = replace(OPTIONS, max_events=3)

        async def run() -> None:
            async with await CallStore.open(path, spool=options, observer=metrics) as store:
                for event in events[:BEFORE_FILL]:
                    await store.handle(event)
                filler = fill(disk)
                for event in events[BEFORE_FILL:]:
                    await store.handle(event)
                assert store.waiting == 3
                filler.unlink()
                await wait_for(lambda: store.waiting == 0)

        asyncio.run(run())
        assert sample(metrics, "callrouter_store_spool_dropped_total") == len(events) - 7
        # The oldest waiting records were kept and written; the newest were the ones dropped.
        assert records(path) == control(tmp_path, events[:7])

    def test_close_while_full_keeps_records_for_next_start(
        self, disk: Path, tmp_path: Path
    ) -> None:
        path = disk / "calls.db"
        events = connected_call()

        async def first_run() -> None:
            async with await CallStore.open(path, spool=OPTIONS) as store:
                for event in events:
                    if event is events[BEFORE_FILL]:
                        fill(disk)
                    await store.handle(event)

        async def next_start() -> int:
            async with await CallStore.open(path, spool=OPTIONS) as store:
                return store.waiting

        asyncio.run(first_run())  # closes within its bound, the disk still full
        assert len(parse(spool_data(OPTIONS.path_for(path)))[0]) == len(events) - BEFORE_FILL
        (disk / "filler").unlink()
        assert asyncio.run(next_start()) == 0
        assert records(path) == control(tmp_path, events)


# The child writes half a call, says "ready", waits for the test to fill the disk, writes the
# rest (spooled) reporting how many wait after each, then sleeps until it is killed.
CHILD = """
import asyncio, sys
from callrouter.adapters.store_spool import SpoolOptions
from callrouter.adapters.store_sqlite import CallStore
from tests.adapters.scripted_calls import connected_call

async def main(path, call_id, before, until):
    options = SpoolOptions(reserve_bytes=256 * 1024, retry_min_seconds=60, retry_max_seconds=60)
    store = await CallStore.open(path, spool=options)
    events = connected_call(call_id)
    for event in events[:before]:
        await store.handle(event)
    print("ready", flush=True)
    sys.stdin.readline()
    for event in events[before:until]:
        await store.handle(event)
        print("waiting", store.waiting, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


def kill_nine_while_spooling(disk: Path, call_id: str, until: int) -> tuple[list[int], Path]:
    """Run CHILD on ``disk``: fill the disk after its first records, SIGKILL it once it has
    spooled up to event ``until``; return what it reported waiting, and the filler."""
    path = disk / "calls.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), call_id, str(BEFORE_FILL), str(until)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    reported: list[int] = []
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        lines = (line.split() for line in child.stdout)  # the log goes to stdout too
        assert next(words for words in lines if words[0] == "ready") == ["ready"]
        filler = fill(disk)
        child.stdin.write("go\n")
        child.stdin.flush()
        while len(reported) < until - BEFORE_FILL:
            words = next(lines)
            if words[0] == "waiting":
                reported.append(int(words[1]))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    return reported, filler


class TestRestart:
    """A spool left by a dead process is written at the next open: nothing lost or doubled."""

    def test_kill_nine_while_spooling(self, disk: Path, tmp_path: Path) -> None:
        path = disk / "calls.db"
        events = connected_call()
        reported, filler = kill_nine_while_spooling(disk, "c-connected", len(events))
        assert reported[-1] == len(events) - BEFORE_FILL  # all waited in the spool
        assert table(path, "legs") == []
        filler.unlink()

        metrics = Metrics("test")

        async def reopen() -> int:
            async with await CallStore.open(path, spool=OPTIONS, observer=metrics) as store:
                return store.waiting

        assert asyncio.run(reopen()) == 0
        expected = control(tmp_path, events)
        assert records(path) == expected
        assert failures(metrics, "rejected") == 0  # nothing was applied twice
        assert asyncio.run(reopen()) == 0
        assert records(path) == expected

    @pytest.mark.parametrize("written", [0, 1, 6, 11])
    def test_replay_skips_what_was_already_written(self, tmp_path: Path, written: int) -> None:
        """A crash after some spooled records were committed (with their mark) but before the
        spool was cleared: replay writes exactly the rest."""
        path = tmp_path / "calls.db"
        events = connected_call()
        spooled = events[BEFORE_FILL:]

        async def committed() -> None:
            async with await CallStore.open(path) as store:
                for event in events[: BEFORE_FILL + written]:
                    await store.handle(event)

        asyncio.run(committed())
        entries = write_spool(OPTIONS.path_for(path), spooled)
        if written:
            last = entries[written - 1]
            with sqlite3.connect(path) as db:
                db.execute("INSERT INTO spool_marks VALUES (?, ?)", (last.epoch, last.seq))
        metrics = Metrics("test")

        async def reopen() -> None:
            async with await CallStore.open(path, spool=OPTIONS, observer=metrics):
                pass

        asyncio.run(reopen())
        assert records(path) == control(tmp_path, events)
        assert failures(metrics, "rejected") == 0
        assert table(path, "spool_marks") == []

    def test_start_on_a_full_disk_closes_interrupted_calls_in_order(
        self, disk: Path, tmp_path: Path
    ) -> None:
        """The old process left call A half in the spool; the disk is still full at start-up.
        Closing interrupted calls waits behind A's records, and the new call B behind that."""
        path = disk / "calls.db"
        call_b = abandoned_in_hunt("c-b")
        restart_at = T0 + 5000
        # L1 picked up (event 8), then the engine is killed, the disk still full.
        reported, filler = kill_nine_while_spooling(disk, "c-a", 8)
        assert reported == [1, 2, 3, 4]
        metrics = Metrics("test")
        seen: dict[str, int] = {}

        async def new_process() -> None:
            async with await CallStore.open(path, spool=OPTIONS, observer=metrics) as store:
                seen["after_open"] = store.waiting
                seen["closed"] = await store.close_interrupted(restart_at)
                for event in call_b:
                    await store.handle(event)
                seen["waiting"] = store.waiting
                filler.unlink()
                await wait_for(lambda: store.waiting == 0)

        asyncio.run(new_process())
        assert seen == {"after_open": 4, "closed": 0, "waiting": 4 + 1 + len(call_b)}
        assert failures(metrics, "full") >= 1
        by_id = {c["call_id"]: c for c in table(path, "calls")}
        assert by_id["c-a"]["end_reason"] == "interrupted"
        assert by_id["c-a"]["ended_at"] == restart_at
        legs_a = [leg for leg in table(path, "legs") if leg["call_id"] == "c-a"]
        assert [(leg["leg"], leg["answered_at"]) for leg in legs_a] == [("L1", T0 + 28)]
        expected_b = control(tmp_path, call_b)
        assert [by_id["c-b"]] == expected_b[0]  # after the restart: not interrupted
        assert [leg for leg in table(path, "legs") if leg["call_id"] == "c-b"] == expected_b[1]

    def test_start_when_the_database_cannot_even_be_opened(
        self, disk: Path, tmp_path: Path
    ) -> None:
        """A clean stop removes SQLite's WAL files, and a full disk stops it making them again:
        the store still opens, records wait, and the database is opened once space returns."""
        path = disk / "calls.db"
        events = connected_call()

        async def earlier_run() -> None:
            async with await CallStore.open(path, spool=OPTIONS) as store:
                for event in events[:BEFORE_FILL]:
                    await store.handle(event)

        asyncio.run(earlier_run())
        assert not Path(f"{path}-wal").exists()
        filler = fill(disk)
        metrics = Metrics("test")
        seen: dict[str, Any] = {}

        async def run() -> None:
            async with await CallStore.open(path, spool=OPTIONS, observer=metrics) as store:
                for event in events[BEFORE_FILL:]:
                    await store.handle(event)
                seen["waiting"] = store.waiting
                seen["spooled"] = len(parse(spool_data(OPTIONS.path_for(path)))[0])
                with pytest.raises(sqlite3.OperationalError, match="could not be opened"):
                    await store.purge(T0)
                filler.unlink()
                await wait_for(lambda: store.waiting == 0)

        asyncio.run(run())
        waiting = len(events) - BEFORE_FILL
        assert seen == {"waiting": waiting, "spooled": waiting}  # durable: the earlier reserve
        assert failures(metrics, "io") >= 1
        assert records(path) == control(tmp_path, events)


class TestSpoolFile:
    """The spool file itself: locked to one process, torn tails ignored and cleared."""

    def test_second_process_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "calls.db"

        async def run() -> None:
            async with await CallStore.open(path, spool=OPTIONS):
                with pytest.raises(SpoolInUseError, match="in use"):
                    await CallStore.open(path, spool=OPTIONS)
            async with await CallStore.open(path, spool=OPTIONS):  # released on close
                pass

        asyncio.run(run())

    def test_torn_tail_is_ignored_and_cleared(self, tmp_path: Path) -> None:
        spool_path = tmp_path / "x.spool"
        entries = write_spool(spool_path, ivr_hangup())
        whole = spool_path.read_bytes()
        torn = encode(replace(entries[-1], seq=entries[-1].seq + 1))[:-9]  # no newline
        spool_path.write_bytes(whole + torn)
        spool, found = SpoolFile.open(spool_path, 4 * KIB)
        spool.close()
        assert found == parse(whole)[0]
        assert [(e.seq, e.record.at) for e in found] == [(e.seq, e.record.at) for e in entries]
        assert spool_path.read_bytes()[: len(whole)] == whole
        assert spool_path.read_bytes()[len(whole) :].strip(b"\0") == b""

    def test_damaged_line_ends_the_data(self, tmp_path: Path) -> None:
        spool_path = tmp_path / "x.spool"
        entries = write_spool(spool_path, ivr_hangup())
        lines = spool_path.read_bytes().splitlines(keepends=True)
        damaged = lines[1].replace(b'"at":1717237201.0', b'"at":1717237209.0')
        assert damaged != lines[1]
        lines[1] = damaged  # the checksum no longer matches
        assert [e.seq for e in parse(b"".join(lines))[0]] == [entries[0].seq]

    def test_caller_is_spooled_masked(self, tmp_path: Path) -> None:
        spool_path = tmp_path / "x.spool"
        write_spool(spool_path, connected_call()[:1])
        assert b"07700900123" not in spool_path.read_bytes()
        assert b"********123" in spool_path.read_bytes()
