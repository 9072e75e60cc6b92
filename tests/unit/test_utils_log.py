"""kombu.log: loggers, LogMixin, safe formatting, setup_logging."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from kombu.log import (
    LOG_LEVELS,
    Log,
    LogMixin,
    get_logger,
    get_loglevel,
    safeify_format,
    setup_logging,
)
from kombu.utils.functional import lazy


class BadRepr:
    def __repr__(self) -> str:
        raise ValueError("no repr")

    def __str__(self) -> str:
        return "bad-str"


def test_get_logger_adds_null_handler() -> None:
    logger = get_logger("kombu.tests.fresh")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    assert get_logger(logger) is logger
    assert len(get_logger("kombu.tests.fresh").handlers) == 1


def test_get_loglevel() -> None:
    assert get_loglevel("INFO") == logging.INFO
    assert get_loglevel("debug") == logging.DEBUG
    assert get_loglevel("FATAL") == logging.CRITICAL
    assert get_loglevel(15) == 15
    with pytest.raises(KeyError, match="Unknown log level 'LOUD'"):
        get_loglevel("LOUD")
    assert LOG_LEVELS[logging.ERROR] == "ERROR"


def test_safeify_format() -> None:
    args = ["a", BadRepr(), 3]
    out = list(safeify_format("%s %r %d", args))
    assert out[0] == "a"
    assert out[1] == "bad-str"
    assert out[2] == 3
    assert list(safeify_format("100%% %r", [BadRepr()])) == ["bad-str"]
    assert list(safeify_format("%(a)5.2f %-3s", [1.5, b"x"])) == [1.5, "x"]
    assert list(safeify_format("%s", ["a", "extra"])) == ["a", "extra"]


class Component(LogMixin):
    pass


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    logger = logging.getLogger("Component")
    captured: list[logging.LogRecord] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    handler = Handler()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    yield captured
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_mixin_annotates_and_formats_safely(records: list[logging.LogRecord]) -> None:
    c = Component()
    c.info("hello %s and %r", "x", BadRepr())
    assert records[-1].getMessage() == "Component - hello x and bad-str"
    assert records[-1].levelno == logging.INFO
    c.debug(1, b"b")
    assert records[-1].getMessage() == "Component - 1 b"
    c.warn("w")
    assert records[-1].levelno == logging.WARNING


def test_mixin_evaluates_lazy_arguments(records: list[logging.LogRecord]) -> None:
    Component().info("value %s", lazy(lambda: 42))
    assert records[-1].getMessage() == "Component - value 42"


def test_error_and_critical_include_traceback(records: list[logging.LogRecord]) -> None:
    c = Component()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        c.error("failed")
        c.critical("really failed")
    assert records[-2].exc_info is not None and records[-2].exc_info[0] is RuntimeError
    assert records[-1].levelno == logging.CRITICAL


def test_nothing_formatted_when_disabled(records: list[logging.LogRecord]) -> None:
    logging.getLogger("Component").setLevel(logging.ERROR)
    evaluated: list[int] = []
    Component().info("x %s", lazy(lambda: evaluated.append(1)))
    assert evaluated == []
    assert records == []
    assert not Component().is_enabled_for("INFO")
    assert Component().is_enabled_for(logging.ERROR)


def test_log_with_name_and_logger() -> None:
    log = Log("custom.name")
    assert log.logger_name == "custom.name"
    assert log.logger is logging.getLogger("custom.name")
    given = logging.getLogger("given")
    assert Log("x", logger=given).logger is given


def test_setup_logging_to_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    stream = io.StringIO()
    assert setup_logging("INFO", stream) is root
    assert root.level == logging.INFO
    logging.getLogger("kombu.tests.setup").info("visible")
    assert "visible" in stream.getvalue()
    root.handlers[0].close()


def test_setup_logging_to_file(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    path = f"{tmp_path}/kombu.log"
    setup_logging(logging.WARNING, path)
    logging.getLogger("kombu.tests.setup").warning("to file")
    root.handlers[0].close()
    with open(path) as fh:
        assert "to file" in fh.read()


def test_setup_logging_keeps_existing_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    existing = logging.NullHandler()
    monkeypatch.setattr(root, "handlers", [existing])
    setup_logging("DEBUG", io.StringIO())
    assert root.handlers == [existing]
