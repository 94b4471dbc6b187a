"""Log format and context fields (config.logs), and the log-once rules of config.metrics."""

import asyncio
import io
import json
import logging
import threading

import pytest
from prometheus_client import REGISTRY
from pythonjsonlogger.json import JsonFormatter

from config import metrics
from config.logs import ContextFilter, PlainFormatter, log_bind, log_fields, logging_config


def _logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def _json_formatter() -> logging.Formatter:
    spec = dict(logging_config(fmt="json", level="INFO")["formatters"]["json"])
    assert spec.pop("()") == "pythonjsonlogger.json.JsonFormatter"
    return JsonFormatter(**spec)


def test_json_format_is_one_object_per_line_with_bound_and_explicit_fields():
    logger, stream = _logger(_json_formatter())

    async def socket():
        log_bind(conn_id="c1", user_id=7, room="雑談")
        logger.info("socket refused", extra={"code": "forbidden", "close_code": 4403})
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            logger.exception("fault", extra={"seq": 12})

    asyncio.run(socket())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "socket refused" and first["level"] == "INFO" and "time" in first
    assert (first["conn_id"], first["user_id"], first["room"]) == ("c1", 7, "雑談")
    assert (first["code"], first["close_code"]) == ("forbidden", 4403)
    assert second["seq"] == 12 and "boom" in second["exc_info"] and second["conn_id"] == "c1"


def test_a_task_started_by_a_socket_does_not_log_as_that_socket_but_its_threads_do():
    logger, stream = _logger(_json_formatter())

    async def socket():
        log_bind(conn_id="owner")

        async def room_fanout():
            logger.info("from a child task")

        await asyncio.create_task(room_fanout())
        thread = threading.Thread(target=lambda: logger.info("from a thread"))
        await asyncio.to_thread(logger.info, "from to_thread")
        thread.start()
        thread.join()
        logger.info("from the socket")

    asyncio.run(socket())
    records = {r["message"]: r for r in map(json.loads, stream.getvalue().splitlines())}
    assert "conn_id" not in records["from a child task"]
    assert records["from to_thread"]["conn_id"] == "owner"  # runs on the socket's behalf
    assert "conn_id" not in records["from a thread"]  # a plain thread copies no context
    assert records["from the socket"]["conn_id"] == "owner"


def test_plain_format_keeps_the_line_and_appends_the_fields():
    logger, stream = _logger(PlainFormatter("%(levelname)s %(message)s"))

    async def socket():
        log_bind(conn_id="c2", room="lobby")
        logger.warning("broadcast failed", extra={"seq": 3})

    asyncio.run(socket())
    assert stream.getvalue() == "WARNING broadcast failed [conn_id=c2 room=lobby seq=3]\n"


def test_an_unknown_log_format_is_refused_with_a_sentence():
    with pytest.raises(ValueError, match="LOG_FORMAT must be 'plain' or 'json'"):
        logging_config(fmt="xml", level="INFO")


def test_rate_limited_refusals_are_all_counted_but_logged_once_per_window(caplog):
    before = REGISTRY.get_sample_value("chat_rate_limited_total") or 0.0

    async def socket():
        log_bind(conn_id="flood")
        for _ in range(50):
            metrics.frame_refused(code="rate_limited")
        metrics.frame_refused(code="invalid_json")
        return dict(log_fields())

    with caplog.at_level(logging.INFO, logger="chat.ops"):
        fields = asyncio.run(socket())
    refused = [r for r in caplog.records if r.getMessage().startswith("frame refused")]
    assert [r.code for r in refused] == ["rate_limited", "invalid_json"]
    assert REGISTRY.get_sample_value("chat_rate_limited_total") - before == 50
    # The window's state rides along with the binding but is not a log field.
    assert all(not hasattr(r, "_rate_limited_logged") for r in refused) and "_rate_limited_logged" in fields
