"""The HTTP API: handlers validate and delegate; the pipeline runs in the worker's executor."""
