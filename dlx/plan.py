"""The 60-day deep-learning foundations plan, its weekly rhythm, and where the learner stands.

The 60 days run in weeks of 5 build days, 1 consolidation day and 1 reading day, counted from
the start date (day 1 is a build day): 8 full weeks and 4 build days, so 44 build days, 8
consolidation and 8 reading days. The plan's deliverables keep their order and their share of
the plan's days: a deliverable ending on plan day d ends on build day round(d * 44 / 60) (at
least one build day each), so every phase ends where it did, give or take a day (19, 39, 60).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

from dlx.errors import UsageError

# (phase, days, deliverable, experiment, command); "series" marks the notebook series' topics
# that the 60 days do not schedule
PLAN = [
    (1, "1-3", "logistic regression from scratch", "logreg", "dlx run -m experiment=logreg"),
    (1, "4-6", "3-D loss-surface visualizer with optimizer trajectories", "loss_surface",
     "dlx run -m experiment=loss_surface"),
    (1, "7", "batch vs stochastic vs mini-batch gradient descent", "gd_variants",
     "dlx run -m experiment=gd_variants"),
    (1, "8-9", "conditioning experiment", "conditioning", "dlx run experiment=conditioning"),
    (1, "10-12", "SGD vs Momentum vs Adam (and AdaGrad, RMSProp, AdaMax, Nadam, AdamW)",
     "optimizers", "dlx run -m experiment=optimizers"),
    (1, "13-14", "learning rate too high / too low", "learning_rate",
     "dlx run -m experiment=learning_rate"),
    (1, "15-16", "LR range test", "lr_range", "dlx run experiment=lr_range"),
    (1, "17-20", "LR decay schedules", "lr_schedules", "dlx run -m experiment=lr_schedules"),
    (1, "series", "Hessian intuition: Hessian-vector products, Lanczos, and full-batch GD at the "
     "edge of stability (sharpness -> 2/eta)", "sharpness", "dlx run -m experiment=sharpness"),
    (1, "series", "house prices: linear regression in closed form and by GD, against an MLP "
     "(notebook topic 1)", "house_prices", "dlx run -m experiment=house_prices"),
    (1, "series", "function approximation: MLPs of growing width and depth on sin, a cubic, |x| "
     "and a step; error against parameters, extrapolation, bias-variance (notebook topic 2)",
     "function_approx", "dlx run -m experiment=function_approx"),
    (1, "series", "activations: sigmoid, tanh, ReLU, ELU, SELU, SiLU, softplus and their "
     "derivatives; saturation, dead units, gradient flow (notebook topic 3)", "activations",
     "dlx run -m experiment=activations"),
    (1, "series", "losses: cross-entropy vs squared error at a wrong sigmoid output; entropy, "
     "cross-entropy, KL; label smoothing (notebook topic 4)", "losses", "dlx run experiment=losses"),
    (1, "series", "momentum as an exponentially weighted average; Adam's bias correction "
     "(notebook 7.4, 7.7)", "ewa", "dlx run experiment=ewa"),
    (1, "series", "vectorization: loops against matmul and broadcasting, checked equal and timed "
     "(notebook topic 6)", "vectorization", "dlx run experiment=vectorization"),
    (2, "21-24", "2-layer MLP on MNIST with hand-written backprop", "mnist_mlp",
     "dlx run experiment=mnist_mlp"),
    (2, "25-27", "initialization comparison", "init", "dlx run -m experiment=init"),
    (2, "28-30", "gradient-norm tracking across layers (vanishing / exploding)", "grad_flow",
     "dlx run -m experiment=grad_flow"),
    (2, "31-33", "batch size vs gradient noise", "batch_noise", "dlx run -m experiment=batch_noise"),
    (2, "34-36", "L1 / L2 / elastic-net regularization", "regularization",
     "dlx run -m experiment=regularization"),
    (2, "37-38", "dropout", "dropout", "dlx run -m experiment=dropout"),
    (2, "39-40", "written report on gradient flow", None, "dlx report --phase 2"),
    (2, "series", "choosing lambda by k-fold cross-validation: the CV curve (mean ± sd over 5 "
     "folds), argmin and the one-standard-error rule, one refit, the test error once "
     "(notebook 8.5)", "cv_lambda", "dlx run experiment=cv_lambda"),
    (2, "series", "batch normalization: with and without BN, sensitivity to the init scale, "
     "internal covariate shift, training vs eval mode (notebook topic 10)", "batchnorm",
     "dlx run -m experiment=batchnorm"),
    (2, "series", "batch normalization at batch size 5 / 10 / 50, against LayerNorm", "batchnorm_batch",
     "dlx run -m experiment=batchnorm_batch"),
    (2, "series", "CNN: convolution and pooling, LeNet-5 on MNIST (notebook topic 11)", "cnn",
     "dlx run experiment=cnn"),
    (2, "series", "ResNet: plain vs residual nets at depth 8-56, degradation and init gradients "
     "(notebook topic 13)", "resnet", "dlx run -m experiment=resnet"),
    (3, "41-45", "a minimal transformer block", "transformer", "dlx run experiment=transformer"),
    (3, "46-50", "a tiny transformer on a toy sequence task", "transformer",
     "dlx run experiment=transformer"),
    (3, "51-55", "scaling vs performance", "scaling", "dlx run -m experiment=scaling"),
    (3, "56-58", "depth vs width", "depth_width", "dlx run -m experiment=depth_width"),
    (3, "59-60", "your own explanation of why transformers scale (the Phase 3 report)", None,
     "dlx report --phase 3"),
    (3, "series", "RNN vs LSTM vs GRU: memory over a delay (copy memory; #15)", "rnn_memory",
     "dlx run -m experiment=rnn_memory"),
    (3, "series", "RNN vs LSTM vs GRU on the adding problem: MSE against the sequence length "
     "(#15)", "rnn_adding", "dlx run -m experiment=rnn_adding"),
    (3, "series", "vanishing / exploding gradients through time (||dL/dh_t|| against t at "
     "W_hh radius rho, RNN and LSTM) and gradient clipping (notebook topic 12; #15)",
     "bptt_gradients", "dlx run -m experiment=bptt_gradients"),
    (3, "series", "a character-level LSTM language model (truncated BPTT, state carried) against "
     "a transformer of equal size and time: loss, bits per character, samples, throughput "
     "against sequence length (#15)", "char_lm", "dlx run -m experiment=char_lm"),
]

DAYS = 60
WEEK = ("build",) * 5 + ("consolidation", "reading")
STATE = ".plan.json"  # under the runs root: {"start": "YYYY-MM-DD"}
REPORT = "report"     # done-key prefix of a phase's written report: "report:2" (no experiment)


def kind(day: int) -> str:
    """What calendar day ``day`` (1-based) of the plan is for."""
    return WEEK[(day - 1) % 7]


BUILD_DAYS = [d for d in range(1, DAYS + 1) if kind(d) == "build"]  # calendar days, 44 of them


def schedule() -> list[tuple[tuple, list[int]]]:
    """Each scheduled deliverable (a PLAN row that is not a series topic) with its calendar days.

    Deliverables keep their order; the one ending on plan day d ends on build day
    round(d * 44 / 60), and takes at least one build day."""
    out, done = [], 0
    for row in PLAN:
        if row[1] == "series":
            continue
        end = int(row[1].split("-")[-1])
        last = max(done + 1, math.floor(end * len(BUILD_DAYS) / DAYS + 0.5))
        out.append((row, BUILD_DAYS[done:last]))
        done = last
    assert done == len(BUILD_DAYS), "the deliverables must fill the build days"
    return out


# Deliverables the learner implements (the plan says "from scratch", "implement", "hand-written"):
# done only by a completed run of the learner's own code in this group (dlx.learner), never by a
# run of dlx's reference, which shows as "reference ran".
SCRATCH = {"logreg": "model", "gd_variants": "optimizer", "optimizers": "optimizer",
           "lr_schedules": "schedule", "mnist_mlp": "model", "init": "init",
           "transformer": "model"}
REFERENCE = "reference:"  # done-key prefix: a from-scratch deliverable run with dlx's code only
# the deliverables whose code `dlx check` grades: there a run of the learner's code counts once
# the check passed for the very bytes the run recorded; until then it shows as "yours ran"
CHECKED = {"logreg", "gd_variants", "optimizers", "lr_schedules", "mnist_mlp", "init"}
UNCHECKED = "unchecked:"  # done-key prefix: the learner's code ran, its check has not passed


def _key(row: tuple) -> str:
    return row[3] or f"{REPORT}:{row[0]}"


def swept(experiment: str) -> bool:
    """Whether the plan runs ``experiment`` as a sweep (``dlx run -m``): its record is then a
    sweep, and a single run of it (a rerun of one member, say) does not stand for it."""
    return any(row[3] == experiment and " -m " in f" {row[4]} " for row in PLAN)


def completed_runs(root: Path) -> dict[str, str]:
    """experiment name -> the id of its newest completed run (or of the sweep holding it).

    Only a run whose summary says ``completed`` and names the experiment counts: a plain run of
    the same model (experiment null), a diverged, failed, interrupted or lost run does not.
    For an experiment the plan runs as a sweep (``-m``), a sweep with a completed member is
    preferred to a newer single run of it (``dlx rerun SWEEP/5``, ``dlx run experiment=X``):
    the single run counts only when no such sweep exists. A phase's written report counts
    under "report:N" once ``dlx report --phase N`` has written one under ROOT/reports (its
    report.json names the phase).
    """
    from dlx.records.store import is_run, is_sweep, read_summary, sweep_members

    found: dict[str, tuple[bool, str, str]] = {}  # name -> (a sweep of a swept one, when, id)
    if not root.is_dir():
        return {}
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        members = sweep_members(path) if is_sweep(path) else [path] if is_run(path) else []
        for member in members:
            try:
                s = read_summary(member)
            except UsageError:
                continue
            name = s.get("experiment")
            if s.get("status") == "completed" and name:
                key = {True: name, False: f"{REFERENCE}{name}",
                       None: f"{UNCHECKED}{name}"}[_theirs(name, s)]
                rank = (swept(name) and member != path, str(s.get("finished_at") or ""))
                if key not in found or rank >= found[key][:2]:
                    found[key] = (*rank, path.name)
    done = {name: run for name, (_, _, run) in found.items()}
    # a phase's report: report.json (written by `dlx report`) names the phase it covers
    for meta in sorted((root / "reports").glob("*/report.json"), key=lambda p: p.stat().st_mtime):
        try:
            phase = json.loads(meta.read_text()).get("phase")
        except (OSError, ValueError, AttributeError):
            continue
        if phase is not None:
            done[f"{REPORT}:{phase}"] = f"reports/{meta.parent.name}"
    return done


def available(experiment: str) -> bool:
    from importlib.resources import files

    return files("dlx.conf").joinpath("experiment", f"{experiment}.yaml").is_file()


# --- the start date ---------------------------------------------------------------------------

def parse_date(text: str, option: str) -> date:
    """A date from the command line: YYYY-MM-DD or 'today'; a UsageError otherwise."""
    if text.strip().lower() == "today":
        return date.today()
    try:
        if len(text) != 10:
            raise ValueError
        day = date.fromisoformat(text)
        if not 1900 <= day.year <= 9000:  # the plan's days and weeks must be dates too
            raise UsageError(f"{option}: {text!r} is out of the plan's range (years 1900 to "
                             f"9000)")
        return day
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a date (give YYYY-MM-DD, e.g. 2026-12-01, "
                         "or 'today')") from None


def read_start(root: Path) -> date | None:
    """The remembered start date (ROOT/.plan.json), None if none was set."""
    path = root / STATE
    if not path.is_file():
        return None
    try:
        day = date.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["start"])
        if not 1900 <= day.year <= 9000:
            raise ValueError(day)
        return day
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise UsageError(f"{path}: corrupt (set the start date again: dlx plan --start "
                         "YYYY-MM-DD)") from None


def save_start(root: Path, start: date) -> Path:
    from dlx.records.store import write_json
    from dlx.writable import check_file

    path = check_file(root / STATE, create_parents=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"start": start.isoformat()})
    return path


# --- printing ---------------------------------------------------------------------------------

def _day(start: date | None, day: int) -> str:
    return f"{start + timedelta(days=day - 1):%a %-d %b}" if start else ""


def _span(days: list[int], start: date | None) -> str:
    """Calendar days as '3-4', or as dates '3-4 Dec' / '30 Dec-2 Jan' once the plan is dated."""
    a, b = days[0], days[-1]
    if start is None:
        return str(a) if a == b else f"{a}-{b}"
    da, db = start + timedelta(days=a - 1), start + timedelta(days=b - 1)
    if a == b:
        return f"{da:%-d %b}"
    return f"{da:%-d}-{db:%-d %b}" if da.month == db.month else f"{da:%-d %b}-{db:%-d %b}"


def _theirs(experiment: str, summary: dict) -> bool | None:
    """Whether a completed run counts for its deliverable: any run, unless the deliverable is
    one the learner implements (SCRATCH); then only a run of their code in that group (False
    for dlx's), and in a group `dlx check` grades, only once the check passed for the source
    the run recorded (None until then)."""
    from dlx.checks.store import checked
    from dlx.records.store import learner_groups

    group = SCRATCH.get(experiment)
    if group is None:
        return True
    if group not in learner_groups(summary):
        return False
    if experiment not in CHECKED:
        return True
    source = summary["source"]
    target = source["targets"].get(group)
    return True if checked(str(target), source.get("files") or {}) == "check passed" else None


def _mark(key: str, done: dict[str, str]) -> str:
    if key in done:
        return f"[green]✓[/] {done[key]}"
    if f"{UNCHECKED}{key}" in done:  # the learner's code ran, its check has not passed
        return (f"[yellow]yours ran[/] {done[UNCHECKED + key]}; done once `dlx check "
                f"{SCRATCH[key]}=<your option>` passes for that code")
    if f"{REFERENCE}{key}" in done:  # dlx's code ran it; the learner's has not yet
        return (f"[yellow]reference ran[/] {done[REFERENCE + key]}; yours: "
                f"{SCRATCH[key]}=<your option>")
    if not key.startswith(REPORT) and not available(key):
        return "[yellow]not in this version of dlx yet[/]"
    return "[dim]–[/]"


def _console():
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=220)


def _next(done: dict[str, str]) -> tuple[tuple, list[int]] | None:
    return next(((row, days) for row, days in schedule() if _key(row) not in done), None)


def _next_lines(done: dict[str, str], start: date | None, today: int | None) -> list[str]:
    nxt = _next(done)
    if nxt is None:
        return ["every deliverable of the plan is done."]
    (_, _, deliverable, _, command), days = nxt
    when = f"day{'s' * (len(days) > 1)} {_span(days, None)}" + (f", {_span(days, start)}" if start else "")
    if today is not None and 1 <= today <= DAYS and days[-1] < today:
        late = sum(1 for d in BUILD_DAYS if days[-1] < d <= today)
        when += f"; {late} build day{'s' * (late != 1)} behind"
    return [f"next deliverable: {deliverable} ({when})", f"  {command}"]


def _count(done: dict[str, str]) -> str:
    rows = schedule()
    n = sum(1 for row, _ in rows if _key(row) in done)
    return f"{n} of {len(rows)} deliverables done."


def print_plan(root: Path, start: date | None = None) -> None:
    """The whole plan: every deliverable and series topic, its days (dates once started)."""
    from rich.table import Table

    done = completed_runs(root)
    when = {id(row): days for row, days in schedule()}
    title = f"the 60-day plan (runs under {root}"
    title += f"; started {start:%a %-d %b %Y})" if start else ")"
    table = Table(title=title, title_justify="left")
    for col in ("phase", "days", "scheduled" if start is None else "dates", "deliverable",
                "experiment", "command", "done"):
        table.add_column(col, overflow="fold")
    for row in PLAN:
        phase, days, deliverable, experiment, command = row
        days_now = _span(when[id(row)], start) if id(row) in when else "series"
        table.add_row(str(phase), days, days_now, deliverable, experiment or "-", command,
                      _mark(_key(row), done))
    console = _console()
    console.print(table)
    console.print("days: the plan's own numbering; "
                  + ("dates" if start else "scheduled: the calendar days")
                  + " in weeks of 5 build days, 1 consolidation day and 1 reading day.")
    n = sum(1 for *_, e, _ in PLAN
            if e and any(k in done for k in (e, f"{REFERENCE}{e}", f"{UNCHECKED}{e}")))
    console.print(f"{n} of {sum(1 for *_, e, _ in PLAN if e)} experiments have a completed run; "
                  + _count(done))
    for line in _next_lines(done, start, None):
        console.print(line, highlight=False, markup=False)


def week_rows(week: int, start: date | None, done: dict[str, str]) -> list[tuple]:
    """The days of ``week`` (1-based) as (day, date, kind, what, command, done-mark)."""
    by_day = {d: (row, days) for row, days in schedule() for d in days}
    phase_end = {row[0]: days[-1] for row, days in schedule()}  # the last wins
    days = [d for d in range(7 * (week - 1) + 1, 7 * week + 1) if d <= DAYS]
    built = [by_day[d][0] for d in days if d in by_day]
    later = [by_day[d][0][2] for d in range(7 * week + 1, 7 * week + 8) if d in by_day]
    out = []
    for d in days:
        if d in by_day:
            row, span = by_day[d]
            part = f" ({span.index(d) + 1}/{len(span)})" if len(span) > 1 else ""
            out.append((d, _day(start, d), "build", row[2] + part, row[4], _mark(_key(row), done)))
        elif kind(d) == "consolidation":
            what = "consolidate: compare the week's runs, note what you learned"
            command = "dlx compare RUN... --notes; dlx note RUN \"...\""
            for phase in sorted({r[0] for r in built}):
                if phase_end[phase] in days:  # the phase's last build day is this week
                    what += f"; draft the Phase {phase} report"
                    command += f"; dlx report --phase {phase}"
            out.append((d, _day(start, d), "consolidation", what, command, ""))
        else:
            topics = list(dict.fromkeys(later))
            what = ("reading: the theory behind next week: " + "; ".join(topics)
                    if topics else "reading: look back over the 60 days")
            out.append((d, _day(start, d), "reading", what, "", ""))
    return out


def print_week(root: Path, start: date, today: date, on: bool = False) -> None:
    """This week of the plan: its days, today's task, the next deliverable and its command.
    The table fits the terminal as `dlx list`'s do: no word split, run ids shortened first.
    ``on``: ``today`` is a date the user asked about (``--on``), not today."""

    done = completed_runs(root)
    day = (today - start).days + 1
    console = _console()
    if day < 1:
        head = f"the plan starts {start:%a %-d %b %Y}, in {1 - day} day{'s' * (day != 0)}: week 1:"
        week = 1
    elif day > DAYS:
        head = (f"the 60 days ended {start + timedelta(days=DAYS - 1):%a %-d %b %Y}; "
                "its last week:")
        week = (DAYS - 1) // 7 + 1
    else:
        week = (day - 1) // 7 + 1
        head = (f"{'on' if on else 'today is'} day {day} of {DAYS}, {today:%a %-d %b %Y}, "
                f"a {kind(day)} day; "
                f"week {week} of {(DAYS - 1) // 7 + 1}:")
    # one entry per day, its command(s) on the lines below: readable in any terminal width
    width = shutil.get_terminal_size((10_000, 24)).columns if sys.stdout.isatty() else 10_000
    if os.environ.get("COLUMNS", "").isdigit():
        width = int(os.environ["COLUMNS"])
    out = [f"the 60-day plan, started {start:%a %-d %b %Y} (runs under {root})", head, ""]
    for d, when, what_kind, what, command, mark in week_rows(week, start, done):
        prefix = f"{'▶' if d == day else ' '} {d:>2}  {when:<10}  {what_kind:<13}  "
        if "not in this version" in mark:
            what += " (not in this version of dlx yet)"
        out.append(textwrap.fill(what, max(width, len(prefix) + 30), initial_indent=prefix,
                                 subsequent_indent=" " * len(prefix), break_long_words=False,
                                 break_on_hyphens=False))
        out += [" " * len(prefix) + c for c in command.split("; ") if c]
        if mark.startswith("[green]"):  # done: the run that did it
            out.append(" " * len(prefix) + "✓ " + mark.removeprefix("[green]✓[/] "))
    print("\n".join(out) + "\n")
    console = _console()
    for line in _next_lines(done, start, day):
        console.print(line, highlight=False, markup=False)
    console.print(_count(done) + " `dlx plan --all` shows the whole plan.", highlight=False,
                  markup=False)
