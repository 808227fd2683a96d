"""``--plot PNG``: the connection-time distribution of each strategy, one curve each."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from callrouter.sim.report import Summary, quantile


def plot_connection_times(summaries: Sequence[Summary], path: Path, title: str) -> None:
    """Cumulative share of connected calls by connection time (an ECDF per strategy)."""
    import matplotlib  # noqa: PLC0415 - only this option needs matplotlib: import on use

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    right = 10.0
    for summary in summaries:
        times = summary.connect_seconds  # sorted
        if not times:
            continue
        shares = [(i + 1) / summary.calls for i in range(len(times))]
        label = f"{summary.name} (FTCR {summary.ftcr:.1%}, mean {summary.connect_mean_s:.0f} s)"
        axes.step(times, shares, where="post", label=label)
        right = max(right, quantile(times, 0.99))
    axes.set_xlim(0, right)
    axes.set_ylim(0, 1)
    axes.set_xlabel("connection time (s): specialty chosen → consultant accepted")
    axes.set_ylabel("share of calls connected")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
