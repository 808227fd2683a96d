"""Logging: JSON shape, phone-number masking everywhere, call_id binding, the pjsip bridge."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from callrouter.logsetup import bound_call_id, configure_logging, get_logger, log_pjsip


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A non-terminal stream configured as the log target; logging reset afterwards."""
    out = io.StringIO()
    configure_logging("debug", stream=out)
    yield out
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_callrouter_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


class TestJsonShape:
    """A non-terminal stream gets one JSON object per line with the standard keys."""

    def test_keys_and_timestamp(self, stream: io.StringIO) -> None:
        get_logger("callrouter.test").info("hunt started", tier="local", legs=3)
        (line,) = lines(stream)
        assert line["event"] == "hunt started"
        assert line["level"] == "info"
        assert line["logger"] == "callrouter.test"
        assert line["tier"] == "local"
        assert line["legs"] == 3
        assert line["timestamp"].endswith("Z")
        assert line["timestamp"][10] == "T"

    def test_level_filter(self) -> None:
        out = io.StringIO()
        try:
            configure_logging("warning", stream=out)
            log = get_logger("x")
            log.info("quiet")
            log.warning("loud")
            logging.getLogger("lib").info("quiet too")
            assert [line["event"] for line in lines(out)] == ["loud"]
        finally:
            configure_logging("debug", json=True, stream=io.StringIO())
            structlog.reset_defaults()

    def test_reconfiguring_does_not_duplicate_lines(self, stream: io.StringIO) -> None:
        configure_logging("debug", stream=stream)
        configure_logging("debug", stream=stream)
        get_logger().info("once")
        assert len(lines(stream)) == 1

    def test_unknown_level_is_refused(self, stream: io.StringIO) -> None:
        with pytest.raises(ValueError, match="loud"):
            configure_logging("loud", stream=stream)

    def test_console_renderer_when_asked(self) -> None:
        out = io.StringIO()
        try:
            configure_logging("info", json=False, stream=out)
            get_logger().info("dialling", caller="07700900123")
        finally:
            structlog.reset_defaults()
        text = out.getvalue()
        assert "dialling" in text
        assert "********123" in text
        assert "07700900123" not in text
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)


class TestMasking:
    """Phone numbers never reach the stream: in text, in fields, in tracebacks."""

    def test_number_in_event_text(self, stream: io.StringIO) -> None:
        get_logger().info("INVITE from +447700900123 to 01632960001 on port 5060")
        (line,) = lines(stream)
        assert line["event"] == "INVITE from **********123 to ********001 on port 5060"

    def test_number_keys_mask_any_shape(self, stream: io.StringIO) -> None:
        get_logger().info("offered", caller="07700 900123", number=900123, to="sip:999@x")
        (line,) = lines(stream)
        assert line["caller"] == "***** ***123"
        assert line["number"] == "***123"
        assert line["to"] == "sip:999@x"  # three digits: nothing to hide

    def test_long_runs_in_any_field_and_nested(self, stream: io.StringIO) -> None:
        get_logger().info("x", detail={"uri": "sip:07700900123@10.0.0.1"}, seen=["01632960001"])
        (line,) = lines(stream)
        assert line["detail"] == {"uri": "sip:********123@10.0.0.1"}
        assert line["seen"] == ["********001"]

    def test_short_numbers_are_left_alone(self, stream: io.StringIO) -> None:
        get_logger().info("got 486 after 123456 ms", status=486)
        (line,) = lines(stream)
        assert line["event"] == "got 486 after 123456 ms"
        assert line["status"] == 486

    def test_traceback_is_masked(self, stream: io.StringIO) -> None:
        try:
            raise RuntimeError("no route to 07700900123")
        except RuntimeError:
            get_logger().exception("dial failed")
        (line,) = lines(stream)
        assert "RuntimeError: no route to ********123" in line["exception"]
        assert "07700900123" not in stream.getvalue()


class TestCallId:
    """call_id bound in a task's context is on every line that task logs, unmasked."""

    def test_bound_and_unbound(self, stream: io.StringIO) -> None:
        log = get_logger()
        with bound_call_id("c-1234567890"):
            log.info("inside")
        log.info("outside")
        inside, outside = lines(stream)
        assert inside["call_id"] == "c-1234567890"
        assert "call_id" not in outside

    def test_each_task_carries_its_own(self, stream: io.StringIO) -> None:
        async def call(call_id: str) -> None:
            with bound_call_id(call_id):
                await asyncio.sleep(0)
                get_logger().info("step one")
                await asyncio.sleep(0)
                logging.getLogger("lib").warning("step two")

        async def main() -> None:
            async with asyncio.TaskGroup() as group:
                for call_id in ("a", "b", "c"):
                    group.create_task(call(call_id))

        asyncio.run(main())
        got = sorted((line["call_id"], line["event"]) for line in lines(stream))
        assert got == [(call_id, event) for call_id in "abc" for event in ("step one", "step two")]


class TestStdlibBridge:
    """Stdlib records, pjsip lines among them, come out in the same JSON stream."""

    def test_pjsip_line(self, stream: io.StringIO) -> None:
        log_pjsip(3, "12:00:00.000 pjsua_call.c  Call 0: INVITE sip:07700900123@127.0.0.1\n")
        log_pjsip(1, "transport error")
        log_pjsip(5, "trace detail")
        info, error, trace = lines(stream)
        assert info["logger"] == "pjsip"
        assert info["level"] == "info"
        assert info["event"].endswith("INVITE sip:********123@127.0.0.1")
        assert error["level"] == "error"
        assert trace["level"] == "debug"

    def test_library_record_with_args_and_extra(self, stream: io.StringIO) -> None:
        logging.getLogger("somelib").warning("calling %s", "07700900123", extra={"leg": "L1"})
        (line,) = lines(stream)
        assert line["event"] == "calling ********123"
        assert line["logger"] == "somelib"
        assert line["level"] == "warning"
        assert line["leg"] == "L1"
