"""The command line every peer server of `benchmarks/bench_peers.py` takes, so that the benchmark starts them alike."""

import argparse


def parse(description):
    """Parses `--export --port --stats --max-batch --wait-ms` for a peer described by `description`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--export", required=True, help="export folder of serving.export_model")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1 to serve on")
    parser.add_argument("--stats", help='file to keep "<batches> <rows>" in, rewritten after every batch')
    parser.add_argument("--max-batch", type=int, default=64, help="largest batch the peer forms (default 64)")
    parser.add_argument("--wait-ms", type=float, default=5.0, help="ms the peer waits to fill a batch (default 5)")
    return parser.parse_args()
