"""Logging: structlog on top of the stdlib, one stream, phone numbers masked in every line.

- JSON lines when the stream is not a terminal, the console renderer when it is.
- ``call_id`` comes from ``structlog.contextvars``: bind it once at the top of a call's task
  (``bound_call_id``) and every line that task logs carries it.
- Stdlib records (libraries, and pjsip lines through ``log_pjsip``) go through the same
  processors, so they are masked and rendered exactly like our own lines.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from callrouter.adapters.masking import mask_all_digits, mask_numbers_in

# Values under these keys are phone numbers whatever their shape ("07700 900123", 900123).
NUMBER_KEYS: Final = frozenset(
    {"caller", "callee", "from", "to", "number", "phone", "msisdn", "cli", "caller_id", "dialled"}
)
# Identifiers we must be able to grep for: a uuid's hex often holds a run of 7 digits.
UNMASKED_KEYS: Final = frozenset({"call_id", "timestamp", "level", "logger"})

PJSIP_LOGGER: Final = "pjsip"
_HANDLER_MARK: Final = "_callrouter_handler"
# Chatty libraries held at WARNING unless asked for by name.
_QUIET_LIBRARIES: Final = ("aiosqlite", "asyncio")


def _mask_value(value: object, *, whole: bool) -> object:
    if isinstance(value, str):
        return mask_all_digits(value) if whole else mask_numbers_in(value)
    if isinstance(value, int) and not isinstance(value, bool) and whole:
        return mask_all_digits(str(value))
    if isinstance(value, Mapping):
        return {key: _mask_item(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(item, whole=whole) for item in value]
    return value


def _mask_item(key: str, value: object) -> object:
    if key in UNMASKED_KEYS:
        return value
    return _mask_value(value, whole=key.lower() in NUMBER_KEYS)


def mask_phone_numbers(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: mask 7+ digit runs in every string, and every digit under number-ish keys."""
    return {key: _mask_item(key, value) for key, value in event_dict.items()}


def _shared_processors() -> list[Processor]:
    """Processors both structlog and stdlib records pass through, masking last."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Tracebacks become text before masking, so numbers in them are masked too.
        structlog.processors.format_exc_info,
        mask_phone_numbers,
    ]


def configure_logging(
    level: str = "info", json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Send all logging to ``stream`` (stderr): JSON unless it is a terminal (or ``json`` says)."""
    target = sys.stderr if stream is None else stream
    as_json = not target.isatty() if json is None else json
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=target.isatty())
    )
    shared = _shared_processors()
    handler = logging.StreamHandler(target)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    # Replace only our own handler, so configuring twice (tests, reload) does not double lines.
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        msg = f"unknown log level {level!r}"
        raise ValueError(msg)
    root.setLevel(numeric)
    logging.captureWarnings(True)  # warnings.warn() lines join the same stream
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A bound logger; ``name`` becomes the ``logger`` field."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial)
    return logger


@contextmanager
def bound_call_id(call_id: str) -> Iterator[None]:
    """Bind ``call_id`` for everything logged in this context (one call's task)."""
    with structlog.contextvars.bound_contextvars(call_id=call_id):
        yield


# pjsip levels: 0 fatal, 1 error, 2 warning, 3 info, 4 debug, 5-6 trace.
_PJ_LEVELS: Final = (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO)


def log_pjsip(pj_level: int, message: str) -> None:
    """Forward one pjsip log line (from a pjsua2 ``LogWriter``) into the common stream."""
    level = _PJ_LEVELS[pj_level] if 0 <= pj_level < len(_PJ_LEVELS) else logging.DEBUG
    logging.getLogger(PJSIP_LOGGER).log(level, "%s", message.rstrip("\r\n"))
