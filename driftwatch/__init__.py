"""driftwatch the application: the command line and the benchmarks.

The only package that imports both :mod:`streams` and :mod:`dashboards`;
nothing imports it. Dependencies point one way::

    detectors <- monitor <- streams, dashboards <- driftwatch
"""
