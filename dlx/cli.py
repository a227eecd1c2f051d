"""The `dlx` command. Start-up stays light: numpy, hydra, pandas and matplotlib are imported
inside the commands that need them, never at module level (`dlx --help` is instant)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from dlx.errors import UsageError


def _flags_without_placeholder() -> None:
    """Typer's rich help shows a flag as ``--md <bool>``, as if it took a value: it does not."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_dlx", False):
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    display_type_rich._dlx = True
    TyperOption.display_type_rich = display_type_rich


_flags_without_placeholder()

app = typer.Typer(
    name="dlx",
    help="Deep-learning foundations, one command per experiment: NumPy models with explicit "
         "backprop, Hydra configs, and a reproducible record of every run under runs/.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from dlx import __version__

        typer.echo(f"dlx {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print dlx's version and exit.")) -> None:
    pass


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _runs_root(root: Optional[Path]) -> Path:
    return root if root is not None else Path(os.environ.get("DLX_RUNS_DIR", "runs"))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                      "help_option_names": []},
    add_help_option=False,
)
def run(ctx: typer.Context) -> None:
    """Train one configuration, or sweep many with -m (Hydra overrides; `dlx run --help`)."""
    from dlx.app import main

    raise typer.Exit(main(list(ctx.args)))


@app.command()
def plot(
    path: Path = typer.Argument(..., help="A run or sweep directory."),
    format: str = typer.Option("png", "--format", "-f", help="png, svg or pdf."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="DIR",
                                       help="Write the figures into DIR instead of PATH/plots/ "
                                            "(e.g. for a read-only run)."),
) -> None:
    """Draw a run's figures, or overlay a sweep's members, into PATH/plots/ (or --out DIR).
    A figure that cannot be drawn is skipped with a warning."""
    from dlx.figures import plot_path

    notes: list[str] = []
    try:
        written = plot_path(path, format, notes, out)
    except UsageError as e:
        _fail(str(e))
    except OSError as e:  # e.g. a file of the run that cannot be read
        _fail(f"{e.filename or path}: {e.strerror or e}")
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
    for p in written:
        typer.echo(str(p))


@app.command("list")
def list_runs(root: Optional[Path] = typer.Argument(None, help="Default: $DLX_RUNS_DIR or ./runs")) -> None:
    """A table of the runs and sweeps under ROOT."""
    from dlx.records.table import print_runs

    root = _runs_root(root)
    if not root.is_dir():
        _fail(f"{root}: no such directory (runs are written to ./runs, or runs_dir=... / $DLX_RUNS_DIR)")
    try:
        print_runs(root)
    except OSError as e:
        _fail(f"cannot read {root}: {e.strerror or e}")


@app.command()
def show(path: Path = typer.Argument(..., help="A run directory.")) -> None:
    """One run: config highlights, status, final and best metrics, files."""
    from dlx.records.table import print_run

    try:
        print_run(path)
    except UsageError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{e.filename or path}: {e.strerror or e}")


@app.command()
def compare(
    paths: list[Path] = typer.Argument(..., help="Runs and/or sweeps."),
    all_columns: bool = typer.Option(False, "--all", help="Every config key and metric, not "
                                     "only what differs and the headline metrics."),
    sort: Optional[str] = typer.Option(None, help="Sort by a key or metric; -KEY descending."),
    group_by: Optional[str] = typer.Option(None, "--group-by", help="Aggregate the other "
                                           "members (e.g. seeds) into mean ± std per value."),
    csv: Optional[Path] = typer.Option(None, metavar="FILE", help="Also write the table as CSV."),
    md: bool = typer.Option(False, "--md", help="Print the table as Markdown."),
) -> None:
    """Final and best metrics of runs or sweep members, and the settings that differ."""
    import csv as _csv

    from dlx.records.compare import table, to_markdown
    from dlx.writable import check_file

    try:
        if csv is not None:
            check_file(csv)
        head, rows = table(paths, all_columns, sort, group_by)
    except UsageError as e:
        _fail(str(e))
    if csv is not None:
        try:
            with open(csv, "w", newline="") as f:
                writer = _csv.writer(f)
                writer.writerow(head)
                writer.writerows(rows)
        except OSError as e:
            _fail(f"cannot write {csv}: {e.strerror or e}")
    if md:
        typer.echo(to_markdown(head, rows))
        return
    from dlx.records.table import print_compare

    print_compare(head, rows, grouped=group_by is not None)


@app.command()
def plan(root: Optional[Path] = typer.Argument(None, help="Default: $DLX_RUNS_DIR or ./runs")) -> None:
    """The 60-day plan: phase, deliverable, experiment, command, and whether it has been run."""
    from dlx.plan import print_plan

    print_plan(_runs_root(root))


@app.command()
def report(
    paths: list[Path] = typer.Argument(..., help="Runs and sweeps to put in the report."),
    out: Optional[Path] = typer.Option(None, metavar="DIR",
                                       help="Folder (default: <runs>/reports/report-<time>)."),
    title: str = typer.Option("Gradient flow in deep networks: a technical report",
                              help="The report's title."),
) -> None:
    """The Phase 2 report skeleton: HTML (figures embedded) and Markdown from runs and sweeps."""
    import time as _time

    from dlx.report import build
    from dlx.writable import check_dir

    notes: list[str] = []
    try:
        if out is None:
            out = _runs_root(None) / "reports" / f"report-{_time.strftime('%Y%m%d-%H%M%S')}"
            check_dir(out, create_parents=True)
        else:
            check_dir(out)
        written = build(paths, out, title, notes)
    except UsageError as e:
        _fail(str(e))
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
    for p in written:
        typer.echo(str(p))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def gradcheck(
    ctx: typer.Context,
    examples: int = typer.Option(4, min=1, help="Training examples in the checked batch."),
    entries: int = typer.Option(12, min=1, help="Entries checked per parameter (all if fewer)."),
    tol: float = typer.Option(1e-5, min=0.0, help="Largest relative error that passes (exit 1 "
                              "above it; most parameters read ~1e-9, those with tiny gradients "
                              "~1e-7-1e-6 from round-off)."),
    step: float = typer.Option(1e-5, "--step", min=0.0, help="The finite-difference step h."),
) -> None:
    """The configured model's backward against finite differences, per parameter (float64).
    Takes the overrides of `dlx run`, e.g. `dlx gradcheck model=cnn dataset=mnist`."""
    from dlx import gradcheck as _gc

    try:
        if not step > 0:
            raise UsageError(f"--step must be > 0, got {step}")
        rows, what = _gc.check(list(ctx.args), examples, entries, step)
    except UsageError as e:
        _fail(str(e))
    if not _gc.print_report(rows, what, tol):
        raise typer.Exit(1)


@app.command()
def sample(
    path: Path = typer.Argument(..., help="A finished run of a character-level language model."),
    prompt: str = typer.Option("\n", help="Text to continue (default: a newline)."),
    length: int = typer.Option(500, min=1, help="Characters to generate."),
    temperature: float = typer.Option(0.8, help="Divides the logits: < 1 sharper, > 1 flatter."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1,
                                        help="Sample among the k most likely characters only."),
    seed: int = typer.Option(0, help="Seed of the draws (the same seed gives the same text)."),
) -> None:
    """Text from a trained language model: the prompt and its sampled continuation."""
    from dlx.sampling import sample_text

    try:
        text = sample_text(path, prompt, length, temperature, top_k, seed)
    except UsageError as e:
        _fail(str(e))
    typer.echo(text)


@app.command()
def bench(
    sweep: Optional[list[str]] = typer.Argument(
        None, help="With --launchers: the sweep's overrides (default: experiment=optimizers)."),
    launchers: bool = typer.Option(
        False, "--launchers", help="Time a sweep under the basic and joblib launchers instead."),
    threads: bool = typer.Option(False, "--threads", help="Time an MNIST MLP epoch with 1, 2 and "
                                 "the default threads, quiet and next to a CPU-bound process."),
    steps: Optional[int] = typer.Option(None, min=1, help="Training steps per timed repetition "
                                        "(default 50; with --threads one epoch, 860)."),
    repeats: Optional[int] = typer.Option(
        None, min=1, help="Repetitions per backend or launcher, interleaved (default 7; 3 sweeps; "
        "5 with --threads)."),
    warmup: int = typer.Option(10, min=0, help="Untimed steps first, per backend."),
    torch: bool = typer.Option(True, "--torch/--no-torch", help="Compare with PyTorch if installed."),
    out: Optional[Path] = typer.Option(None, metavar="FILE",
                                       help="JSON file (default: <runs>/bench/<kind>-<time>.json)."),
) -> None:
    """Training throughput, NumPy vs torch (or with --launchers, a sweep's wall time, serial vs
    parallel): medians of interleaved repetitions, printed and saved as JSON."""
    import time as _time

    from dlx.writable import check_file

    if sweep and not launchers:
        _fail(f"unexpected argument {sweep[0]!r}: sweep overrides go with --launchers")
    if launchers:
        _check_launchers(list(sweep or []))
    kind = "launchers" if launchers else "threads" if threads else "bench"
    try:  # before measuring for minutes: can the report be written?
        if out is None:
            out = _runs_root(None) / "bench" / f"{kind}-{_time.strftime('%Y%m%d-%H%M%S')}.json"
            check_file(out, create_parents=True)
        else:
            check_file(out)
    except UsageError as e:
        _fail(str(e))
    from dlx import bench as _bench

    if launchers and threads:
        _fail("--launchers and --threads are two benchmarks: give one")
    if launchers:
        report = _bench_launchers(list(sweep or []), repeats or 3)
    elif threads:
        from dlx import bench_threads

        report = bench_threads.run(steps=steps, repeats=repeats or 5, warmup=warmup)
        bench_threads.print_report(report)
    else:
        report = _bench.run(steps=steps or 50, repeats=repeats or 7, warmup=warmup,
                            include_torch=torch)
        _bench.print_report(report)
    typer.echo(str(_bench.save(report, out)))


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (find_spec of a dotted name raises, rather than
    answering None, when a parent package is missing)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _check_launchers(sweep: list[str]) -> None:
    if not (_installed("hydra_plugins.hydra_joblib_launcher") and _installed("joblib")):
        _fail("the joblib launcher is not installed (pip install 'dlx[launchers]')")
    if any(a.startswith(("hydra/launcher=", "-")) for a in sweep):
        _fail("give only the sweep's overrides: --launchers chooses the launcher and adds -m")


def _bench_launchers(sweep: list[str], repeats: int) -> dict:
    from dlx import bench_launchers

    try:
        report = bench_launchers.run(sweep or list(bench_launchers.DEFAULT_SWEEP), repeats)
    except bench_launchers.SweepFailed as e:
        _fail(str(e), e.code if e.code in (1, 2, 130) else 1)
    bench_launchers.print_report(report)
    return report


def main() -> None:
    """Entry point: usage errors become one `error:` line (exit 2) like every other error."""
    from typer.exceptions import Abort, TyperException

    command = typer.main.get_command(app)
    args = sys.argv[1:] or ["--help"]  # bare `dlx`: the help, once, exit 0
    try:
        code = command.main(args=args, prog_name="dlx", standalone_mode=False)
    except TyperException as e:  # click's usage errors (typer vendors click)
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError":
            help_text = e.format_message()  # rich help has been printed already: text is ""
            if help_text.strip():
                typer.echo(help_text)
            code = 0
        else:
            name = ctx.command_path if ctx is not None else "dlx"
            typer.echo(f"error: {e.format_message()} (see `{name} --help`)", err=True)
            code = 2
    except (KeyboardInterrupt, Abort):
        typer.echo("error: interrupted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
