"""Pure detection algorithms: numpy, scipy, river and torch; no I/O.

Nothing here imports from ``monitor`` or ``streams`` (a test enforces it).
"""
