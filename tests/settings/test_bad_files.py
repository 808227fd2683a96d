"""Files no config should ever be, each refused with ``file:line:col: field: message`` and exit 2,
never a traceback: deep nesting, over-long paths and zone names, bytes that are not UTF-8, control
characters, empty files, directories and other non-files, unreadable and huge files, alias bombs,
tabs, a byte order mark, and a top level that is not a mapping. A few run the real
``callrouter check`` (and ``run``); the rest call the loader."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from callrouter.cli import main
from callrouter.settings.errors import ConfigError, ConfigIssue
from callrouter.settings.ics import MAX_SHIFTS
from callrouter.settings.loader import load_settings
from callrouter.settings.text_file import MAX_FILE_BYTES
from callrouter.settings.yaml_marks import MAX_DEPTH, MAX_VALUES
from callrouter.sim.workload import read_workload
from tests.settings.conftest import REPO, Tree, run_cli

TOO_MANY = f"too many values once aliases are expanded (more than {MAX_VALUES:,})"
TOO_DEEP = f"nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"
NOBODY = 65534


def brief(issue: ConfigIssue, root: Path) -> tuple[str, int | None, int | None, str, str]:
    return (str(issue.path.relative_to(root)), issue.line, issue.col, issue.field, issue.message)


def errors_of(tree: Tree) -> list[tuple[str, int | None, int | None, str, str]]:
    return [brief(issue, tree.root) for issue in tree.issues() if issue.severity == "error"]


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """stderr of a run that exited 2 with no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.rstrip().endswith("configuration not loaded"), result.stderr
    return result.stderr


def append_key(tree: Tree, relative: str, text: str) -> int:
    """Append ``text`` to the file; return the 1-based line it starts on."""
    before = tree.text(relative)
    tree.write(relative, before + text)
    return before.count("\n") + 1


class TestNesting:
    """Nesting is bounded explicitly, at the bracket or key where the bound is crossed."""

    def test_flow_nesting_from_the_cli(self, tree: Tree) -> None:
        line = append_key(tree, "config.yaml", "extra: " + "[" * 200 + "]" * 200 + "\n")
        # The file's mapping is level 1, so the 50th bracket (column 7 + 50) is level 51.
        stderr = refused(tree.check())
        assert f"config.yaml:{line}:{7 + MAX_DEPTH}: {TOO_DEEP}\n" in stderr

    def test_run_refuses_to_start_the_same_way(self, tree: Tree) -> None:
        line = append_key(tree, "config.yaml", "extra: " + "[" * 200 + "]" * 200 + "\n")
        result = run_cli("run", "--config", "config.yaml", cwd=tree.root)
        assert f"config.yaml:{line}:{7 + MAX_DEPTH}: {TOO_DEEP}\n" in refused(result)

    def test_block_nesting_in_a_dialplan(self, tree: Tree) -> None:
        body = "".join(" " * depth + f"k{depth}:\n" for depth in range(300))
        line = append_key(tree, "dialplans/barnet.yaml", body)
        # k0 is a key of the file's mapping (level 1); the mapping that starts at k50 (one line
        # and one column further per level) is level 51.
        assert errors_of(tree) == [
            ("dialplans/barnet.yaml", line + MAX_DEPTH, MAX_DEPTH + 1, "", TOO_DEEP)
        ]

    def test_nesting_built_through_aliases(self, tree: Tree) -> None:
        body = "x0: &x0 [leaf]\n" + "".join(f"x{n}: &x{n} [*x{n - 1}]\n" for n in range(1, 80))
        line = append_key(tree, "rotas/renal.yaml", body)
        deep = [e for e in errors_of(tree) if e[4] == TOO_DEEP + " through aliases"]
        # Once, at x49's list: 50 levels through the chain, 51 under the file's own mapping.
        # (x0..x79 are unknown fields too.)
        at = line + MAX_DEPTH - 1
        col = tree.col("rotas/renal.yaml", at, f"&x{MAX_DEPTH - 1} ")
        assert deep == [("rotas/renal.yaml", at, col, "", TOO_DEEP + " through aliases")]

    def test_deep_workload_file(self, tmp_path: Path) -> None:
        path = tmp_path / "workload.yaml"
        path.write_text("calls: " + "{a: " * 500 + "b" + "}" * 500 + "\n", encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            read_workload(path)
        ((line, col, message),) = [(i.line, i.col, i.message) for i in caught.value.issues]
        assert (line, col, message) == (1, 8 + 4 * (MAX_DEPTH - 1), TOO_DEEP)


class TestLongValues:
    """Paths and zone names the file system or zone database would choke on are refused at the
    value, by the model."""

    def test_long_rotas_path_from_the_cli(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "rotas: rotas ", "rotas: " + "r" * 300 + " ")
        stderr = refused(tree.check())
        assert (
            f"config.yaml:{line}:10: paths.rotas: path part {'r' * 40!r}... is longer than "
            "255 bytes\n" in stderr
        )

    def test_long_path_overall(self, tree: Tree) -> None:
        long_path = "/".join(["d" * 200] * 25)  # every part fits; the whole does not
        line = tree.replace(
            "config.yaml", "prompt_cache: var/prompts", f"prompt_cache: {long_path}"
        )
        assert errors_of(tree) == [
            ("config.yaml", line, 17, "paths.prompt_cache", "path longer than 4095 bytes")
        ]

    def test_nul_in_a_path(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "path: var/callrouter.sqlite3", 'path: "var/a\\0b"')
        assert errors_of(tree) == [
            ("config.yaml", line, 9, "database.path", "a path cannot hold a NUL character")
        ]

    def test_long_time_zone_from_the_cli(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "timezone: Europe/London ", "timezone: " + "z" * 300)
        stderr = refused(tree.check())
        assert (
            f"config.yaml:{line}:11: timezone: not a time zone name: {'z' * 40!r}... "
            "(300 characters) (use an IANA name like 'Europe/London')\n" in stderr
        )

    def test_zone_that_is_a_directory_of_zones(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "timezone: Europe/London ", "timezone: Europe ")
        assert errors_of(tree) == [
            (
                "config.yaml",
                line,
                11,
                "timezone",
                "unknown time zone 'Europe' (use an IANA name like 'Europe/London')",
            )
        ]

    def test_long_calendar_path_in_a_rota(self, tree: Tree) -> None:
        name = "barnet-dermatology-clinic.ics"
        rota = next(p.name for p in (tree.root / "rotas").glob("*.yaml") if name in p.read_text())
        line = tree.replace(f"rotas/{rota}", name, "c" * 300 + ".ics")
        ((path, at, col, field, message),) = errors_of(tree)
        assert (path, at) == (f"rotas/{rota}", line)
        assert field.endswith(".ics.path")
        assert col == tree.col(f"rotas/{rota}", line, "ccc")
        assert message == f"path part {'c' * 40!r}... is longer than 255 bytes"


class TestBadBytes:
    """Bytes that are not UTF-8, and characters YAML refuses, at their own line:col."""

    def test_not_utf8_in_a_rota_from_the_cli(self, tree: Tree) -> None:
        path = tree.root / "rotas" / "renal.yaml"
        text = path.read_bytes()
        at = text.index(b"\n  - id:", 200) + 3  # after "\n  ": the third byte of its line
        path.write_bytes(text[:at] + b"\xff" + text[at:])
        line = text[:at].count(b"\n") + 1
        stderr = refused(tree.check())
        assert (
            f"rotas/renal.yaml:{line}:3: not UTF-8: byte 0xff is not valid UTF-8 "
            "(save the file as UTF-8)\n" in stderr
        )

    def test_column_counts_characters_not_bytes(self, tree: Tree) -> None:
        # "é" is two bytes but one column; the bad byte after "ré" is in column 3.
        (tree.root / "dialplans" / "enfield.yaml").write_bytes(b"# one\nr\xc3\xa9\xe9x: 1\n")
        assert errors_of(tree) == [
            (
                "dialplans/enfield.yaml",
                2,
                3,
                "",
                "not UTF-8: byte 0xe9 is not valid UTF-8 (save the file as UTF-8)",
            )
        ]

    def test_windows_line_endings_count_once(self, tree: Tree) -> None:
        text = tree.text("config.yaml").replace("\n", "\r\n")
        line = tree.line_of("config.yaml", "  workers: 2")
        data = text.encode().replace(b"  workers: 2", b"  workers: \xff2")
        (tree.root / "config.yaml").write_bytes(data)
        assert errors_of(tree) == [
            (
                "config.yaml",
                line,
                12,
                "",
                "not UTF-8: byte 0xff is not valid UTF-8 (save the file as UTF-8)",
            )
        ]

    def test_windows_line_endings_in_yaml_marks(self, tree: Tree) -> None:
        line = tree.line_of("config.yaml", "  workers: 2")
        text = tree.text("config.yaml").replace("  workers: 2", "  workers: 0")
        (tree.root / "config.yaml").write_bytes(text.replace("\n", "\r\n").encode())
        ((path, at, col, field, _),) = errors_of(tree)
        assert (path, at, col, field) == ("config.yaml", line, 12, "sip.workers")

    def test_cut_short_character_at_the_end(self, tree: Tree) -> None:
        text = tree.text("config.yaml")
        (tree.root / "config.yaml").write_bytes(text.encode() + b"\xe2\x82")
        ((path, line, col, _, message),) = errors_of(tree)
        assert (path, line, col) == ("config.yaml", text.count("\n") + 1, 1)
        assert message == "not UTF-8: byte 0xe2 is cut short UTF-8 (save the file as UTF-8)"

    def test_nul_byte(self, tree: Tree) -> None:
        line = tree.replace("rotas/renal.yaml", "# Network team", "# Net\0work team")
        assert errors_of(tree) == [
            ("rotas/renal.yaml", line, 6, "", "a NUL byte is not allowed in a settings file")
        ]

    def test_control_character(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "  listen_port: 5060", "  listen_port: 50\x0760")
        assert errors_of(tree) == [
            (
                "config.yaml",
                line,
                18,
                "",
                "the control character U+0007 is not allowed in a settings file",
            )
        ]

    def test_byte_order_mark_at_the_start_is_accepted(self, tree: Tree) -> None:
        path = tree.root / "config.yaml"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        assert tree.load().config.timezone == "Europe/London"

    def test_columns_after_a_byte_order_mark_are_the_written_ones(self, tree: Tree) -> None:
        path = tree.root / "config.yaml"
        path.write_bytes(b"\xef\xbb\xbfsipp: 1\n" + path.read_bytes())
        errors = errors_of(tree)
        assert errors[0][:4] == ("config.yaml", 1, 1, "sipp")

    def test_byte_order_mark_later_in_the_file(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "  workers: 2", "  workers: \ufeff2")
        assert errors_of(tree) == [
            (
                "config.yaml",
                line,
                12,
                "",
                "a byte order mark (U+FEFF) after the start of the file is not allowed in a "
                "settings file",
            )
        ]

    def test_tab_indentation(self, tree: Tree) -> None:
        line = tree.replace("config.yaml", "  listen_port: 5060", "\tlisten_port: 5060")
        ((path, at, col, _, message),) = errors_of(tree)
        assert (path, at, col) == ("config.yaml", line, 1)
        assert "found character '\\t' that cannot start any token" in message


class TestNotAFile:
    """Empty, directory, device, loop, unreadable and huge files: a position and exit 2."""

    def test_empty_config(self, tree: Tree) -> None:
        tree.write("config.yaml", "")
        assert errors_of(tree) == [("config.yaml", 1, 1, "", "the file is empty")]

    def test_empty_dialplan(self, tree: Tree) -> None:
        tree.write("dialplans/enfield.yaml", "")
        errors = errors_of(tree)
        assert ("dialplans/enfield.yaml", 1, 1, "", "the file is empty") in errors

    def test_directory_given_as_the_config_from_the_cli(self, tree: Tree) -> None:
        result = run_cli("check", "--config", "dialplans", cwd=tree.root)
        assert "dialplans:1:1: is a directory, not a file\n" in refused(result)

    def test_device_given_as_the_config(self) -> None:
        with pytest.raises(ConfigError) as caught:
            load_settings("/dev/zero")
        ((issue),) = caught.value.issues
        assert (issue.line, issue.col) == (1, 1)
        assert issue.message == "is not a regular file (a device, pipe or socket?)"

    def test_fifo_given_as_the_config_is_refused_not_waited_on(self, tmp_path: Path) -> None:
        fifo = tmp_path / "config.yaml"
        os.mkfifo(fifo)
        with pytest.raises(ConfigError) as caught:
            load_settings(fifo)
        assert [(i.line, i.col, i.message) for i in caught.value.issues] == [
            (1, 1, "is not a regular file (a device, pipe or socket?)")
        ]

    def test_symlink_loop(self, tree: Tree) -> None:
        (tree.root / "loop.yaml").symlink_to(tree.root / "loop.yaml")
        result = run_cli("check", "--config", "loop.yaml", cwd=tree.root)
        assert "loop.yaml:1:1: cannot read: Too many levels of symbolic links\n" in refused(result)

    def test_huge_file(self, tree: Tree) -> None:
        line_text = "# " + "x" * 97 + "\n"  # 100 bytes a line
        copies = MAX_FILE_BYTES // len(line_text) + 10
        tree.write("rotas/renal.yaml", tree.text("rotas/renal.yaml") + line_text * copies)
        size = (tree.root / "rotas" / "renal.yaml").stat().st_size
        assert size > MAX_FILE_BYTES
        ((path, line, col, _, message),) = errors_of(tree)
        head = (tree.root / "rotas" / "renal.yaml").read_bytes()[:MAX_FILE_BYTES]
        assert (path, line) == ("rotas/renal.yaml", head.count(b"\n") + 1)
        assert col == len(head) - head.rindex(b"\n")
        assert message == f"larger than {MAX_FILE_BYTES:,} bytes: too big for a settings file"

    def test_alias_bomb(self, tree: Tree) -> None:
        lines = ["lol0: &l0 [a, a, a, a, a, a, a, a, a, a]"]
        lines += [f"lol{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 9)]
        first = append_key(tree, "dialplans/enfield.yaml", "\n".join(lines) + "\n")
        # 10**9 values if expanded: refused before anything is built, where the limit is crossed.
        assert MAX_VALUES < 10**9
        ((path, line, col, field, _),) = [e for e in errors_of(tree) if e[4] == TOO_MANY]
        assert (path, field) == ("dialplans/enfield.yaml", "")
        assert first <= (line or 0) < first + len(lines)
        assert col is not None

    def test_top_level_scalar(self, tree: Tree) -> None:
        tree.write("config.yaml", "just words\n")
        ((path, line, col, _, message),) = errors_of(tree)
        assert (path, line, col) == ("config.yaml", 1, 1)
        assert "valid dictionary" in message

    def test_top_level_list(self, tree: Tree) -> None:
        tree.write("rotas/renal.yaml", "- a\n- b\n")
        errors = [e for e in errors_of(tree) if e[0] == "rotas/renal.yaml"]
        assert errors
        assert errors[0][1:3] == (1, 1)
        assert "valid dictionary" in errors[0][4]


class TestCalendars:
    """A bad ICS calendar is reported at the rota line that names it, with the line:col inside
    the calendar where there is one."""

    ICS = "barnet-dermatology-clinic.ics"
    ROTA = "rotas/dermatology.yaml"

    def only_error(self, tree: Tree) -> str:
        """The message of the one error, checked to sit at the rota's ``ics:`` value."""
        line = tree.line_of(self.ROTA, self.ICS)
        ((path, at, col, field, message),) = errors_of(tree)
        assert (path, at, col) == (self.ROTA, line, tree.col(self.ROTA, line, self.ICS))
        assert field.endswith(".ics")
        return message

    def test_not_utf8(self, tree: Tree) -> None:
        path = tree.root / "rotas" / self.ICS
        text = path.read_bytes()
        at = text.index(b"SUMMARY:") + len(b"SUMMARY:")
        path.write_bytes(text[:at] + b"\xc0" + text[at:])
        line = text[:at].count(b"\n") + 1
        assert self.only_error(tree) == (
            f"{self.ICS}:{line}:9: not UTF-8: byte 0xc0 is not valid UTF-8 (save the file as UTF-8)"
        )

    def test_components_nested_too_deeply(self, tree: Tree) -> None:
        text = tree.text(f"rotas/{self.ICS}")
        line = tree.line_of(f"rotas/{self.ICS}", "END:VCALENDAR") + 9
        nested = "".join(f"BEGIN:X{n}\n" for n in range(500)) + "".join(
            f"END:X{n}\n" for n in reversed(range(500))
        )
        tree.write(f"rotas/{self.ICS}", text.replace("END:VCALENDAR", nested + "END:VCALENDAR"))
        # VCALENDAR is level 1, so BEGIN:X9 (the tenth) crosses the limit of ten.
        assert self.only_error(tree) == (
            f"{self.ICS}:{line}:1: components nested too deeply (more than 10 levels)"
        )

    def test_directory(self, tree: Tree) -> None:
        (tree.root / "rotas" / self.ICS).unlink()
        (tree.root / "rotas" / self.ICS).mkdir()
        assert self.only_error(tree) == f"{self.ICS}:1:1: is a directory, not a file"

    def test_not_a_calendar(self, tree: Tree) -> None:
        tree.write(f"rotas/{self.ICS}", "BEGIN:VCALENDAR\nthis is not\n")
        assert self.only_error(tree).startswith(f"{self.ICS} is not a valid calendar: ")

    def test_rule_repeating_every_second(self, tree: Tree) -> None:
        text = tree.text(f"rotas/{self.ICS}")
        tree.write(f"rotas/{self.ICS}", text.replace("FREQ=WEEKLY;BYDAY=TU", "FREQ=SECONDLY"))
        message = self.only_error(tree)
        # Refused from the rule, before expanding: two years of seconds is about 63 million.
        assert message.startswith(f"{self.ICS}: its rules could give about ")
        assert message.endswith(f"; a rota has at most {MAX_SHIFTS:,}")
        count = int(message.split("about ")[1].split(" shifts")[0].replace(",", ""))
        assert count > 60_000_000

    @pytest.mark.parametrize(
        "rule",
        [
            "FREQ=DAILY;BYHOUR=8,20",  # two handovers a day
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            "FREQ=MONTHLY;BYDAY=1MO,3MO",
            "FREQ=HOURLY;INTERVAL=4",
        ],
    )
    def test_ordinary_rules_are_expanded(self, tree: Tree, rule: str) -> None:
        text = tree.text(f"rotas/{self.ICS}")
        tree.write(f"rotas/{self.ICS}", text.replace("FREQ=WEEKLY;BYDAY=TU", rule))
        settings = tree.load()
        team = next(t for t in settings.rotas.teams.values() for layer in t.layers if layer.ics)
        (source,) = [layer.ics for layer in team.layers if layer.ics]
        assert source.shifts
        assert len(source.shifts) < MAX_SHIFTS


@pytest.fixture
def public_tree() -> Iterator[Path]:
    """A copy of the shipped tree that an unprivileged user can reach (pytest's own tmp
    directories are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="callrouter-cfg-"))
    try:
        root.chmod(0o755)
        shutil.copy(REPO / "config.yaml", root / "config.yaml")
        shutil.copytree(REPO / "dialplans", root / "dialplans")
        shutil.copytree(REPO / "rotas", root / "rotas")
        yield root
    finally:
        shutil.rmtree(root)


def check_as_nobody(config: Path) -> tuple[int, str]:
    """``callrouter check`` (its real entry point) in a forked child that has dropped root, which
    reads every file whatever its mode: (exit status, stderr)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 99
        try:
            os.close(read_end)
            os.dup2(write_end, 2)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            status = main(["check", "--config", str(config)])
            sys.stderr.flush()
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        stderr = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), stderr


def test_unreadable_rota_as_an_unprivileged_user(public_tree: Path) -> None:
    (public_tree / "rotas" / "renal.yaml").chmod(0o000)
    status, stderr = check_as_nobody(public_tree / "config.yaml")
    assert status == 2, stderr
    assert f"{public_tree}/rotas/renal.yaml:1:1: cannot read: Permission denied\n" in stderr
    assert "Traceback" not in stderr
