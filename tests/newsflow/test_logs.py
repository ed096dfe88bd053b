"""JSON log lines: the fixed fields, the call site's context, tracebacks; text stays as is."""

from __future__ import annotations

import io
import json
import logging
import sys

from newsflow.logs import JsonFormatter, use_format


def logger_writing_to(stream: io.StringIO, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers = [logging.StreamHandler(stream)]
    logger.handlers[0].setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_a_json_line_has_time_level_logger_message_and_the_context() -> None:
    stream = io.StringIO()
    logger = logger_writing_to(stream, "newsflow.test.json")
    use_format("json", logger)

    logger.warning(
        "dead letter from %s", "entities", extra={"stage": "entities", "article_id": "a1"}
    )
    logger.info("no context here", extra={"article_id": None})

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "dead letter from entities"
    assert (first["level"], first["logger"]) == ("WARNING", "newsflow.test.json")
    assert (first["stage"], first["article_id"]) == ("entities", "a1")
    assert first["time"].endswith("+00:00")
    assert set(second) == {"time", "level", "logger", "message"}  # unknown context is left out


def test_an_exception_travels_inside_the_line() -> None:
    record = logging.LogRecord("newsflow", logging.ERROR, __file__, 1, "failed", (), None)
    try:
        raise ValueError("bad value")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: bad value" in json.loads(line)["exception"]


def test_text_keeps_the_format_and_json_keeps_the_filters() -> None:
    stream = io.StringIO()
    logger = logger_writing_to(stream, "newsflow.test.text")
    logger.handlers[0].addFilter(lambda record: "secret" not in record.getMessage())

    use_format("text", logger)
    logger.info("plain")
    use_format("json", logger)
    logger.info("a secret")
    logger.info("structured")

    assert stream.getvalue().splitlines()[0] == "INFO plain"
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()[1:]] == [
        "structured"
    ]
