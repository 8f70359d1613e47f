"""Logging set-up: JSON lines when not on a terminal, rich console lines when on one; always
on stderr, so that a command's stdout holds only its output (one JSON document with
``--json``). Libraries that keep a handler of their own (Optuna) are routed through it too."""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from driftd.config import LogSettings

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_enc = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON."""
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _enc.encode(out).decode() if _safe(out) else str(out)


def _safe(obj: dict[str, Any]) -> bool:
    try:
        _enc.encode(obj)
    except TypeError:
        return False
    return True


def configure(settings: LogSettings) -> None:
    """Install one handler on the root logger according to the settings."""
    install(settings.format, settings.level)


def install(fmt: str, level: str) -> None:
    """Install one handler on the root logger: JSON lines (``fmt`` ``json``, or ``auto`` off a
    terminal) or rich console lines, at ``level``; needs no configuration loaded."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler: logging.Handler
    if use_json:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=True)
    # On the handler too: records a library's logger propagates (Optuna's INFO) obey it.
    handler.setLevel(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


def adopt_library_logs() -> None:
    """Route Optuna's records through the root handler (stderr, JSON lines off a terminal, at
    the configured level) instead of the plain stderr handler it installs for itself. Called
    by the commands that tune, before they do; it imports Optuna."""
    import optuna.logging

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    # The root's level decides, not a verbosity set earlier in the process (set_verbosity).
    logging.getLogger("optuna").setLevel(logging.NOTSET)
