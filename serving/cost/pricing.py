"""`cost_report`: measured throughputs and hourly prices turned into cost per million predictions per machine type.

The arithmetic, per machine type:

- replicas: the model replicas one machine runs. A CPU machine runs `vcpus // cores_per_replica` (the
  measurement used `cores_per_replica` logical cores, so one replica needs as many vCPUs), a GPU machine one
  per GPU; a price row may give `replicas` itself. Throughput is taken to scale linearly with replicas.
- rows/s per machine: replicas x the rows/s measured at the best batch size whose p99 latency is within the
  target (the highest rows/s, without one).
- cost per million predictions: `usd_per_hour / (rows_per_s * 3600 / 1e6)`.
- machines for a target throughput: `ceil(target_rps / rows_per_s)`; the cheapest choice is the one whose
  machines cost least per hour (without a target: the lowest cost per million predictions).
"""

import math

import numpy as np
import pandas as pd

from recipes._common import check_int, check_number
from serving.cost.prices import price_table
from serving.cost.report import CostReport, format_usd
from serving.cost.timing import DEVICES


def cost_report(
    measurements,
    prices=None,
    *,
    target_rps=None,
    max_latency_ms=None,
    gpu_throughput=None,
    gpu_latency_ms=None,
    cores_per_replica=None,
):
    """Prices measured throughputs per machine type: cost per million predictions, machines needed, the cheapest.

    For each machine type: its replicas (a CPU machine runs `vcpus //
    cores_per_replica`, a GPU machine one per GPU, unless its price row says
    `replicas`), the best batch size (the highest rows/s whose p99 is within
    `max_latency_ms`), its rows/s (replicas x rows/s per replica), its cost
    per million predictions (`usd_per_hour / (rows_per_s * 3600 / 1e6)`) and,
    for `target_rps`, the machines needed (`ceil(target_rps / rows_per_s)`)
    and what they cost per hour. The cheapest is the machine type whose
    machines cost least for the target (without one: the lowest cost per
    million predictions), among those within the latency target.

    GPU machine types take the GPU rows of `measurements`; without any, the
    `gpu_throughput` supplied (rows/s of one GPU, e.g. measured with
    `recipes cost` on a GPU machine), or else they are reported as not
    measured. One GPU's figures are used for every GPU machine type: other
    GPUs differ, so measure on the one you will rent.

    Example:

    ```python
    import serving

    measured = [
        {"device": "cpu", "batch_size": 1, "rows_per_s": 200, "p99_ms": 5},
        {"device": "cpu", "batch_size": 32, "rows_per_s": 1600, "p99_ms": 25},
    ]
    report = serving.cost_report(measured, target_rps=10_000, max_latency_ms=30, gpu_throughput=20_000,
                                 gpu_latency_ms=10, cores_per_replica=2)
    print(report.verdict, report.summary)
    ```

    Args:
        measurements: What `measure_throughput` returns, or records (a
            DataFrame or a list of dicts) with at least `device` (`"cpu"` or
            `"gpu"`), `batch_size`, `rows_per_s` and `p99_ms` (of one call,
            per replica), optionally `p50_ms`, `cores` and `device_name`.
        prices: What `price_table` takes or returns, defaults to `None` (the
            built-in table).
        target_rps: Optional float > 0, predictions per second to serve,
            defaults to `None`.
        max_latency_ms: Optional float > 0, the largest acceptable p99 of one
            call, defaults to `None` (no limit).
        gpu_throughput: Optional float > 0, rows/s of one GPU, for when the
            measurements have no GPU rows; defaults to `None`.
        gpu_latency_ms: Optional float > 0, the p99 at `gpu_throughput`;
            defaults to `None` (unknown: the GPU cannot then meet a latency
            target).
        cores_per_replica: Optional int >= 1, vCPUs one CPU replica needs;
            defaults to `None`: the `cores` the CPU measurement used.

    Returns:
        A `CostReport`.
    """
    check_targets(target_rps, max_latency_ms, gpu_throughput, gpu_latency_ms, cores_per_replica)
    table = price_table(prices)
    measured = _measurements(measurements)
    notes, advice = [], []

    curves = {}  # device -> DataFrame of operating points per replica, with `source`
    for device in DEVICES:
        rows = measured[measured.device == device]
        if len(rows):
            agg = rows.groupby("batch_size", as_index=False).agg(
                replica_rows_per_s=("rows_per_s", "median"), p50_ms=("p50_ms", "median"), p99_ms=("p99_ms", "max")
            )
            curves[device] = agg.assign(source="measured")
    gpus = measured.device == "gpu"
    gpu_names = sorted(set(measured.device_name[gpus].dropna())) if "device_name" in measured else []
    if "gpu" in curves:
        if gpu_throughput is not None:
            raise ValueError(
                "the measurements have GPU rows; `gpu_throughput` is for when no GPU was measured. Drop one of them"
            )
        on = f" on {', '.join(gpu_names)}" if gpu_names else ""
        notes.append(f"GPU: measured{on}; used for every GPU machine type (GPUs differ: measure on the one you rent).")
    elif gpu_throughput is not None:
        latency = "unknown p99" if gpu_latency_ms is None else f"p99 {gpu_latency_ms:g} ms"
        note = (
            f"No GPU was measured: GPU machine types use the supplied {gpu_throughput:,.0f} rows/s per GPU ({latency})."
        )
        if gpu_latency_ms is None and max_latency_ms is not None:
            note += " Its latency cannot be checked against the p99 target, so it is not chosen."
            advice.append(
                "pass gpu_latency_ms= (--gpu-latency-ms), the supplied GPU's p99, to check it against the target"
            )
        notes.append(note)
        curves["gpu"] = pd.DataFrame(
            [
                {
                    "batch_size": math.nan,
                    "replica_rows_per_s": float(gpu_throughput),
                    "p50_ms": math.nan,
                    "p99_ms": math.nan if gpu_latency_ms is None else float(gpu_latency_ms),
                    "source": "supplied",
                }
            ]
        )
    elif (table.device == "gpu").any():
        notes.append("No GPU was measured and no GPU throughput supplied: GPU machine types are not measured.")
        advice.append(
            "to price the GPU machine types, measure on a GPU machine (serving.measure_throughput, `recipes cost`) "
            "and pass its rows/s as gpu_throughput= (--gpu-throughput)"
        )

    cores_from = "given"
    if cores_per_replica is None and "cpu" in curves and (table.device == "cpu").any():
        cores = measured.cores[measured.device == "cpu"].dropna() if "cores" in measured else pd.Series(dtype=float)
        if not len(cores) and table.replicas[table.device == "cpu"].isna().any():
            raise ValueError(
                "the CPU measurements do not say how many cores they used (a `cores` column); pass "
                "`cores_per_replica`, or `replicas` per CPU machine type in the prices"
            )
        cores_per_replica, cores_from = (int(cores.max()) if len(cores) else None), "the cores measured"
    if cores_per_replica is not None and "cpu" in curves:
        notes.append(
            f"CPU machines run one replica per {cores_per_replica} vCPU{'s' * (cores_per_replica > 1)} ({cores_from}); "
            "throughput is taken to grow linearly with replicas."
        )

    points = _points(table, curves, cores_per_replica, target_rps, max_latency_ms)
    best = _best_per_machine(points, target_rps)
    cheapest = _plain(best.iloc[0].to_dict()) if len(best) and best.meets_latency.iloc[0] else None

    notes.append(
        "p99 is the latency of one call with a full batch; under dynamic batching a request also waits for its "
        "batch to fill (up to the batch timeout)."
    )
    date = table.attrs.get("date") or "undated"
    notes.append(f"Prices ({date}): {table.attrs.get('source', 'given')}; approximate, check before deciding.")
    verdict, summary, fix = _conclusion(cheapest, best, points, target_rps, max_latency_ms)
    return CostReport(
        verdict,
        summary,
        ([fix] if fix else []) + advice,
        cheapest=cheapest,
        table=best,
        points=points,
        notes=notes,
        target_rps=target_rps,
        max_latency_ms=max_latency_ms,
    )


def check_targets(
    target_rps=None, max_latency_ms=None, gpu_throughput=None, gpu_latency_ms=None, cores_per_replica=None
):
    """Checks `cost_report`'s keyword arguments (a command checks them before it spends time measuring)."""
    positive = dict(
        target_rps=target_rps,
        max_latency_ms=max_latency_ms,
        gpu_throughput=gpu_throughput,
        gpu_latency_ms=gpu_latency_ms,
    )
    for name, value in positive.items():
        if value is not None:
            check_number(name, value, minimum=0, inclusive=False)
    if gpu_latency_ms is not None and gpu_throughput is None:
        raise ValueError("`gpu_latency_ms` is the p99 at `gpu_throughput`; pass `gpu_throughput` too")
    if cores_per_replica is not None:
        check_int("cores_per_replica", cores_per_replica)


def _points(table, curves, cores_per_replica, target_rps, max_latency_ms):
    """One row per machine type and operating point (batch size): its replicas, rows/s, latency and costs."""
    points = []
    for machine in table.itertuples(index=False):
        replicas = machine.replicas
        if replicas is None or (isinstance(replicas, float) and math.isnan(replicas)):
            replicas = (
                machine.gpus
                if machine.device == "gpu"
                else (machine.vcpus // cores_per_replica if cores_per_replica else 0)
            )
        base = {
            "machine": machine.machine,
            "device": machine.device,
            "replicas": int(replicas),
            "usd_per_hour": machine.usd_per_hour,
        }
        curve = curves.get(machine.device)
        if curve is None:
            points.append({**base, "source": "not measured", "status": "not measured"})
            continue
        for op in curve.itertuples(index=False):
            point = {
                **base,
                "source": op.source,
                "batch_size": op.batch_size,
                "p50_ms": op.p50_ms,
                "p99_ms": op.p99_ms,
                "replica_rows_per_s": op.replica_rows_per_s,
            }
            if max_latency_ms is None:
                point["meets_latency"], point["status"] = True, "ok"
            elif math.isnan(op.p99_ms):
                point["meets_latency"], point["status"] = False, "latency unknown"
            else:
                ok = op.p99_ms <= max_latency_ms
                point["meets_latency"], point["status"] = ok, "ok" if ok else "p99 above target"
            if replicas < 1:
                point["meets_latency"], point["status"] = False, "no replica fits"
                points.append(point)
                continue
            rows_per_s = replicas * op.replica_rows_per_s
            point["rows_per_s"] = rows_per_s
            point["cost_per_million"] = machine.usd_per_hour / (rows_per_s * 3600 / 1e6)
            if target_rps is not None:
                point["machines"] = math.ceil(target_rps / rows_per_s)
                point["usd_per_hour_total"] = point["machines"] * machine.usd_per_hour
            points.append(point)
    point_columns = [
        "machine",
        "device",
        "replicas",
        "usd_per_hour",
        "source",
        "status",
        "batch_size",
        "rows_per_s",
        "replica_rows_per_s",
        "p50_ms",
        "p99_ms",
        "meets_latency",
        "cost_per_million",
    ]
    if target_rps is not None:
        point_columns += ["machines", "usd_per_hour_total"]
    points = pd.DataFrame.from_records(points, columns=point_columns)
    points["meets_latency"] = points.meets_latency.astype("boolean").fillna(False).astype(bool)
    return points


def _best_per_machine(points, target_rps):
    """Each machine type at its best point within the latency target (else its lowest p99), cheapest first."""
    order = "usd_per_hour_total" if target_rps is not None else "cost_per_million"
    best_rows = []
    for machine, rows in points.groupby("machine", sort=False):
        fitting = rows[rows.meets_latency]
        if len(fitting):
            best_rows.append(fitting.loc[fitting.rows_per_s.idxmax()])
        elif rows.p99_ms.notna().any():  # none qualifies: show the lowest-latency point
            best_rows.append(rows.loc[rows.p99_ms.idxmin()])
        else:
            best_rows.append(rows.iloc[0])
    summary = pd.DataFrame(best_rows).reset_index(drop=True)
    summary["_ok"] = summary.meets_latency
    by = list(dict.fromkeys(["_ok", order, "cost_per_million"]))
    summary = summary.sort_values(by, ascending=[False] + [True] * (len(by) - 1), kind="stable", na_position="last")
    summary = summary.drop(columns=["_ok", "replica_rows_per_s", "p50_ms"]).reset_index(drop=True)
    return summary


def _plain(row):
    """A table row as plain Python values: ints for counts, `None` for missing values."""
    plain = {}
    for name, value in row.items():
        if isinstance(value, (float, np.floating)) and math.isnan(value):
            value = None
        elif isinstance(value, (np.bool_, bool)):
            value = bool(value)
        elif name in ("replicas", "batch_size", "machines"):
            value = int(value)
        elif isinstance(value, (np.floating, np.integer)):
            value = value.item()
        plain[name] = value
    return plain


def _conclusion(cheapest, best, points, target_rps, max_latency_ms):
    """`(verdict, summary, what to do or None)`: the cheapest machine type, or why none qualifies."""
    within = "" if max_latency_ms is None else f" with p99 <= {max_latency_ms:g} ms"
    if cheapest is None:
        priced = points[points.replica_rows_per_s.notna() & points.p99_ms.notna()]
        if max_latency_ms is not None and len(priced):
            lowest = priced.loc[priced.p99_ms.idxmin()]
            batch = "" if math.isnan(lowest.batch_size) else f", batch {lowest.batch_size:.0f}"
            summary = (
                f"No machine type meets p99 <= {max_latency_ms:g} ms: the lowest p99 is {lowest.p99_ms:.1f} ms "
                f"({lowest.device.upper()}{batch})"
            )
            return (
                "fail",
                summary,
                "raise max_latency_ms (--max-latency-ms), or serve a smaller model or a faster device",
            )
        if max_latency_ms is not None and points.replica_rows_per_s.notna().any():
            summary = (
                f"No machine type is known to meet p99 <= {max_latency_ms:g} ms: no latency was measured or supplied"
            )
            return "error", summary, None  # the advice to pass gpu_latency_ms is already there
        summary = "No machine type can be priced: no throughput is measured or supplied for any of them"
        return "error", summary, "measure the model with serving.measure_throughput (`recipes cost`)"
    batch = "" if cheapest["batch_size"] is None else f", batch {cheapest['batch_size']:.0f}"
    what = f"{cheapest['machine']} ({cheapest['device'].upper()}{batch}, {cheapest['source']})"
    per_million = f"{format_usd(cheapest['cost_per_million'])} per million predictions"
    if target_rps is not None:
        summary = (
            f"Cheapest for {target_rps:,.0f} rows/s{within}: {cheapest['machines']} x {what} at "
            f"{format_usd(cheapest['usd_per_hour_total'])}/h ({per_million})"
        )
    else:
        summary = (
            f"Cheapest per prediction{within}: {what}, {per_million} "
            f"({cheapest['rows_per_s']:,.0f} rows/s per machine at {format_usd(cheapest['usd_per_hour'])}/h)"
        )
    others = best[best.meets_latency & (best.machine != cheapest["machine"])]
    if len(others):
        runner = others.iloc[0]
        if target_rps is not None:
            summary += f"; next: {runner.machines:.0f} x {runner.machine} at {format_usd(runner.usd_per_hour_total)}/h"
        else:
            summary += f"; next: {runner.machine} at {format_usd(runner.cost_per_million)} per million"
    return "pass", summary, None


def _measurements(measurements):
    """The measurement records as a checked DataFrame."""
    if isinstance(measurements, pd.DataFrame):
        frame = measurements.copy()
    elif isinstance(measurements, (list, tuple)) and all(isinstance(row, dict) for row in measurements):
        frame = pd.DataFrame.from_records(list(measurements))
    else:
        raise ValueError(
            f"`measurements` must be what `measure_throughput` returns, or a list of dicts. "
            f"Received: {type(measurements).__name__}"
        )
    needed = ["device", "batch_size", "rows_per_s", "p99_ms"]
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise ValueError(f"the measurements lack the columns {missing}. Received: the columns {list(frame.columns)}")
    if "p50_ms" not in frame.columns:
        frame["p50_ms"] = math.nan
    for index, row in enumerate(frame.to_dict("records"), 1):
        if row["device"] not in DEVICES:
            raise ValueError(
                f"measurement {index}: `device` must be one of {list(DEVICES)}. Received: {row['device']!r}"
            )
        size = row["batch_size"]
        if (
            isinstance(size, bool)
            or not isinstance(size, (int, float, np.integer, np.floating))
            or not (float(size).is_integer() and size >= 1)
        ):
            raise ValueError(f"measurement {index}: `batch_size` must be an int >= 1. Received: {size!r}")
        for name in ("rows_per_s", "p99_ms"):
            value = row[name]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.integer, np.floating))
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValueError(f"measurement {index}: `{name}` must be a number > 0. Received: {value!r}")
    frame["batch_size"] = frame.batch_size.astype(float)
    frame["rows_per_s"] = frame.rows_per_s.astype(float)
    frame["p99_ms"] = frame.p99_ms.astype(float)
    frame["p50_ms"] = frame.p50_ms.astype(float)
    return frame
