"""BentoML serving the keyed signature of an export: rows at POST /predict, batched by BentoML's adaptive batching.

A service with one worker, its `predict` API batchable with `max_batch_size` from the command line. BentoML
has no fixed wait to set: its dispatcher learns the time a batch takes and waits only as long as that
estimate says a fuller batch pays; `max_latency_ms` (10 s here) is the age past which it refuses a request
with 503, set well above any latency of the benchmark so that none is refused. `bentoml serve --host
127.0.0.1` binds the API to loopback; its supervisor and worker talk over a Unix socket. Run as a script,
this file sets the options in the environment and becomes `bentoml serve` (same process id). `--wait-ms`
is accepted for a common command line and unused.

Request `{"rows": [{"text": "...", "key": "r1"}]}`, answer `[{"key": "r1", "probabilities": [...], "label": "..."}]`.
"""

import os
import sys
import typing

import bentoml
from keyed_model import KeyedModel

_ENVIRONMENT = {"export": "KEYED_PEER_EXPORT", "stats": "KEYED_PEER_STATS", "max_batch": "KEYED_PEER_MAX_BATCH"}


@bentoml.service(workers=1)
class KeyedPeer:
    """The export's keyed signature; BentoML concatenates the `rows` of concurrent requests into one call."""

    def __init__(self):
        self.model = KeyedModel(os.environ[_ENVIRONMENT["export"]], os.environ.get(_ENVIRONMENT["stats"]))

    @bentoml.api(
        route="/predict",
        batchable=True,
        max_batch_size=int(os.environ.get(_ENVIRONMENT["max_batch"], "64")),
        max_latency_ms=10_000,
    )
    def predict(self, rows: list[dict[str, typing.Any]]) -> list[dict[str, typing.Any]]:
        return self.model(rows)


def main():
    import peer_args

    args = peer_args.parse(__doc__.split("\n\n")[0])
    os.environ.update(
        {
            _ENVIRONMENT["export"]: os.path.abspath(args.export),
            _ENVIRONMENT["max_batch"]: str(args.max_batch),
            "BENTOML_DO_NOT_TRACK": "True",
        }
    )
    if args.stats:
        os.environ[_ENVIRONMENT["stats"]] = os.path.abspath(args.stats)
    here = os.path.dirname(os.path.abspath(__file__))
    bentoml_cli = os.path.join(os.path.dirname(sys.executable), "bentoml")
    command = [bentoml_cli, "serve", "bentoml_peer:KeyedPeer", "--working-dir", here, "--host", "127.0.0.1"]
    os.execv(bentoml_cli, [*command, "--port", str(args.port), "--quiet"])


if __name__ == "__main__":
    main()
