"""Training: the loop (:mod:`.loop`), the backends that do its arithmetic behind one protocol
(:mod:`.backend`: NumPy from scratch; :mod:`.torch_backend`: torch for comparison) and the
callbacks that watch it (:mod:`.monitors`: probe, an experiment's hooks, timing, early stopping,
checkpoints).

``train(cfg, rec, ...)`` is the entry point; it is looked up here at call time (tests replace
it to inject failures).
"""

from dlx.training.backend import Backend, NumpyBackend, make_backend
from dlx.training.loop import TrainResult, train

__all__ = ["Backend", "NumpyBackend", "TrainResult", "make_backend", "train"]
