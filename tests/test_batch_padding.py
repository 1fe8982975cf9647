"""pad_variable_length_inputs: sequences of other lengths share a batch, padded as TF Serving pads them."""

import concurrent.futures

import numpy as np
import pytest
import tensorflow as tf

from serving.batching import BatchingParameters
from serving.client import GrpcClient, RestClient
from serving.manager import ModelConfig
from serving.server import ModelServer


def _variable_length_model(path):
    """A SavedModel over sequences of any length: each row's first and last values, and the length it saw."""

    class Sequences(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.float32, name="x"),
                tf.TensorSpec([None], tf.string, name="key"),
            ]
        )
        def serve(self, x, key):
            return {"key": key, "first": x[:, 0], "last": x[:, -1], "length": tf.fill(tf.shape(key), tf.shape(x)[1])}

    module = Sequences()
    tf.saved_model.save(module, str(path / "1"), signatures={"serving_default": module.serve})
    return str(path)


@pytest.mark.parametrize("pad", [True, False])
def test_variable_length_inputs_padded_into_one_batch_or_batched_apart(tmp_path, pad):
    base = _variable_length_model(tmp_path / "sequences")
    parameters = BatchingParameters(
        max_batch_size=64,
        batch_timeout_micros=50_000,
        max_enqueued_batches=100,
        num_batch_threads=1,
        pad_variable_length_inputs=pad,
    )
    server = ModelServer(
        [ModelConfig("sequences", base)], grpc_port=0, rest_port=0, poll_seconds=0, batching=parameters
    )
    rng = np.random.default_rng(1)
    jobs = [
        (f"r{i}", rng.normal(size=(int(rng.integers(1, 4)), int(rng.integers(1, 9)))).astype(np.float32))
        for i in range(24)
    ]

    def send(job):
        name, x = job
        client = (
            GrpcClient(f"127.0.0.1:{server.grpc_port}", model="sequences")
            if int(name[1:]) % 2
            else RestClient(f"http://127.0.0.1:{server.rest_port}", model="sequences")
        )
        return client.predict({"x": x}, keys=[f"{name}-{i}" for i in range(len(x))])

    try:
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(send, jobs))
        batches = server.scheduler.batches_run
    finally:
        server.stop()
    for (name, x), answer in zip(jobs, answers):
        assert [row["key"] for row in answer] == [f"{name}-{i}" for i in range(len(x))]
        np.testing.assert_allclose([row["first"] for row in answer], x[:, 0], rtol=1e-6)
        (length,) = {row["length"] for row in answer}
        assert length == x.shape[1] or (pad and length > x.shape[1])
        # TF Serving pads with the request's first value
        np.testing.assert_allclose([row["last"] for row in answer], x[:, -1] if length == x.shape[1] else x.flat[0])
    distinct_lengths = len({x.shape[1] for _, x in jobs})
    if pad:
        assert batches < distinct_lengths, "sequences of other lengths were not padded into one batch"
    else:
        assert batches >= distinct_lengths
