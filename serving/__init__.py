"""Export, serving and clients: from a trained Keras model to TF Serving's REST and gRPC APIs."""
