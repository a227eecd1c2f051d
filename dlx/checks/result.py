"""What a check returns: the stages, the first that failed and why, the compared tensors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RTOL = 1e-9  # float64: the same maths in another order differs by ~1e-15 relative
GRAD_RTOL = 1e-7  # against centred finite differences (h = 1e-6): truncation and round-off


@dataclass
class Row:
    """One compared tensor: ``name`` at ``step`` (after that many steps)."""
    step: int
    name: str
    max_abs_diff: float
    rel_error: float
    ok: bool
    tol: float = RTOL  # what passes


@dataclass
class Result:
    passed: bool
    stages: list[tuple[str, str]] = field(default_factory=list)  # (stage, passed/failed/...)
    failed: str | None = None          # the failing stage
    diagnosis: str = ""                # what is wrong and why, first
    revisit: str = ""                  # the step of the derivation to look at again
    variant: str | None = None         # an accepted variant it matched (a pass, with a note)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trace: str = ""                    # the learner's own frames, when their code raised
    claim: str = "computes what {} computes"  # what a pass says (random draws: a distribution)
    see: str = ""                      # where the maths is written out (a failure shows it)

    def fail(self, stage: str, diagnosis: str, revisit: str = "") -> "Result":
        """Stop at ``stage``, saying what is wrong (and what to look at again): a failure,
        whatever the stages before it said."""
        self.passed = False
        self.stages.append((stage, "failed"))
        self.failed, self.diagnosis, self.revisit = stage, diagnosis, revisit
        return self


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a|, |b|) over the entries (0 for equal arrays, NaN-aware)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return float("inf")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return 0.0 if np.array_equal(a, b, equal_nan=True) else float("inf")
    scale = max(float(np.abs(a).max(initial=0)), float(np.abs(b).max(initial=0)), 1e-300)
    return float(np.abs(a - b).max(initial=0)) / scale
