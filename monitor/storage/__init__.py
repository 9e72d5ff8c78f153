"""ClickHouse storage: the schema (``schema``), a client factory and the batching sink (``clickhouse``).

Nothing is imported here, so that ``monitor.storage.dsn`` (which settings use)
does not load clickhouse-connect.
"""
