"""``--plot PNG``: the connection-time distribution of each strategy, one curve each.

matplotlib is an optional extra (``pip install 'callrouter[plot]'``), imported only here and only
when a plot is asked for; ``require_matplotlib`` says plainly when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from callrouter.sim.report import Summary, quantile

INSTALL_HINT = "pip install 'callrouter[plot]'"


class PlotUnavailableError(RuntimeError):
    """matplotlib cannot be imported here."""


def require_matplotlib() -> None:
    """Import matplotlib now, or raise ``PlotUnavailableError`` with a one-line fix."""
    try:
        import matplotlib  # noqa: PLC0415, F401 - the optional extra: import on use, to check
    except ImportError as error:
        msg = f"--plot needs matplotlib, which cannot be imported ({error}); {INSTALL_HINT}"
        raise PlotUnavailableError(msg) from error


def plot_connection_times(summaries: Sequence[Summary], path: Path, title: str) -> None:
    """Cumulative share of connected calls by connection time (an ECDF per strategy)."""
    require_matplotlib()
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
