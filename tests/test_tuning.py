"""Per-arm tuning (hydra/sweeper=tuned, dlx.tuning): each arm of a comparison at its own best
setting. The end-to-end test is a comparison whose ranking flips once each arm is tuned."""

from __future__ import annotations

import csv
import json
import math

import pytest
from conftest import assert_one_error_line

from dlx.errors import UsageError
from dlx.tuning import Spec, arms_of, choose, labels, trials_of

GRID = "hydra.sweeper.tune.grid={optimizer.lr:[0.1,0.3,1.0,3.0]}"


def test_the_spec_says_what_is_wrong():
    spec = Spec.parse({"grid": {"optimizer.lr": "0.01,0.1"}, "budget": {"epochs": 2}})
    assert spec.grid == {"optimizer.lr": ["0.01", "0.1"]} and spec.seeds == ["0"]
    assert spec.settings() == [("optimizer.lr=0.01",), ("optimizer.lr=0.1",)]
    two = Spec.parse({"grid": {"optimizer.lr": [1, 2], "optimizer.momentum": [0.5, 0.9]}})
    assert len(two.settings()) == 4 and two.settings()[1] == ("optimizer.lr=1",
                                                                "optimizer.momentum=0.9")
    for bad, says in [({}, "at least one key"), ({"grid": {"a": []}}, "non-empty"),
                      ({"grid": {"seed": [0, 1]}}, "the seed is not tuned"),
                      ({"grid": {"a": [1]}, "budet": {}}, "unknown key(s) in hydra.sweeper.tune: "
                                                          "budet"),
                      ({"grid": {"a": [1]}, "budget": [1]}, "must map keys to values")]:
        with pytest.raises(UsageError) as e:
            Spec.parse(bad)
        assert says in str(e.value), (bad, str(e.value))


def test_arms_are_the_members_without_their_seed_named_by_what_differs():
    members = [["optimizer=sgd", "seed=0", "epochs=5"], ["optimizer=sgd", "seed=1", "epochs=5"],
               ["optimizer=adam", "seed=0", "epochs=5"], ["optimizer=adam", "seed=1", "epochs=5"]]
    arms = arms_of(members)
    assert list(arms) == [("optimizer=sgd", "epochs=5"), ("optimizer=adam", "epochs=5")]
    assert list(labels(arms).values()) == ["optimizer=sgd", "optimizer=adam"]
    spec = Spec.parse({"grid": {"optimizer.lr": [0.1, 1]}, "budget": {"epochs": 2},
                       "seeds": [0, 1]})
    trials = trials_of(arms, spec)
    assert len(trials) == 2 * 2 * 2
    arm, setting, seed, overrides = trials[3]
    # the budget replaces the members' own epochs; each trial has its own directory tune/N
    assert overrides == ["optimizer=sgd", "seed=1", "epochs=2",
                         "optimizer.lr=1", "hydra.sweep.subdir=tune/3"]
    assert (arm, setting, seed) == (("optimizer=sgd", "epochs=5"), ("optimizer.lr=1",), "1")


def test_the_choice_is_the_best_mean_and_never_a_failed_setting():
    arms = {("a",): [], ("b",): []}
    spec = Spec.parse({"grid": {"lr": [1, 2, 3]}, "seeds": [0, 1]})
    trials = trials_of(arms, spec)
    objectives = [0.5, 0.5,   0.2, math.inf,   0.3, 0.3,    # a: lr=2 diverged once: not chosen
                  0.4, 0.4,   0.4, 0.4,        0.9, 0.1]    # b: a tie goes to the first
    chosen, mean = choose(trials, objectives)
    assert chosen == {("a",): ("lr=3",), ("b",): ("lr=1",)}
    assert mean[(("a",), ("lr=2",))] == math.inf and mean[(("b",), ("lr=3",))] == 0.5
    nothing, _ = choose(trials, [math.inf] * 12)
    assert nothing == {}


def _final(sweep, member: str) -> float:
    return json.loads((sweep / member / "summary.json").read_text())["best"]["val/loss"]


@pytest.mark.slow
def test_tuning_each_arm_flips_a_ranking_that_a_shared_learning_rate_made(cli):
    """Adam against RMSProp on the default task (3 epochs): at one shared learning rate (0.1)
    RMSProp is ahead; each at its own best (both at 1.0 of the grid 0.1..3) Adam is. The
    tuned sweep records every trial, says each choice, and reuses them all when run again."""
    common = ("optimizer=adam,rmsprop", "seed=0", "epochs=3", "progress=none")
    shared = cli.run_dir(cli("run", "-m", *common, "optimizer.lr=0.1"))
    assert _final(shared, "1") < _final(shared, "0")  # rmsprop ahead at the shared rate

    args = ("run", "-m", "hydra/sweeper=tuned", *common, GRID,
            f"hydra.sweep.dir={cli.cwd / 'tuned'}")
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    tuned = cli.cwd / "tuned"
    assert "tuned: optimizer=adam: optimizer.lr=1.0 (best:val/loss 0.02116)" in result.stderr
    assert "tuned: optimizer=rmsprop: optimizer.lr=1.0" in result.stderr
    assert _final(tuned, "0") < _final(tuned, "1")  # adam ahead, each at its own rate
    rows = list(csv.DictReader((tuned / "tuning.csv").open()))
    assert len(rows) == 8 and [r["run"] for r in rows] == [f"tune/{i}" for i in range(8)]
    assert [(r["arm"], r["setting"]) for r in rows if r["chosen"] == "1"] == \
        [("optimizer=adam", "optimizer.lr=1.0"), ("optimizer=rmsprop", "optimizer.lr=1.0")]
    for r in rows:  # each trial's objective is its own run's monitored metric
        summary = json.loads((tuned / r["run"] / "summary.json").read_text())
        assert float(r["objective"]) == summary["best"]["val/loss"]
    member = json.loads((tuned / "0" / "summary.json").read_text())
    assert member["overrides"][-1] == "optimizer.lr=1.0"  # the record says the arm's setting
    compared = cli("compare", str(tuned), "--csv", str(cli.cwd / "compared.csv"))
    assert compared.returncode == 0, compared.stderr
    table = list(csv.DictReader((cli.cwd / "compared.csv").open()))  # the chosen lr is shown,
    assert [float(r["optimizer.lr"]) for r in table] == [1.0, 1.0]  # the same for both arms
    assert cli("plot", str(tuned)).stdout.strip().endswith("tuning.png")
    shown = cli("show", str(tuned)).stdout
    assert "tuned: optimizer=adam: optimizer.lr=1.0\ntuned: optimizer=rmsprop: optimizer.lr=1.0" \
        in shown, shown
    from dlx.plots.sweep import load_members, member_labels

    runs, _ = load_members(tuned)  # the legends name each arm's rate, the same for both
    assert member_labels(runs) == ["optimizer=adam, optimizer.lr=1.0",
                                   "optimizer=rmsprop, optimizer.lr=1.0"]

    again = cli(*args)  # every trial and member is a finished run: reused, not retrained
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already completed with this config; skipped") == 10


@pytest.mark.slow
def test_tuning_refuses_a_grid_key_also_set_and_a_bad_spec(cli):
    assert_one_error_line(
        cli("run", "-m", "hydra/sweeper=tuned", "optimizer=sgd,adam", "optimizer.lr=0.1", GRID),
        "optimizer.lr is tuned per arm", "hydra/sweeper=basic")
    assert_one_error_line(cli("run", "-m", "hydra/sweeper=tuned", "optimizer=sgd,adam"),
                          "hydra.sweeper.tune.grid must name at least one key")
    assert not (cli.cwd / "runs").exists() or not any((cli.cwd / "runs").iterdir())


@pytest.mark.slow
def test_tuning_under_the_joblib_launcher_chooses_the_same(cli, plugins):
    args = ("run", "-m", "hydra/sweeper=tuned", "optimizer=adam,rmsprop", "seed=0", "epochs=3",
            "progress=none", GRID)
    basic = cli.run_dir(cli(*args))
    joblib = cli.run_dir(cli(*args, "hydra/launcher=joblib"))
    assert (basic / "tuning.csv").read_bytes() == (joblib / "tuning.csv").read_bytes()


@pytest.mark.slow
def test_the_optimizers_experiment_tuned_records_each_optimizers_own_rate(cli):
    """experiment=optimizers_tuned: the optimizers experiment with each optimizer's rate tuned
    on the final validation loss (its record: 7 trials per optimizer, the members at the
    choice). Plain SGD's default 0.1 was what made it "the slowest" (README)."""
    result = cli("run", "-m", "experiment=optimizers_tuned", "optimizer=sgd", "seed=0",
                 "epochs=3", "progress=none")
    assert result.returncode == 0, result.stderr
    sweep = cli.run_dir(result)
    rows = list(csv.DictReader((sweep / "tuning.csv").open()))
    assert [r["setting"] for r in rows] == [f"optimizer.lr={v}" for v in
                                            ("0.001", "0.003", "0.01", "0.03", "0.1", "0.3",
                                             "1.0")]
    assert {r["monitor"] for r in rows} == {"final:val/loss"}
    chosen = [r for r in rows if r["chosen"] == "1"]
    assert len(chosen) == 1 and chosen[0]["setting"] != "optimizer.lr=0.1"
    config = (sweep / "0" / "config.yaml").read_text()
    assert f"lr: {chosen[0]['setting'].partition('=')[2]}" in config
    said = [ln for ln in result.stderr.splitlines() if ln.startswith("tuned: ")]
    assert len(said) == 1 and "optimizer=sgd" in said[0] \
        and said[0].endswith(f"{chosen[0]['setting']} (final:val/loss "
                             f"{float(chosen[0]['objective']):.4g})"), said


@pytest.mark.slow
def test_a_tuned_sweep_stopped_while_tuning_says_so(cli):
    """SIGTERM in the tuning stage: the trials' records are kept, and the sweep's last line
    says it stopped while tuning (it said "0 of 1 runs finished: no members")."""
    import signal
    import time

    sweep = cli.cwd / "stopped"
    proc = cli.popen("run", "-m", "hydra/sweeper=tuned", "optimizer=sgd", "epochs=100000",
                     "hydra.sweeper.tune.grid={optimizer.lr:[0.1,0.3]}", "progress=none",
                     f"hydra.sweep.dir={sweep}")
    deadline = time.time() + 120
    while time.time() < deadline and not (sweep / "tune" / "0" / "checkpoint.npz").exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"sweep interrupted while tuning: 0 of 1 tuning runs finished ({sweep / 'tune'}); " \
        "no member ran" in err, err
    assert json.loads((sweep / "tune" / "0" / "summary.json").read_text())["status"] == \
        "interrupted"
    shown = cli("show", str(sweep))  # not just "members: none yet"
    assert f"tuning: stopped, 0 of 1 tuning runs finished ({sweep / 'tune'}); no member ran" \
        in shown.stdout, shown.stdout
    diverged = cli("run", "-m", "hydra/sweeper=tuned", "optimizer=sgd,adam", "epochs=1",
                   "hydra.sweeper.tune.grid={optimizer.lr:[1e9]}", "progress=none",
                   f"hydra.sweep.dir={cli.cwd / 'diverged'}")
    assert diverged.returncode == 1 and "no setting of optimizer=sgd; optimizer=adam trained" \
        in diverged.stderr, diverged.stderr
    shown = cli("show", str(cli.cwd / "diverged")).stdout
    assert "tuned: optimizer=sgd: no setting trained (every trial failed or diverged)" in shown
