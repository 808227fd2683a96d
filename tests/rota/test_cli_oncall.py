"""`callrouter oncall` as a real subprocess on the shipped configuration (and on copies of it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "callrouter", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def oncall_json(*args: str) -> dict[str, Any]:
    done = run("oncall", "--json", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def tree(tmp_path: Path, dialplans: tuple[str, ...] = ("barnet.yaml", "enfield.yaml")) -> Path:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(REPO / "rotas", tmp_path / "rotas")
    (tmp_path / "dialplans").mkdir()
    for name in dialplans:
        shutil.copy(REPO / "dialplans" / name, tmp_path / "dialplans" / name)
    return tmp_path


class TestText:
    """The text answer: tiers, members in order, ring time, strategy, and why."""

    def test_override_and_calendar_day(self) -> None:
        done = run("oncall", "--specialty", "dermatology", "--area", "barnet",
                   "--at", "2026-03-03T09:00")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "dermatology in barnet at Tue 2026-03-03 09:00 GMT (Europe/London)"
        assert "strategy adaptive, ring 18 s each, 2 loop(s)" in lines[1]
        assert lines[2] == "tier 1: local (team barnet-dermatology)"
        assert "[m-derm-barnet-1]" in lines[3]
        assert lines[3].endswith("<- override 2026-03-02 cover for m-derm-barnet-3: annual leave")
        assert "     layer tuesday-clinic: applies, 1 event(s) now" in lines
        assert "tier 2: ncn (team ncn-dermatology)" in lines
        assert not any("m-derm-barnet-3]" in line for line in lines)


class TestJson:
    """The same answer as JSON, exact at handoffs and across DST."""

    def test_plan_shape(self) -> None:
        report = oncall_json("--specialty", "cardiology", "--area", "enfield",
                             "--at", "2026-03-04T10:00")
        assert report["at"] == "2026-03-04T10:00:00+00:00"
        assert report["line_open"] is True
        assert report["bank_holiday"] is None
        assert (report["strategy"], report["ring_seconds"]) == ("adaptive", 18.0)
        assert [(t["tier"], t["name"], t["team"]) for t in report["tiers"]] == [
            (1, "local", "enfield-cardiology"),
            (2, "ncn", "ncn-cardiology"),
        ]
        local = report["tiers"][0]["members"]
        assert local[0]["why"] == "layer weekday-days (primary)"
        assert local[1]["why"] == "layer weekday-days (backup 1)"
        assert local[0]["uri"] == f"sip:{local[0]['member_id']}@127.0.0.1:5070"

    def test_daily_handoff_on_the_first_bst_morning(self) -> None:
        def local_ids(at: str) -> list[str]:
            report = oncall_json("--specialty", "renal", "--area", "enfield", "--at", at)
            return [m["member_id"] for m in report["tiers"][0]["members"]]

        assert local_ids("2026-03-30T07:59") == []  # before the window opens
        monday = local_ids("2026-03-30T08:00")
        tuesday_early = local_ids("2026-03-31T07:59")
        tuesday = local_ids("2026-03-31T08:00")
        assert monday
        assert tuesday
        assert tuesday_early == []
        assert monday[0] != tuesday[0]
        # 07:00Z on 30 March is 08:00 BST: the same instant as the local time above.
        assert local_ids("2026-03-30T07:00Z") == monday

    def test_bank_holiday(self) -> None:
        report = oncall_json("--specialty", "cardiology", "--area", "barnet",
                             "--at", "2026-05-04T10:00")
        assert report["bank_holiday"] == "May Day"
        assert report["line_open"] is False
        assert report["tiers"][0]["members"] == []
        assert report["tiers"][0]["layers"] == [
            {"name": "weekday-days", "applies": False, "note": "not on bank holidays (May Day)"}
        ]
        whys = [m["why"] for m in report["tiers"][1]["members"]]
        assert whys == ["layer bank-holidays (primary)", "layer bank-holidays (backup 1)"]

    def test_default_is_now(self) -> None:
        report = oncall_json("--specialty", "ent", "--area", "barnet")
        assert report["timezone"] == "Europe/London"
        assert len(report["tiers"]) == 2


class TestErrors:
    """Bad arguments are one clear line and exit status 2."""

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            (("--specialty", "ent"), "there are 2 areas (barnet, enfield): give --area"),
            (("--specialty", "ent", "--area", "camden"), "no dialplan for area 'camden'"),
            (("--specialty", "podiatry", "--area", "barnet"), "has no specialty 'podiatry'"),
            (("--specialty", "ent", "--area", "barnet", "--at", "teatime"), "not an ISO-8601"),
        ],
    )
    def test_usage(self, args: tuple[str, ...], words: str) -> None:
        done = run("oncall", *args)
        assert done.returncode == 2
        assert words in done.stderr
        assert done.stdout == ""

    def test_specialty_is_required(self) -> None:
        done = run("oncall")
        assert done.returncode == 2
        assert "--specialty" in done.stderr


class TestConfigTrees:
    """On copies of the shipped tree: one area needs no --area; rota mistakes stop the load."""

    def test_single_area_is_the_default(self, tmp_path: Path) -> None:
        root = tree(tmp_path, ("barnet.yaml",))
        done = run("oncall", "--config", str(root / "config.yaml"), "--specialty", "renal",
                   "--at", "2026-03-04T10:00", "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["area"] == "barnet"

    def test_dst_gap_handoff_is_reported_at_its_line(self, tmp_path: Path) -> None:
        root = tree(tmp_path)
        path = root / "rotas" / "renal.yaml"
        text = path.read_text()
        old = '{start: "2026-01-05 08:00", turn: daily, handoff: "08:00"}'
        new = '{start: "2026-01-05 01:30", turn: daily, handoff: "01:30"}'
        line = text.splitlines().index(f"        rotation: {old}") + 1
        path.write_text(text.replace(old, new, 1))
        done = run("check", "--config", str(root / "config.yaml"), cwd=tmp_path)
        assert done.returncode == 2
        col = len('        rotation: {start: "2026-01-05 01:30", turn: daily, handoff: ') + 1
        assert (
            f"rotas/renal.yaml:{line}:{col}: teams[1].layers[0].rotation.handoff: "
            "layer weekday-days: the handoff at 01:30 does not exist on Sun 2026-03-29"
        ) in done.stderr

    def test_missing_calendar_is_reported(self, tmp_path: Path) -> None:
        root = tree(tmp_path)
        (root / "rotas" / "barnet-dermatology-clinic.ics").unlink()
        done = run("oncall", "--config", str(root / "config.yaml"), "--specialty", "renal",
                   "--area", "barnet", cwd=tmp_path)
        assert done.returncode == 2
        assert "teams[0].layers[0].ics: calendar not found" in done.stderr
