"""Read the whole configuration tree once: ``config.yaml``, every ``dialplans/*.yaml`` and every
``rotas/*.yaml``. Every error in every file is collected and raised together as one
``ConfigError``; nothing starts on a bad config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from callrouter.core.directory import normalise_number
from callrouter.settings.config import Config, PathsConfig
from callrouter.settings.crosscheck import Inputs, crosscheck, rota_issues
from callrouter.settings.dialplan import Dialplan
from callrouter.settings.errors import ConfigError, ConfigIssue
from callrouter.settings.ics import read_calendars
from callrouter.settings.rota import RotaFile, Rotas
from callrouter.settings.source import SourceFile, read_document, read_model, validate
from callrouter.settings.yaml_marks import YamlDocument, locate, position_for

YAML_SUFFIXES = (".yaml", ".yml")
DEFAULT_ZONE = "Europe/London"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service runs on, validated and cross-checked. Immutable."""

    config_path: Path
    base_dir: Path  # the config file's directory; relative paths were resolved against it
    config: Config
    dialplans: Mapping[str, Dialplan]  # by area
    rotas: Rotas
    sources: tuple[SourceFile[Any], ...]  # every file read, in order, for summaries
    warnings: tuple[ConfigIssue, ...]

    def dialplan_for(self, called: str) -> Dialplan | None:
        """The dialplan serving the called number, in any of its written forms."""
        wanted = normalise_number(called)
        for dialplan in self.dialplans.values():
            if any(normalise_number(number) == wanted for number in dialplan.numbers):
                return dialplan
        return None


def load_config(config_path: str | Path) -> Config:
    """Only ``config.yaml`` (for commands that need no dialplans or rotas)."""
    path = Path(config_path)
    source, issues = read_model(path, Config, _context(path))
    if source is None:
        raise ConfigError(issues)
    return source.model


def load_settings(config_path: str | Path) -> Settings:
    """Load and check the tree rooted at ``config_path``; raise ``ConfigError`` listing every
    problem (warnings included) when any error is found."""
    path = Path(config_path)
    context = _context(path)
    issues: list[ConfigIssue] = []

    document, found = read_document(path)
    issues += found
    config: SourceFile[Config] | None = None
    paths: PathsConfig | None = None
    if document is not None:
        config, found = validate(path, document, Config, context)
        issues += found
        paths = config.model.paths if config else _paths_alone(document, context)
    if document is None or paths is None:
        raise ConfigError(issues)  # without paths, no other file can be found

    dialplan_paths, found = _yaml_files(path, document, paths.dialplans, "dialplans")
    issues += found
    rota_paths, found = _yaml_files(path, document, paths.rotas, "rotas")
    issues += found

    dialplans = _read_all(dialplan_paths, Dialplan, context, issues)
    rota_files = _read_all(rota_paths, RotaFile, context, issues)
    rotas_ok = len(rota_files) == len(rota_paths)
    zone = config.model.zone if config else ZoneInfo(DEFAULT_ZONE)
    rota_files = [_with_calendars(source, zone, issues) for source in rota_files]
    inputs = Inputs(config, dialplans, rota_files if rotas_ok else None)
    issues += crosscheck(inputs)

    # The rota checks need merged rotas: only when every rota file is sound (ids unique across
    # files, calendars read), so a broken calendar is not reported twice.
    merged: Rotas | None = None
    rota_set = set(rota_paths)
    if rotas_ok and not _has_errors([i for i in issues if i.path in rota_set]):
        timezone = config.model.timezone if config else DEFAULT_ZONE
        merged = Rotas.merge([source.model for source in rota_files], timezone=timezone)
        issues += rota_issues(rota_files, merged)

    if _has_errors(issues) or config is None or merged is None:
        raise ConfigError(issues, [path, *dialplan_paths, *rota_paths])
    return Settings(
        config_path=path,
        base_dir=context["base_dir"],
        config=config.model,
        dialplans=MappingProxyType({source.model.area: source.model for source in dialplans}),
        rotas=merged,
        sources=(config, *dialplans, *rota_files),
        warnings=tuple(issue for issue in issues if issue.severity == "warning"),
    )


def _with_calendars(
    source: SourceFile[RotaFile], zone: ZoneInfo, issues: list[ConfigIssue]
) -> SourceFile[RotaFile]:
    """The rota file with its ICS layers read (paths relative to the rota file)."""
    model, problems = read_calendars(source.model, source.path.parent, zone)
    issues += [source.issue(loc, message) for loc, message in problems]
    return replace(source, model=model)


def _context(config_path: Path) -> dict[str, Any]:
    try:
        return {"base_dir": config_path.resolve().parent}
    except (OSError, RuntimeError):  # a symlink loop: the read reports it, at the file
        return {"base_dir": config_path.absolute().parent}


def _has_errors(issues: Sequence[ConfigIssue]) -> bool:
    return any(issue.severity == "error" for issue in issues)


def _paths_alone(document: YamlDocument, context: dict[str, Any]) -> PathsConfig | None:
    """The ``paths`` section of a config that failed elsewhere, so the other files can still be
    checked in the same run (its own errors are already reported)."""
    data = document.data if isinstance(document.data, dict) else {}
    try:
        return PathsConfig.model_validate(data.get("paths") or {}, context=context)
    except ValidationError:
        return None


def _yaml_files(
    config_path: Path, document: YamlDocument, directory: Path, key: str
) -> tuple[list[Path], list[ConfigIssue]]:
    if not directory.is_dir():
        where = _config_position(document, ("paths", key))
        message = f"not a directory: {directory}"
        return [], [ConfigIssue(config_path, *where, f"paths.{key}", message)]
    try:
        files = sorted(
            p
            for p in directory.iterdir()
            if p.suffix in YAML_SUFFIXES and p.is_file() and not p.name.startswith(".")
        )
    except OSError as error:
        where = _config_position(document, ("paths", key))
        message = f"cannot list {directory}: {error.strerror or error}"
        return [], [ConfigIssue(config_path, *where, f"paths.{key}", message)]
    if not files:
        where = _config_position(document, ("paths", key))
        message = f"no *.yaml files in {directory}"
        return [], [ConfigIssue(config_path, *where, f"paths.{key}", message)]
    return files, []


def _config_position(document: YamlDocument, loc: tuple[str, ...]) -> tuple[int, int]:
    if document.root is None:
        return 1, 1
    position = position_for(locate(document.root, loc))
    return position.line, position.col


def _read_all(
    paths: Sequence[Path], model: type[M], context: dict[str, Any], issues: list[ConfigIssue]
) -> list[SourceFile[M]]:
    sources = []
    for path in paths:
        source, found = read_model(path, model, context)
        issues += found
        if source is not None:
            sources.append(source)
    return sources
