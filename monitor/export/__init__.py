"""Alerts for SIEMs: OCSF and ECS documents tagged with ATLAS and OWASP ids."""
