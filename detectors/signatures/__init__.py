"""Matching known trigger and canary signatures in text."""
