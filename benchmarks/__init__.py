"""jointopt's benchmarks: speed and quality measurements, and their results (``benchmarks/results``).

Every module ``benchmarks/<name>.py`` with a ``main(argv)`` function is a benchmark, run as
``python -m benchmarks <name> [options]``; ``python -m benchmarks`` lists them. See README.md.
"""
