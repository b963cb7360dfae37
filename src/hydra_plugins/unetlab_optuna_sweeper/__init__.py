"""Hydra sweeper over Optuna's ask-and-tell interface (``hydra/sweeper=optuna``)."""
