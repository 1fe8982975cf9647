"""Single-request latency and requests/s of recipes-model-server, beside the in-process signature call.

The text baseline (bag of words) is exported, served by `recipes-model-server`
in its own process, and sent one keyed review per request, one request at a
time, over REST (`urllib`, JSON) and gRPC (`PredictionServiceStub`). The same
request is timed as a direct call of the SavedModel signature in this process,
the floor a server adds its protocol to. The three are timed in alternating
rounds; latencies are pooled.

Usage: python benchmarks/bench_server.py [--requests 300] [--rounds 3]
"""

import argparse
import json
import os
import tempfile
import time
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import recipes  # noqa: E402
import serving  # noqa: E402
from models import text  # noqa: E402
from serving.client import GrpcClient  # noqa: E402
from serving.load import ServerProcess  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per side per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    recipes.set_seed(0)
    reviews = recipes.datasets.load_rotten_tomatoes()
    model = text.bag_of_words_classifier(reviews.text, 2, class_names=["rotten", "fresh"])
    model.fit(reviews.text.to_numpy(), reviews.label.to_numpy(), epochs=1, verbose=0)
    export_dir = os.path.join(tempfile.mkdtemp(), "text")
    path = serving.export_model(model, export_dir)
    review = reviews.text[0]

    signature = tf.saved_model.load(path).signatures["serving_default"]
    server = ServerProcess(["--model_name=text", f"--model_base_path={export_dir}"])
    grpc_client = GrpcClient(server.grpc_address, model="text")
    rest_url = f"http://{server.rest_address}/v1/models/text:predict"
    body = json.dumps({"instances": [{"text": review, "key": "r-1"}]}).encode()

    def in_process():
        signature(text=tf.constant([review]), key=tf.constant(["r-1"]))

    def rest():
        with urllib.request.urlopen(urllib.request.Request(rest_url, data=body), timeout=30) as response:
            json.loads(response.read())

    def grpc():
        grpc_client.predict({"text": [review]}, keys=["r-1"])

    sides = {"in-process signature": in_process, "REST": rest, "gRPC": grpc}
    latencies = {name: [] for name in sides}
    try:
        for call in sides.values():
            for _ in range(20):  # warm-up: connections, tracing, caches
                call()
        for _ in range(args.rounds):
            for name, call in sides.items():
                for _ in range(args.requests):
                    start = time.perf_counter()
                    call()
                    latencies[name].append(time.perf_counter() - start)
    finally:
        grpc_client.close()
        server.stop()

    print(f"Text baseline, 1 review per request, {args.rounds} x {args.requests} sequential requests per side")
    print(f"{'side':<22}{'p50 ms':>10}{'p99 ms':>10}{'requests/s':>13}{'p50 / in-process':>19}")
    floor = np.percentile(latencies["in-process signature"], 50)
    for name, values in latencies.items():
        p50, p99 = np.percentile(values, 50), np.percentile(values, 99)
        print(f"{name:<22}{p50 * 1e3:>10.2f}{p99 * 1e3:>10.2f}{len(values) / sum(values):>13,.0f}{p50 / floor:>19.2f}")


if __name__ == "__main__":
    main()
