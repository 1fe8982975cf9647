"""`CostReport`: what `serving.cost_report` returns, as text, Markdown, JSON and a figure."""

import dataclasses
import math
import os

import pandas as pd

from recipes.report import Report


def format_usd(value):
    """`$0.60`, `$12.00`, but `$0.085` and `$0.00146`: cents, or three significant digits below them."""
    return f"${value:,.2f}" if math.isclose(value, round(value, 2), rel_tol=1e-9) or value >= 10 else f"${value:.3g}"


@dataclasses.dataclass(frozen=True)
class CostReport(Report):
    """What `cost_report` returns: a `recipes.report.Report`. `str(report)` gives the verdict and summary first,
    then what to do, the notes and the table.

    Attributes:
        verdict: `"pass"` when a machine type is priced within the targets; `"fail"` when the latency target
            rules out every measured one; `"error"` when the figures cannot decide it (no throughput, or no
            latency to check against the target).
        summary: One sentence: the cheapest machine type (and how many) for the target, or why none
            qualifies.
        advice: What to do when none qualifies, or when GPU machine types could not be priced.
        cheapest: The cheapest machine type's row of `table` as a dict, or `None` when none meets the
            latency target or none is measured.
        table: DataFrame, one row per machine type, cheapest first: its `machine`, `device`, `replicas`,
            `usd_per_hour`, `source` of the throughput (`"measured"`, `"supplied"` or `"not measured"`),
            `status` (`"ok"`, `"p99 above target"`, `"latency unknown"`, `"no replica fits"`, `"not
            measured"`), then at its best batch size: `batch_size`, `rows_per_s` (per machine), `p99_ms`,
            `cost_per_million`, and for a target `machines` and `usd_per_hour_total`.
        points: DataFrame, one row per machine type and measured batch size, with the same figures
            (`meets_latency` says which count); not in `to_dict()`.
        notes: Strings: where the GPU figures come from, the replica rule, what the latency covers, the
            prices' date and source.
        target_rps: The target throughput, or `None`.
        max_latency_ms: The p99 latency target, or `None`.
    """

    cheapest: dict | None = None
    table: pd.DataFrame = None
    points: pd.DataFrame = dataclasses.field(default=None, repr=False)
    notes: tuple = ()
    target_rps: float | None = None
    max_latency_ms: float | None = None

    def __str__(self):
        lines = [super().__str__(), "", *(f"- {note}" for note in self.notes), ""]
        lines.append(self._shown().to_string(index=False))
        return "\n".join(lines)

    def markdown_details(self):
        from recipes._markdown import markdown_table

        return "\n".join([*(f"- {note}" for note in self.notes), "", markdown_table(self._shown().astype(str))])

    def _shown(self):
        """The table with readable column names and numbers, as text."""
        columns = {
            "machine": "machine",
            "device": "device",
            "replicas": "replicas",
            "usd_per_hour": "USD/h",
            "batch_size": "batch",
            "rows_per_s": "rows/s",
            "p99_ms": "p99 ms",
            "cost_per_million": "USD/1M pred",
            "machines": "machines",
            "usd_per_hour_total": "USD/h total",
            "status": "status",
        }
        usd = lambda value: format_usd(value)[1:]  # noqa: E731
        formats = {
            "replicas": "{:.0f}".format,
            "usd_per_hour": "{:.4g}".format,
            "batch_size": "{:.0f}".format,
            "rows_per_s": "{:,.0f}".format,
            "p99_ms": "{:.1f}".format,
            "cost_per_million": "{:.3g}".format,
            "machines": "{:.0f}".format,
            "usd_per_hour_total": usd,
        }
        shown = self.table[[c for c in columns if c in self.table.columns]].copy()
        for column, form in formats.items():
            if column in shown.columns:
                shown[column] = [
                    "-" if v is None or (isinstance(v, float) and math.isnan(v)) else form(v) for v in shown[column]
                ]
        return shown.rename(columns=columns)

    def plot(self, path):
        """Writes a PNG: cost per million predictions by batch size, and rows/s against p99 latency per device.

        Args:
            path: File to write, e.g. `"cost.png"`.

        Returns:
            `path`, as a string.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

        figure = Figure(figsize=(11, 4.2), layout="constrained")
        FigureCanvasAgg(figure)
        costs, speeds = figure.subplots(1, 2)
        colours = dict(zip(self.table.machine, [f"C{i % 10}" for i in range(len(self.table))]))
        points = self.points[self.points.cost_per_million.notna()]
        for machine, rows in points.groupby("machine", sort=False):
            measured = rows[rows.batch_size.notna()].sort_values("batch_size")
            if len(measured):
                costs.plot(measured.batch_size, measured.cost_per_million, "o-", color=colours[machine], label=machine)
                late = measured[~measured.meets_latency]
                costs.plot(late.batch_size, late.cost_per_million, "x", color="black", markersize=9)
            else:  # a supplied throughput has no batch size
                costs.axhline(
                    rows.cost_per_million.iloc[0], linestyle="--", color=colours[machine], label=f"{machine} (supplied)"
                )
        costs.set_xscale("log", base=2)
        costs.set_yscale("log")
        costs.set_xlabel("batch size" + ("" if self.max_latency_ms is None else " (x: p99 above the target)"))
        unmeasured = list(self.table.machine[self.table.source == "not measured"])
        if unmeasured:
            costs.text(
                0.02, 0.02, f"not measured: {', '.join(unmeasured)}", transform=costs.transAxes, fontsize="small"
            )
        costs.set_ylabel("USD per million predictions")
        costs.set_title("cost per million predictions")
        if len(points):
            costs.legend(fontsize="small")
        replicas = self.points.drop_duplicates(["device", "batch_size", "source"])
        for (device, source), rows in replicas.groupby(["device", "source"], sort=False):
            rows = rows[rows.replica_rows_per_s.notna()].sort_values("batch_size")
            if not len(rows) or rows.p99_ms.isna().all():
                continue
            speeds.plot(rows.p99_ms, rows.replica_rows_per_s, "o-", label=f"{device.upper()} ({source})")
            for _, row in rows.iterrows():
                if not math.isnan(row.batch_size):
                    speeds.annotate(
                        f"{row.batch_size:.0f}",
                        (row.p99_ms, row.replica_rows_per_s),
                        fontsize="small",
                        textcoords="offset points",
                        xytext=(4, -10),
                    )
        if self.max_latency_ms is not None:
            speeds.axvline(
                self.max_latency_ms, linestyle="--", color="grey", label=f"p99 target {self.max_latency_ms:g} ms"
            )
        speeds.set_xscale("log")
        speeds.set_yscale("log")
        sizes = sorted(self.points.batch_size.dropna().unique())
        if sizes:
            costs.set_xticks(sizes)
        for axis in (costs.xaxis, costs.yaxis, speeds.xaxis, speeds.yaxis):
            if axis is not costs.xaxis:
                axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            axis.set_major_formatter(StrMethodFormatter("{x:,g}"))
            axis.set_minor_formatter(NullFormatter())
        speeds.set_xlabel("p99 latency of one call (ms)")
        speeds.set_ylabel("rows/s per replica")
        speeds.set_title("throughput against latency (labels: batch size)")
        if speeds.get_legend_handles_labels()[0]:
            speeds.legend(fontsize="small")
        title = self.summary if len(self.summary) < 130 else self.summary[:127] + "..."
        figure.suptitle(title.replace("$", r"\$"), fontsize="medium")  # "$" would start Matplotlib's mathtext
        path = os.fspath(path)
        figure.savefig(path, dpi=100)
        return path
