"""The benchmark suite behind bench/run.py: servers, scenarios, load drivers, /proc readings, reports."""
