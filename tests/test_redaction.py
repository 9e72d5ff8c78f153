"""Credentials never reach a message, a log line or an exception: DSNs and URLs of every shape, malformed too."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from dashboards.publish import publish
from monitor.errors import ConfigError, DriftwatchError
from monitor.policy.webhook import WebhookNotifier
from monitor.redact import (
    MASK,
    RedactingFilter,
    install_log_redaction,
    redact_text,
    redact_url,
    validation_message,
)
from monitor.storage.dsn import redact, validate_dsn

SECRET = "Zq9-S3cr3t"

# (shape, text holding SECRET): well-formed, malformed and foreign DSNs and URLs.
SHAPES = {
    "http-userinfo": f"http://admin:{SECRET}@db.example.com:8123/prod",
    "https-no-port": f"https://admin:{SECRET}@db.example.com/prod",
    "empty-host": f"http://user:{SECRET}@:8123/db",
    "no-user": f"http://:{SECRET}@db:8123/db",
    "at-in-password": f"http://user:p@{SECRET}@db:8123/db",
    "slash-in-password": f"http://user:{SECRET}/x@db:8123/db",
    "bad-ipv6": f"http://user:{SECRET}@[::1:8123/db",
    "query-password": f"http://db:8123/?user=default&password={SECRET}",
    "query-password-empty-host": f"http://:8123/?password={SECRET}",
    "chdb-query": f"chdb:///var/lib/dw?password={SECRET}&x=1",
    "mysql-scheme": f"mysql://root:{SECRET}@127.0.0.1:3306/x",
    "clickhouse-native": f"clickhouse+native://u:{SECRET}@h:9000/db",
    "scheme-less": f"//u:{SECRET}@h:9000/db",
    "token-query": f"https://hooks.example.com/in?token={SECRET}",
    "api-key-fragment": f"https://hooks.example.com/in#api_key={SECRET}",
    "signed-url": f"https://bucket.s3.amazonaws.com/o?X-Amz-Credential=a&X-Amz-Signature={SECRET}",
    "bearer-header": f"Authorization: Bearer {SECRET}",
    "basic-header": f"proxy-authorization=Basic {SECRET}",
    "password-pair": f"connect failed (password={SECRET}, host=db)",
}


@pytest.mark.parametrize("shape", SHAPES)
def test_redact_text_hides_the_secret(shape: str) -> None:
    text = SHAPES[shape]
    redacted = redact_text(f"error: cannot use {text!r} today")
    assert SECRET not in redacted and MASK in redacted
    assert redact_text(redacted) == redacted  # idempotent: redacting twice changes nothing


@pytest.mark.parametrize("shape", SHAPES)
def test_store_dsn_redaction_and_errors_hide_the_secret(shape: str) -> None:
    text = SHAPES[shape]
    assert SECRET not in redact(text)
    try:
        validate_dsn(text)
    except ConfigError as exc:
        assert SECRET not in str(exc) and SECRET not in repr(exc.args)


@pytest.mark.parametrize("dsn", [SHAPES["empty-host"], SHAPES["mysql-scheme"], SHAPES["bad-ipv6"],
                                 SHAPES["query-password-empty-host"], f"ftp://u:{SECRET}@h/"])
def test_malformed_dsns_are_refused_without_their_password(dsn: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_dsn(dsn)
    assert SECRET not in str(caught.value)


def test_redaction_keeps_what_an_operator_needs() -> None:
    assert redact_text("http://admin:pw@db.example.com:8123/prod") == "http://admin:***@db.example.com:8123/prod"
    assert redact_text("http://db.example.com:8123/prod?database=x") == "http://db.example.com:8123/prod?database=x"
    assert redact_text("chdb:///var/lib/driftwatch") == "chdb:///var/lib/driftwatch"
    assert redact_text("webhook secret must be non-empty") == "webhook secret must be non-empty"
    assert redact_url(f"https://u:{SECRET}@hooks.example.com:8443/T/{SECRET}?t=1", keep_path=False) == \
        "https://hooks.example.com:8443/..."


WEBHOOKS = {
    "userinfo": f"http://hook:{SECRET}@127.0.0.1:9/alerts",
    "token-in-query": f"http://127.0.0.1:9/alerts?token={SECRET}",
    "token-in-path": f"http://127.0.0.1:9/services/T000/B000/{SECRET}",
    "all-three": f"http://u:{SECRET}@127.0.0.1:9/hooks/{SECRET}?sig={SECRET}",
}


@pytest.mark.parametrize("shape", WEBHOOKS)
def test_webhook_give_up_and_retry_logs_hide_the_credentials(caplog: pytest.LogCaptureFixture, shape: str) -> None:
    notifier = WebhookNotifier(WEBHOOKS[shape], "signing-key", retries=1, backoff_s=0, timeout_s=2,
                               sleep=lambda _: None)
    with caplog.at_level(logging.DEBUG, logger="monitor.policy.webhook"):
        assert notifier.send({"alert": "x"}) is False  # port 9 (discard) refuses: connection error, retried
    assert "gave up" in caplog.text and "127.0.0.1:9" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize("url", [f"ftp://u:{SECRET}@h/x", f"http://u:{SECRET}@/x", f"http://u:{SECRET}@[::1/x",
                                 f"http://u:{SECRET}@h:port/x"])
def test_bad_webhook_urls_are_refused_without_their_credentials(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        WebhookNotifier(url, "k")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("shape", ["http-userinfo", "empty-host", "query-password", "bearer-header",
                                   "at-in-password"])
def test_the_log_filter_redacts_messages_arguments_and_tracebacks(shape: str) -> None:
    text = SHAPES[shape]
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(f"test.redaction.{shape}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        install_log_redaction(logger)
        install_log_redaction(logger)
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        logger.warning("store unreachable dsn=%s", text)
        logger.warning(f"inline {text}")
        try:
            raise RuntimeError(f"driver said: {text}")
        except RuntimeError:
            logger.exception("insert failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert output.count("WARNING") == 2 and "RuntimeError: driver said" in output
    assert SECRET not in output


@pytest.mark.parametrize("url", [f"http://admin:{SECRET}@127.0.0.1:9", f"http://127.0.0.1:9/?auth_token={SECRET}",
                                 f"ftp://admin:{SECRET}@grafana.example.com"])
def test_grafana_publish_errors_hide_the_credentials(url: str) -> None:
    with pytest.raises(DriftwatchError) as caught:
        publish(url, "glsa_token", [], [], timeout_s=2)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("shape", ["empty-host", "slash-in-password", "query-password-empty-host", "mysql-scheme",
                                   "bad-ipv6"])
def test_settings_validation_messages_leave_the_given_value_out(shape: str) -> None:
    class StoreSettings(BaseModel):
        store: str
        port: int = 0

        @field_validator("store")
        @classmethod
        def _check(cls, value: str) -> str:  # as monitor.settings does
            try:
                return validate_dsn(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from exc

    text = SHAPES[shape]
    try:
        StoreSettings(store=text, port="x")  # type: ignore[arg-type]
    except ValidationError as exc:
        assert SECRET in str(exc)  # what pydantic says by itself
        message = validation_message(exc)
    else:
        pytest.fail("no validation error")
    assert SECRET not in message and message.startswith("store: ") and "port: " in message
    assert validation_message(RuntimeError(text)) == redact_text(text)


@pytest.mark.parametrize(("name", "value"), [
    ("DRIFTWATCH_STORE", "http://u:S3cretPW@:8123/db"),
    ("DRIFTWATCH_STORE", "ftp://u:S3cretPW@h:8123/db"),
    ("DRIFTWATCH_STORE", "http://u:S3cretPW@h:notaport/db"),
    ("DRIFTWATCH_STORE", "https://u:S3cretPW@/db?password=S3cretPW"),
])
def test_settings_errors_never_echo_a_secret(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    from monitor.errors import ConfigError
    from monitor.settings import load_settings

    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "S3cretPW" not in str(caught.value)
    assert caught.value.__suppress_context__  # pydantic's own text, which quotes the value, is not chained
