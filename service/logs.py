"""Structured logs: one JSON object per line on stderr.

Call `event("name", key=value, ...)`. Prompt text is never passed here unless the `log_prompts`
setting is on (the callers check it); everything else is sizes, counts, timings and ids.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import urllib.parse
from typing import Any

LOGGER_NAME = "promptpress.service"
log = logging.getLogger(LOGGER_NAME)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if fields:
            data["event"] = record.getMessage()
            data.update(fields)
        else:
            data["message"] = record.getMessage()
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(level: str = "info") -> None:
    """Send promptpress's service logs to stderr as JSON lines (idempotent)."""
    logger = logging.getLogger("promptpress")
    logger.setLevel(level.upper())
    if not any(getattr(h, "_promptpress", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JSONFormatter())
        handler._promptpress = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False


def event(name: str, level: int = logging.INFO, /, **fields: Any) -> None:
    if log.isEnabledFor(level):
        log.log(level, name, extra={"fields": fields})


def redact_url(url: str) -> str:
    """`url` without its userinfo (``http://user:pw@host/v1`` -> ``http://***@host/v1``): what
    health, logs and messages may show of a URL."""
    split = urllib.parse.urlsplit(url)
    if "@" not in split.netloc:
        return url
    return urllib.parse.urlunsplit(split._replace(netloc="***@" + split.netloc.rpartition("@")[2]))
