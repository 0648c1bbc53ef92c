"""Time-to-target benchmarks of the lessons; run them with `python -m bench`."""
