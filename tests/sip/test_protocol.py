"""The engine↔worker protocol: every message round-trips; bad lines raise ProtocolError."""

from __future__ import annotations

import dataclasses

import pytest

from callrouter.sip import protocol as p
from callrouter.sip.worker_config import WorkerConfig, parse_argv

EXAMPLES: list[p.Message] = [
    p.Answer(leg="w0-in-1"),
    p.Reject(leg="w0-in-1", status=503, retry_after=30, reason="Busy — try later"),
    p.Reject(leg="w0-in-1", status=404),
    p.Play(leg="L1", files=("/a.wav", "/b.wav"), loop=True),
    p.Play(leg="L1", files=()),
    p.StopPlay(leg="L1"),
    p.Dial(leg="L1", uri="sip:c@127.0.0.1:5080", caller_display='Dr "A"', caller_user="0300"),
    p.Hangup(leg="L1", status=480),
    p.Bridge(a="w0-in-1", b="L1"),
    p.Bridge(a="w0-in-1", b="L1", record="/var/rec/incoming/c1.wav"),
    p.Recorded(leg="w0-in-1", path="/var/rec/incoming/c1.wav", seconds=263.48),
    p.Recorded(leg="w0-in-1", path="/x.wav", seconds=0.0, error="Not found"),
    p.Ping(token=7),
    p.Shutdown(),
    p.Ready(worker_id="w0", sip_host="127.0.0.1", sip_port=5070, slots=4),
    p.Incoming(
        leg="w0-in-1",
        from_user="0123",
        from_display="Dr Ünal",
        to_user="0800",
        source_host="127.0.0.1",
        source_port=5061,
        sip_call_id="abc@h",
    ),
    p.Ringing(leg="L1", status=183),
    p.Answered(leg="L1"),
    p.Failed(leg="L1", status=486, reason="Busy Here"),
    p.HungUp(leg="L1", status=200),
    p.Digit(leg="L1", digit="#", method="info"),
    p.PlayDone(leg="L1"),
    p.MediaTimeout(leg="L1"),
    p.LegClosed(leg="L1"),
    p.Slots(free=3),
    p.Refused(status=486, from_user="0123", to_user="0800", source_host="127.0.0.1"),
    p.Pong(token=7),
    p.Log(level=1, message="line\nwith newline"),
    p.CommandError(command="Play", leg="L1", message="no such leg"),
    p.Teardown(
        leg="L1", host="127.0.0.1", port=5070, messages=("CANCEL sip:x SIP/2.0\r\n",), inbound=False
    ),
    p.WorkerDied(worker_id="w0", legs=("L1", "w0-in-1"), exit_code=None),
]


class TestRoundTrip:
    """encode then decode gives back an equal message, one line each."""

    @pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
    def test_round_trip(self, message: p.Message) -> None:
        line = p.encode(message)
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1
        assert p.decode(line) == message

    def test_every_message_type_has_an_example(self) -> None:
        covered = {type(m) for m in EXAMPLES}
        assert covered == set(p.COMMAND_TYPES) | set(p.EVENT_TYPES)

    def test_defaults_may_be_omitted(self) -> None:
        assert p.decode('{"type":"Hangup","leg":"L1"}') == p.Hangup(leg="L1", status=0)

    def test_whole_seconds_decode_as_float(self) -> None:
        line = '{"type":"Recorded","leg":"L1","path":"/x.wav","seconds":3}'
        decoded = p.decode(line)
        assert isinstance(decoded, p.Recorded)
        assert isinstance(decoded.seconds, float)
        for bad in ('"3"', "true", "NaN", "Infinity"):
            with pytest.raises(p.ProtocolError, match="seconds"):
                p.decode(line.replace(":3}", f":{bad}}}"))

    def test_direction_checks(self) -> None:
        assert p.decode_command(p.encode(p.Answer(leg="x"))) == p.Answer(leg="x")
        with pytest.raises(p.ProtocolError, match="expected a command"):
            p.decode_command(p.encode(p.Answered(leg="x")))
        with pytest.raises(p.ProtocolError, match="expected an event"):
            p.decode_event(p.encode(p.Answer(leg="x")))


class TestGarbage:
    """Malformed input is refused with a message that says what is wrong."""

    @pytest.mark.parametrize(
        ("line", "match"),
        [
            (b"not json", "not JSON"),
            (b"\xff\xfe", "not JSON"),
            (b"[1, 2]", "not a JSON object"),
            (b'{"leg": "x"}', "unknown message type None"),
            (b'{"type": "Explode"}', "unknown message type 'Explode'"),
            (b'{"type": "Answer"}', "missing field 'leg'"),
            (b'{"type": "Answer", "leg": "x", "extra": 1}', "unknown field"),
            (b'{"type": "Answer", "leg": 5}', "Answer.leg"),
            (b'{"type": "Reject", "leg": "x", "status": true}', "Reject.status"),
            (b'{"type": "Reject", "leg": "x", "status": 503, "retry_after": "30"}', "retry_after"),
            (b'{"type": "Play", "leg": "x", "files": "a.wav"}', "Play.files"),
            (b'{"type": "Play", "leg": "x", "files": [1]}', "Play.files"),
            (b'{"type": "Digit", "leg": "x", "digit": "1", "method": "smoke"}', "Digit.method"),
        ],
    )
    def test_refused(self, line: bytes, match: str) -> None:
        with pytest.raises(p.ProtocolError, match=match):
            p.decode(line)

    def test_encode_refuses_foreign_objects(self) -> None:
        with pytest.raises(p.ProtocolError):
            p.encode(object())  # type: ignore[arg-type]


class TestWorkerConfig:
    """The pool's argv for a worker parses back to the same settings."""

    def test_argv_round_trip(self) -> None:
        config = WorkerConfig(
            worker_id="w3.2",
            listen_host="127.0.0.1",
            listen_port=5070,
            public_host="192.0.2.10",
            rtp_port_min=20000,
            rtp_port_max=20099,
            media_timeout=12.5,
            log_level=4,
            sip_trace=True,
            allow=("127.0.0.0/8", "2001:db8::/32"),
        )
        assert parse_argv(config.argv()) == config

    def test_allow_list(self) -> None:
        """Only the listed networks may start calls; an empty list lets anyone in."""
        config = WorkerConfig("w0", "127.0.0.1", 5070, "127.0.0.1", 20000, 20099)
        listed = dataclasses.replace(config, allow=("192.0.2.0/24", "2001:db8::/32"))
        assert config.allows("203.0.113.9")
        assert listed.allows("192.0.2.200")
        assert listed.allows("[2001:db8::1]")
        assert not listed.allows("192.0.3.1")
        assert not listed.allows("not-an-address")

    def test_bad_allowed_network_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"192\.0\.2\.300"):
            WorkerConfig("w0", "127.0.0.1", 5070, "127.0.0.1", 20000, 20099, allow=("192.0.2.300",))

    def test_bad_port_range_is_refused(self) -> None:
        with pytest.raises(SystemExit):
            parse_argv(
                [
                    "--listen",
                    "127.0.0.1:5070",
                    "--public",
                    "127.0.0.1",
                    "--rtp-port-min",
                    "30000",
                    "--rtp-port-max",
                    "20000",
                ]
            )
