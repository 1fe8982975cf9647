"""LitServe serving the keyed signature of an export: one row per request at POST /predict, batched by LitServe.

One inference worker on the CPU, one API server process, `max_batch_size` and `batch_timeout` from the
command line, the ZeroMQ queue between them (`fast_queue`, LitServe's setting for hundreds of requests/s),
bound to 127.0.0.1.

Request `{"text": "...", "key": "r1"}`, answer `{"key": "r1", "probabilities": [...], "label": "..."}`.
"""

import litserve as ls
import peer_args
from keyed_model import KeyedModel


class KeyedAPI(ls.LitAPI):
    """One JSON row in, one JSON row out; LitServe gathers the rows of concurrent requests into `predict`."""

    def __init__(self, export_dir, stats_path, **batching):
        super().__init__(**batching)
        self.export_dir, self.stats_path = export_dir, stats_path

    def setup(self, device):
        self.model = KeyedModel(self.export_dir, self.stats_path)

    def decode_request(self, request):
        return request

    def batch(self, rows):
        return list(rows)

    def predict(self, rows):
        return self.model(rows)

    def unbatch(self, answers):
        return answers

    def encode_response(self, answer):
        return answer


def main():
    args = peer_args.parse(__doc__.split("\n\n")[0])
    api = KeyedAPI(args.export, args.stats, max_batch_size=args.max_batch, batch_timeout=args.wait_ms / 1e3)
    server = ls.LitServer(api, accelerator="cpu", devices=1, workers_per_device=1, fast_queue=True)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=1, log_level="warning", generate_client_file=False)


if __name__ == "__main__":
    main()
