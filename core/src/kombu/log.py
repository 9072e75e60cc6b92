"""Logging helpers.

Loggers returned by :func:`get_logger` get a :class:`logging.NullHandler`
so that a library logger without configuration stays silent, as kombu's do.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from kombu.utils.encoding import safe_repr, safe_str
from kombu.utils.functional import maybe_evaluate
from kombu.utils.objects import cached_property

__all__ = (
    "LOG_LEVELS",
    "Log",
    "LogMixin",
    "get_logger",
    "get_loglevel",
    "safeify_format",
    "setup_logging",
)

#: Level names to numbers and numbers to names.
LOG_LEVELS: dict[Any, Any] = dict(logging._nameToLevel)
LOG_LEVELS.update(logging._levelToName)
LOG_LEVELS.setdefault("FATAL", logging.FATAL)

#: Set the ``DISABLE_TRACEBACKS`` environment variable to drop ``exc_info``
#: from :class:`LogMixin` records.
DISABLE_TRACEBACKS = os.environ.get("DISABLE_TRACEBACKS")


def get_logger(logger: str | logging.Logger) -> logging.Logger:
    """Return the logger named ``logger`` (or ``logger`` itself), with a
    :class:`logging.NullHandler` if it has no handler."""
    if isinstance(logger, str):
        logger = logging.getLogger(logger)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def get_loglevel(level: str | int) -> int:
    """Return the numeric level for a level name (any case); numbers are returned
    unchanged.  An unknown name raises :exc:`KeyError`, as in kombu."""
    if isinstance(level, str):
        try:
            return int(LOG_LEVELS[level.upper()])
        except KeyError:
            names = ", ".join(sorted(k for k in LOG_LEVELS if isinstance(k, str)))
            raise KeyError(f"Unknown log level {level!r}: use one of {names}") from None
    return level


_DIRECTIVE = re.compile(
    r"%(?:\([^)]*\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?([a-zA-Z%])"
)


def naive_format_parts(fmt: str) -> Iterator[str]:
    """Yield the conversion character of each ``%`` directive of ``fmt`` that
    takes an argument (``%%`` takes none and is skipped)."""
    for match in _DIRECTIVE.finditer(fmt):
        if match.group(1) != "%":
            yield match.group(1)


def safeify_format(
    fmt: str, args: Sequence[Any], filters: Mapping[str, Callable[[Any], str]] | None = None
) -> Iterator[Any]:
    """Yield ``args`` with ``%s`` arguments passed through :func:`safe_str`
    and ``%r`` ones through :func:`safe_repr`.

    Unlike kombu's, an escaped ``%%`` does not shift the arguments.
    """
    filters = filters or {"s": safe_str, "r": safe_repr}
    conversions = naive_format_parts(fmt)
    for arg in args:
        filt = filters.get(next(conversions, ""))
        yield filt(arg) if filt else arg


class LogMixin:
    """Add ``debug``/``info``/``warn``/``error``/``critical`` methods to a class.

    Messages are prefixed with :attr:`logger_name`, and arguments are
    rendered with :func:`safe_str`/:func:`safe_repr` so a failing ``repr``
    cannot break logging.  Nothing is formatted when the level is disabled.
    """

    def debug(self, *args: Any, **kwargs: Any) -> None:
        return self.log(logging.DEBUG, *args, **kwargs)

    def info(self, *args: Any, **kwargs: Any) -> None:
        return self.log(logging.INFO, *args, **kwargs)

    def warn(self, *args: Any, **kwargs: Any) -> None:
        return self.log(logging.WARNING, *args, **kwargs)

    def error(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        return self.log(logging.ERROR, *args, **kwargs)

    def critical(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        return self.log(logging.CRITICAL, *args, **kwargs)

    def annotate(self, text: str) -> str:
        return f"{self.logger_name} - {text}"

    def log(self, severity: int, *args: Any, **kwargs: Any) -> None:
        if DISABLE_TRACEBACKS:
            kwargs.pop("exc_info", None)
        logger = self.logger
        if not logger.isEnabledFor(severity):
            return
        if len(args) > 1 and isinstance(args[0], str):
            expand = [maybe_evaluate(arg) for arg in args[1:]]
            logger.log(severity, self.annotate(args[0].replace("%r", "%s")),
                       *safeify_format(args[0], expand), **kwargs)
        else:
            logger.log(severity, self.annotate(" ".join(map(safe_str, args))), **kwargs)

    def get_logger(self) -> logging.Logger:
        return get_logger(self.logger_name)

    def is_enabled_for(self, level: str | int) -> bool:
        return self.logger.isEnabledFor(self.get_loglevel(level))

    def get_loglevel(self, level: str | int) -> int:
        return get_loglevel(level)

    @cached_property
    def logger(self) -> logging.Logger:
        return self.get_logger()

    @property
    def logger_name(self) -> str:
        return self.__class__.__name__


class Log(LogMixin):
    """A :class:`LogMixin` for a given name (and optionally a given logger)."""

    def __init__(self, name: str, logger: logging.Logger | None = None) -> None:
        self._logger_name = name
        self._logger = logger

    def get_logger(self) -> logging.Logger:
        if self._logger:
            return self._logger
        return super().get_logger()

    @property
    def logger_name(self) -> str:
        return self._logger_name


def setup_logging(loglevel: str | int | None = None, logfile: Any = None) -> logging.Logger:
    """Log to ``logfile`` (a path or a stream; default stderr) at ``loglevel``
    (default ``ERROR``), unless the root logger already has handlers."""
    logger = logging.getLogger()
    level = get_loglevel(loglevel or "ERROR")
    target: Any = logfile if logfile else sys.__stderr__
    if not logger.handlers:
        handler: logging.Handler
        if hasattr(target, "write"):
            handler = logging.StreamHandler(target)
        else:
            from logging.handlers import WatchedFileHandler

            handler = WatchedFileHandler(target)
        logger.addHandler(handler)
        logger.setLevel(level)
    return logger
