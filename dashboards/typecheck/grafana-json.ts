// Types the generated dashboard checks are written against (see dashboards/typecheck.py).
import type { DataQuery } from '@grafana/schema';

// Grafana's schema declares string enums (FieldColorModeId, BigValueColorMode, ...); JSON holds
// their values as plain strings, which TypeScript refuses for an enum type. Json<T> is T with
// every string enum replaced by the union of its values, and nothing else loosened.
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

// The SQL-editor query of grafana-clickhouse-datasource (its CHSqlQuery, src/types/sql.ts), with
// `format` as the plugin backend reads it (0 time series, 1 table, 2 logs, 3 traces, 4 auto).
export interface ClickHouseQuery extends DataQuery {
  editorType: 'sql';
  rawSql: string;
  format: 0 | 1 | 2 | 3 | 4;
  queryType?: 'table' | 'logs' | 'timeSeries' | 'traces';
  meta?: { timezone?: string };
  expand?: boolean;
}
