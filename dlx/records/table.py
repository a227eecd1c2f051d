"""`dlx list`, `dlx show` and the table of `dlx compare`, as rich tables that stay readable.

Every value is printed as plain text (never parsed as rich markup: ``[torch]`` or
``model.hidden=[64]`` stay as they are) and is never split across lines. When a table does
not fit the terminal, long run ids are shortened in the middle and then whole columns are
dropped, least important first, with one note on stderr saying which. In a pipe the table is
as wide as it needs to be (``COLUMNS=N`` asks for a width explicitly).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from dlx.errors import UsageError
from dlx.records.files import printable
from dlx.records.store import (
    check_dir,
    differing,
    is_run,
    is_sweep,
    load_run,
    mark_learner,
    never_started,
    read_overrides,
    read_summary,
    sweep_members,
)

STATUS_STYLE = {"completed": "green", "diverged": "yellow", "failed": "red",
                "interrupted": "magenta", "running": "cyan", "lost": "bold red",
                "missing": "dim", "unreadable": "red"}


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def status_text(status: str) -> Text:
    """A status in its colour, as text (a status is data, never markup)."""
    return Text(str(status), style=STATUS_STYLE.get(status, "white"))


def _duration(summary: dict) -> str:
    s = summary.get("wall_time_s")
    return "-" if s is None else f"{s:.3g} s" if s < 120 else f"{s / 60:.1f} min"


def output_width() -> int | None:
    """The width to fit tables to: ``$COLUMNS`` if set, the terminal's on a terminal, and
    None (as wide as the table needs: nothing wrapped or dropped) in a pipe."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.M)


class _NoTrailingSpaces:
    """A text stream that drops the spaces a table pads its last column with at the end of
    each line (before any closing colour codes): copied or piped lines end at their text."""

    def __init__(self, file):
        self._file = file

    def write(self, text: str) -> int:
        head, newline, tail = text.rpartition("\n")  # only whole lines: a line may go on
        return self._file.write(_TRAILING.sub(r"\1", head) + newline + tail)

    def __getattr__(self, name):  # isatty, fileno, flush, encoding: the stream's own
        return getattr(self._file, name)


def console_for(width: int | None, file=None) -> Console:
    """A console ``width`` wide (None: wide enough never to wrap what it prints) that writes
    no trailing spaces."""
    return Console(file=_NoTrailingSpaces(file or sys.stdout), width=width or 10_000,
                   soft_wrap=width is None)


# ---------------------------------------------------------------------------------------------
# tables that fit


@dataclass
class Column:
    """A column of a fitted table. ``keep``: higher is dropped later (None: never dropped);
    ``wrap``: may wrap between words (otherwise every cell stays on its line(s));
    ``run_id``: cells are run ids that may be shortened in the middle."""

    header: str
    justify: str = "left"
    keep: int | None = 0
    wrap: bool = False
    run_id: bool = False


_RUN_ID = re.compile(r"^(\s*)(\d{8}-\d{6})-(.+)-([0-9a-f]{4,})(/.*)?$")


def shorten_id(text: str, limit: int = 24) -> str:
    """A run id with its middle elided: ``20261122-000701-mnist_mlp-ebda33/3`` becomes
    ``20261122-000701-…-ebda33/3`` (time and random suffix kept: still unique)."""
    m = _RUN_ID.match(text)
    if m:
        indent, stamp, name, hexa, member = m.groups()
        short = f"{indent}{stamp}-…-{hexa}{member or ''}"
        return short if len(short) < len(text) else text
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


class Items:
    """A list shown as ``a, b, c`` that wraps only between items: ``model.hidden=[64, 64]`` is
    never split at its inner space (rich would wrap at any space)."""

    def __init__(self, items: list[str], sep: str = ", ", style: str = ""):
        self.items, self.sep, self.style = [printable(str(i)) for i in items], sep, style

    @property
    def plain(self) -> str:
        return self.sep.join(self.items)

    def _pieces(self) -> list[str]:
        mark = self.sep.rstrip()
        return [item + (mark if i < len(self.items) - 1 else "")
                for i, item in enumerate(self.items)]

    def __rich_measure__(self, console, options) -> Measurement:
        from rich.cells import cell_len

        pieces = self._pieces()
        return Measurement(max((cell_len(p) for p in pieces), default=0), cell_len(self.plain))

    def __rich_console__(self, console, options):
        from rich.cells import cell_len

        gap = self.sep[len(self.sep.rstrip()):]
        lines: list[str] = []
        line = ""
        for piece in self._pieces():
            if line and cell_len(line) + len(gap) + cell_len(piece) > options.max_width:
                lines.append(line)
                line = piece
            else:
                line = f"{line}{gap}{piece}" if line else piece
        lines.append(line)
        yield Text("\n".join(lines), style=self.style, no_wrap=True, overflow="fold")


def _cell(value):
    if isinstance(value, Text):
        safe = printable(value.plain)
        return value.copy() if safe == value.plain else Text(safe, style=value.style)
    if isinstance(value, Items):
        return value
    return Text(printable(str(value)))


def _build(columns: list[Column], rows: list[list], shorten: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for col in columns:
        table.add_column(Text(col.header), justify=col.justify, no_wrap=not col.wrap,
                         overflow="fold")
    for row in rows:
        cells = []
        for col, value in zip(columns, row):
            cell = _cell(value)
            if shorten and col.run_id:
                short = shorten_id(cell.plain)
                if short != cell.plain:
                    cell = Text(short, style=cell.style)
            cells.append(cell)
        table.add_row(*cells)
    return table


def _needed(table: Table) -> int:
    """The fewest columns the table can be drawn in without splitting a word."""
    console = Console(width=100_000)
    return Measurement.get(console, console.options, table).minimum


def fit_table(columns: list[Column], rows: list[list], width: int | None
              ) -> tuple[Table, list[str]]:
    """The table as it fits ``width`` (None: any width), and the headers of the columns that
    had to be dropped. First run ids are shortened, then columns are dropped, the lowest
    ``keep`` first (rightmost first among equals)."""
    columns, rows = list(columns), [list(r) for r in rows]
    table = _build(columns, rows, shorten=False)
    if width is None or _needed(table) <= width:
        return table, []
    table = _build(columns, rows, shorten=True)
    dropped: list[str] = []
    while _needed(table) > width:
        candidates = [i for i, c in enumerate(columns) if c.keep is not None]
        if not candidates:
            break
        i = min(candidates, key=lambda i: (columns[i].keep, -i))
        dropped.append(columns.pop(i).header.replace("\n", ""))
        for row in rows:
            row.pop(i)
        table = _build(columns, rows, shorten=True)
    return table, dropped


def print_fitted(columns: list[Column], rows: list[list], title: str | None = None,
                 width: int | None = None, file=None) -> list[str]:
    """Print a fitted table (see :func:`fit_table`) and, on stderr, one note naming the
    columns left out. ``width`` defaults to :func:`output_width`."""
    width = output_width() if width is None else width
    table, dropped = fit_table(columns, rows, width)
    console = console_for(width, file)
    if title:
        console.print(Text(title, style="bold"), soft_wrap=True)
    console.print(table)
    if dropped:
        print(f"note: {len(dropped)} column{'s' * (len(dropped) > 1)} left out to fit "
              f"{width} columns: {', '.join(dropped)} (a wider terminal shows them; "
              "in a pipe nothing is left out)", file=sys.stderr)
    return dropped


def two_line_header(name: str, widest_value: int) -> str:
    """``final.val/loss`` as ``final.`` over ``val/loss`` when the name is wider than its values,
    so that a column of short numbers is not as wide as its name."""
    if "." not in name or len(name) <= widest_value:
        return name
    first, rest = name.split(".", 1)
    return f"{first}.\n{rest}"


# ---------------------------------------------------------------------------------------------
# dlx list


def _safe_summary(path: Path) -> dict:
    try:
        return read_summary(path)
    except UsageError:
        return {"status": "unreadable"}


def sweep_status(summaries: list[dict], expected: int | None) -> Text:
    """``4 of 7 completed`` (members asked for by the sweep, when fewer completed), then the
    other statuses, one per line."""
    counts: dict[str, int] = {}
    for s in summaries:
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    done = counts.pop("completed", 0)
    parts = []
    if expected is not None and done < expected:
        parts.append((f"{done} of {expected} completed", "completed" if done else "missing"))
    elif done or not counts:
        parts.append((f"{done} completed", "completed"))
    parts += [(f"{n} {k}", k) for k, n in sorted(counts.items())]
    if expected is not None and len(summaries) < expected and not any(
            k in counts for k in ("running",)):
        parts.append((f"{expected - len(summaries)} not run", "missing"))
    text = Text()
    for i, (label, status) in enumerate(parts):
        if i:
            text.append("\n")
        text.append(label, style=STATUS_STYLE.get(status, "white"))
    return text


@dataclass
class Entry:
    """A top-level run, or a sweep with the members that are shown."""

    path: Path
    summary: dict                 # a run's; a sweep's own is {} (its members have theirs)
    tags: list[str]
    members: list[tuple[Path, dict, list[str], list[str]]] | None = None  # path, summary, diff, tags
    all_summaries: list[dict] | None = None  # every member's (the sweep's status counts them all)
    expected: int | None = None


def _sorted(items: list, key, descending: bool) -> list:
    """``items`` by ``key(item)``; items whose key is None last, whichever the direction."""
    present = [i for i in items if key(i) is not None]
    missing = [i for i in items if key(i) is None]
    return sorted(present, key=key, reverse=descending) + missing


def list_entries(root: Path, selection=None) -> list[Entry]:
    """The runs and sweeps under ``root`` that ``selection`` (a :class:`~dlx.records.select.
    Selection`) keeps, in its order: each run, and each sweep with its matching members."""
    from dlx.records.notes import read_tags
    from dlx.records.select import Selection
    from dlx.records.sweeps import expected_members

    sel = selection or Selection()
    entries: list[Entry] = []
    metrics: set[str] = set()
    paths = sorted(p for p in root.iterdir() if p.is_dir() and (is_run(p) or is_sweep(p)))
    for path in paths:
        tags = read_tags(path)
        if is_sweep(path):
            members = sweep_members(path)
            summaries = [_safe_summary(m) for m in members]
            diffs = differing([read_overrides(m) for m in members])
            shown = []
            for m, s, d in zip(members, summaries, diffs):
                d = mark_learner(d, s)
                mtags = read_tags(m)
                metrics.update(s.get("final") or {})
                if sel.matches(s, tags + mtags, m):
                    shown.append((m, s, d, mtags))
            if not shown and (members or sel.filters):
                continue
            entries.append(Entry(path, {}, tags, shown, summaries, expected_members(path)))
        else:
            summary = _safe_summary(path)
            metrics.update(summary.get("final") or {})
            if sel.matches(summary, tags, path):
                entries.append(Entry(path, summary, tags))
    sel.check_sort(metrics)
    if sel.sort is None:  # the most recent, oldest first
        return _first_runs(entries, sel.limit, from_end=True) if sel.limit else entries

    def key(item):
        return sel.key(item[1], item[0])

    for e in entries:
        if e.members is not None:
            e.members = _sorted(e.members, key, sel.descending)
    entries = _sorted(entries, lambda e: key(e.members[0]) if e.members else
                      (None if e.summary == {} else key((e.path, e.summary))), sel.descending)
    if not sel.limit:
        return entries
    # the best N runs wherever they are (plain runs and sweeps' members ranked together)
    units = _units(entries)
    ranked = _sorted(units, lambda u: key(u[1]) if u[1] is not None else
                     (None if u[0].summary == {} else key((u[0].path, u[0].summary))),
                     sel.descending)
    return _keep(entries, ranked[: sel.limit])


def _units(entries: list[Entry]) -> list[tuple[Entry, tuple | None]]:
    """What ``--limit`` counts: every run, a sweep's members one by one (an empty sweep is
    one unit: it is shown as a line of its own)."""
    return [(e, m) for e in entries for m in (e.members or [None])]


def _keep(entries: list[Entry], units: list) -> list[Entry]:
    """``entries`` in their order with only the runs in ``units``: a sweep keeps the members
    kept, in its order, and goes when none is."""
    kept = {(id(e), id(m)) for e, m in units}
    out = []
    for e in entries:
        if not any(id(u[0]) == id(e) for u in units):
            continue
        if e.members:
            e.members = [m for m in e.members if (id(e), id(m)) in kept]
        out.append(e)
    return out


def _first_runs(entries: list[Entry], n: int, from_end: bool = False) -> list[Entry]:
    """The first (or last) ``n`` runs of ``entries``, counting a sweep's members."""
    units = _units(entries)
    return _keep(entries, units[-n:] if from_end else units[:n])


# what a run's task reports, in the order shown: accuracy for classification and sequences,
# RMSE (in the target's units) for regression; a column appears when a listed run has it
LIST_METRICS = ("val/acc", "val/rmse", "val/loss", "train/loss")


def list_rows(entries: list[Entry]) -> tuple[list[Column], list[list]]:
    """The columns and rows of `dlx list`."""
    finals = [s.get("final") or {} for e in entries
              for s in ([e.summary] if e.members is None else [m[1] for m in e.members])]
    metrics = [k for k in LIST_METRICS if any(f.get(k) is not None for f in finals)] or \
        ["val/loss", "train/loss"]
    with_tags = any(e.tags or any(m[3] for m in e.members or []) for e in entries)
    keep = {"val/acc": 7, "val/rmse": 7, "val/loss": 6, "train/loss": 3}
    columns = [Column("id", keep=None, run_id=True), Column("experiment", keep=5),
               Column("status", keep=9), *([Column("tags", keep=5)] if with_tags else []),
               Column("differs", keep=8, wrap=True),
               *(Column(k, "right", keep=keep[k]) for k in metrics),
               Column("time", "right", keep=4)]

    def tag_cell(tags):
        return [Items(tags or ["-"])] if with_tags else []

    def values(summary):
        final = summary.get("final") or {}
        return [_fmt(final.get(k)) for k in metrics]

    rows: list[list] = []
    for e in entries:
        if e.members is not None:
            summaries = e.all_summaries or []
            name = next((s.get("experiment") for s in summaries if s.get("experiment")), "-")
            n = e.expected if e.expected is not None else len(summaries)
            rows.append([Text(e.path.name, style="bold"), name,
                         sweep_status(summaries, e.expected), *tag_cell(e.tags),
                         f"sweep of {n}", *[""] * (len(metrics) + 1)])
            for member, summary, diff, mtags in e.members:
                rows.append([f"  └ {member.name}", summary.get("experiment") or "-",
                             status_text(summary["status"]), *tag_cell(mtags),
                             Items(diff or ["-"]), *values(summary), _duration(summary)])
        else:
            s = e.summary
            rows.append([e.path.name, s.get("experiment") or "-", status_text(s["status"]),
                         *tag_cell(e.tags),
                         Items(mark_learner(s.get("overrides") or [], s) or ["-"]), *values(s),
                         _duration(s)])
    return columns, rows


def print_runs(root: Path, width: int | None = None, file=None, selection=None) -> None:
    entries = list_entries(root, selection)
    console = console_for(width or output_width(), file)
    if not entries:
        given = selection.given if selection is not None else []
        what = (f"no runs under {root} match {' '.join(given)}" if given
                else f"no runs under {root} yet: `dlx run` makes one")
        console.print(Text(what), soft_wrap=True)
    else:
        columns, rows = list_rows(entries)
        print_fitted(columns, rows, title=f"runs under {root}", width=width, file=file)
    from dlx.records.lock import busy

    if selection is not None and selection.given:
        return
    for path in sorted(p for p in root.iterdir() if p.is_dir() and p.name != ".trash"):
        if never_started(path) and not busy(path):  # killed at start-up: not a record
            console.print(Text(f"{printable(str(path))}: a start cut short, no record in it "
                               f"(`dlx rm {printable(str(path))}` removes it; the same command "
                               f"carries on in it)"), soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# dlx compare


def compare_columns(head: list[str], rows: list[list[str]], grouped: bool) -> list[Column]:
    """Columns of `dlx compare`. The first (the id, or the first grouping key) is always kept; when
    the table is too wide, dropped first are the ``best.*`` metrics, then the other metrics
    and the settings beyond the first two, then the first two settings, then the validation
    loss and accuracy (rightmost first among equals)."""
    columns, n_config = [], 0
    for i, name in enumerate(head):
        widest = max((len(r[i]) for r in rows), default=0)
        metric = name.startswith(("final.", "best."))  # grouped: the setting's keys come first
        if i == 0:
            keep = None
        elif name == "notes":  # the learner's words: wrapped between words, never dropped
            columns.append(Column(name, keep=None, wrap=True))
            continue
        elif name in ("status", "n"):
            keep = 8
        elif name.startswith("best."):
            keep = 1
        elif metric:
            keep = 7 if name in ("final.val/loss", "final.val/acc") else 3
        else:
            n_config += 1
            keep = 6 if n_config <= 2 else 4
        columns.append(Column(two_line_header(name, widest) if i else name,
                              "right" if metric or name == "n" else "left", keep=keep,
                              run_id=i == 0 and not grouped))
    return columns


def print_compare(head: list[str], rows: list[list[str]], grouped: bool = False,
                  width: int | None = None, file=None) -> list[str]:
    status = head.index("status") if "status" in head else None
    cells = [[status_text(v) if j == status else v for j, v in enumerate(r)] for r in rows]
    return print_fitted(compare_columns(head, rows, grouped), cells, width=width, file=file)


# ---------------------------------------------------------------------------------------------
# dlx show


def _print_notes(console: Console, path: Path) -> None:
    from dlx.records.notes import NOTES, read_notes

    notes = read_notes(path).strip()
    if notes:
        console.print(Text("notes", style="bold") + Text(f" ({path / NOTES})"), soft_wrap=True)
        console.print(Text(printable(notes)), soft_wrap=True)


def print_sweep(path: Path, width: int | None = None, file=None) -> None:
    """A sweep: its members' statuses, its tags and notes (members: `dlx show SWEEP/N`)."""
    from dlx.records.notes import read_tags
    from dlx.records.sweeps import expected_members

    members = sweep_members(path)
    console = console_for(output_width() if width is None else width, file)
    status = Text(", ").join(sweep_status([_safe_summary(m) for m in members],
                                          expected_members(path)).split("\n"))
    console.print(Text.assemble((path.name, "bold"), "  sweep: ", status, f"  ({path})"),
                  soft_wrap=True)
    tags = read_tags(path)
    if tags:
        console.print(Text.assemble(("tags", "bold"), "  ", ", ".join(tags)), soft_wrap=True)
    for line in _tuning_lines(path):
        console.print(Text(line), soft_wrap=True)
    console.print(Text(f"members: {', '.join(m.name for m in members) or 'none yet'} (dlx show "
                       f"{path}/N for one, dlx compare {path} for all)"), soft_wrap=True)
    _print_notes(console, path)


def _tuning_lines(path: Path) -> list[str]:
    """A tuned sweep's stage before its members (dlx.tuning): each arm's choice, or why there
    is none (its trials all failed or diverged; the tuning was stopped)."""
    from dlx.records.tuning import read_tuning

    tune = path / "tune"
    if not tune.is_dir():
        return []
    try:
        rows = read_tuning(path)
    except UsageError as e:
        return [f"tuning: {e}"]
    trials = [_safe_summary(m).get("status") for m in sweep_members(tune)]
    done = sum(status in ("completed", "diverged") for status in trials)
    if not rows:  # stopped before its trials were all in
        return [printable(f"tuning: stopped, {done} of {len(trials)} tuning runs finished "
                          f"({tune}); no member ran")]
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    chosen = {r["arm"]: r["setting"] for r in rows if r["chosen"]}
    out = [printable(f"tuned: {arm}: {chosen[arm]}") if arm in chosen else
           printable(f"tuned: {arm}: no setting trained (every trial failed or diverged)")
           for arm in arms]
    return out + [printable(f"tuning: {len(trials)} runs in {tune}, each trial in "
                            f"{path / 'tuning.csv'}")]


def print_run(path: Path, width: int | None = None, file=None) -> None:
    path = check_dir(path)
    if is_sweep(path) and not is_run(path):
        return print_sweep(path, width, file)
    run = load_run(path)
    s, cfg = run.summary, run.config
    width = output_width() if width is None else width
    console = console_for(width, file)
    console.print(Text.assemble((path.name, "bold"), "  ", status_text(s["status"]),
                                f"  ({path})"), soft_wrap=True)
    opt = cfg.get("optimizer", {})
    highlights = [
        ("experiment", s.get("experiment")),
        ("overrides", Items(s.get("overrides") or ["-"], sep=" ")),
        *_learner_rows(s),
        ("model", _model_items(cfg.get("model") or {})),
        ("optimizer", Items([f"{k}={v}" for k, v in opt.items()])),
        ("schedule", cfg.get("schedule", {}).get("name")),
        ("regularizer", Items([f"{k}={v}" for k, v in cfg.get("regularizer", {}).items()])),
        ("dataset", Items([f"{k}={v}" for k, v in cfg.get("dataset", {}).items()])),
        ("init", cfg.get("init", {}).get("name")),
        ("training", Items([*_budget(cfg, s, path), f"batch_size={cfg.get('batch_size')}",
                            f"dtype={cfg.get('dtype')}", f"seed={cfg.get('seed')}"], sep=" ")),
        ("time", f"{_duration(s)}, {s.get('steps', 0)} steps"
                 + (f", {s['steps_per_s']:.0f} steps/s" if s.get("steps_per_s") else "")),
    ]
    if s.get("diverged_at_step") is not None:
        highlights.append(("diverged", f"at step {s['diverged_at_step']}"))
    if s.get("error"):
        highlights.append(("error", s["error"]))
    from dlx.records.notes import read_tags

    tags = read_tags(path)
    if tags:
        highlights.insert(1, ("tags", Items(tags)))
    info = Table(show_header=False, box=None, pad_edge=False)
    info.add_column(style="bold", no_wrap=True)
    info.add_column(overflow="fold")
    for k, v in highlights:
        info.add_row(k, v if isinstance(v, Items) else Text(printable(_fmt(v))))
    console.print(info)

    final, best = s.get("final") or {}, s.get("best") or {}
    rows = [[key, _fmt(final[key]), _fmt(best.get(key))] for key in final]
    console.print(Text("metrics", style="bold"))
    print_fitted([Column("metric", keep=None), Column("final", "right", keep=2),
                  Column("best", "right", keep=1)], rows, width=width, file=file)
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*")
                   if p.is_file() and ".hydra" not in p.parts
                   and not p.name.startswith(".dlx."))  # the lock files: not the record
    files_row = Table(show_header=False, box=None, pad_edge=False)
    files_row.add_column(style="bold", no_wrap=True)
    files_row.add_column()
    files_row.add_row("files", Items(files, sep="  "))
    console.print(files_row)
    _print_notes(console, path)


# the options that say what a model is, shown first; the rest of its options follow
_MODEL_KEYS = {"rnn": ("cell", "hidden", "layers"), "mlp": ("hidden", "activation"),
               "cnn": ("channels", "hidden"), "resnet": ("depth", "width"),
               "plain": ("depth", "width"),
               "transformer": ("n_layers", "d_model", "n_heads", "d_ff")}


def _learner_rows(s: dict) -> list[tuple[str, object]]:
    """show's line for a run of the learner's own code: each group's class, file hashes."""
    source = s.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("targets"), dict):
        return []
    from dlx.checks.store import checked

    files = source.get("files") if isinstance(source.get("files"), dict) else {}
    verdicts = {t: checked(t, files) for t in source["targets"].values() if isinstance(t, str)}
    return [("your code", Items([f"{g}={t}" + (f" ({verdicts[t]})" if verdicts.get(t) else "")
                                 for g, t in source["targets"].items()]
                                + [f"{f} @{str(h)[:6]}" for f, h in files.items()]))]


def _model_items(model: dict) -> Items:
    """``rnn cell=lstm hidden=64 layers=1 ...``: the model's name and its options."""
    name = model.get("name")
    first = [k for k in _MODEL_KEYS.get(str(name), ()) if k in model]
    rest = [k for k in model if k != "name" and k not in first]
    return Items([str(name), *(f"{k}={model[k]}" for k in first + rest)], sep=" ")


def _last_epoch(run_dir: Path) -> int | None:
    """The epoch of metrics.csv's last complete row (read from the file's end), or None."""
    try:
        with open(run_dir / "metrics.csv", "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().split(b"\n")
    except OSError:
        return None
    for line in reversed(lines[:-1]):  # the last piece is cut short, or empty
        fields = line.split(b",")
        if len(fields) == 5 and fields[1].isdigit():
            return int(fields[1])
    return None


def _budget(cfg: dict, summary: dict, run_dir: Path) -> list[str]:
    """What bounded training: ``epochs=20``, or ``max_steps=500 (3 epochs)`` for a budget in
    updates (epochs then follow from it, and the configured ``epochs`` is not used)."""
    if cfg.get("max_steps"):
        epochs = _last_epoch(run_dir)
        return [f"max_steps={cfg['max_steps']}"
                + (f" ({epochs} epoch{'s' * (epochs != 1)})" if epochs is not None else "")]
    return [f"epochs={cfg.get('epochs')}"]
