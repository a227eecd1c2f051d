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
def _root(ctx: typer.Context,
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print dlx's version and exit."),
          workspace: Optional[Path] = typer.Option(
              None, "--workspace", "-w", metavar="DIR",
              help="Your workspace (`dlx init`): its code importable, its conf/ options usable, "
                   "its runs/ the default. Default: $DLX_WORKSPACE, else the folder holding "
                   "dlx-workspace.yaml from here upward.")) -> None:
    from dlx import workspace as ws

    try:
        found = ws.find(workspace)
        if found is not None:
            if ctx.invoked_subcommand in ("run", "gradcheck", "check"):  # reading its options;
                ws.check(found)  # dlx list, show, plot ... still work while one is misnamed
            ws.activate(found)
    except UsageError as e:
        _fail(str(e))


@app.command()
def init(folder: Path = typer.Argument(Path("."), help="Where (created if missing); default: "
                                       "the current folder.")) -> None:
    """Make your workspace: a package for your own code (mine/), conf/ for your config options,
    runs/, and a README saying what goes where. Every dlx command run inside it finds it."""
    from dlx import workspace as ws

    try:
        written = ws.init(folder)
    except UsageError as e:
        _fail(str(e))
    for path in written:
        typer.echo(str(path))
    typer.echo(f"workspace ready: cd {folder} and read README.md", err=True)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _runs_root(root: Optional[Path]) -> Path:
    from dlx.workspace import runs_root

    return root if root is not None else runs_root()


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                      "help_option_names": []},
    add_help_option=False,
)
def run(ctx: typer.Context) -> None:
    """Train one configuration, or sweep many with -m (Hydra overrides; `dlx run --help`)."""
    from dlx import inline
    from dlx.app import main

    args = list(ctx.args)
    import shutil
    import tempfile

    quick = Path(tempfile.mkdtemp(prefix="dlx-quick-"))
    try:
        # last: argparse takes the overrides in one run
        args += inline.search_overrides(args, quick)
        code = main(args, command=True)
    except UsageError as e:
        _fail(str(e))
    finally:
        shutil.rmtree(quick, ignore_errors=True)
    raise typer.Exit(code)


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
def list_runs(
    root: Optional[Path] = typer.Argument(None, help="Default: $DLX_RUNS_DIR, else your workspace's runs/, "
                                                  "else ./runs"),
    status: Optional[str] = typer.Option(None, help="Only runs with this status (a,b for "
                                         "several): completed, diverged, interrupted, failed, "
                                         "running, lost."),
    experiment: Optional[str] = typer.Option(None, help="Only runs of this experiment (a,b; none: "
                                             "runs of no experiment)."),
    tag: Optional[str] = typer.Option(None, help="Only runs with this tag (a,b: any of them); a "
                                      "sweep's tags count for its members."),
    since: Optional[str] = typer.Option(None, metavar="WHEN", help="Only runs started since a "
                                        "date (2026-11-20, '2026-11-20 14:00') or a duration "
                                        "ago (30m, 12h, 2d, 1w)."),
    sort: Optional[str] = typer.Option(None, metavar="KEY", help="Order by started, duration, "
                                       "id, status, experiment or a final metric (val/acc); "
                                       "-KEY descending. Sweeps' members are sorted within "
                                       "their sweep, the sweep placed by its first."),
    limit: Optional[int] = typer.Option(None, metavar="N", help="Show N runs: the first N "
                                        "of --sort's order, or without --sort the N most "
                                        "recent; a sweep's members count one by one (each "
                                        "shown under its sweep)."),
) -> None:
    """A table of the runs and sweeps under ROOT, filtered and sorted.

    Each run shows the metrics its task reports (accuracy; RMSE for regression) and its tags.
    Runs in ROOT/.trash (`dlx rm`) are not listed."""
    from dlx.records.select import Selection
    from dlx.records.table import print_runs

    root = _runs_root(root)
    try:
        selection = Selection.parse(status, experiment, tag, since, sort, limit)
    except UsageError as e:
        _fail(str(e))
    if not root.is_dir():
        _fail(f"{root}: no such directory (runs are written to ./runs, or runs_dir=... / $DLX_RUNS_DIR)")
    try:
        print_runs(root, selection=selection)
    except UsageError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot read {root}: {e.strerror or e}")


@app.command()
def show(path: Path = typer.Argument(..., help="A run directory (or a sweep's).")) -> None:
    """One run: config highlights, status, tags, final and best metrics, files, notes.

    A sweep: its members' statuses, its tags and notes."""
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
    notes: bool = typer.Option(False, "--notes", help="Add each run's notes: the latest "
                               "note's first line, and a sweep member's also its sweep's "
                               "(`dlx note SWEEP`); --csv gets every note in full, `dlx show "
                               "RUN` prints them all."),
) -> None:
    """Final and best metrics of runs or sweep members, and the settings that differ."""
    import csv as _csv

    from dlx.records.compare import table, to_markdown
    from dlx.records.store import not_a_record
    from dlx.writable import check_file

    try:
        if notes and group_by is not None:
            raise UsageError("--notes lists each run's notes: not with --group-by, which "
                             "aggregates runs")
        if csv is not None:
            check_file(not_a_record(csv))
        head, rows = table(paths, all_columns, sort, group_by, notes=notes)
        # the CSV carries every note whole; the table the latest's first line
        csv_rows = table(paths, all_columns, sort, group_by, notes=notes, full_notes=True)[1] \
            if csv is not None and notes else rows
    except UsageError as e:
        _fail(str(e))
    if csv is not None:
        try:
            with open(csv, "w", newline="") as f:
                writer = _csv.writer(f)
                writer.writerow(head)
                writer.writerows(csv_rows)
        except OSError as e:
            _fail(f"cannot write {csv}: {e.strerror or e}")
    from dlx.records.compare import start_notes

    if md:
        typer.echo(to_markdown(head, rows))
    else:
        from dlx.records.table import print_compare

        print_compare(head, rows, grouped=group_by is not None)
    for line in start_notes(paths):
        typer.echo(f"note: {line}", err=True)


NOTE_HELP = ("Each note is appended to RUN/notes.md under a dated `## YYYY-mm-dd HH:MM` "
             "heading; `dlx show` prints them, `dlx compare --notes` lists them and `dlx "
             "report` puts them under the run's heading.")


@app.command(help=f"Attach a note to a run, a sweep or a sweep member.\n\nYour derivation, "
                  f"reasoning or failure mode, in Markdown. {NOTE_HELP}")
def note(
    path: Path = typer.Argument(..., metavar="RUN", help="A run, sweep or sweep-member directory."),
    text: Optional[str] = typer.Argument(None, metavar="TEXT",
                                         help="The note (Markdown); - reads it from stdin."),
    edit: bool = typer.Option(False, "--edit", help="Write it in $EDITOR (vi if unset), opened "
                              "on notes.md with a new dated heading; saving it unchanged or "
                              "empty changes nothing."),
) -> None:
    from dlx.records import notes as _notes

    try:
        if edit and text is not None:
            raise UsageError("give the note's text or --edit, not both")
        if not edit and text is None:
            raise UsageError("give the note's text (dlx note RUN \"text\") or --edit")
        if edit:
            written = _notes.edit_notes(path)
            if written is None:
                typer.echo("notes unchanged (nothing written under the new heading)", err=True)
                return
        else:
            if text == "-":
                try:
                    text = sys.stdin.buffer.read().decode("utf-8")
                except UnicodeDecodeError as e:
                    _fail(f"the note on stdin is not UTF-8 text (byte {e.start}): nothing was "
                          f"written")
            written = _notes.add_note(path, text)
    except UsageError as e:
        _fail(str(e))
    typer.echo(str(written))


@app.command()
def tag(
    path: Path = typer.Argument(..., metavar="RUN", help="A run, sweep or sweep-member directory."),
    names: list[str] = typer.Argument(..., metavar="NAME...", help="Tags: letters, digits, "
                                      "_ . : + -"),
    remove: bool = typer.Option(False, "--remove", "-r", help="Remove these tags instead."),
) -> None:
    """Tag a run or sweep (or remove tags with --remove).

    `dlx list --tag NAME` finds them. Tags are kept in RUN/tags.txt, one per line: the record
    itself (summary.json) is never rewritten."""
    from dlx.records.notes import set_tags

    try:
        changed, tags = set_tags(path, names, remove)
    except UsageError as e:
        _fail(str(e))
    if not changed:
        typer.echo(f"already tagged {', '.join(names)}", err=True)
    typer.echo(f"{path}: {', '.join(tags) if tags else 'no tags'}")


@app.command()
def rm(
    paths: Optional[list[Path]] = typer.Argument(None, metavar="RUN...",
                                                 help="Runs and sweeps under the runs root."),
    purge: bool = typer.Option(False, "--purge", help="Delete everything in the trash, for good."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Purge without asking."),
    root: Optional[Path] = typer.Option(None, "--root", metavar="DIR",
                                        help="The runs root (default: $DLX_RUNS_DIR, else your "
                                             "workspace's runs/, else ./runs)."),
) -> None:
    """Move runs and sweeps to the trash (runs/.trash/); --purge empties it.

    `dlx list` no longer shows them. To restore one, move it back: `mv runs/.trash/ID runs/`.
    A run still in progress, a sweep's single member, or a path outside the runs root is
    refused, and then nothing is moved."""
    from dlx.records import trash

    root = _runs_root(root)
    if purge:
        if paths:
            _fail("--purge empties the trash and takes no RUN: `dlx rm RUN...` first")
        try:
            entries, size = trash.trash_content(root)
        except UsageError as e:
            _fail(str(e))
        if not entries:
            typer.echo(f"the trash ({root / trash.TRASH}) is empty", err=True)
            return
        what = (f"{len(entries)} run{'s' * (len(entries) != 1)} or sweep"
                f"{'s' * (len(entries) != 1)} ({size / 1e6:.1f} MB)")
        if not yes:
            from typer.exceptions import Abort

            try:
                sure = typer.confirm(f"delete {what} in {root / trash.TRASH} for good?", err=True)
            except Abort:  # no answer (stdin closed): never a yes
                typer.echo("", err=True)  # end the prompt's line
                _fail(f"not confirmed: --purge would delete {what} in {root / trash.TRASH} "
                      "(answer y, or pass --yes)")
            if not sure:
                typer.echo("nothing deleted", err=True)
                return
        try:
            n = trash.purge(root)
        except UsageError as e:
            _fail(str(e))
        typer.echo(f"deleted {n} from {root / trash.TRASH}", err=True)
        return
    if not paths:
        _fail("give the runs or sweeps to move to the trash (or --purge to empty it)")
    if not root.is_dir():
        _fail(f"{root}: no such directory (the runs root: --root DIR or $DLX_RUNS_DIR)")
    try:
        moved = trash.move_to_trash(paths, root)
    except UsageError as e:
        _fail(str(e))
    for target in moved:
        typer.echo(f"moved to the trash: {target} (restore: mv {target} {root}/)", err=True)


@app.command()
def rerun(
    path: Path = typer.Argument(..., metavar="RUN", help="A run, or a sweep's member."),
    verify: bool = typer.Option(False, "--verify", help="Then compare the new metrics.csv with "
                                "the record's, byte for byte: exit 0 if identical, 1 (and the "
                                "first differing line) if not."),
    code: Optional[str] = typer.Option(None, "--code", metavar="WHICH", help="For a run of "
                                       "your own code whose files changed since: current "
                                       "(today's files) or recorded (the copy in RUN/source/)."),
) -> None:
    """Run a record's config again; --verify checks metrics.csv is byte-identical.

    The run's overrides, seed and thread settings, into a new run directory next to it; the
    last line printed is the new run. A sweep is refused: rerun its members one at a time (the
    error names the command that reruns the whole sweep)."""
    from dlx import rerun as _rerun

    try:
        if code not in (None, "current", "recorded"):
            raise UsageError(f"--code must be current or recorded, got {code!r}")
        if verify:
            _rerun.check_verifiable(path)
        new, exit_code, warnings = _rerun.rerun(path, code)
    except UsageError as e:
        _fail(str(e))
    except _rerun._Failed as e:
        raise typer.Exit(e.code) from None
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    if verify and exit_code == 130:
        typer.echo("interrupted: nothing verified", err=True)
    elif verify:
        diff = _rerun.first_difference(path / "metrics.csv", new / "metrics.csv")
        if diff is None:
            lines = (new / "metrics.csv").read_bytes().count(b"\n")
            typer.echo(f"identical: {new / 'metrics.csv'} is byte for byte {path / 'metrics.csv'}"
                       f" ({lines} lines)")
        else:
            line, old, now = diff
            typer.echo(f"differ: metrics.csv first differs at line {line}")
            typer.echo(f"  {path}: {'(end of file)' if old is None else old}")
            typer.echo(f"  {new}: {'(end of file)' if now is None else now}")
            exit_code = exit_code or 1
    typer.echo(str(new))
    if exit_code:
        raise typer.Exit(exit_code)


@app.command()
def plan(
    root_arg: Optional[Path] = typer.Argument(None, metavar="[ROOT]", show_default=False,
                                              help="The runs root, as --root (kept for "
                                              "compatibility)."),
    root: Optional[Path] = typer.Option(None, "--root", metavar="DIR",
                                        help="The runs root (default: $DLX_RUNS_DIR, else your "
                                             "workspace's runs/, else ./runs)."),
    start: Optional[str] = typer.Option(None, metavar="DATE", help="Day 1 of the plan "
                                        "(YYYY-MM-DD or 'today'); remembered in ROOT/.plan.json."),
    on: Optional[str] = typer.Option(None, metavar="DATE", help="Show the week of DATE "
                                     "instead of today's."),
    show_all: bool = typer.Option(False, "--all", help="The whole plan, not only this week."),
) -> None:
    """This week of the 60-day plan, the next deliverable and its command (--all: the whole plan).

    Weeks of 5 build days, 1 consolidation day and 1 reading day from the start date; a
    deliverable is done when a completed run of its experiment exists."""
    from datetime import date

    from dlx import plan as _plan

    if root is not None and root_arg is not None and root != root_arg:
        _fail(f"two runs roots: {root_arg} and --root {root} (give one)")
    root = _runs_root(root or root_arg)
    try:
        begin = _plan.parse_date(start, "--start") if start is not None else None
        today = _plan.parse_date(on, "--on") if on is not None else date.today()
        if begin is not None:
            saved = _plan.save_start(root, begin)
            typer.echo(f"start date {begin.isoformat()} saved in {saved}", err=True)
        else:
            begin = _plan.read_start(root)
    except UsageError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot write {e.filename or root}: {e.strerror or e}")
    if show_all or begin is None:
        _plan.print_plan(root, begin)
        if begin is None:
            typer.echo("note: no start date yet: `dlx plan --start YYYY-MM-DD` sets day 1 and "
                       "shows your week", err=True)
    else:
        _plan.print_week(root, begin, today, on=on is not None)


@app.command()
def export(
    paths: list[Path] = typer.Argument(..., help="Runs and/or sweeps."),
    tensorboard: Optional[Path] = typer.Option(None, "--tensorboard", metavar="DIR",
                                               help="Write TensorBoard event files under DIR: "
                                                    "DIR/<run>/, DIR/<sweep>/<member>/."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace events exported "
                                   "before into the same folders."),
) -> None:
    """Copy runs' metrics to TensorBoard event files (metrics.csv stays the record).

    Every split/metric against the step, as TensorBoard scalars; needs the extra
    dlx\\[tensorboard] (pip install 'dlx\\[tensorboard]')."""
    from dlx.export import export_tensorboard

    if tensorboard is None:
        _fail("say where to: --tensorboard DIR (TensorBoard event files, the one format so far)")
    try:
        written = export_tensorboard(paths, tensorboard, overwrite)
    except UsageError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot write {e.filename or tensorboard}: {e.strerror or e}")
    for folder in written:
        typer.echo(str(folder))
    typer.echo(f"view them: tensorboard --logdir {tensorboard}  (pip install tensorboard)",
               err=True)


@app.command()
def report(
    paths: Optional[list[Path]] = typer.Argument(
        None, help="Runs and sweeps to put in the report (with --phase: in place of the newest "
                   "of their experiment)."),
    phase: Optional[int] = typer.Option(None, "--phase", metavar="N",
                                        help="The plan's phase 1, 2 or 3: the newest finished "
                                             "run or sweep of each of its experiments."),
    root: Optional[Path] = typer.Option(None, "--root", metavar="DIR",
                                        help="Where --phase looks for runs (default: "
                                             "$DLX_RUNS_DIR or ./runs)."),
    out: Optional[Path] = typer.Option(None, metavar="DIR",
                                       help="Folder (default: <runs>/reports/report-<time>)."),
    title: Optional[str] = typer.Option(None, help="The report's title (default: the phase's)."),
    pdf: bool = typer.Option(False, "--pdf", help="Also print report.pdf with a headless "
                                                  "Chromium and say how many pages it has."),
) -> None:
    """A print-ready report of a phase's runs: HTML (figures embedded) and Markdown; --pdf."""
    import time as _time

    from dlx.report import build
    from dlx.writable import check_dir

    if phase is not None and phase not in (1, 2, 3):
        _fail(f"--phase must be 1, 2 or 3 (the plan's phases), got {phase}")
    if not paths and phase is None:
        _fail("give --phase 1, 2 or 3 (the newest finished runs of that phase), or the runs "
              "and sweeps to report on")
    runs_root = _runs_root(root)
    notes: list[str] = []
    made: Path | None = None  # the report folder, when this command created it
    written: list[Path] = []
    from dlx import interrupts

    previous = interrupts.install()  # SIGTERM as Ctrl-C: either leaves no half-made report
    try:
        if phase is not None and not runs_root.is_dir() and not paths:
            raise UsageError(f"{runs_root}: no such directory (no runs to report on; "
                             "--root DIR or $DLX_RUNS_DIR says where they are)")
        if pdf:
            from dlx.report.pdf import browser

            if browser() is None:
                raise UsageError("--pdf needs Chromium (apt-get install chromium), or open "
                                 "report.html in a browser and print it")
        if out is None:
            out = runs_root / "reports" / f"report-{_time.strftime('%Y%m%d-%H%M%S')}"
            check_dir(out, create_parents=True)
        else:
            check_dir(out)
        made = None if out.exists() else out
        written = build(list(paths or []), out, title, notes, phase=phase,
                        root=runs_root if phase is not None else None)
        if pdf:
            from dlx.report.pdf import print_pdf

            n = print_pdf(written[-1], out / "report.pdf")
            typer.echo(f"report.pdf: {n} page{'s' if n != 1 else ''} (A4)", err=True)
            written.append(out / "report.pdf")
    except UsageError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        raise typer.Exit(_report_interrupted(out, made, written)) from None
    finally:
        interrupts.restore(previous)
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
    for p in written:
        typer.echo(str(p))


def _report_interrupted(out: Path | None, made: Path | None, written: list[Path]) -> int:
    """Ctrl-C during `dlx report`: a report whose HTML was written is kept without its PDF;
    one cut short while being written is removed when this command created its folder. One
    line says which (the convention of `dlx run`'s interrupts), exit 130."""
    import shutil
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot leave it half-tidied
    try:
        if written and out is not None:
            (out / "report.pdf").unlink(missing_ok=True)
            typer.echo(f"interrupted while printing the PDF: {out} keeps report.md and "
                       "report.html, complete, and no report.pdf (--pdf again, or print "
                       "report.html from a browser)", err=True)
            for p in written:
                typer.echo(str(p))
        elif made is not None:
            shutil.rmtree(made, ignore_errors=True)
            typer.echo(f"interrupted: the report was not finished; {made} removed", err=True)
        else:
            typer.echo("interrupted: the report was not finished"
                       + (f"; {out} may hold part of it" if out is not None and out.exists()
                          else ""), err=True)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return 130


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
    except Exception as e:  # the learner's forward or backward raised: their frames, exit 1
        from dlx.learner import ContractError, their_frames

        if isinstance(e, ContractError):  # named already: the message is the diagnosis
            _fail(str(e), 1)

        theirs = None if os.environ.get("DLX_DEBUG") == "1" else their_frames(e)
        if theirs is None:
            raise
        typer.echo(theirs, err=True)
        raise typer.Exit(1) from None
    if not _gc.print_report(rows, what, tol):
        raise typer.Exit(1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def check(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="The result as JSON on stdout."),
) -> None:
    """Your implementation against dlx's reference, in stages, the failure mode named:
    `dlx check optimizer=my_adam` (your workspace option; its file's `reference:` names the dlx
    optimizer it implements). Exit 0 pass, 1 fail, 2 a usage mistake."""
    import json

    from dlx import checks as _check

    try:
        result, label, reference = _check.run(list(ctx.args))
    except UsageError as e:
        _fail(str(e))
    except Exception as e:  # the learner's code raised: their frames, exit 1
        from dlx.learner import their_frames

        theirs = None if os.environ.get("DLX_DEBUG") == "1" else their_frames(e)
        if theirs is None:
            raise
        typer.echo(theirs, err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(_check.as_json(result, label, reference), indent=1,
                              allow_nan=False))
    else:
        typer.echo(_check.render(result, label, reference))
    if not result.passed:
        raise typer.Exit(1)


exercise_app = typer.Typer(
    help="The implementations the plan and the series ask for: `dlx exercise list` (with your "
         "status in each), `dlx exercise start NAME` (a stub and its config in your workspace).",
    no_args_is_help=True)
app.add_typer(exercise_app, name="exercise")


@exercise_app.command("list")
def exercise_list() -> None:
    """Every exercise, its day in the plan and where you stand: not started, not implemented
    yet, not checked (since your last change), failing at a stage, passing."""
    from dlx.checks import exercises as _ex
    from dlx.learner import workspace

    ws = workspace()
    rows = [(ex.name, ex.days, ex.group, ex.topic,
             _ex.status(ws, ex) if ws else "-") for ex in _ex.EXERCISES.values()]
    widths = [max(len(r[i]) for r in [("exercise", "days", "kind", "what", "status"), *rows])
              for i in range(4)]
    for row in [("exercise", "days", "kind", "what", "status"), *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
    typer.echo("\n`dlx exercise start NAME` writes its stub into your workspace; the stub's "
               "docstring says what to write and `dlx check` grades it."
               + ("" if ws else "\nNo workspace here: `dlx init DIR` makes one (statuses are "
                               "kept in it)."))


@exercise_app.command("start")
def exercise_start(name: str = typer.Argument(..., help="The exercise (`dlx exercise list`).")
                   ) -> None:
    """Write NAME's stub (mine/NAME.py: the contract, the docstrings, no maths) and its config
    file into your workspace, never over a file of yours; print how to check and run it."""
    from dlx.checks import exercises as _ex
    from dlx.learner import workspace

    try:
        ex = _ex.get(name)
        ws = workspace()
        if ws is None:
            raise UsageError("no workspace here: `dlx init DIR` makes one (then cd DIR, or "
                             "--workspace DIR)")
        written = _ex.start(ws, name)
    except UsageError as e:
        _fail(str(e))
    for path in written:
        typer.echo(str(path))
    typer.echo(f"\nnext: write the bodies in {ex.module} (each says what it computes), then\n"
               + "".join(f"  {c}\n" for c in ex.checks)
               + (f"  {ex.run}" if ex.run else f"  {ex.use}"),
               err=True)


@app.command()
def sample(
    path: Path = typer.Argument(..., help="A finished run of a character-level language model."),
    prompt: str = typer.Option("\n", show_default=False, help="Text to continue (default: a "
                               "newline, as nanoGPT's sample.py starts)."),
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
    case: Optional[list[str]] = typer.Option(
        None, "--case", metavar="NAME", help="Only this case (repeatable): mlp, transformer, cnn, "
        "lstm. Default: all."),
    torch: bool = typer.Option(True, "--torch/--no-torch", help="Compare with PyTorch if installed."),
    out: Optional[Path] = typer.Option(None, metavar="FILE",
                                       help="JSON file (default: <runs>/bench/<kind>-<time>.json)."),
) -> None:
    """Training throughput, NumPy vs torch (or with --launchers, a sweep's wall time, serial vs
    parallel): medians of interleaved repetitions, printed and saved as JSON."""
    import time as _time

    from dlx.records.store import not_a_record
    from dlx.writable import check_file

    cases = ("mlp", "transformer", "cnn", "lstm")
    unknown = [c for c in case or [] if c not in cases]
    if unknown:
        _fail(f"unknown bench case {unknown[0]!r}: choose from {', '.join(cases)}")
    if case and (launchers or threads):
        _fail("--case selects a training-throughput case: not with --launchers or --threads")
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
            check_file(not_a_record(out))
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
                            include_torch=torch,
                            cases=tuple(c for c in cases if c in case) if case else cases)
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
    except (KeyboardInterrupt, Abort) as e:
        if isinstance(e.__cause__, EOFError):  # click turns any EOFError into Abort: not a ^C
            raise e.__cause__ from None
        typer.echo("error: interrupted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
