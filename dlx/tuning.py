"""Per-arm tuning: a sweep whose arms each run at their own best setting.

``hydra/sweeper=tuned`` (in an experiment's defaults, or on the command line) runs a sweep in two
stages. The *arms* are the sweep's members without their seed (``optimizer=sgd,adam seed=0,1,2``
has two arms). First every arm tries every setting of the grid (``hydra.sweeper.tune.grid``, the
product over its keys) on the tuning seeds, at a short budget (``tune.budget``: overrides such
as ``epochs: 5``), each trial a run of its own in ``SWEEP/tune/N``; the setting whose trials
score best on the run's ``monitor`` (a validation metric, ``best:val/loss`` by default; the
mean over the tuning seeds, a failed or diverged trial never chosen) is the arm's. Then the
sweep's members run, every seed of every arm at the arm's setting, as members 0, 1, ... of the
sweep as usual. ``tuning.csv`` keeps every trial and the choice; a chosen value at the edge of
the grid is said, since the optimum may lie beyond it.

Why: a comparison is only as fair as each arm's tuning (Choi et al. 2019, "On empirical
comparisons of optimizers"; Schmidt et al. 2021, "Descending through a crowded valley"). One
learning rate shared by SGD and Adam ranks the learning rate, not the optimizers.

The launcher runs both stages (basic or joblib alike), and running the sweep again reuses every
finished trial and member: each is a run, skipped when its record is there.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

from dlx.errors import Rejected, UsageError
from dlx.records.files import MULTIRUN, TUNING, write_bytes
from dlx.records.tuning import maximised

log = logging.getLogger("dlx")

SEED = "seed"
TUNE_DIR = "tune"
COLUMNS = ("arm", "setting", "seed", "budget", "monitor", "objective", "mean_objective", "chosen",
           "run")


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def _values(raw, what: str) -> list[str]:
    """A list of override values from YAML (a list) or the command line (``a,b,c``)."""
    if isinstance(raw, (list, tuple, ListConfig)):
        values = [str(v) for v in raw]
    elif isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
        values = [v.strip() for v in str(raw).split(",")]
    else:
        raise UsageError(f"{what} must be a list of values (or a,b,c), got {raw!r}")
    if not values or any(not v for v in values):
        raise UsageError(f"{what} must be a non-empty list of values, got {raw!r}")
    return values


@dataclass
class Spec:
    """``hydra.sweeper.tune``: ``grid`` (key -> values tried), ``budget`` (key -> value for the
    tuning runs only), ``seeds`` (of the tuning runs)."""

    grid: dict[str, list[str]]
    budget: dict[str, str] = field(default_factory=dict)
    seeds: list[str] = field(default_factory=lambda: ["0"])

    @classmethod
    def parse(cls, node) -> "Spec":
        tune = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) \
            else dict(node or {})
        unknown = set(tune) - {"grid", "budget", "seeds"}
        if unknown:
            raise UsageError(f"unknown key(s) in hydra.sweeper.tune: {', '.join(sorted(unknown))} "
                             "(valid: grid, budget, seeds)")
        grid = tune.get("grid") or {}
        if not isinstance(grid, dict) or not grid:
            raise UsageError("hydra.sweeper.tune.grid must name at least one key and the values "
                             "each arm tries, e.g. {optimizer.lr: [0.001, 0.01, 0.1]}")
        budget = tune.get("budget") or {}
        if not isinstance(budget, dict):
            raise UsageError(f"hydra.sweeper.tune.budget must map keys to values, got {budget!r}")
        if SEED in grid or SEED in budget:
            raise UsageError("the seed is not tuned: hydra.sweeper.tune.seeds names the tuning "
                             "runs' seeds")
        return cls({k: _values(v, f"hydra.sweeper.tune.grid.{k}") for k, v in grid.items()},
                   {k: str(v) for k, v in budget.items()},
                   _values(tune.get("seeds", [0]), "hydra.sweeper.tune.seeds"))

    def settings(self) -> list[tuple[str, ...]]:
        """Every setting an arm tries: the product over the grid's keys, as overrides."""
        return [tuple(f"{k}={v}" for k, v in zip(self.grid, values))
                for values in itertools.product(*self.grid.values())]


def _arm(member: list[str]) -> tuple[str, ...]:
    return tuple(o for o in member if _key(o) != SEED)


def arms_of(members: list[list[str]]) -> dict[tuple[str, ...], list[list[str]]]:
    """The sweep's members grouped by arm (their overrides without the seed), in order."""
    arms: dict[tuple[str, ...], list[list[str]]] = {}
    for member in members:
        arms.setdefault(_arm(member), []).append(member)
    return arms


def labels(arms) -> dict[tuple[str, ...], str]:
    """Each arm named by the overrides that set it apart from the others (``optimizer=adam``,
    not the ``epochs=5`` all of them share)."""
    values: dict[str, set[str]] = {}
    for arm in arms:
        for o in arm:
            values.setdefault(_key(o), set()).add(o)
    differs = {k for k, v in values.items() if len(v) > 1 or any(k not in map(_key, a) for a in arms)
               or len(arms) == 1}  # one arm: all of what sets it
    return {arm: " ".join(o for o in arm if _key(o) in differs) or "the base config"
            for arm in arms}


def _with(overrides, extra) -> list[str]:
    """``overrides`` with ``extra`` replacing any override of the same key."""
    keys = {_key(o) for o in extra}
    return [o for o in overrides if _key(o) not in keys] + list(extra)


def trials_of(arms, spec: Spec) -> list[tuple[tuple[str, ...], tuple[str, ...], str, list[str]]]:
    """(arm, setting, seed, overrides) of every tuning run, numbered in order into tune/N."""
    trials = []
    budget = [f"{k}={v}" for k, v in spec.budget.items()]
    for arm in arms:
        for setting in spec.settings():
            for seed in spec.seeds:
                n = len(trials)
                overrides = _with(arm, [f"{SEED}={seed}", *budget, *setting,
                                        f"hydra.sweep.subdir={TUNE_DIR}/{n}"])
                trials.append((arm, setting, seed, overrides))
    return trials


def choose(trials, objectives: list[float]) -> tuple[dict, dict]:
    """(arm -> chosen setting, (arm, setting) -> mean objective): the setting with the lowest
    mean objective over its seeds; inf (failed, diverged) counts as never chosen."""
    means: dict[tuple, list[float]] = {}
    for (arm, setting, _, _), objective in zip(trials, objectives):
        means.setdefault((arm, setting), []).append(objective)
    mean = {k: (math.fsum(v) / len(v) if all(math.isfinite(x) for x in v) else math.inf)
            for k, v in means.items()}
    chosen = {}
    for (arm, setting), m in mean.items():  # in grid order: ties go to the first
        if math.isfinite(m) and (arm not in chosen or m < mean[(arm, chosen[arm])]):
            chosen[arm] = setting
    return chosen, mean


def table(trials, objectives, chosen, mean, monitor: str, named: dict, budget: str,
          follows: dict | None = None) -> bytes:
    """tuning.csv: one row per trial (``objective``: the monitor as minimised, accuracies
    negated; ``mean_objective``: over the setting's seeds; ``chosen``: 1 for the arm's)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for (arm, setting, seed, overrides), objective in zip(trials, objectives):
        subdir = next(o for o in overrides if o.startswith("hydra.sweep.subdir="))
        writer.writerow([named[arm], " ".join(setting), seed, budget, monitor, repr(objective),
                         repr(mean[(arm, setting)]), int(chosen.get(arm) == setting),
                         subdir.partition("=")[2]])
    for arm, leader in (follows or {}).items():  # no trials of its own: its reference's choice
        writer.writerow([named[arm], " ".join(chosen[arm]), "", budget, monitor, "nan", "nan", 1,
                         f"as {named[leader]}"])
    return out.getvalue().encode()


def _edges(spec: Spec, chosen: dict, named: dict) -> list[str]:
    """Warnings for a chosen value at the edge of a grid of 3 or more values."""
    said = []
    for arm, setting in chosen.items():
        for override, (key, values) in zip(setting, spec.grid.items()):
            value = override.partition("=")[2]
            if len(values) >= 3 and value in (values[0], values[-1]):
                said.append(f"{named[arm]}: the best {key} ({value}) is at the "
                            f"edge of the grid {','.join(values)}: the optimum may lie beyond "
                            f"it (widen hydra.sweeper.tune.grid)")
    return said


class TunedSweeper(BasicSweeper):
    """Hydra's basic sweeper with a tuning stage per arm before the members (see the module)."""

    def __init__(self, max_batch_size: int | None = None, params: dict | None = None,
                 tune: Any = None) -> None:
        super().__init__(max_batch_size, params)
        self.tune = tune

    def _followers(self, arms) -> dict:
        """Arms that run a learner's implementation of a dlx option (``reference: adam``) next
        to an arm of that option: each follows that arm's choice instead of being tuned, so the
        learner's code is compared with dlx's at identical settings (as in every other sweep)."""
        from dlx import app
        from dlx.learner import GROUPS, is_learner

        follows = {}
        loader = self.hydra_context.config_loader
        for arm in arms:
            try:
                cfg = loader.load_sweep_config(self.config, list(arm))
                app._adopt(cfg)
            except Exception:  # noqa: BLE001 - composition errors are said by the checks later
                continue
            for group in GROUPS:
                node = cfg.get(group)
                reference = node.get("reference") if node is not None and \
                    is_learner(OmegaConf.to_container(node)) else None
                if not reference:
                    continue
                leader = tuple(f"{group}={reference}" if _key(o) == group else o for o in arm)
                if leader != arm and leader in arms:
                    follows[arm] = leader
        return follows

    def sweep(self, arguments: list[str]) -> Any:
        from dlx import app

        try:
            spec = Spec.parse(self.tune)
        except UsageError as e:
            raise Rejected(e) from None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params = self._parse_config() + list(arguments)
        members = [m for b in self.split_arguments(parser.parse_overrides(params), None) for m in b]
        fixed = sorted({_key(o) for m in members for o in m} & set(spec.grid))
        if fixed:
            raise Rejected(UsageError(
                f"{', '.join(fixed)} is tuned per arm (hydra.sweeper.tune.grid): do not also set "
                f"it in the sweep; to compare at one shared value, use hydra/sweeper=basic"))
        arms = arms_of(members)
        follows = self._followers(arms)
        trials = trials_of([a for a in arms if a not in follows], spec)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        app._State.n_members = len(members)
        app._check_sweep_dir(sweep_dir, len(members))
        app._check_members(self, [t[3] for t in trials], 0)  # all trials, before any runs
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / MULTIRUN)
        log.info(f"tuning {', '.join(spec.grid)} for {len(arms)} arm(s): {len(spec.settings())} "
                 f"setting(s) x {len(spec.seeds)} seed(s) each"
                 + (f" at {' '.join(f'{k}={v}' for k, v in spec.budget.items())}"
                    if spec.budget else "") + f", into {sweep_dir / TUNE_DIR}")
        tried = self.launcher.launch([t[3] for t in trials], initial_job_idx=0)
        objectives = [float(r.return_value) for r in tried]
        chosen, mean = choose(trials, objectives)
        for arm, leader in follows.items():  # the learner's code at its reference's setting
            if leader in chosen:
                chosen[arm] = chosen[leader]
        monitor = spec.budget.get("monitor") or str(self.config.get("monitor", "best:val/loss"))
        named = labels(arms)
        budget = " ".join(f"{k}={v}" for k, v in spec.budget.items()) or "the members' own"
        write_bytes(sweep_dir / TUNING, table(trials, objectives, chosen, mean, monitor, named,
                                              budget, {a: follows[a] for a in follows
                                                       if follows[a] in chosen}))
        lost = [named[arm] for arm in arms if arm not in chosen]
        if lost:
            raise Rejected(UsageError(
                f"no setting of {'; '.join(lost)} trained (every trial failed or diverged: see "
                f"{sweep_dir / TUNING}); widen or move hydra.sweeper.tune.grid"), code=1)
        for arm, setting in chosen.items():
            if arm in follows:
                continue
            log.info(f"tuned: {named[arm]}: {' '.join(setting)} "
                     f"({monitor} {_shown(mean[(arm, setting)], monitor)})")
        for arm, leader in follows.items():
            if arm in chosen:
                log.info(f"tuned: {named[arm]}: {' '.join(chosen[arm])} (as {named[leader]}, "
                         f"the option it implements: compared at identical settings)")
        for line in _edges(spec, {a: c for a, c in chosen.items() if a not in follows}, named):
            log.warning(line)
        batch = [_with(m, chosen[_arm(m)]) for m in members]  # the members' own order
        app._check_members(self, batch, 0)
        results = self.launcher.launch(batch, initial_job_idx=0)
        for r in results:
            _ = r.return_value  # a job that raised raises here, as the basic sweeper does
        return [tried, results]


def _shown(objective: float, monitor: str) -> str:
    key = monitor.rpartition(":")[2]
    value = -objective if maximised(key) else objective
    return f"{value:.4g}"
