"""Keyed predict requests from a process of their own: `python _batched_client.py REST_URL GRPC_TARGET JOBS THREADS`.

JOBS is a JSON file of `[{"protocol": "rest" or "grpc", "texts": [...], "keys": [...]}, ...]`, sent to the model
"text" with `serving.client`. Once its imports are done the process prints "ready" and waits for a line on stdin,
so that every client process starts sending at the same time; then it runs the jobs on THREADS threads and prints
one JSON line per job: `{"job": index, "answer": [row, ...]}` or `{"job": index, "error": "..."}`.
"""

import concurrent.futures
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow  # noqa: E402, F401 - GrpcClient imports it on its first call: imported before "ready"

from serving.client import GrpcClient, RestClient  # noqa: E402


def main(rest_url, grpc_target, jobs_path, threads):
    with open(jobs_path) as f:
        jobs = json.load(f)
    clients = {"rest": RestClient(rest_url, model="text"), "grpc": GrpcClient(grpc_target, model="text")}
    print("ready", flush=True)
    sys.stdin.readline()

    def run(index):
        job = jobs[index]
        try:
            return {"job": index, "answer": clients[job["protocol"]].predict({"text": job["texts"]}, keys=job["keys"])}
        except Exception as error:  # reported to the test, which fails on it
            return {"job": index, "error": f"{type(error).__name__}: {error}"}

    with concurrent.futures.ThreadPoolExecutor(int(threads)) as pool:
        for result in pool.map(run, range(len(jobs))):
            print(json.dumps(result), flush=True)
    clients["grpc"].close()


if __name__ == "__main__":
    main(*sys.argv[1:])
