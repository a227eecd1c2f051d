"""What one example of a data set is, as a model sees it: the description every model factory
receives, so that a model can build its first and last layers from it and declare what it reads.

Four kinds of input:

* ``features``: a vector, ``shape = (D,)``, e.g. 2-D points of the moons;
* ``image``: ``shape = (C, H, W)``, e.g. MNIST's (1, 28, 28), stored as (N, C, H, W) arrays;
* ``tokens``: a sequence of ``shape = (T,)`` integer ids below ``vocab``; the targets are tokens
  of the same vocabulary, one per position;
* ``series``: a sequence of real vectors, ``shape = (T, D)`` (D numbers at each of T steps), e.g.
  the adding problem's (value, marker) pairs; regression only, one target vector per sequence.

and four tasks, which choose the loss and the metrics (:func:`dlx.nn.loss_for`,
:mod:`dlx.nn.metrics`):

* ``classification``: integer labels below ``n_classes``; cross-entropy, accuracy;
* ``regression``: ``n_targets`` real numbers per example, (N, n_targets) float arrays
  (standardized on the training split by the data set); squared error, RMSE, MAE, R^2;
* ``sequence``: a token per position (``tokens`` only); token-level cross-entropy, accuracy of
  whole sequences (a toy task's answer is right or wrong as a whole);
* ``language_model``: the next token at every position of a text (``tokens`` only); the same
  loss, scored per token: accuracy, bits per character and perplexity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("features", "image", "tokens", "series")
TASKS = ("classification", "regression", "sequence", "language_model")
TOKEN_TASKS = ("sequence", "language_model")
WORDS = {"features": "feature vectors", "image": "images", "tokens": "token sequences",
         "series": "sequences of real vectors"}


@dataclass(frozen=True)
class DataSpec:
    kind: str               # one of KINDS
    shape: tuple[int, ...]  # one input: (D,) | (C, H, W) | (T,) | (T, D)
    n_classes: int          # classes to tell apart; for tokens, the vocabulary; 0 for regression
    task: str | None = None  # one of TASKS; None: sequence for tokens, else classification
    n_targets: int = 0      # regression: real numbers predicted per example

    def __post_init__(self):
        ndim = {"features": 1, "image": 3, "tokens": 1, "series": 2}
        if self.kind not in KINDS or len(self.shape) != ndim[self.kind]:
            raise ValueError(f"bad data description: {self.kind} of shape {self.shape}")
        if self.task is None:  # frozen: set the default through object.__setattr__
            object.__setattr__(self, "task",
                               "sequence" if self.kind == "tokens" else "classification")
        if self.task not in TASKS or (self.task in TOKEN_TASKS) != (self.kind == "tokens"):
            raise ValueError(f"bad data description: {self.task} on {self.kind}")
        if (self.task == "regression") != (self.n_targets >= 1) or \
                (self.kind == "series" and self.task != "regression"):
            raise ValueError(f"bad data description: {self.task} with {self.n_targets} targets")

    @classmethod
    def features(cls, d: int, n_classes: int) -> "DataSpec":
        return cls("features", (int(d),), int(n_classes))

    @classmethod
    def image(cls, channels: int, height: int, width: int, n_classes: int) -> "DataSpec":
        return cls("image", (int(channels), int(height), int(width)), int(n_classes))

    @classmethod
    def regression(cls, d: int, n_targets: int = 1) -> "DataSpec":
        """Feature vectors of ``d`` numbers, each with ``n_targets`` real targets."""
        return cls("features", (int(d),), 0, "regression", int(n_targets))

    @classmethod
    def series(cls, seq_len: int, d: int, n_targets: int = 1) -> "DataSpec":
        """Sequences of ``seq_len`` steps of ``d`` real numbers, ``n_targets`` real targets each."""
        return cls("series", (int(seq_len), int(d)), 0, "regression", int(n_targets))

    @classmethod
    def tokens(cls, vocab: int, seq_len: int, task: str = "sequence") -> "DataSpec":
        return cls("tokens", (int(seq_len),), int(vocab), task)

    @property
    def size(self) -> int:
        """Numbers per input: D, C*H*W, T, or T*D."""
        return math.prod(self.shape)

    @property
    def vocab(self) -> int | None:
        return self.n_classes if self.kind == "tokens" else None

    @property
    def seq_len(self) -> int | None:
        return self.shape[0] if self.kind == "tokens" else None

    @property
    def n_out(self) -> int:
        """Outputs per prediction: one per regression target; one logit for two classes (a
        sigmoid), else one per class/token."""
        if self.task == "regression":
            return self.n_targets
        return 1 if self.kind != "tokens" and self.n_classes == 2 else self.n_classes

    def describe(self) -> str:
        """E.g. 'feature vectors of 2 numbers', '1x28x28 images', 'token sequences of length
        8 over 12 symbols'."""
        if self.kind == "series":
            return (f"sequences of {self.shape[0]} steps of {self.shape[1]} numbers with "
                    f"{self.n_targets} real target{'s' if self.n_targets > 1 else ''}")
        if self.task == "regression":
            return (f"feature vectors of {self.shape[0]} numbers with {self.n_targets} real "
                    f"target{'s' if self.n_targets > 1 else ''}")
        if self.kind == "features":
            return f"feature vectors of {self.shape[0]} numbers"
        if self.kind == "image":
            return "x".join(map(str, self.shape)) + " images"
        return f"token sequences of length {self.shape[0]} over {self.n_classes} symbols"


def reads(factory) -> tuple[str, ...]:
    """The kinds of data a model factory declares it reads (``factory.reads``; default:
    feature vectors)."""
    return tuple(getattr(factory, "reads", ("features",)))


def check_reads(name: str, factory, spec: DataSpec, models: dict) -> None:
    """ValueError naming the model, the data and the models that can read it, on a mismatch."""
    if spec.kind in reads(factory):
        return
    can = ", ".join(n for n, f in models.items() if spec.kind in reads(f)) or "none"
    wants = " or ".join(WORDS[k] for k in reads(factory))
    raise ValueError(f"model {name!r} reads {wants}; this data set gives {spec.describe()} "
                     f"(models that read {WORDS[spec.kind]}: {can})")
