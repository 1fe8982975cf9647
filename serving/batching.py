"""Dynamic batching with TF Serving's parameters (tensorflow_serving/batching/README.md).

Requests to the same model version and signature, with inputs that can be
concatenated, are queued together; a batch thread takes up to
`max_batch_size` rows from a queue once it holds that many or its oldest
request has waited `batch_timeout_micros`, runs them as one batch, and
hands each request its own rows back. A request is never split, so its rows
stay together and in order; when a batch's run fails, each of its requests is
run alone, so a bad request fails only itself. Batches are padded up to the next of
`allowed_batch_sizes` (by repeating the last row) and the padding is sliced
off. A queue holding `max_enqueued_batches` full batches refuses more
(UNAVAILABLE: REST 503), and a request larger than `max_batch_size` is
refused as TF Serving refuses it (INVALID_ARGUMENT).

With `pad_variable_length_inputs`, requests whose inputs differ only in the
sizes of their non-batch axes (sequences of other lengths) share a batch:
each input is padded, as TF Serving pads it, to the batch's largest size on
every axis but the first, with the request's own first value, and the
outputs are not cut back (a model taking padded sequences must not be
changed by the padding, e.g. by masking it). Without it, TF Serving fails
such requests; here they wait in different queues: batched apart, not
failed. Inputs of other dtypes or ranks are always batched apart.
"""

import collections
import concurrent.futures
import dataclasses
import math
import os
import re
import threading
import time

import numpy as np

from serving.errors import ServingError

_SCALAR = re.compile(r"^\s*(\w+)\s*\{\s*value\s*:\s*(\d+)\s*\}\s*$")
_PLAIN = re.compile(r"^\s*(\w+)\s*:\s*(\w+)\s*$")


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's `BatchingParameters`, with its defaults.

    Attributes:
        max_batch_size: Largest batch, in rows (default 1000).
        batch_timeout_micros: Longest wait for a batch to fill (default 0).
        max_enqueued_batches: Full batches a queue may hold (default 10).
        num_batch_threads: Threads running batches (default: the number of cores).
        allowed_batch_sizes: Sizes batches are padded up to; the last must be
            `max_batch_size` (default: none, no padding).
        pad_variable_length_inputs: Pad inputs whose non-batch axes differ in
            size to the largest in the batch (default false: batch them apart).
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: tuple = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"batching parameter {name} must be >= 1; received {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batch_timeout_micros must be >= 0; received {self.batch_timeout_micros}")
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError(
                "allowed_batch_sizes must increase and end with max_batch_size "
                f"({self.max_batch_size}); received {sizes}"
            )

    @classmethod
    def from_text(cls, text):
        """Parses TF Serving's text format (`max_batch_size { value: 128 }`, `allowed_batch_sizes: 64`)."""
        fields, sizes = {}, []
        names = {f.name for f in dataclasses.fields(cls)} | {"thread_pool_name"}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            match = _SCALAR.match(line) or _PLAIN.match(line)
            if not match or match.group(1) not in names:
                raise ValueError(f"batching parameters line {number}: cannot read {line!r}")
            name, value = match.groups()
            if name == "allowed_batch_sizes":
                sizes.append(int(value))
            elif name == "pad_variable_length_inputs":
                fields[name] = value == "true"
            elif name != "thread_pool_name":
                fields[name] = int(value)
        return cls(**fields, allowed_batch_sizes=tuple(sizes))


def run_in(executor, function, *args):
    """A `concurrent.futures.Future` of `function(*args)`, run in `executor`, or at once in this thread without one."""
    if executor is not None:
        return executor.submit(function, *args)
    future = concurrent.futures.Future()
    try:
        future.set_result(function(*args))
    except Exception as error:
        future.set_exception(error)
    return future


class _Task:
    def __init__(self, inputs, rows):
        self.inputs = inputs
        self.rows = rows
        self.enqueued = time.monotonic()
        self.future = concurrent.futures.Future()
        self.outputs = None
        self.error = None

    def finish(self):
        """Hands the request its outputs or its error."""
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.outputs)


class _Queue(collections.deque):
    """The tasks waiting for one kind of batch, oldest first, and how many rows they hold."""

    rows = 0

    def push(self, task):
        self.append(task)
        self.rows += task.rows

    def pop_oldest(self):
        task = self.popleft()
        self.rows -= task.rows
        return task


class BatchScheduler:
    """Queues per (servable, signature, inputs, outputs, shapes) and a pool of batch threads.

    Args:
        parameters: `BatchingParameters`: the threads, and the queues' parameters
            unless a request brings its own.
        metrics: Optional `serving.metrics.Metrics`, for the batch size histogram.
    """

    def __init__(self, parameters, metrics=None):
        self.parameters = parameters
        self.metrics = metrics
        self.batches_run = 0
        self.rows_run = 0
        self._queues = collections.OrderedDict()  # key -> _Queue
        self._runners = {}  # key -> (servable, signature_name, output_names, timeout_ms)
        self._condition = threading.Condition()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(parameters.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, servable, signature_name, inputs, output_names, timeout_ms=None, parameters=None):
        """Runs `inputs` (checked and cast by `Servable.prepare`) in a batch; returns this request's outputs.

        `parameters` (a model's own, `--enable_per_model_batching_parameters`)
        replace the scheduler's for this request's queue; the threads are shared.
        """
        return self.submit(servable, signature_name, inputs, output_names, timeout_ms, parameters).result()

    def submit(self, servable, signature_name, inputs, output_names, timeout_ms=None, parameters=None, executor=None):
        """`run` without waiting: queues the request and returns a `concurrent.futures.Future` of its outputs.

        A request refused (too large, queue full) raises at once. One that
        cannot be batched (scalar inputs, no rows) runs alone, in `executor`
        when given, else in this thread before `submit` returns.
        """
        parameters = parameters or self.parameters
        rows = {name: (np.shape(value)[0] if np.ndim(value) else None) for name, value in inputs.items()}
        if None in rows.values() or len(set(rows.values())) != 1:
            if None in rows.values():  # scalars cannot be batched: run alone
                return run_in(executor, servable.execute, signature_name, inputs, output_names, timeout_ms)
            raise ServingError(
                "INVALID_ARGUMENT", f"inputs must have the same number of rows to be batched; received {rows}"
            )
        size = next(iter(rows.values()))
        if size == 0:  # nothing to batch, and no row to pad with
            return run_in(executor, servable.execute, signature_name, inputs, output_names, timeout_ms)
        if size > parameters.max_batch_size:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Task size {size} is larger than maximum input batch size {parameters.max_batch_size}",
            )
        if parameters.pad_variable_length_inputs:  # same rank and dtype: padded to one shape in the batch
            shapes = tuple(sorted((n, np.ndim(v), np.asarray(v).dtype.str) for n, v in inputs.items()))
        else:
            shapes = tuple(sorted((n, np.shape(v)[1:], np.asarray(v).dtype.str) for n, v in inputs.items()))
        key = (id(servable), signature_name, tuple(output_names), timeout_ms, shapes, parameters)
        task = _Task(inputs, size)
        with self._condition:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue()
            if math.ceil((queue.rows + size) / parameters.max_batch_size) > parameters.max_enqueued_batches:
                raise ServingError("UNAVAILABLE", "The batch scheduling queue to which this task was submitted is full")
            self._runners[key] = (servable, signature_name, tuple(output_names), timeout_ms, parameters)
            queue.push(task)
            self._condition.notify()
        return task.future

    def _ready_key(self, now):
        """A queue whose batch is full or whose oldest task has waited long enough, and the wait otherwise."""
        soonest = None
        for key, queue in self._queues.items():
            if not queue:
                continue
            parameters = self._runners[key][-1]
            timeout = parameters.batch_timeout_micros / 1e6
            if queue.rows >= parameters.max_batch_size or now - queue[0].enqueued >= timeout:
                return key, None
            wait = queue[0].enqueued + timeout - now
            soonest = wait if soonest is None else min(soonest, wait)
        return None, soonest

    def _work(self):
        while True:
            with self._condition:
                while True:
                    if self._stopped:
                        return
                    key, wait = self._ready_key(time.monotonic())
                    if key is not None:
                        break
                    self._condition.wait(wait)
                runner = self._runners[key]
                queue, batch, rows = self._queues[key], [], 0
                while queue and rows + queue[0].rows <= runner[-1].max_batch_size:
                    task = queue.pop_oldest()
                    batch.append(task)
                    rows += task.rows
                if queue:
                    self._queues.move_to_end(key)  # round robin: other queues go first next time
                else:
                    del self._queues[key], self._runners[key]
            self._run_batch(*runner, batch, rows)

    @staticmethod
    def _padded_size(rows, parameters):
        for size in parameters.allowed_batch_sizes:
            if size >= rows:
                return size
        return rows

    def _run_batch(self, servable, signature_name, output_names, timeout_ms, parameters, batch, rows):
        if parameters.pad_variable_length_inputs:
            batch, rows = self._pad_variable_lengths(batch)
            if not batch:
                return
        try:
            self._execute(servable, signature_name, output_names, timeout_ms, parameters, batch, rows)
        except Exception as error:
            if len(batch) == 1 or (isinstance(error, ServingError) and error.code == "DEADLINE_EXCEEDED"):
                for task in batch:
                    task.error = error if isinstance(error, ServingError) else ServingError("INTERNAL", str(error))
            else:  # one request's rows can fail a whole run: each request alone gets its own answer or error
                for task in batch:
                    try:
                        self._execute(servable, signature_name, output_names, timeout_ms, parameters, [task], task.rows)
                    except Exception as alone:
                        task.error = alone if isinstance(alone, ServingError) else ServingError("INTERNAL", str(alone))
        for task in batch:
            task.finish()

    def _execute(self, servable, signature_name, output_names, timeout_ms, parameters, batch, rows):
        """Runs the tasks as one batch, padded to an allowed size, and hands each task its own rows."""
        inputs = {name: np.concatenate([t.inputs[name] for t in batch]) for name in batch[0].inputs}
        padded = self._padded_size(rows, parameters)
        if padded > rows:
            inputs = {n: np.concatenate([v, np.repeat(v[-1:], padded - rows, axis=0)]) for n, v in inputs.items()}
        outputs = servable.execute(signature_name, inputs, output_names, timeout_ms)
        for name, value in outputs.items():
            if np.ndim(value) == 0 or np.shape(value)[0] != padded:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f'output "{name}" has shape {np.shape(value)}, not one row per input row: '
                    "this signature cannot be batched",
                )
        start = 0
        for task in batch:
            task.outputs = {name: value[start : start + task.rows] for name, value in outputs.items()}
            start += task.rows
        with self._condition:
            self.batches_run += 1
            self.rows_run += rows
        if self.metrics is not None:
            self.metrics.observe_batch(servable.name, rows)

    @staticmethod
    def _pad_variable_lengths(batch):
        """Pads each task's inputs to the batch's largest non-batch sizes with the task's first value.

        A task whose input has no value to pad with, when padding is needed, is
        failed alone, with TF Serving's message; the rest of the batch runs.
        """
        largest = {name: np.max([np.shape(t.inputs[name]) for t in batch], axis=0) for name in batch[0].inputs}
        kept = []
        for task in batch:
            padded = {}
            for name, value in task.inputs.items():
                missing = [(0, 0)] + [(0, int(m - n)) for m, n in zip(largest[name][1:], np.shape(value)[1:])]
                if not any(after for _, after in missing):
                    padded[name] = value
                elif np.size(value) == 0:
                    message = f'input "{name}": Got empty tensor in batch of non-empty tensors.'
                    task.error = ServingError("INVALID_ARGUMENT", message)
                    task.finish()
                    break
                else:
                    padded[name] = np.pad(value, missing, constant_values=np.ravel(value)[0])
            else:
                task.inputs = padded
                kept.append(task)
        return kept, sum(t.rows for t in kept)

    def stop(self):
        with self._condition:
            self._stopped = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()
