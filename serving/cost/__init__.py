"""Serving cost: measure an exported model's throughput and latency per device, then price it per machine type.

`measure_throughput` times the serving signature of a SavedModel (as `serving.export_model` writes it, and as
`serving.predict_file` runs it) on real rows, batch size by batch size, on the CPU and on each GPU
TensorFlow sees, side by side in one run: rows per second and the p50/p99 latency of one call
(`serving.cost.timing`). `price_table` reads hourly machine prices: a dated built-in table, a file or records
of yours (`serving.cost.prices`). `cost_report` turns both into the cost per million predictions of each
machine type at its best batch size within a p99 latency target, the machines needed for a target
throughput, and the cheapest choice (`serving.cost.pricing`), as a `CostReport` (`serving.cost.report`, a
`recipes.report.Report`). Without a GPU present, GPU machine types use a throughput the user supplies
(measured elsewhere) or are reported as not measured: a GPU figure is never made up.
"""

from serving.cost.prices import BUILTIN_PRICES, PRICE_COLUMNS, PRICES_DATE, PRICES_SOURCE, price_table
from serving.cost.pricing import cost_report
from serving.cost.report import CostReport
from serving.cost.timing import DEVICES, MEASUREMENT_COLUMNS, measure_throughput

__all__ = [
    "BUILTIN_PRICES",
    "DEVICES",
    "MEASUREMENT_COLUMNS",
    "PRICES_DATE",
    "PRICES_SOURCE",
    "PRICE_COLUMNS",
    "CostReport",
    "cost_report",
    "measure_throughput",
    "price_table",
]
