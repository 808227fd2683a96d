"""Log lines a scan of refused calls costs: 100 refusals a second for an hour, from one source,
from many addresses in one network, and from thousands of networks.

Usage: ``PYTHONPATH=. python benchmarks/refusal_log.py``
"""

from __future__ import annotations

import random

from callrouter.refusal_log import RefusalLimiter

RATE = 100  # refusals a second
SECONDS = 3600
BYTES_PER_LINE = 200  # a JSON log line, roughly


def lines_in_an_hour(networks: int, seed: int = 1) -> int:
    limiter = RefusalLimiter()
    draw = random.Random(seed)
    lines = 0
    for i in range(RATE * SECONDS):
        now = i / RATE
        net = draw.randrange(networks)
        host = f"10.{net // 256}.{net % 256}.{draw.randrange(1, 255)}"  # never contacted
        lines += limiter.refused("not_allowed", host, now)
        lines += limiter.summary_due(now) is not None
    return lines


def main() -> None:
    for networks in (1, 50, 5000):
        lines = lines_in_an_hour(networks)
        per_day = lines * 24 * BYTES_PER_LINE / 1e6
        print(f"{networks:>5} source networks: {lines} lines/hour, ~{per_day:.1f} MB/day")


if __name__ == "__main__":
    main()
