"""The config.yaml model: defaults, path resolution and the checks between its keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from callrouter.settings.config import RETENTION_DAYS, Config, MqttConfig, SipConfig
from callrouter.settings.loader import load_config
from tests.settings.conftest import REPO

CATALOGUE = {"cardiology": "Cardiology"}


def errors_of(data: dict[str, object]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        Config.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()]


class TestDefaults:
    """Only the catalogue is required; everything else defaults to a loopback node."""

    def test_minimal(self) -> None:
        config = Config.model_validate({"specialties": CATALOGUE})
        assert config.sip.listen_host == "127.0.0.1"
        assert config.sip.listen_port == 5060
        assert config.metrics.listen_port == 9464
        assert config.database.retention_days == RETENTION_DAYS == 2922
        assert config.mqtt is None
        assert config.timezone == "Europe/London"
        assert config.logging.level == "INFO"
        assert config.logging.sip_message_dumps is False
        assert config.sip.trunk_allows("127.0.0.1")
        assert not config.sip.trunk_allows("192.0.2.1")

    def test_catalogue_required(self) -> None:
        assert errors_of({}) == [(("specialties",), "Field required")]

    def test_empty_section_means_defaults(self) -> None:
        config = Config.model_validate({"sip": None, "specialties": CATALOGUE})
        assert config.sip == SipConfig()

    def test_empty_mqtt_means_off(self) -> None:
        assert Config.model_validate({"mqtt": None, "specialties": CATALOGUE}).mqtt is None

    def test_shipped_config_loads(self) -> None:
        config = load_config(REPO / "config.yaml")
        assert len(config.specialties) == 18
        assert config.specialties["mental-health"] == "Mental health"
        assert config.specialty_name("elderly-care") == "Care of older people"
        assert config.mqtt is None


class TestPaths:
    """Relative paths are resolved against the config file's directory."""

    def test_resolved_with_base_dir(self, tmp_path: Path) -> None:
        config = Config.model_validate(
            {"specialties": CATALOGUE, "paths": {"rotas": "elsewhere/rotas"}},
            context={"base_dir": tmp_path},
        )
        assert config.paths.rotas == tmp_path / "elsewhere" / "rotas"
        assert config.paths.dialplans == tmp_path / "dialplans"  # defaults resolve too
        assert config.database.path == tmp_path / "var" / "callrouter.sqlite3"

    def test_absolute_kept(self, tmp_path: Path) -> None:
        config = Config.model_validate(
            {"specialties": CATALOGUE, "database": {"path": "/srv/cr/calls.sqlite3"}},
            context={"base_dir": tmp_path},
        )
        assert config.database.path == Path("/srv/cr/calls.sqlite3")


class TestChecks:
    """Bad values are refused with the field that is wrong."""

    def test_port_range(self) -> None:
        assert errors_of({"specialties": CATALOGUE, "sip": {"listen_port": "0"}})[0][0] == (
            "sip",
            "listen_port",
        )

    def test_rtp_range_ordered(self) -> None:
        ((loc, message),) = errors_of(
            {"specialties": CATALOGUE, "sip": {"rtp_port_min": "5000", "rtp_port_max": "4000"}}
        )
        assert loc == ("sip",)
        assert "must be above rtp_port_min" in message

    def test_sip_port_inside_rtp_range(self) -> None:
        ((_, message),) = errors_of({"specialties": CATALOGUE, "sip": {"listen_port": "40010"}})
        assert "inside the RTP port range" in message

    def test_metrics_port_clash(self) -> None:
        ((_, message),) = errors_of({"specialties": CATALOGUE, "metrics": {"listen_port": "5060"}})
        assert "is the SIP port too" in message

    def test_bad_network(self) -> None:
        assert errors_of({"specialties": CATALOGUE, "sip": {"trunk_allow": ["10.0.0.1/8"]}})

    def test_bad_listen_address(self) -> None:
        ((loc, _),) = errors_of({"specialties": CATALOGUE, "sip": {"listen_host": "localhost"}})
        assert loc == ("sip", "listen_host")

    def test_unknown_timezone(self) -> None:
        ((loc, message),) = errors_of({"specialties": CATALOGUE, "timezone": "Europe/Londn"})
        assert loc == ("timezone",)
        assert "unknown time zone 'Europe/Londn'" in message

    def test_mqtt_password_needs_username(self) -> None:
        with pytest.raises(ValidationError, match="a password needs a username"):
            MqttConfig.model_validate({"host": "127.0.0.1", "password": "x"})

    def test_mqtt_topic_without_wildcards(self) -> None:
        with pytest.raises(ValidationError):
            MqttConfig.model_validate({"host": "127.0.0.1", "topic_prefix": "a/#"})

    def test_bad_specialty_slug(self) -> None:
        ((loc, _),) = errors_of({"specialties": {"Mental Health": "Mental health"}})
        assert loc == ("specialties", "Mental Health", "[key]")

    def test_log_level_any_case(self) -> None:
        config = Config.model_validate({"specialties": CATALOGUE, "logging": {"level": "debug"}})
        assert config.logging.level == "DEBUG"
