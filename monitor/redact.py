"""Credential redaction for every message, log line and exception: one place.

A DSN or URL reaches text in many ways: an error that quotes what it was
given, a log line naming an endpoint, a library's exception. Parsing it
first (``urlsplit``) is not enough: the malformed DSNs that most need
quoting in an error are the ones a parser mis-reads (``http://u:PW@:8123``
has no host, so ``urlsplit(...).password`` still works, but
``http://u:p/w@h`` hides the password in the path and ``http://[u:PW@h``
makes ``urlsplit`` raise). So redaction works on the text, by pattern, and
errs towards hiding too much:

- the password of any ``scheme://user:password@`` userinfo, up to the last
  ``@`` of the token;
- the value of any query or fragment parameter whose name carries
  ``pass``, ``pwd``, ``token``, ``secret``, ``key``, ``auth``, ``sig`` or
  ``credential`` (``?password=``, ``&X-Amz-Signature=``, ``#access_token=``);
- ``Authorization: Bearer ...``-like header values and ``password=...``
  pairs in free text.

:func:`redact_url` with ``keep_path=False`` keeps only scheme, host and port,
for URLs whose path is itself a secret (webhook URLs often carry their token there).
:class:`RedactingFilter` applies :func:`redact_text` to log records; the CLI
installs it on the root handlers with :func:`install_log_redaction`.

Examples
--------
>>> redact_text("cannot open 'http://admin:S3cret@:8123/db'")
"cannot open 'http://admin:***@:8123/db'"
>>> redact_text("chdb:///data?user=a&password=S3cret&x=1")
'chdb:///data?user=a&password=***&x=1'
>>> redact_url("https://hooks.example.com/services/T0/B0/S3cret?token=abc", keep_path=False)
'https://hooks.example.com/...'
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

__all__ = ["MASK", "RedactingFilter", "install_log_redaction", "redact_text", "redact_url", "validation_message"]

MASK = "***"

# scheme://user:password@ — the password runs to the last "@" before whitespace or a quote, so "p@ss" and
# "p/w" are hidden whole; a user part never holds "/", so "host:8123/db" is not mistaken for userinfo.
_USERINFO = re.compile(r"(?P<head>(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//[^\s/?#@:'\"<>]*:)(?P<secret>[^\s'\"<>]*)@")
_SECRET_NAME = r"[^\s=&;#?'\"<>]*(?:pass|pwd|token|secret|key|auth|sig|credential|session)[^\s=&;#?'\"<>]*"
_PARAMETER = re.compile(rf"(?P<head>[?&;#](?i:{_SECRET_NAME})=)(?P<secret>[^\s&;#'\"<>]*)")
_HEADER = re.compile(
    r"(?P<head>\b(?i:(?:proxy-)?authorization|x-api-key|api[-_]?key|cookie|set-cookie)\b\s*[:=]\s*"
    r"(?i:(?:bearer|basic|token|digest)\s+)?)(?P<secret>[^\s,;'\"<>]+)")
_PAIR = re.compile(r"(?P<head>(?<![\w?&;#])(?i:password|passwd|pwd|secret|token)\s*[:=]\s*)"
                   r"(?P<secret>[^\s,;&'\"<>]+)")


def _mask(match: re.Match[str]) -> str:
    return match.group("head") + MASK if match.group("secret") else match.group(0)


def redact_text(text: str) -> str:
    """``text`` with every credential this module recognises replaced by ``***``."""
    text = _USERINFO.sub(lambda m: m.group("head") + MASK + "@", text)
    for pattern in (_PARAMETER, _HEADER, _PAIR):
        text = pattern.sub(_mask, text)
    return text


def redact_url(url: str, *, keep_path: bool = True) -> str:
    """``url`` redacted; with ``keep_path=False`` only ``scheme://host:port/...`` (no user, path or query)."""
    if keep_path:
        return redact_text(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # an unparseable URL: say nothing of it beyond its scheme
        return (url.split(":", 1)[0] + "://...") if "://" in url else "..."
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}/..."


def validation_message(exc: Exception) -> str:
    """A settings validation error as text, without the values given (pydantic's ``str`` quotes them).

    Duck-typed on pydantic's ``ValidationError.errors(include_input=...)``, so
    this module does not import pydantic; anything else is :func:`redact_text`.
    """
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            items = errors(include_input=False, include_url=False, include_context=False)
        except TypeError:
            items = None
        if isinstance(items, list):
            parts = [f"{'.'.join(str(p) for p in item.get('loc', ())) or 'settings'}: {item.get('msg', '')}"
                     for item in items if isinstance(item, dict)]
            return redact_text("; ".join(parts))
    return redact_text(str(exc))


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the formatted message and any exception text of each record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: let the handler report it as it would
            return True
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one :class:`RedactingFilter` to every handler of ``logger`` (the root logger by default).

    Handler filters see records propagated from every child logger, libraries'
    included; a logger's own filters would not. Call it after the handlers
    exist (after ``logging.basicConfig``); calling it twice adds nothing.
    """
    logger = logger or logging.getLogger()
    installed = RedactingFilter()
    for handler in logger.handlers:
        existing = [f for f in handler.filters if isinstance(f, RedactingFilter)]
        if existing:
            installed = existing[0]
        else:
            handler.addFilter(installed)
    return installed
