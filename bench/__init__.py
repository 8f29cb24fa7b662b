"""Benchmarks: run with bin/bench, bin/bench-deferred and bin/bench-faults."""
