"""SOC policy: alert triage, incidents, rollback triggers, notification, roles.

- :mod:`monitor.policy.families`: which detector belongs to which family;
- :mod:`monitor.policy.config`: the YAML policy file;
- :mod:`monitor.policy.alerting`: severity mapping, dedup and maintenance windows;
- :mod:`monitor.policy.incidents`: incidents and acknowledgement state;
- :mod:`monitor.policy.rollback`: the rollback monitor and its decisions;
- :mod:`monitor.policy.status`: what ``rollback-status`` reports;
- :mod:`monitor.policy.engine`: all of the above over new alerts;
- :mod:`monitor.policy.webhook`: the signed webhook notifier;
- :mod:`monitor.policy.roles`: least-privilege ClickHouse users.
"""
