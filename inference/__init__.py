"""Inference: the worker that turns trials into predictions, and prediction sinks."""
