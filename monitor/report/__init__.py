"""Analyst history: the offline HTML report of one model over a time range."""
