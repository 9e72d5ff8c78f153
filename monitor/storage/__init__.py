"""ClickHouse storage: the schema, a client factory and the batching sink."""

from monitor.storage.clickhouse import ClickHouseSink, Store
from monitor.storage.schema import MIGRATIONS, SCHEMA_VERSION, ddl

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "ClickHouseSink", "Store", "ddl"]
