"""The deployment gate: a candidate model's behaviour against a baseline's, offline."""
