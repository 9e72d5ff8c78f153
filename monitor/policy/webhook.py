"""An optional webhook notifier: a signed JSON POST, retried with backoff.

Each request carries::

    Content-Type: application/json
    X-Driftwatch-Timestamp: <epoch seconds>
    X-Driftwatch-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the secret>

The receiver recomputes the HMAC over the timestamp and the raw body, compares
it in constant time, and refuses old timestamps to stop replays: the scheme
GitHub and Stripe use for their webhooks. 5xx, 429 and connection errors are
retried with exponential backoff; other 4xx are not (the request itself is
wrong). A notifier never raises into the pipeline: after the last try it logs
and returns ``False``.

Examples
--------
>>> signature = sign(b"secret", 1700000000, b'{"a": 1}')
>>> signature.startswith("sha256="), verify(b"secret", 1700000000, b'{"a": 1}', signature)
(True, True)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.redact import redact_text, redact_url

logger = logging.getLogger(__name__)

__all__ = ["WebhookNotifier", "sign", "verify"]

SIGNATURE_HEADER = "X-Driftwatch-Signature"
TIMESTAMP_HEADER = "X-Driftwatch-Timestamp"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: bytes, timestamp: int, body: bytes, signature: str) -> bool:
    """Constant-time check of a received signature."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookNotifier:
    """POST JSON payloads to one URL, signed, with retries.

    Parameters
    ----------
    url
        ``http(s)://`` endpoint.
    secret
        HMAC key shared with the receiver.
    retries
        Extra attempts after the first.
    backoff_s
        First wait between attempts; doubles each time.
    timeout_s
        Per-request timeout.
    """

    def __init__(self, url: str, secret: str | bytes, *, retries: int = 3, backoff_s: float = 0.5,
                 timeout_s: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  # an unparseable port raises here
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"webhook URL must be http(s)://host/...; got {redact_url(url, keep_path=False)!r}")
        if not secret:
            raise ConfigError("webhook secret must be non-empty (it signs every request)")
        if retries < 0 or backoff_s < 0 or timeout_s <= 0:
            raise ConfigError(f"webhook retries/backoff must be >= 0 and timeout > 0; "
                              f"got {retries!r}, {backoff_s!r}, {timeout_s!r}")
        self.url = url
        self._shown = redact_url(url, keep_path=False)  # the path and query may hold the receiver's token
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._sleep = sleep
        self.sent = 0
        self.failed = 0

    def send(self, payload: dict[str, Any]) -> bool:
        """POST one payload; ``True`` once the receiver answered 2xx."""
        body = json.dumps(payload, sort_keys=True, default=str).encode()
        wait = self.backoff_s
        for attempt in range(self.retries + 1):
            timestamp = int(time.time())
            request = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json", "User-Agent": "driftwatch",
                TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(self._secret, timestamp, body)})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # scheme checked
                    response.read()
                self.sent += 1
                return True
            except urllib.error.HTTPError as exc:
                retryable = exc.code >= 500 or exc.code == 429
                reason = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                retryable, reason = True, redact_text(str(getattr(exc, "reason", exc)))
            if not retryable or attempt == self.retries:
                logger.warning("webhook gave up url=%s attempts=%d reason=%s", self._shown, attempt + 1, reason)
                self.failed += 1
                return False
            logger.debug("webhook retry url=%s attempt=%d reason=%s wait_s=%.2f", self._shown, attempt + 1, reason,
                         wait)
            self._sleep(wait)
            wait *= 2
        return False  # pragma: no cover  # the loop always returns
