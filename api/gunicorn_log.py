"""gunicorn's own error and access log without whole tokens: gunicorn's ``logger_class``
(named in api/gunicorn_conf.py)."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from videodrop.logs import RedactTokens


class RedactingLogger(Logger):
    """gunicorn's logger, whose lines (its start-up lines, a request it refuses, an error it
    catches, the access log when one is asked for) have token-shaped runs cut to a prefix:
    such a line may quote the request line, whose path holds a token (``/stream/{token}/``)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactTokens) for f in log.filters):
                log.addFilter(RedactTokens())
