"""Matching known trigger and canary signatures in text, resistant to evasion."""
