"""Hourly prices of machine types: a small built-in table (dated and sourced), a file or records of yours.

Approximate on-demand list prices of a few machine types, as dated and sourced here: check them before
deciding, and pass your own (a file, or NAME=USD overrides) for other clouds, regions or discounts.
"""

import json
import math
import os

import pandas as pd

from serving.cost.timing import DEVICES

PRICES_DATE = "2024-06"
PRICES_SOURCE = "AWS EC2 on-demand pricing, us-east-1, Linux (https://aws.amazon.com/ec2/pricing/on-demand/)"
BUILTIN_PRICES = (
    {"machine": "c6i.large", "device": "cpu", "vcpus": 2, "gpus": 0, "accelerator": "", "usd_per_hour": 0.085},
    {"machine": "c6i.2xlarge", "device": "cpu", "vcpus": 8, "gpus": 0, "accelerator": "", "usd_per_hour": 0.34},
    {"machine": "c6i.8xlarge", "device": "cpu", "vcpus": 32, "gpus": 0, "accelerator": "", "usd_per_hour": 1.36},
    {
        "machine": "g4dn.xlarge",
        "device": "gpu",
        "vcpus": 4,
        "gpus": 1,
        "accelerator": "NVIDIA T4",
        "usd_per_hour": 0.526,
    },
    {
        "machine": "g6.xlarge",
        "device": "gpu",
        "vcpus": 4,
        "gpus": 1,
        "accelerator": "NVIDIA L4",
        "usd_per_hour": 0.8048,
    },
)
PRICE_COLUMNS = ("machine", "device", "vcpus", "gpus", "accelerator", "usd_per_hour", "replicas")


def price_table(prices=None, overrides=None):
    """Hourly prices of machine types: the built-in table, or a file or records of yours, with overrides.

    Each machine type has a `machine` name, a `device` (`"cpu"` or `"gpu"`) and
    a `usd_per_hour` > 0; a CPU machine its `vcpus`, a GPU machine its `gpus`
    (or either its `replicas`, the model replicas it runs, directly), and an
    optional `accelerator` (the GPU's name). The built-in table
    (`BUILTIN_PRICES`) holds approximate on-demand prices, dated
    `PRICES_DATE`, from `PRICES_SOURCE`.

    Example:

    ```python
    import serving

    prices = serving.price_table(overrides={"g4dn.xlarge": 0.3})  # e.g. a spot price
    print(prices.attrs["date"], prices[["machine", "device", "usd_per_hour"]])
    ```

    Args:
        prices: Defaults to `None`: the built-in table. Else a `.csv` file
            (a row per machine type, with the columns above), a `.json` file
            (a list of such objects, or `{"date": ..., "source": ...,
            "machines": [...]}`), a DataFrame or a list of dicts. It replaces
            the built-in table.
        overrides: Optional dict from a machine name in the table to its
            price in USD per hour, defaults to `None`.

    Returns:
        A DataFrame with the columns `PRICE_COLUMNS`, and `attrs["date"]` and
        `attrs["source"]` saying where the prices come from.
    """
    date, source = PRICES_DATE, PRICES_SOURCE
    if prices is None:
        records = [dict(row) for row in BUILTIN_PRICES]
    elif isinstance(prices, (str, os.PathLike)):
        records, date, source = _read_prices(os.fspath(prices))
    elif isinstance(prices, pd.DataFrame):
        records, date, source = prices.to_dict("records"), prices.attrs.get("date"), prices.attrs.get("source", "given")
    elif isinstance(prices, (list, tuple)) and all(isinstance(row, dict) for row in prices):
        records, date, source = [dict(row) for row in prices], None, "given"
    else:
        raise ValueError(
            "`prices` must be None, a .csv or .json file, a DataFrame or a list of dicts. "
            f"Received: {type(prices).__name__}"
        )
    table = pd.DataFrame([_price_row(row, number) for number, row in enumerate(records, 1)], columns=PRICE_COLUMNS)
    if table.empty:
        raise ValueError("the price table has no machine types")
    repeated = sorted(set(table.machine[table.machine.duplicated()]))
    if repeated:
        raise ValueError(f"each machine type must appear once in the price table. Received twice: {repeated}")
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise ValueError(f"`overrides` must be a dict from machine name to USD per hour. Received: {overrides!r}")
        for machine, price in overrides.items():
            if machine not in set(table.machine):
                raise ValueError(
                    f"`overrides` must name machines of the price table {list(table.machine)}. "
                    f"Received: unknown machine {machine!r}"
                )
            table.loc[table.machine == machine, "usd_per_hour"] = _price(price, machine)
        if overrides:
            source += f"; overridden: {', '.join(f'{m}=${p:g}/h' for m, p in overrides.items())}"
    table.attrs.update(date=date, source=source)
    return table


def _read_prices(path):
    if not os.path.isfile(path):
        raise ValueError(f"the price file {path} does not exist")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".csv":
        frame = pd.read_csv(
            path,
            dtype={"machine": str, "device": str, "accelerator": str},
            keep_default_na=False,
            na_values={"vcpus": [""], "gpus": [""], "replicas": [""], "usd_per_hour": [""]},
        )
        return frame.to_dict("records"), None, os.path.basename(path)
    if extension == ".json":
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"the price file {path} is not valid JSON: {error}") from None
        if isinstance(data, dict) and isinstance(data.get("machines"), list):
            return data["machines"], data.get("date"), data.get("source") or os.path.basename(path)
        if isinstance(data, list) and all(isinstance(row, dict) for row in data):
            return data, None, os.path.basename(path)
        raise ValueError(
            f'the price file {path} must hold a list of machine objects or {{"machines": [...], "date": ..., '
            f'"source": ...}}. Received: a {type(data).__name__}'
        )
    raise ValueError(f"the price file must end in .csv or .json. Received: {path!r}")


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _price_row(row, number):
    where = f"machine type {number} ({row.get('machine', '?')!r})"
    unknown = sorted(set(row) - set(PRICE_COLUMNS))
    if unknown:
        raise ValueError(f"{where} has unknown fields {unknown}; expected some of {list(PRICE_COLUMNS)}")
    machine = row.get("machine")
    if not isinstance(machine, str) or not machine.strip():
        raise ValueError(f"{where} needs a `machine` name. Received: {machine!r}")
    device = row.get("device")
    if device not in DEVICES:
        raise ValueError(f"{where}: `device` must be one of {list(DEVICES)}. Received: {device!r}")
    counts = {}
    for name in ("vcpus", "gpus", "replicas"):
        value = row.get(name)
        if _missing(value):
            counts[name] = None
            continue
        try:
            whole = not isinstance(value, bool) and float(value).is_integer() and float(value) >= 0
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise ValueError(f"{where}: `{name}` must be an int >= 0. Received: {value!r}")
        counts[name] = int(float(value))
    if counts["replicas"] == 0:
        raise ValueError(f"{where}: `replicas` must be >= 1. Received: 0")
    needed = "vcpus" if device == "cpu" else "gpus"
    if counts["replicas"] is None and not counts[needed]:
        raise ValueError(f"{where}: a {device.upper()} machine needs `{needed}` >= 1 (or `replicas`). Received: {row}")
    accelerator = "" if _missing(row.get("accelerator")) else str(row["accelerator"])
    return {
        "machine": machine.strip(),
        "device": device,
        "vcpus": counts["vcpus"],
        "gpus": counts["gpus"],
        "accelerator": accelerator,
        "usd_per_hour": _price(row.get("usd_per_hour"), machine),
        "replicas": counts["replicas"],
    }


def _price(value, machine):
    try:
        price = float(value)
    except (TypeError, ValueError):
        price = math.nan
    if isinstance(value, bool) or not math.isfinite(price) or price <= 0:
        raise ValueError(f"the price of {machine!r} must be a number of USD per hour > 0. Received: {value!r}")
    return price
