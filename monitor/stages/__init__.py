"""Pipeline stages: adapters from detectors to keyed findings."""
