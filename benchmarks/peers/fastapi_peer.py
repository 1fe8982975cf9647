"""FastAPI + uvicorn serving the keyed signature of an export: one row per request at POST /predict, no batching.

FastAPI has no batching of its own: each request runs the signature on its one row, in FastAPI's thread
pool (a plain `def` endpoint), as its documentation and most tutorials serve a model. One uvicorn worker
bound to 127.0.0.1. `--max-batch` and `--wait-ms` are accepted for a common command line and unused.

Request `{"text": "...", "key": "r1"}`, answer `{"key": "r1", "probabilities": [...], "label": "..."}`.
"""

import typing

import fastapi
import peer_args
import uvicorn
from keyed_model import KeyedModel


def app_for(model):
    """The FastAPI app answering POST /predict with `model` on the request's row."""
    app = fastapi.FastAPI()

    @app.post("/predict")
    def predict(row: dict[str, typing.Any]) -> dict[str, typing.Any]:
        return model([row])[0]

    return app


def main():
    args = peer_args.parse(__doc__.split("\n\n")[0])
    app = app_for(KeyedModel(args.export, args.stats))
    uvicorn.run(app, host="127.0.0.1", port=args.port, workers=1, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
