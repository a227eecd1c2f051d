"""The CLI as users meet it: figures that never fail a run, environment problems as one line,
help/version/completion, tables that stay readable, sweep sizes, statuses (issue #11)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, assert_one_error_line

COMMANDS = ("plot", "list", "show", "compare", "plan", "report", "bench")


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def edit_summary(run: Path, **changes) -> None:
    summary = json.loads((run / "summary.json").read_text())
    summary.update(changes)
    (run / "summary.json").write_text(json.dumps(summary))


# --- a read-only place ------------------------------------------------------------------------

def run_readonly(cli, ro: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``cli(*args)`` with the folder ``ro`` read-only: by chmod for a normal user; as root
    (where chmod does not stop writes) inside a private mount namespace where ``ro`` is
    bind-mounted read-only — the real machine's mounts are not touched."""
    env = {**cli.env, **(env or {})}
    if os.geteuid() != 0:
        folders = [ro, *(p for p in ro.rglob("*") if p.is_dir())]
        modes = {p: p.stat().st_mode for p in folders}
        for p in folders:
            p.chmod(0o555)
        try:
            return subprocess.run([sys.executable, "-m", "dlx.cli", *args], cwd=cli.cwd, env=env,
                                  capture_output=True, text=True, timeout=300)
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
    if not (shutil.which("unshare") and shutil.which("mount")):
        pytest.skip("running as root, where chmod does not make a folder read-only, and "
                    "unshare/mount are not available for a read-only bind mount")
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            script + ' && touch "$0/.probe"', str(ro)],
                           capture_output=True, text=True)
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"running as root, where chmod does not stop writes, and a private "
                    f"read-only bind mount is not permitted here ({probe.stderr.strip()[:80]})")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           str(ro), sys.executable, "-m", "dlx.cli", *args],
                          cwd=cli.cwd, env=env, capture_output=True, text=True, timeout=300)


# --- a figure is never a failed run -----------------------------------------------------------

def test_plot_path_skips_a_figure_that_fails_and_notes_it(default_run, tmp_path, monkeypatch):
    from dlx.figures import plot_path
    from dlx.plots import run as run_plots

    run = copy_run(default_run, tmp_path / "run")
    shutil.rmtree(run / "plots")

    def boom(*args, **kwargs):
        raise MemoryError("Unable to allocate 33.5 GiB for an array with shape (90000, 100000)")

    monkeypatch.setattr(run_plots, "decision_boundary", boom)
    notes: list[str] = []
    written = plot_path(run, "png", notes)
    assert notes == ["skipped figure decision_boundary: MemoryError: Unable to allocate 33.5 GiB "
                     "for an array with shape (90000, 100000)"]
    assert {p.name for p in written} >= {"loss.png", "acc.png", "weight_norm.png"}
    assert all(p.is_file() for p in written) and not (run / "plots" / "decision_boundary.png").exists()

    original = run_plots._metric_figure  # one metric's figure failing costs only that figure

    def flaky(run_, metric, *args):
        if metric == "acc":
            raise ValueError("no\nsecond line")
        return original(run_, metric, *args)

    monkeypatch.setattr(run_plots, "_metric_figure", flaky)
    notes = []
    written = plot_path(run, "png", notes, out=tmp_path / "elsewhere")
    assert "skipped figure acc: ValueError: no" in notes
    assert {p.name for p in written} >= {"loss.png", "weight_norm.png"}
    assert all(p.parent == tmp_path / "elsewhere" for p in written)


def test_without_a_notes_list_skipped_figures_are_logged(default_run, tmp_path, monkeypatch,
                                                          caplog):
    # the runner's call, plot_path(run_dir): a figure that fails is a warning, not an exception
    from dlx.figures import plot_path
    from dlx.plots import run as run_plots

    run = copy_run(default_run, tmp_path / "run")
    monkeypatch.setattr(run_plots, "decision_boundary", lambda *a: 1 / 0)
    with caplog.at_level("WARNING", logger="dlx.plots"):
        written = plot_path(run)
    assert written and [r.getMessage() for r in caplog.records] == [
        "skipped figure decision_boundary: ZeroDivisionError: division by zero"]


def test_a_wide_model_draws_its_decision_boundary_in_bounded_memory(cli):
    # the boundary grid used to go through the model in one batch: 300 x 300 x 100000 floats
    import resource

    def limit():  # 3 GiB of address space: the one-batch grid alone needed 33.5 GiB
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    result = subprocess.run([sys.executable, "-m", "dlx.cli", "run", "model=mlp",
                             "model.hidden=[100000]", "epochs=1"], cwd=cli.cwd, env=cli.env,
                            capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert result.returncode == 0, result.stderr
    run = cli.run_dir(result)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert (run / "plots" / "decision_boundary.png").stat().st_size > 0
    assert "skipped figure" not in result.stderr


def test_an_experiments_figures_cope_with_other_data(cli):
    result = cli("run", "experiment=mnist_mlp", "dataset=blobs", "epochs=1")
    assert result.returncode == 0, result.stderr
    run = cli.run_dir(result)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert (run / "plots" / "confusion_matrix.png").is_file()  # on the validation set
    assert not (run / "plots" / "misclassified.png").exists()  # not images: does not apply
    assert "failed" not in result.stderr


def test_dlx_plot_draws_what_it_can_and_warns_about_the_rest(cli, default_run):
    run = copy_run(default_run, cli.cwd / "run")
    shutil.rmtree(run / "plots")
    (run / "model.npz").write_bytes(b"not a zip file")  # the decision boundary cannot be drawn
    result = cli("plot", str(run))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith(
        "warning: skipped figure decision_boundary: "), result.stderr
    assert {Path(p).name for p in result.stdout.split()} == {"loss.png", "acc.png",
                                                             "weight_norm.png"}


def test_plot_a_read_only_run_needs_out(cli, default_run, tmp_path):
    run = copy_run(default_run, tmp_path / "ro" / "run")
    before = sorted(p.name for p in (run / "plots").iterdir())
    result = run_readonly(cli, tmp_path / "ro", "plot", str(run))
    assert_one_error_line(result, f"cannot write {run / 'plots'}: read-only", "(use --out DIR)")
    out = tmp_path / "figures"
    result = run_readonly(cli, tmp_path / "ro", "plot", str(run), "--out", str(out))
    assert result.returncode == 0, result.stderr
    written = [Path(p) for p in result.stdout.split()]
    assert written and all(p.parent == out and p.stat().st_size > 0 for p in written)
    assert sorted(p.name for p in (run / "plots").iterdir()) == before
    assert_one_error_line(cli("plot", str(run), "--out", str(tmp_path / "no" / "such")),
                          "cannot write", "does not exist")
    assert not (tmp_path / "no").exists()


# --- environment problems are one line --------------------------------------------------------

def test_bench_launchers_without_the_plugin_is_one_error_line(cli, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(textwrap.dedent("""\
        import sys

        class NotInstalled:  # as if 'dlx[launchers]' were not installed: no hydra_plugins
            def find_spec(self, name, path=None, target=None):
                if name == "hydra_plugins" or name.startswith("hydra_plugins."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NotInstalled())
        """))
    cli.env["PYTHONPATH"] = os.pathsep.join([str(shim), str(REPO)])
    assert_one_error_line(cli("bench", "--launchers"),
                          "error: the joblib launcher is not installed (pip install 'dlx[launchers]')")


def test_compare_csv_into_a_missing_or_read_only_folder(cli, default_run, tmp_path):
    result = cli("compare", str(default_run), "--csv", str(tmp_path / "no" / "t.csv"))
    assert_one_error_line(result, f"cannot write {tmp_path / 'no' / 't.csv'}", "does not exist")
    assert result.stdout == ""  # checked before the table was made and printed
    (tmp_path / "ro").mkdir()
    result = run_readonly(cli, tmp_path / "ro", "compare", str(default_run), "--csv",
                          str(tmp_path / "ro" / "t.csv"))
    assert_one_error_line(result, "cannot write", "read-only")
    assert result.stdout == "" and not (tmp_path / "ro" / "t.csv").exists()


def test_report_out_into_a_missing_or_read_only_folder(cli, tmp_path):
    sweep = cli.run_dir(cli("run", "-m", "optimizer=sgd,adam", "epochs=1"))
    assert not (sweep / "plots").exists()
    assert_one_error_line(cli("report", str(sweep), "--out", str(tmp_path / "no" / "report")),
                          "cannot write", "does not exist")
    (tmp_path / "ro").mkdir()
    result = run_readonly(cli, tmp_path / "ro", "report", str(sweep), "--out",
                          str(tmp_path / "ro" / "report"))
    assert_one_error_line(result, "cannot write", "read-only")
    assert not (sweep / "plots").exists()  # nothing drawn before the check
    # a read-only record is only read: its missing figures are drawn for the report alone
    result = run_readonly(cli, sweep.parent, "report", str(sweep), "--out",
                          str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "report" / "report.html").read_text().count("data:image/png") >= 3
    assert not (sweep / "plots").exists()
    assert [p.name for p in (tmp_path / "report").iterdir() if p.name.startswith(".")] == []


def test_bench_checks_where_it_writes_before_measuring(cli, tmp_path):
    (tmp_path / "ro").mkdir()
    start = time.perf_counter()
    result = run_readonly(cli, tmp_path / "ro", "bench", "--no-torch", "--repeats", "1",
                          "--steps", "1", "--warmup", "0",
                          env={"DLX_RUNS_DIR": str(tmp_path / "ro" / "runs")})
    assert_one_error_line(result, f"cannot write {tmp_path / 'ro' / 'runs' / 'bench'}",
                          "read-only")
    assert result.stdout == ""  # nothing measured, nothing printed
    result = cli("bench", "--no-torch", "--repeats", "1", "--steps", "1", "--warmup", "0",
                 "--out", str(tmp_path / "no" / "b.json"))
    assert_one_error_line(result, "cannot write", "does not exist")
    assert result.stdout == "" and time.perf_counter() - start < 60


# --- the CLI as users expect ------------------------------------------------------------------

def test_version_short_help_and_bare_dlx(cli):
    result = cli("--version")
    assert (result.returncode, result.stdout) == (0, "dlx 0.1.0\n"), result.stderr
    for command in COMMANDS:
        short, long = cli(command, "-h"), cli(command, "--help")
        assert short.returncode == 0, (command, short.stderr)
        assert "Usage: dlx " + command in short.stdout and short.stdout == long.stdout
    assert "== Config groups ==" in cli("run", "-h").stdout  # Hydra's help, as with --help
    bare = cli()
    assert bare.returncode == 0 and bare.stderr == "", bare.stderr
    assert bare.stdout.count("Usage: dlx") == 1 and "compare" in bare.stdout


def test_flags_are_shown_without_a_value_placeholder(cli):
    for command, flag in (("compare", "--md"), ("compare", "--all"), ("bench", "--launchers"),
                          ("plot", "--help")):
        line = next(ln for ln in cli(command, "--help").stdout.splitlines() if flag in ln)
        assert "<bool>" not in line and "BOOLEAN" not in line, line
    assert "<path>" in next(ln for ln in cli("plot", "--help").stdout.splitlines()
                            if "path" in ln and "*" in ln)  # values keep theirs


def test_no_default_is_shown_as_invisible_text():
    """A default such as ``--prompt``'s newline printed as ``[default:`` and a line break:
    such a default is described in the help text instead."""
    import typer

    from dlx.cli import app

    group = typer.main.get_command(app)
    bad = [f"{name} --{p.name}" for name, command in group.commands.items()
           for p in command.params
           if isinstance(p.default, str) and p.default and not p.default.strip()
           and getattr(p, "show_default", None) is not False]
    assert not bad, bad
    assert "a newline" in group.commands["sample"].params[1].help


def test_shell_completion(cli):
    # With shellingham installed, typer detects the shell from the process tree and ignores the
    # argument: a test run from no shell (CI under nohup) would see "Shell  not supported".
    # Typer's own switch for that makes `--show-completion bash` take the shell as given.
    shown = subprocess.run([sys.executable, "-m", "dlx.cli", "--show-completion", "bash"],
                           cwd=cli.cwd, capture_output=True, text=True,
                           env={**cli.env, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert shown.returncode == 0 and "complete" in shown.stdout and "_DLX_COMPLETE" in shown.stdout
    env = {**cli.env, "_DLX_COMPLETE": "complete_bash", "COMP_WORDS": "dlx comp",
           "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-m", "dlx.cli"], cwd=cli.cwd, env=env,
                          capture_output=True, text=True)
    assert done.stdout.split() == ["compare"], done.stderr


def test_rich_markup_never_eats_text(capsys, cli, default_run, tmp_path):
    from dlx import bench

    report = {"sgemm_peak_gflops": {"numpy": 10.0}, "cases": [{
        "description": "MLP [784, 256, 10]", "samples_per_s": {"numpy": [1.0, 2.0]},
        "median_samples_per_s": {"numpy": 1.5}, "achieved_gflops": {"numpy": 1.0},
        "fraction_of_peak": {"numpy": 0.1}}]}
    bench.print_report(report)
    out = capsys.readouterr().out
    assert "pip install 'dlx[torch]'" in out and "MLP [784, 256, 10]" in out

    run = copy_run(default_run, tmp_path / "runs" / default_run.name)
    edit_summary(run, overrides=["+note=[torch]", "model.hidden=[64]"])
    other = copy_run(default_run, tmp_path / "runs" / (default_run.name[:-6] + "ffffff"))
    cfg = (other / "config.yaml").read_text().replace("name: logreg", "name: '[optuna]'", 1)
    (other / "config.yaml").write_text(cfg)
    listing = cli("list", str(tmp_path / "runs"))
    assert "+note=[torch], model.hidden=[64]" in listing.stdout, listing.stdout
    assert "+note=[torch] model.hidden=[64]" in cli("show", str(run)).stdout
    assert "[optuna]" in cli("compare", str(run), str(other)).stdout


# --- tables that stay readable ----------------------------------------------------------------

def _rows(head, n=6):
    rows = []
    for i in range(n):
        rows.append([f"20261122-000728-regularization-ccddc2/{i}", "completed", "adamw",
                     f"{0.001 * (i + 1):.4g}", "[256, 256]", f"{0.02055 + i:.4g}",
                     f"{0.9812 - i / 100:.4g}", f"{0.01999 + i:.4g}", f"{0.02055 + i:.4g}",
                     f"{0.9901:.4g}", f"{0.01:.4g}"])
    return rows


HEAD = ["id", "status", "optimizer.name", "optimizer.lr", "model.hidden", "final.val/loss",
        "final.val/acc", "final.train/loss", "best.val/loss", "best.val/acc", "best.train/loss"]


@pytest.mark.parametrize("width", [80, 120])
def test_compare_fits_the_terminal_without_splitting_a_value(width, capsys):
    from dlx.records.table import print_compare

    rows = _rows(HEAD)
    out = io.StringIO()
    dropped = print_compare(HEAD, rows, width=width, file=out)
    lines = out.getvalue().splitlines()
    note = capsys.readouterr().err.strip().splitlines()
    assert all(len(ln) <= width for ln in lines), "\n".join(lines)
    assert dropped and len(note) == 1 and note[0].startswith("note: ")
    assert all(name in note[0] for name in dropped) and "best.train/loss" in dropped
    kept = [i for i, h in enumerate(HEAD) if h not in dropped]
    assert {"final.val/loss", "final.val/acc"} <= {HEAD[i] for i in kept}
    data = [ln for ln in lines if re.match(r"^\d{8}-", ln)]
    assert len(data) == len(rows)  # one line per row: nothing wrapped
    for line, row in zip(data, rows):
        assert line.startswith("20261122-000728-…-ccddc2/")  # the id's middle elided
        for i in kept[1:]:
            assert f" {row[i]}" in line, (row[i], line)


def test_compare_in_a_pipe_is_as_wide_as_it_needs(cli, tmp_path):
    sweep = cli.run_dir(cli("run", "-m", "optimizer=sgd,adam", "optimizer.lr=0.02055,0.1",
                            "epochs=1"))
    md = cli("compare", str(sweep), "--md").stdout.splitlines()
    head = [c.strip() for c in md[0].strip("|").split("|")]
    values = [[c.strip() for c in ln.strip("|").split("|")] for ln in md[2:]]
    piped = cli("compare", str(sweep))
    assert piped.returncode == 0 and piped.stderr == ""  # nothing left out in a pipe
    lines = [ln for ln in piped.stdout.splitlines() if ln.startswith(sweep.name)]
    assert len(lines) == 4 and "0.02055" in piped.stdout
    for line, row in zip(lines, values):
        assert line.split() == [v for v in row for v in v.split()]  # every value, whole
    env = {**cli.env, "COLUMNS": "80"}
    result = subprocess.run([sys.executable, "-m", "dlx.cli", "compare", str(sweep)],
                            cwd=cli.cwd, env=env, capture_output=True, text=True)
    assert all(len(ln) <= 80 for ln in result.stdout.splitlines()), result.stdout
    assert result.stderr.startswith("note: ") and len(result.stderr.splitlines()) == 1
    assert len([ln for ln in result.stdout.splitlines() if "…" in ln]) == 4
    column = head.index("final.val/loss")  # kept, and whole, in each row's line
    for line, row in zip([ln for ln in result.stdout.splitlines() if "…" in ln], values):
        assert f" {row[column]} " in f"{line} "


@pytest.mark.parametrize("width", [80, 120])
def test_list_fits_the_terminal(width, default_run, tmp_path, capsys):
    from dlx.records.table import print_runs

    root = tmp_path / "runs"
    long = [f"model.hidden=[{64 * i}, {64 * i}]" for i in range(1, 8)]
    for i, overrides in enumerate((["optimizer=adam"], long)):
        run = copy_run(default_run, root / default_run.name.replace("-logreg-", f"-logreg{i}-"))
        edit_summary(run, overrides=overrides)
    out = io.StringIO()
    print_runs(root, width=width, file=out)
    lines = out.getvalue().splitlines()
    table = lines[1:]  # the title names the root, a path printed whole however long tmp_path is
    assert lines[0] == f"runs under {root}"
    assert all(len(ln) <= width for ln in table), "\n".join(lines)
    text = out.getvalue()
    for o in long:  # wrapped between overrides, never inside one
        assert sum(o in ln for ln in lines) == 1, (o, text)
    assert "0.995" in text and "completed" in text
    capsys.readouterr()


def test_list_in_a_pipe_never_wraps(cli, default_run):
    root = cli.cwd / "runs"
    run = copy_run(default_run, root / default_run.name)
    long = [f"model.hidden=[{64 * i}, {64 * i}]" for i in range(1, 12)]
    edit_summary(run, overrides=long)
    result = cli("list")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith(run.name))
    assert ", ".join(long) in line and "0.995" in line  # one line, full id, every value


# --- sweeps: how many were asked for ----------------------------------------------------------

def test_expected_members_of_sweeps_made_by_dlx_run(cli):
    from dlx.records.sweeps import expected_members

    sweep = cli.run_dir(cli("run", "-m", "optimizer=sgd,adam", "epochs=1"))
    assert expected_members(sweep) == 2
    optimizers = cli.run_dir(cli("run", "-m", "experiment=optimizers", "epochs=1", "seed=0",
                                 "progress=none", timeout=600))  # one of its three seeds
    assert expected_members(optimizers) == 9  # the experiment's own hydra.sweeper.params
    # an interrupted sweep: members missing
    shutil.rmtree(sweep / "1")
    listing = cli("list")
    line = next(ln for ln in listing.stdout.splitlines() if ln.startswith(sweep.name))
    assert "1 of 2 completed" in line and "sweep of 2" in line, listing.stdout
    line = next(ln for ln in listing.stdout.splitlines() if ln.startswith(optimizers.name))
    assert "9 completed" in line and " of " not in line.split("completed")[0]


def test_expected_members_from_multirun_yaml(cli, tmp_path):
    import yaml

    from dlx.records.sweeps import expected_members

    sweep = cli.run_dir(cli("run", "-m", "optimizer=sgd,adam", "epochs=1"))
    data = yaml.safe_load((sweep / "multirun.yaml").read_text())

    def size(task, params=None, sweeper=None):
        cfg = json.loads(json.dumps(data))
        cfg["hydra"]["overrides"]["task"] = task
        cfg["hydra"]["sweeper"]["params"] = params
        cfg["hydra"]["sweeper"].update(sweeper or {})
        (tmp_path / "s").mkdir(exist_ok=True)
        (tmp_path / "s" / "multirun.yaml").write_text(yaml.safe_dump(cfg))
        return expected_members(tmp_path / "s")

    assert size(["seed=range(0,5)", "epochs=1"]) == 5
    assert size(["optimizer=sgd,adam", "seed=range(3)"]) == 6
    assert size(["optimizer=glob(*)"]) == 11
    assert size(["optimizer=glob(ada*)"]) == 5  # adadelta, adagrad, adam, adamax, adamw
    assert size(["epochs=1"], {"optimizer": "sgd,adam,nadam"}) == 3
    assert size(["optimizer=sgd", "seed=0,1"], {"optimizer": "sgd,adam,nadam"}) == 2  # cli wins
    assert size([], None, {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper."
                           "OptunaSweeper", "n_trials": 12}) == 12
    assert size([], None, {"_target_": "some.other.Sweeper"}) is None
    (tmp_path / "s" / "multirun.yaml").write_text("{not: yaml")
    assert expected_members(tmp_path / "s") is None


# --- statuses ---------------------------------------------------------------------------------

def test_lost_runs_are_shown_in_their_own_style(cli, default_run):
    run = copy_run(default_run, cli.cwd / "runs" / default_run.name)
    edit_summary(run, status="lost")
    env = {**cli.env, "FORCE_COLOR": "1", "COLUMNS": "200"}

    def colored(*args):
        result = subprocess.run([sys.executable, "-m", "dlx.cli", *args], cwd=cli.cwd, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout

    red = re.compile(r"\x1b\[[0-9;]*31[0-9;]*mlost")  # red, as failed runs (and bold)
    for out in (colored("list"), colored("show", str(run)), colored("compare", str(run))):
        assert red.search(out), out


def test_readme_error_example_is_the_real_output(cli):
    result = cli("run", "optimizer=nope")
    readme = (REPO / "README.md").read_text()
    assert f"$ dlx run optimizer=nope\n{result.stderr.strip()}\n" in readme


def test_show_list_and_compare_lines_end_at_their_text(cli, default_run, tmp_path):
    """Tables pad every cell to its column's width: the padding at a line's end is dropped
    (`dlx show` printed lines of ~150 columns, mostly spaces)."""
    root = tmp_path / "runs"
    run = copy_run(default_run, root / default_run.name)
    for args, env in ((("show", str(run)), {}), (("list", str(root)), {}),
                      (("compare", str(run), str(run)), {}), (("show", str(run)), {"COLUMNS": "90"})):
        result = subprocess.run([sys.executable, "-m", "dlx.cli", *args], cwd=cli.cwd,
                                env={**cli.env, **env}, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) > 3 and not [ln for ln in lines if ln != ln.rstrip()], result.stdout
