"""What each phase's report holds, and which records fill it: the newest *completed* run or sweep
of each of the phase's experiments under the runs directory, unless the learner names one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Section:
    experiment: str
    title: str
    optional: bool = False  # left out (with a line saying how to add it) when it has no run
    slot: str = "What this shows"  # the heading of the learner's own explanation


@dataclass(frozen=True)
class Phase:
    number: int
    title: str
    question: str  # what the phase asks, stated as the plan states it; the answer is the learner's
    sections: tuple[Section, ...]


PHASES = {
    1: Phase(1, "Optimization: conditioning, optimizers and learning rates",
             "How do the curvature of the loss, the optimizer and the learning rate decide how "
             "fast (and whether) gradient descent converges?",
             (Section("conditioning", "Conditioning: iterations against the condition number κ"),
              Section("optimizers", "SGD, momentum, Adam and the others on one MLP"),
              Section("learning_rate", "Learning rate too low, right, too high"),
              Section("lr_range", "The learning-rate range test"),
              Section("lr_schedules", "Learning-rate decay schedules"),
              Section("gd_variants", "Batch, stochastic and mini-batch gradient descent", True),
              Section("loss_surface", "Loss surfaces and optimizer trajectories", True),
              Section("logreg", "Logistic regression from scratch", True))),
    2: Phase(2, "Gradient flow in deep networks: a technical report",
             "How do gradients flow backwards through a deep network, and what do "
             "initialization, activations, batch size and regularization do to them?",
             (Section("mnist_mlp", "A two-layer MLP on MNIST, backprop by hand"),
              Section("init", "Initialization and the scale of signals across depth"),
              Section("grad_flow", "Gradient flow through deep sigmoid, tanh and ReLU networks",
                      slot="Your gradient-flow discussion"),
              Section("batch_noise", "Batch size and gradient noise"),
              Section("regularization", "L1, L2 and elastic-net regularization"),
              Section("dropout", "Dropout and DropConnect"))),
    3: Phase(3, "Transformers: scaling, depth against width, attention",
             "How does a small transformer's loss scale with parameters, data and compute, "
             "what does it attend to, and what does attention buy over recurrence?",
             (Section("scaling", "Loss against model size, L(N)", slot="Why transformers scale"),
              Section("scaling_data", "Loss against data, L(D)"),
              Section("scaling_compute", "Compute-optimal size: IsoFLOP profiles"),
              Section("depth_width", "Depth against width at a fixed parameter budget"),
              Section("transformer", "Attention maps of a tiny transformer"),
              Section("char_lm", "Recurrent against attention: throughput and loss", True))),
}

# sections of reports built from named records only (no --phase): the plan's order
ORDER = [s.experiment for p in PHASES.values() for s in p.sections]


def command(experiment: str) -> str:
    """The command that makes the experiment's record: the plan's, else its sweep."""
    from dlx.plan import PLAN

    for *_, exp, cmd in PLAN:
        if exp == experiment:
            return cmd
    return f"dlx run -m experiment={experiment}"


def phase_of(experiment: str | None) -> int | None:
    for p in PHASES.values():
        if any(s.experiment == experiment for s in p.sections):
            return p.number
    return None


def _experiment(path: Path) -> str | None:
    """The experiment of a run or sweep (its first member's summary), None if unreadable."""
    from dlx.errors import UsageError
    from dlx.records.store import is_sweep, read_summary, sweep_members

    members = sweep_members(path) if is_sweep(path) else [path]
    for member in members:
        try:
            return read_summary(member).get("experiment")
        except UsageError:
            continue
    return None


def state(path: Path) -> tuple[bool, str]:
    """(finished, how it stands): a run is finished when completed; a sweep when it has every
    member it asked for and each completed or diverged (a diverged member is a result, e.g. the
    too-high learning rate), at least one completed."""
    from dlx.errors import UsageError
    from dlx.records.store import is_sweep, read_summary, sweep_members
    from dlx.records.sweeps import expected_members

    if not is_sweep(path):
        try:
            status = read_summary(path).get("status")
        except UsageError:
            return False, "unreadable"
        return status == "completed", str(status)
    statuses = []
    for member in sweep_members(path):
        try:
            statuses.append(read_summary(member).get("status"))
        except UsageError:
            statuses.append("unreadable")
    asked = expected_members(path) or len(statuses)
    done = sum(s in ("completed", "diverged") for s in statuses)
    finished = done == len(statuses) >= asked and "completed" in statuses
    return finished, f"{done} of {asked} members finished"


@dataclass
class Pick:
    """The record chosen for a section, or why there is none."""
    section: Section
    path: Path | None = None
    newest_unfinished: tuple[Path, str] | None = None  # the newest record, if not finished


def records(root: Path) -> dict[str, list[Path]]:
    """The runs and sweeps directly under ``root`` by experiment ("" for none), oldest first
    (their names start with the time they were made)."""
    from dlx.records.store import is_run, is_sweep

    found: dict[str, list[Path]] = {}
    if root.is_dir():
        for path in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name):
            if is_sweep(path) or is_run(path):
                found.setdefault(_experiment(path) or "", []).append(path)
    return found


def pick(phase: Phase, root: Path, given: dict[str, Path],
         found: dict[str, list[Path]] | None = None) -> list[Pick]:
    """For each section, the record named by the learner (``given``: experiment -> path) or the
    newest finished record under ``root``. Records of the plan's shape come first: a sweep for
    an experiment the plan runs with ``-m`` (a single run poking at one setting does not replace
    the comparison), a single run otherwise; the other shape is the fallback."""
    from dlx.plan import PLAN, swept
    from dlx.records.store import is_sweep

    planned = {row[3] for row in PLAN}
    found = records(root) if found is None else found  # ``records(root)``, if read already
    picks = []
    for section in phase.sections:
        if section.experiment in given:
            picks.append(Pick(section, given[section.experiment]))
            continue
        candidates = found.get(section.experiment, [])[::-1]  # newest first (ids start with time)
        want_sweep = swept(section.experiment) or section.experiment not in planned
        choice = None
        for shape in (want_sweep, not want_sweep):
            choice = next((p for p in candidates if is_sweep(p) == shape and state(p)[0]), None)
            if choice:
                break
        unfinished = None
        if candidates and candidates[0] != choice:
            unfinished = (candidates[0], state(candidates[0])[1])
        picks.append(Pick(section, choice, unfinished))
    return picks
