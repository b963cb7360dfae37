"""A training run: building the module and data from the config (:mod:`.building`), fitting
and testing it (:mod:`.training`), and resuming it (:mod:`.resume`, :mod:`.resumed_metrics`).

The commands ``train`` and ``eval`` both build their run here.
"""
