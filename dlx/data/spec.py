"""What one example of a data set is, as a model sees it: the description every model factory
receives, so that a model can build its first and last layers from it and declare what it reads.

Three kinds of input:

* ``features``: a vector, ``shape = (D,)``, e.g. 2-D points of the moons;
* ``image``: ``shape = (C, H, W)``, e.g. MNIST's (1, 28, 28), stored as (N, C, H, W) arrays;
* ``tokens``: a sequence of ``shape = (T,)`` integer ids below ``vocab``; the targets are tokens
  of the same vocabulary, one per position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("features", "image", "tokens")
WORDS = {"features": "feature vectors", "image": "images", "tokens": "token sequences"}


@dataclass(frozen=True)
class DataSpec:
    kind: str               # one of KINDS
    shape: tuple[int, ...]  # one input: (D,) | (C, H, W) | (T,)
    n_classes: int          # classes to tell apart; for tokens, the vocabulary

    def __post_init__(self):
        ndim = {"features": 1, "image": 3, "tokens": 1}
        if self.kind not in KINDS or len(self.shape) != ndim[self.kind]:
            raise ValueError(f"bad data description: {self.kind} of shape {self.shape}")

    @classmethod
    def features(cls, d: int, n_classes: int) -> "DataSpec":
        return cls("features", (int(d),), int(n_classes))

    @classmethod
    def image(cls, channels: int, height: int, width: int, n_classes: int) -> "DataSpec":
        return cls("image", (int(channels), int(height), int(width)), int(n_classes))

    @classmethod
    def tokens(cls, vocab: int, seq_len: int) -> "DataSpec":
        return cls("tokens", (int(seq_len),), int(vocab))

    @property
    def size(self) -> int:
        """Numbers per input: D, C*H*W, or T."""
        return math.prod(self.shape)

    @property
    def vocab(self) -> int | None:
        return self.n_classes if self.kind == "tokens" else None

    @property
    def seq_len(self) -> int | None:
        return self.shape[0] if self.kind == "tokens" else None

    @property
    def n_out(self) -> int:
        """Logits per prediction: one for two classes (a sigmoid), else one per class/token."""
        return 1 if self.kind != "tokens" and self.n_classes == 2 else self.n_classes

    def describe(self) -> str:
        """E.g. 'feature vectors of 2 numbers', '1x28x28 images', 'token sequences of length
        8 over 12 symbols'."""
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
