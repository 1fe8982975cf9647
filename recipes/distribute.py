"""Multi-worker training: who is the chief, `recipes.fit`'s loop for MultiWorkerMirroredStrategy, a local launcher.

Why `recipes.fit` has its own loop for `tf.distribute.MultiWorkerMirroredStrategy`:
Keras 3.15's `model.fit` (and `evaluate`, `predict`) fails under it before the
first step: `_maybe_symbolic_build` reduces the first distributed batch with
`strategy.reduce`, which converts a `PerReplica` to a tensor and raises
"Attempt to convert a value (PerReplica...) with an unsupported type"
(keras-team/keras#20585; reproduced here with two processes on 127.0.0.1).
Patching that private method would break silently with a Keras upgrade, so
the loop below uses only public APIs: `strategy.run` on the model's own
`model.train_step` / `model.test_step` (the documented override points, so a
custom `train_step` keeps working, and Keras's losses already scale by the
number of replicas), `strategy.distribute_datasets_from_function` for the
input, and metrics read in cross-replica context, which sums their
sync-on-read variables over all workers. It drives ordinary Keras callbacks,
so checkpoints, backups and early stopping work as with `model.fit`. This is
TensorFlow's documented custom-training-loop route for multi-worker training.
"""

import collections
import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time

from recipes._common import check_int, check_number, check_one_of

LOG_TAIL_LINES = 20


# -- the cluster ---------------------------------------------------------------------------------


def is_multi_worker(strategy):
    """Whether `strategy` is a `tf.distribute.MultiWorkerMirroredStrategy` (whatever its number of workers)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy=None):
    """Whether this process is the one that writes checkpoints and exports.

    The chief is the task of type `"chief"`, or worker 0 when the cluster has
    no chief, or the only process when there is no cluster (any strategy but
    `MultiWorkerMirroredStrategy`, or one without a `TF_CONFIG`).

    Example:

    >>> import recipes.distribute
    >>> recipes.distribute.is_chief()
    True

    Args:
        strategy: Optional `tf.distribute.Strategy`; defaults to `None` (the
            current strategy).

    Returns:
        A bool.
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def free_ports(count, host="127.0.0.1"):
    """Returns `count` distinct TCP ports free on `host` right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_tf_configs(workers, host="127.0.0.1"):
    """`TF_CONFIG` values (JSON strings) for a cluster of `workers` processes on free ports of `host`.

    Example:

    >>> import json, recipes.distribute
    >>> configs = recipes.distribute.local_tf_configs(2)
    >>> json.loads(configs[1])["task"]
    {'type': 'worker', 'index': 1}

    Args:
        workers: Int >= 1.
        host: Defaults to `"127.0.0.1"`.

    Returns:
        A list of `workers` strings; worker 0 is the chief.
    """
    workers = check_int("workers", workers)
    cluster = {"worker": [f"{host}:{port}" for port in free_ports(workers, host)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(workers)]


# -- the launcher --------------------------------------------------------------------------------


class ClusterError(RuntimeError):
    """A worker of `run_local_cluster` failed or the cluster ran out of time; `run` says what each did."""

    def __init__(self, message, run):
        super().__init__(message)
        self.run = run


@dataclasses.dataclass(frozen=True)
class ClusterRun:
    """What `run_local_cluster` returns (or a `ClusterError` carries).

    Attributes:
        returncodes: One exit code per worker, in worker order (negative: killed by that signal).
        failed_worker: Index of the first worker that failed, or `None`.
        timed_out: Whether the cluster was killed for running past its timeout.
        seconds: Wall time of the whole cluster.
        logs: One string per worker: its merged stdout and stderr.
    """

    returncodes: tuple
    failed_worker: int | None
    timed_out: bool
    seconds: float
    logs: tuple

    @property
    def ok(self):
        return self.failed_worker is None and not self.timed_out

    def __str__(self):
        n = len(self.returncodes)
        if self.ok:
            return f"OK: {n} workers finished in {self.seconds:.1f} s"
        if self.timed_out:
            head = f"FAILED: the {n}-worker cluster ran past its timeout after {self.seconds:.1f} s and was killed"
        else:
            head = (
                f"FAILED: worker {self.failed_worker} exited with code {self.returncodes[self.failed_worker]} "
                f"after {self.seconds:.1f} s; the other workers were stopped (exit codes {list(self.returncodes)})"
            )
        culprit = self.failed_worker if self.failed_worker is not None else 0
        tail = self.logs[culprit].splitlines()[-LOG_TAIL_LINES:]
        return head + f"\nlast lines of worker {culprit}:\n" + "\n".join(f"  {line}" for line in tail)


def _pump(stream, index, sink, lines, prefix):
    for line in iter(stream.readline, ""):
        lines.append(line)
        if sink is not None:
            sink.write(f"[worker {index}] {line}" if prefix else line)
            sink.flush()
    stream.close()


def run_local_cluster(args, workers=2, *, timeout=None, env=None, cwd=None, threads_per_worker=None, stream="stdout"):
    """Runs `python ARGS` as `workers` processes forming a TF cluster on 127.0.0.1; waits for all.

    Each process gets a `TF_CONFIG` naming all workers on free local ports
    and its own index (worker 0 is the chief), so a script that creates a
    `tf.distribute.MultiWorkerMirroredStrategy()` trains with the others. Their
    output is streamed line by line, prefixed `[worker i]`. If one worker
    fails, the others (which would otherwise wait for it forever in a
    collective op) are killed and a `ClusterError` names it and shows the end
    of its log. The threads of each worker are limited so that the workers do
    not fight over the machine's cores (`TF_NUM_INTRAOP_THREADS`,
    `TF_NUM_INTEROP_THREADS`).

    Example:

    ```python
    from recipes.distribute import run_local_cluster

    run = run_local_cluster(["train.py", "--epochs", "3"], workers=2, timeout=600)
    print(run)  # OK: 2 workers finished in 41.3 s
    ```

    Args:
        args: List of strings: a script (or `-m module`) and its arguments,
            run with this Python (`sys.executable`).
        workers: Int >= 1, defaults to 2.
        timeout: Optional seconds after which the whole cluster is killed and
            a `ClusterError` raised. Defaults to `None` (no limit).
        env: Optional dict of environment variables for the workers, defaults
            to this process's environment.
        cwd: Optional working folder of the workers.
        threads_per_worker: Optional int >= 1; defaults to the CPU count
            divided by `workers` (at least 1).
        stream: `"stdout"` (default), `"stderr"` or `None` (keep the logs in
            the result only).

    Returns:
        A `ClusterRun` whose `ok` is `True`.

    Raises:
        ClusterError: A worker exited with a non-zero code, or the timeout passed.
    """
    if isinstance(args, str) or not isinstance(args, (list, tuple)) or not args:
        raise ValueError(f"`args` must be a non-empty list of strings (script and arguments). Received: {args!r}")
    workers = check_int("workers", workers)
    if timeout is not None:
        check_number("timeout", timeout, minimum=0, inclusive=False)
    stream = check_one_of("stream", stream, ("stdout", "stderr", None))
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    sink = {"stdout": sys.stdout, "stderr": sys.stderr, None: None}[stream]
    base_env = dict(os.environ if env is None else env)
    base_env.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
    base_env.setdefault("TF_NUM_INTEROP_THREADS", str(threads))
    base_env["PYTHONUNBUFFERED"] = "1"  # lines reach the prefixed log as they are printed

    start = time.monotonic()
    processes, pumps, logs = [], [], []
    try:
        for index, config in enumerate(local_tf_configs(workers)):
            process = subprocess.Popen(
                [sys.executable, *map(str, args)],
                env={**base_env, "TF_CONFIG": config},
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            lines = collections.deque()
            pump = threading.Thread(target=_pump, args=(process.stdout, index, sink, lines, workers > 1), daemon=True)
            pump.start()
            processes.append(process)
            pumps.append(pump)
            logs.append(lines)
        failed, timed_out = _wait(processes, start, timeout)
    finally:
        for process in processes:  # a failure, a timeout or a KeyboardInterrupt: no worker outlives the call
            if process.poll() is None:
                process.kill()
        for process in processes:
            process.wait()
        for pump in pumps:
            pump.join(timeout=5)
    run = ClusterRun(
        returncodes=tuple(p.returncode for p in processes),
        failed_worker=failed,
        timed_out=timed_out,
        seconds=time.monotonic() - start,
        logs=tuple("".join(lines) for lines in logs),
    )
    if not run.ok:
        raise ClusterError(str(run), run)
    return run


def _wait(processes, start, timeout):
    """Polls until all exit (`(None, False)`), one fails (`(index, False)`) or time runs out (`(None, True)`)."""
    while True:
        codes = [p.poll() for p in processes]
        failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            return failed[0], False
        if all(code == 0 for code in codes):
            return None, False
        if timeout is not None and time.monotonic() - start > timeout:
            return None, True
        time.sleep(0.05)


# -- the training loop ---------------------------------------------------------------------------


def per_replica_batch_size(batch_size, strategy):
    """`batch_size // strategy.num_replicas_in_sync`, or a `ValueError` if the global batch does not divide evenly."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"`batch_size` is the global batch and must divide evenly over the {replicas} replicas "
            f"in sync. Received: batch_size={batch_size}"
        )
    return batch_size // replicas


def distributed_pipelines(strategy, train_data, validation_data, batch_size):
    """Per-worker input pipelines for a global `batch_size`.

    Each worker keeps its own shard of the examples (`Dataset.shard` by its
    input pipeline id, before shuffling, so the shards are disjoint whatever
    the seeds), shuffles and repeats it, and batches it by the per-replica
    batch `batch_size // num_replicas_in_sync`: one step of the cluster
    consumes `batch_size` examples. Validation is sharded the same way, in
    order and not repeated; uneven shards are padded by `tf.distribute` so
    every worker runs the same number of steps.

    Returns:
        `(train, validation)` distributed datasets; `validation` is `None`
        without `validation_data`.
    """
    from recipes import pipeline

    per_replica = per_replica_batch_size(batch_size, strategy)
    train, num_train = pipeline.to_dataset(train_data, "train_data")
    workers = _num_workers(strategy)
    if num_train is not None and num_train < workers:
        raise ValueError(f"`train_data` has {num_train} examples, fewer than the {workers} workers to share them")
    buffer = min(num_train or pipeline.DEFAULT_SHUFFLE_BUFFER, pipeline.DEFAULT_SHUFFLE_BUFFER)

    def train_fn(context):
        shard = train.shard(context.num_input_pipelines, context.input_pipeline_id)
        return shard.shuffle(buffer, reshuffle_each_iteration=True).repeat().batch(per_replica).prefetch(2)

    distributed_train = strategy.distribute_datasets_from_function(train_fn)
    if validation_data is None:
        return distributed_train, None
    validation, _ = pipeline.to_dataset(validation_data, "validation_data")

    def validation_fn(context):
        shard = validation.shard(context.num_input_pipelines, context.input_pipeline_id)
        return shard.batch(per_replica).prefetch(2)

    return distributed_train, strategy.distribute_datasets_from_function(validation_fn)


def _num_workers(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    return sum(len(tasks) for name, tasks in resolver.cluster_spec().as_dict().items() if name in ("chief", "worker"))


def _as_floats(results):
    return {name: float(value) for name, value in results.items()}


def custom_fit(
    model,
    train_data,
    *,
    batch_size,
    steps_per_epoch,
    epochs,
    initial_epoch=0,
    validation_data=None,
    callbacks=(),
    verbose="auto",
):
    """`model.fit` for a model built under any `tf.distribute` strategy, `MultiWorkerMirroredStrategy` included.

    Runs `epochs - initial_epoch` epochs of `steps_per_epoch` steps of
    `model.train_step` on every replica, then `model.test_step` over all of
    `validation_data`, calling the Keras callbacks as `model.fit` does. Epoch
    logs are cluster-wide (the metrics' variables are summed over all
    replicas), so every worker takes the same early-stopping and checkpoint
    decisions; batch logs are this worker's first replica's. `recipes.fit`
    calls it for `MultiWorkerMirroredStrategy` (see the module docstring for
    why not `model.fit`).

    Example:

    ```python
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = make_compiled_model()
    history = recipes.distribute.custom_fit(model, (x, y), batch_size=64, steps_per_epoch=100, epochs=5)
    ```

    Args:
        model: A compiled `keras.Model`, created under the strategy it trains with.
        train_data: `(x, y)` arrays (or dicts of arrays) or an unbatched,
            unrepeated `tf.data.Dataset`; it is sharded, shuffled and repeated.
        batch_size: Int. The global batch; divisible by the number of replicas.
        steps_per_epoch: Int. Steps of the whole cluster per epoch.
        epochs: Int. Index of the last epoch, as in `model.fit`.
        initial_epoch: Int, defaults to 0.
        validation_data: Optional, in the same forms as `train_data`.
        callbacks: Keras callbacks, defaults to `()`.
        verbose: 0, 1, 2 or `"auto"` (2), defaults to `"auto"`. Non-chief
            workers are silent.

    Returns:
        The `keras.callbacks.History` of the epochs run.
    """
    import keras
    import tensorflow as tf

    strategy = model.distribute_strategy
    verbose = 2 if verbose == "auto" else verbose
    if not is_chief(strategy):
        verbose = 0
    with strategy.scope():
        train, validation = distributed_pipelines(strategy, train_data, validation_data, batch_size)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)

        @tf.function
        def train_function(iterator):
            return strategy.run(model.train_step, args=(next(iterator),))

        def evaluate(batch):
            model.test_step(batch)
            return tf.constant(True)

        def test_step(batch):
            # A worker whose validation shard ran out gets empty batches; Keras's loss of one is NaN.
            size = tf.shape(tf.nest.flatten(batch)[0])[0]
            return tf.cond(size > 0, lambda: evaluate(batch), lambda: tf.constant(False))

        @tf.function(reduce_retracing=True)  # the last, partial batch has another shape
        def test_function(batch):
            strategy.run(test_step, args=(batch,))

        history = keras.callbacks.History()
        callback_list = keras.callbacks.CallbackList(
            [*callbacks, history],
            add_progbar=verbose != 0,
            model=model,
            verbose=verbose,
            epochs=epochs,
            steps=steps_per_epoch,
        )
        model.stop_training = False
        iterator = iter(train)
        logs = {}
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            for step in range(steps_per_epoch):
                callback_list.on_train_batch_begin(step)
                outputs = train_function(iterator)
                callback_list.on_train_batch_end(step, _as_floats(_first_replica(strategy, outputs)))
            logs = _as_floats(model.get_metrics_result())  # cross-replica: summed over the cluster
            if validation is not None:
                model.reset_metrics()
                for batch in validation:
                    test_function(batch)
                logs.update({f"val_{name}": value for name, value in _as_floats(model.get_metrics_result()).items()})
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback_list.on_train_end(logs)
    return history


def _first_replica(strategy, outputs):
    return {name: strategy.experimental_local_results(value)[0] for name, value in outputs.items()}
