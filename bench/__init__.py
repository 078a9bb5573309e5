"""``make bench``: throughput and latency of the system, with baselines from the same run."""
