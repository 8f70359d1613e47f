"""``driftd check``: gate a model's input data in a CI pipeline, before a deployment, with the
detectors and window checks the model's configuration already runs in the daemon."""
