"""ClickHouse storage.

- :mod:`~monitor.storage.tables`: every table described once, as data;
- :mod:`~monitor.storage.schema`: the migrations and DDL derived from it;
- :mod:`~monitor.storage.store`: the client (:class:`~monitor.storage.store.Store`);
- :mod:`~monitor.storage.sink`: the batching writer (:class:`~monitor.storage.sink.ClickHouseSink`);
- :mod:`~monitor.storage.rows`: dead letters, service samples and the retry policy;
- :mod:`~monitor.storage.dsn`: DSN checks and redaction.

Nothing is imported here, so reading the schema or checking a DSN does not
load clickhouse-connect.
"""
