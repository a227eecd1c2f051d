"""`dlx report`: a print-ready report of a phase of the plan, or of the records named.

``dlx report --phase N`` takes the newest finished run or sweep of each of the phase's
experiments (:mod:`dlx.report.phases`; records given by path take their place) and writes one
self-contained HTML file — figures embedded as data URIs, so it opens and prints anywhere — and
a Markdown twin whose figures are copied beside it. Title page, contents, numbered sections,
tables and figures with captions, page breaks for A4 print (CSS ``@page``). Each section gives
the command that reproduces its record, a table of its numbers (mean ± sd over seeds), its
figures, and the learner's notes (``RUN/notes.md``) in a marked slot — an empty one when there
are none. The report states what was measured; it writes no analysis of its own. An experiment
without a finished record gets a section saying which command makes it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.files import SUMMARY, file_name
from dlx.records.store import (
    Run,
    check_dir,
    is_sweep,
    learner_groups,
    read_summary,
    sweep_members,
)
from dlx.report.notes import demote, read_notes, to_html
from dlx.report.phases import (
    ORDER,
    PHASES,
    Pick,
    Section,
    command,
    phase_of,
    pick,
    records,
    state,
)

HEADLINE = ("test/acc", "val/acc", "val/loss", "train/loss")
YOURS = "*Your explanation:* …"
MAX_ROWS = 40  # rows of a CSV table shown (the file holds them all)


class Source:
    """A run or a sweep, read for the report."""

    def __init__(self, path: Path):
        from dlx.experiments import experiment_of, hooks
        from dlx.records.sweeps import expected_members

        self.path = path
        self.sweep = is_sweep(path)
        members = sweep_members(path) if self.sweep else [path]
        self.runs = [Run(p) for p in members if (p / SUMMARY).is_file()]
        if not self.runs:
            raise UsageError(f"{path}: no run with a summary.json to report on")
        # a sweep is described by the members it asked for, not by those that got to run
        self.unsummarized = len(members) - len(self.runs)  # started, no summary.json
        self.asked = max(expected_members(path) or 0, len(members)) if self.sweep else 1
        self.not_run = self.asked - len(members)
        self.finished, self.how = state(path)
        self.config = self.runs[0].config
        self.name = experiment_of(self.config) or self.config.get("name", path.name)
        # the plan's experiment it is a record of (None for a plain run, whatever its name)
        self.experiment = self.runs[0].summary.get("experiment")
        self.module = hooks(self.name)
        self.folder: Path | None = None  # where its figures were found (or drawn)

    def command(self) -> str:
        """The command that makes this very record again (its overrides); for a record of the
        learner's own code, the workspace it runs in (``dlx --workspace DIR run ...``)."""
        summary = read_summary(self.runs[0].path)
        first = summary.get("overrides", [])
        source = next((r.summary.get("source") for r in self.runs
                       if isinstance(r.summary.get("source"), dict)), None)
        ws = source.get("workspace") if source else None
        dlx = f"dlx --workspace {ws}" if isinstance(ws, str) and ws else "dlx"
        if not self.sweep:
            return f"{dlx} run " + " ".join(first)
        task = _sweep_task(self.path)
        if task is not None:  # the sweep's own command line (its members may not all have run)
            return f"{dlx} run -m {' '.join(task)}  # a sweep of {self.asked}"
        from dlx.records.store import differing

        varying = {o.split("=", 1)[0] for d in differing([r.overrides for r in self.runs])
                   for o in d}
        fixed = [o for o in first if o.split("=", 1)[0] not in varying]
        return f"{dlx} run -m {' '.join(fixed)}  # a sweep of {self.asked}"

    def status(self) -> str:
        counts: dict[str, int] = {}
        for run in self.runs:
            s = run.summary.get("status", "?")
            counts[s] = counts.get(s, 0) + 1
        done = counts.pop("completed", 0)
        parts = [f"{done} of {self.asked} completed" if done < self.asked else f"{done} completed"]
        parts += [f"{n} {s}" for s, n in sorted(counts.items())]
        parts += [f"{self.unsummarized} without a summary"] if self.unsummarized else []
        parts += [f"{self.not_run} not run"] if self.not_run > 0 else []
        when = str(self.runs[-1].summary.get("finished_at") or "")[:16].replace("T", " ")
        kind = f"a sweep of {self.asked} run{'s' * (self.asked != 1)}" if self.sweep else "one run"
        text = f"{kind}: {', '.join(parts) if self.sweep else self.runs[0].summary.get('status', '?')}"
        if not self.finished:
            return text + "; UNFINISHED" + (f", last run ended {when}" if when else "")
        return text + (f"; finished {when}" if when else "")

    def unfinished_note(self) -> str | None:
        """What a reader must know about a record that did not run to its end, else None."""
        if self.finished:
            return None
        what = (f"only {len(self.runs)} of the {self.asked} runs it asked for have results "
                f"({self.how})" if self.sweep else f"the run did not complete ({self.how})")
        return (f"Unfinished record: {what}. The numbers and figures below show what was "
                "recorded so far, not the comparison the experiment makes; run it again to "
                "complete it.")

    def figures(self, scratch: Path, notes: list[str]) -> list[Path]:
        """The record's figures: the experiment's own (a sweep's, else each member's), and the
        generic loss and accuracy curves only where the experiment draws fewer than two of its
        own in a single run (all the generic ones when it draws none: a plain run). A record
        without figures is drawn into ``scratch`` (records are only read)."""
        folder = self.path / "plots"
        if not folder.is_dir() or not any(folder.rglob("*.png")):
            from dlx.figures import plot_path

            plot_path(self.path, "png", notes, out=scratch)
            folder = scratch
        self.folder = folder
        generic = {"decision_boundary", "weight_norm", "lr"}
        for run in self.runs:  # members may log different metrics (a penalty only where λ > 0)
            m = run.metrics
            generic |= set(m["metric"]) | set(m["split"] + "_" + m["metric"])
        top = sorted(folder.glob("*.png"))
        own = [p for p in top if p.stem not in generic]
        if not own:  # a sweep whose experiment draws each member (e.g. loss_surface)
            own = sorted(p for p in folder.glob("*/*.png") if p.stem not in generic)
        if not own:  # a plain run or an experiment without figures of its own: all of them
            return top
        if self.sweep:  # a sweep's overlays of every member's curves say less than its own
            return own
        curves = [p for p in top if p.stem in ("loss", "acc", "val_loss", "val_acc")]
        return own + curves[: max(0, 2 - len(own))]

    def table(self) -> tuple[str, list[str], list[list[str]]]:
        """(what the rows are, head, rows): one row per setting (members that differ only by
        seed pooled) with the headline final metrics and the experiment's own numbers, as
        mean ± sd over seeds. Columns every row shares (members per setting, status) move into
        the caption, so the table stays narrow enough for a page."""
        from dlx.plots.sweep import seed_groups

        groups = seed_groups(self.runs) if self.sweep else [("", [0])]
        finals = [r.summary.get("final") or {} for r in self.runs]
        keys = [k for k in HEADLINE if any(k in f for f in finals)][:3]
        own = [self.own_numbers(run) for run in self.runs]
        extra = list(dict.fromkeys(k for o in own for k in o if k not in keys
                                   and k.removeprefix("final ") not in keys))
        sizes = {len(idx) for _, idx in groups}
        statuses = [", ".join(sorted({self.runs[i].summary.get("status", "?") for i in idx}))
                    for _, idx in groups]
        head = ["setting", *(["runs"] if len(sizes) > 1 else []),
                *(["status"] if set(statuses) != {"completed"} else []), *keys, *extra]
        rows = []
        for (label, idx), status in zip(groups, statuses):
            row = [_short(label) if self.sweep else self.path.name]
            row += [str(len(idx))] if len(sizes) > 1 else []
            row += [status] if "status" in head else []
            row += [pooled([finals[i].get(k) for i in idx]) for k in keys]
            row += [pooled([own[i].get(k) for i in idx]) for k in extra]
            rows.append(row)
        n = max(sizes)
        what = ("final values" if n == 1 else
                f"per setting, mean ± sd over its {n} seeds (sample sd)" if len(sizes) == 1 else
                "per setting, mean ± sd over its seeds (sample sd; runs: how many)")
        if "status" not in head:
            what += ", every run completed"
        return what, head, rows

    def own_numbers(self, run: Run) -> dict:
        """The experiment's numbers for one run: its ``report_numbers(run)``, else what the
        run recorded under the experiment's name in summary.json (e.g. fitted slopes)."""
        try:
            if hasattr(self.module, "report_numbers"):
                return self.module.report_numbers(run)
        except Exception as e:  # noqa: BLE001 - one member's odd files never stop a report
            return {"(numbers)": f"not read: {type(e).__name__}"}
        block = run.summary.get(self.name)
        return dict(_flatten(block)) if isinstance(block, dict) else {}

    def sweep_numbers(self) -> dict:
        """The experiment's numbers about the whole record (e.g. fitted laws with intervals)."""
        fn = getattr(self.module, "report_sweep_numbers", None)
        if fn is None or self.folder is None:
            return {}
        try:
            return fn(self.runs, self.folder) or {}
        except Exception as e:  # noqa: BLE001
            return {"(numbers)": f"not read: {type(e).__name__}: {e}"}

    def csv_tables(self) -> list[tuple[str, list[str], list[list[str]]]]:
        """Throughput tables the record wrote (``*throughput*.csv`` in the record, its figures'
        folder or, for a sweep, its members: one table per file name, members' rows together
        under a ``member`` column), read as they are."""
        import csv

        dirs = [("", self.path)] + ([("", self.folder)] if self.folder else [])
        if self.sweep:
            from dlx.plots.sweep import member_labels

            dirs += list(zip(member_labels(self.runs), (r.path for r in self.runs)))
        tables: dict[str, tuple[list[str], list[list[str]]]] = {}
        for label, folder in dirs:
            for path in sorted(folder.glob("*throughput*.csv")):
                if path.is_symlink():  # a record's own file, never one it points to
                    continue
                try:
                    with open(path, newline="", encoding="utf-8") as f:
                        rows = list(csv.reader(f))
                except (OSError, UnicodeDecodeError, csv.Error):
                    continue
                if len(rows) < 2:
                    continue
                head = (["member"] if label else []) + rows[0]
                body = [([label] if label else []) + [_cell(c) for c in r] for r in rows[1:]]
                if path.name in tables and tables[path.name][0] == head:
                    tables[path.name][1].extend(body)
                elif path.name not in tables:
                    tables[path.name] = (head, body)
        return [(name, head, rows) for name, (head, rows) in tables.items()]

    def notes(self) -> list[tuple[str, str]]:
        """(label, text) of the record's notes: the sweep's own, then each member's."""
        from dlx.plots.sweep import member_labels

        out = []
        if self.sweep and (text := read_notes(self.path)):
            out.append((f"{self.path.name}/notes.md", text))
        labels = member_labels(self.runs) if self.sweep else [self.path.name]
        for run, label in zip(self.runs, labels):
            if text := read_notes(run.path):
                where = f"{self.path.name}/{run.path.name}" if self.sweep else self.path.name
                out.append((f"{where}/notes.md" + (f" ({label})" if self.sweep else ""), text))
        return out


def _yours(doc: Doc, src: Source, section: Section, scratch: Path, notes: list[str],
           given: list[Source], found: dict[str, list[Path]]) -> None:
    """For a deliverable the learner implements (``dlx.plan.SCRATCH``): their runs against
    dlx's reference (:mod:`dlx.report.yours`), from this record, the other records of the
    experiment named on the command line and those under the runs root (``found``: its
    records by experiment, read once per report); or where to start when none of theirs ran."""
    from dlx.plan import SCRATCH
    from dlx.report import yours

    group = SCRATCH.get(src.experiment or "")
    if group is None:
        return
    siblings = [g for g in given if g.experiment == src.experiment and g.path != src.path]
    theirs = [g for g in siblings if any(yours.is_mine(r, group) for r in g.runs)]
    if theirs and not any(yours.is_mine(r, group) for r in src.runs):
        return  # the section of the record with the learner's runs sets them against these
    held = [src.runs] + [g.runs for g in siblings]  # the runs of each record, this one first
    for path in found.get(src.experiment, [])[::-1][:20]:  # newest first
        if path.resolve() != src.path.resolve():
            try:
                held.append(Source(path).runs)
            except UsageError as e:
                notes.append(f"{path}: not read for yours against dlx's ({e})")
    arms = yours.arms(held, group)
    title = f"{section.title}: yours against dlx's reference"
    if not arms:
        cmd = f"{command(src.experiment)} {group}=<your option>"
        other = sorted(set().union(*(learner_groups(r.summary) for r in src.runs)))
        these = (f"these runs use your {', '.join(other)} with dlx's {group}" if other
                 else "these runs are dlx's reference")
        text = (f"Not run yet with your own {group}: this deliverable is yours to implement. "
                f"Write it, then run {{}} (README: “Your own implementation”); {these}.")
        doc.para(f"<b>{html.escape(title)}.</b> "
                 + html.escape(text).format(f"<code>{html.escape(cmd)}</code>"),
                 f"**{title}.** " + text.format(f"`{cmd}`"), "missing-run")
        return
    keys = [k for k in HEADLINE if any(k in (r.summary.get("final") or {})
                                       for a in arms for r in a.mine)][:3]
    rows = [row for a in arms for row in yours.finals(a, keys, pooled)]
    doc.table(f"{title}: final values, mean ± sd over seeds (sample sd).",
              ["code", "setting", "seeds", *keys], rows)
    for arm in arms:
        text = yours.verdict(arm)
        doc.para(html.escape(text), text)
    doc.table(f"{title}: what `dlx check` said of the code these runs recorded (its verdict "
              f"for those very bytes, kept in the workspace).",
              ["code", "check", "verdict", "stages"], yours.check_rows(arms, group))
    png = yours.overlay(arms, scratch)
    if png is not None:
        doc.figure(png, f"{title}: loss against step, dlx's solid, yours dashed, each the "
                        f"mean ± 1 sd over its seeds.", src.name)


def _sweep_task(path: Path) -> list[str] | None:
    """The overrides a sweep was started with (its multirun.yaml), None if unreadable."""
    import yaml

    try:
        data = yaml.safe_load((path / "multirun.yaml").read_text(encoding="utf-8"))
        task = data["hydra"]["overrides"]["task"]
    except (OSError, yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError):
        return None
    return [str(t) for t in task] if isinstance(task, list) and task else None


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        elif not isinstance(v, list):
            yield f"{prefix}{k}", v


def _short(label: str) -> str:
    """``model.activation=relu, init=he_normal`` -> ``activation=relu, init=he_normal``: the
    last part of each key names it well enough in a table whose caption names the record."""
    return ", ".join(o.split("=", 1)[0].rsplit(".", 1)[-1] + "=" + o.split("=", 1)[1]
                     if "=" in o else o for o in label.split(", "))


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header; (0, 0) if it is not one."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return 0, 0
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _cell(text: str) -> str:
    """A CSV cell as written, unless it is a long number (0.30000000000000004 -> 0.3)."""
    if len(text) <= 10:
        return text
    try:
        return number(float(text))
    except ValueError:
        return text


def number(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e7:
        return f"{int(v):,}"
    return f"{v:.4g}"


def pooled(values: list) -> str:
    """Several seeds' values as ``mean ± sd`` (sample sd); one value, or equal ones, alone."""
    nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]
    words = list(dict.fromkeys(str(v) for v in values if v is not None and
                               not isinstance(v, (int, float))))
    if not nums:
        return ", ".join(words) or "–"
    if len(set(nums)) == 1:
        text = number(nums[0])
    else:
        mean = sum(nums) / len(nums)
        sd = math.sqrt(sum((x - mean) ** 2 for x in nums) / (len(nums) - 1))
        text = f"{mean:.4g} ± {sd:.2g}"
    skipped = len(values) - len(nums) - len([v for v in values if v is not None and
                                             not isinstance(v, (int, float))])
    return text + (f" (+{', '.join(words)})" if words else "") + \
        (f" ({len(nums)} of {len(values)})" if skipped else "")


# --- the document: HTML and its Markdown twin, written side by side --------------------------

def _md(text: str) -> str:
    """Text from a record in the Markdown twin: its HTML inert (a note's <script> or <img>
    is shown, not run, as report.html shows it)."""
    return html.escape(text, quote=False)


class Doc:
    def __init__(self, out: Path):
        self.html: list[str] = []
        self.md: list[str] = []
        self.figdir = out / "figures"
        self.n_fig = self.n_tab = 0

    def heading(self, level: int, text: str, anchor: str = "", cls: str = "") -> None:
        attrs = (f" id='{anchor}'" if anchor else "") + (f" class='{cls}'" if cls else "")
        self.html.append(f"<h{level}{attrs}>{html.escape(text)}</h{level}>")
        self.md += ["#" * level + " " + text, ""]

    def para(self, text_html: str, text_md: str, cls: str = "") -> None:
        self.html.append(f"<p{f' class={chr(39)}{cls}{chr(39)}' if cls else ''}>{text_html}</p>")
        self.md += [text_md, ""]

    def table(self, caption: str, head: list[str], rows: list[list[str]]) -> None:
        self.n_tab += 1
        cap = f"Table {self.n_tab}. {caption}"
        short = " class='short'" if len(rows) <= 6 else ""
        self.html.append(f"<table{short}><caption>{html.escape(cap)}</caption><thead><tr>"
                         + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead>"
                         + "<tbody>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>"
                                                                for c in r) + "</tr>"
                                               for r in rows) + "</tbody></table>")
        pipe = lambda cells: "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"  # noqa: E731
        self.md += [f"*{cap}*", "", pipe(head), "|" + "---|" * len(head), *map(pipe, rows), ""]

    def figure(self, png: Path, caption: str, prefix: str) -> None:
        if png.is_symlink():  # a record's link is not followed into a report that is sent on
            return
        if self.n_fig == 0 and self.figdir.is_dir():  # a report rebuilt in its folder
            for old in self.figdir.glob("[0-9][0-9]-*.png"):
                old.unlink()
        self.n_fig += 1
        cap = f"Figure {self.n_fig}. {caption}"
        self.figdir.mkdir(exist_ok=True)
        target = self.figdir / file_name(f"{self.n_fig:02d}-{prefix}-{png.name}")
        shutil.copyfile(png, target)
        raw = png.read_bytes()
        data = base64.b64encode(raw).decode("ascii")
        width, height = png_size(raw)
        # two square-ish figures share a row (a standard 7.5 x 4.8 in figure at half width would
        # print its labels at ~5 pt): the report stays within its pages
        # a figure of two rows of panels (>= ~6.5 in tall at 110 dpi) gets the page's width
        # and the height that takes: capped at a single row's height, it would print at half size
        half = (" class='tall'" if height >= 700 else
                " class='half'" if height and width / height < 1.3 else "")
        self.html.append(f"<figure{half}><img src='data:image/png;base64,{data}' "
                         f"alt='{html.escape(caption, quote=True)}'>"
                         f"<figcaption>{html.escape(cap)}</figcaption></figure>")
        self.md += [f"![{cap}](figures/{target.name})", "", f"*{cap}*", ""]

    def slot(self, title: str, notes: list[tuple[str, str]], where: str) -> None:
        """The learner's own explanation: their notes, or a marked empty slot."""
        if notes:
            self.html.append(f"<div class='yours'><div class='who'>{html.escape(title)} — "
                             "the learner's notes</div>")
            for label, text in notes:
                self.html.append(f"<div class='from'>{html.escape(label)}</div>{to_html(text)}")
                self.md += [f"**{title}** (from `{_md(label)}`):", "",
                            _md(demote(text.strip())), ""]
            self.html.append("</div>")
            return
        hint = (f"empty: write it with <code>dlx note {html.escape(where)} \"…\"</code> and "
                "build the report again, or by hand on the printout." if where else
                "empty: yours to write, on the printout or in the Markdown twin.")
        self.html.append(f"<div class='yours empty'><div class='who'>{html.escape(title)}</div>"
                         f"<p>Your explanation — {hint}</p></div>")
        self.md += [f"**{title}**", "", YOURS, ""]


STYLE = """
@page { size: A4; margin: 12mm 13mm 14mm 13mm;
  @bottom-center { content: counter(page) " / " counter(pages); font: 9pt sans-serif; color: #666 } }
html { font: 10pt/1.35 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #111 }
body { max-width: 184mm; margin: 1.5em auto }
@media print { body { max-width: none; margin: 0 } }
h1 { font-size: 24pt; margin: 0 0 .3em; line-height: 1.15 }
h2 { font-size: 15pt; margin: 1em 0 .3em; border-bottom: 1px solid #999; break-after: avoid }
h3 { font-size: 12pt; margin: .9em 0 .3em; break-after: avoid }
h4, h5, h6 { font-size: 10.5pt; margin: .6em 0 .2em; break-after: avoid }
.titlepage { padding-top: 35mm }
.titlepage + section { break-before: page }  /* the title page stands alone */
.titlepage .sub { font-size: 13pt; color: #333 }
.meta { color: #555; font-size: 9.5pt }
nav ol { padding-left: 1.4em } nav li { margin: .15em 0 } nav .missing { color: #888 }
nav a { color: inherit; text-decoration: none }
section.experiment { margin-top: 1.2em }
section.frame .yours.empty { min-height: 45mm }  /* room to write by hand */
code { font: 9pt "DejaVu Sans Mono", monospace; background: #f3f3f3; padding: 0 .2em;
  overflow-wrap: anywhere }
pre { font: 8.5pt/1.3 "DejaVu Sans Mono", monospace; background: #f6f6f6; padding: .5em;
  white-space: pre-wrap; overflow-wrap: anywhere; break-inside: avoid }
table { border-collapse: collapse; margin: .5em 0 .8em; font-size: 7.5pt; width: 100% }
caption { caption-side: top; text-align: left; font-size: 9.5pt; font-style: italic;
  padding-bottom: .3em; color: #333 }
th, td { border: 1px solid #bbb; padding: .1em .35em; text-align: left; vertical-align: top }
th { background: #eee } tr { break-inside: avoid } table.short { break-inside: avoid }
.figs { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: flex-start }
figure { margin: .6em 0; break-inside: avoid; text-align: center; width: 100% }
figure.half { width: 49% }
figure img { max-width: 100%; max-height: 82mm; object-fit: contain }
figure.tall img { max-height: 160mm }
figcaption { font-size: 9.5pt; font-style: italic; color: #333; text-align: left; margin-top: .2em }
.yours { border: 1.5px dashed #c9a000; background: #fffbea; padding: .4em .8em; margin: .8em 0;
  break-inside: avoid }
.yours.empty { min-height: 14mm }
.yours .who { font-weight: bold; color: #7a6000 } .yours .from { font-size: 8.5pt; color: #7a6000 }
.missing-run { border-left: 4px solid #b00; background: #fbeeee; padding: .4em .8em }
details { margin: .5em 0 } @media print { details { display: none } }
"""


def build(paths: list[Path], out: Path, title: str | None = None, notes: list[str] | None = None,
          phase: int | None = None, root: Path | None = None) -> list[Path]:
    """Write ``out/report.md``, ``out/figures/`` and ``out/report.html`` (returned in that order).

    ``phase``: the phase's sections, each filled by the record among ``paths`` of its
    experiment, else the newest finished one under ``root``; ``paths`` of other experiments
    follow as sections of their own. Without a phase, the sections are ``paths`` (in the plan's
    order). Figures that cannot be drawn are skipped with a line in ``notes``."""
    notes = [] if notes is None else notes
    sources = [Source(check_dir(p)) for p in paths]
    for src in sources:  # read every record before writing anything
        src.runs[0].metrics  # noqa: B018
    if phase is None:
        phase = _common_phase(sources)
    spec = PHASES.get(phase) if phase is not None else None
    given = {s.name: s for s in sources}
    found = records(root) if root is not None else {}  # the runs root's records, read once
    picks: list[Pick] = []
    if spec is not None and root is not None:
        picks = pick(spec, root, {s.name: s.path for s in sources}, found)
    elif spec is not None:  # only the records given: the phase's order, no missing sections
        picks = [Pick(sec, given[sec.experiment].path) for sec in spec.sections
                 if sec.experiment in given]
    # every record named gets a section: those of other phases (or a second record of one
    # experiment) after the phase's own, under their plan titles, marked as extra
    taken = {p.path for p in picks}
    rest = sorted((s for s in sources if s.path not in taken),
                  key=lambda s: (ORDER.index(s.name) if s.name in ORDER else len(ORDER), s.name))
    extra: dict[Path, str] = {}
    for src in rest:
        picks.append(Pick(_section_of(src.name), src.path))
        if spec is not None:
            home = phase_of(src.experiment)
            extra[src.path] = ((f"a second record of this phase's {src.name}"
                                if home == spec.number else
                                f"not part of phase {spec.number}" + (
                                    f" (an experiment of phase {home})" if home else ""))
                               + ": included because it was named on the command line")
            notes.append(f"{src.path}: {extra[src.path]}")
    chosen = {p.path: next((s for s in sources if s.path == p.path), None)
              for p in picks if p.path is not None}
    for p in picks:  # a record found under root: read it now (a corrupt one fails here)
        if p.path is not None and (chosen[p.path] is None or chosen[p.path].path != p.path):
            chosen[p.path] = Source(p.path)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".figures-", dir=out))
    try:
        title = title or (spec.title if spec else "Experiments: a report")
        return _write(picks, chosen, spec, out, title, notes, scratch, root, extra, found)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _section_of(experiment: str) -> Section:
    """The plan's section for ``experiment`` (its title), else one named after it."""
    for spec in PHASES.values():
        for section in spec.sections:
            if section.experiment == experiment:
                return section
    return Section(experiment, experiment.replace("_", " "))


def _common_phase(sources: list[Source]) -> int | None:
    """The phase most of the records belong to (ties: the earlier), None if none belongs."""
    phases = [p for p in (phase_of(s.experiment) for s in sources) if p is not None]
    return min(set(phases), key=lambda p: (-phases.count(p), p)) if phases else None


def _rel(path: Path, root: Path | None) -> str:
    try:
        return str(path.relative_to(root)) if root else str(path)
    except ValueError:
        return str(path)


def _write(picks: list[Pick], chosen: dict, spec, out: Path, title: str, notes: list[str],
           scratch: Path, root: Path | None, extra: dict | None = None,
           found: dict[str, list[Path]] | None = None) -> list[Path]:
    from dlx._version import __version__

    doc = Doc(out)
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    present = [p for p in picks if p.path is not None]
    required = [p for p in picks if p.path is None and not p.section.optional]
    optional = [p for p in picks if p.path is None and p.section.optional]
    shown = present + required
    shown.sort(key=lambda p: picks.index(p))

    # title page and contents
    doc.html.append("<div class='titlepage'>")
    doc.heading(1, title)
    sub = (f"Phase {spec.number} of the 60-day plan" if spec else "Runs of the 60-day plan")
    doc.para(html.escape(sub), f"*{sub}*", "sub")
    meta = (f"Assembled by dlx {__version__} (<code>dlx report</code>) on {stamp} from "
            f"{len(present)} record(s)" + (f" under <code>{html.escape(str(root))}</code>"
                                          if root else "")
            + ". Every number and figure comes from those records; the explanations are the "
              "learner's own, in the marked slots.")
    doc.para(meta, meta.replace("<code>", "`").replace("</code>", "`"), "meta")
    if spec:
        doc.para(f"<b>The question.</b> {html.escape(spec.question)}",
                 f"**The question.** {spec.question}")
    doc.html.append("<nav>")
    doc.heading(2, "Contents")
    items, md_items = [], []
    for i, p in enumerate(shown, 1):
        missing = " — <i>no finished run yet</i>" if p.path is None else ""
        items.append(f"<li class='{'missing' if p.path is None else ''}'><a href='#s{i}'>"
                     f"{html.escape(p.section.title)}</a>{missing}</li>")
        md_items.append(f"{i}. {p.section.title}" + (" — *no finished run yet*"
                                                       if p.path is None else ""))
        if p.path in (extra or {}):
            items[-1] = items[-1].replace("</li>", " — <i>not of this phase</i></li>")
            md_items[-1] += " — *not of this phase*"
        elif p.path is not None and not chosen[p.path].finished:
            items[-1] = items[-1].replace("</li>", " — <i>unfinished record</i></li>")
            md_items[-1] += " — *unfinished record*"
    items.append("<li><a href='#discussion'>Discussion and conclusions</a></li>")
    md_items.append(f"{len(shown) + 1}. Discussion and conclusions")
    doc.html.append("<ol>" + "".join(items) + "</ol>")
    doc.md += md_items + [""]
    if optional:
        listed = "; ".join(f"{p.section.title} (<code>{html.escape(command(p.section.experiment))}"
                           f"</code>)" for p in optional)
        doc.para(f"Optional sections not included (no finished run): {listed}.",
                 "Optional sections not included (no finished run): "
                 + "; ".join(f"{p.section.title} (`{command(p.section.experiment)}`)"
                             for p in optional) + ".", "meta")
    doc.html.append("</nav></div>")

    for i, p in enumerate(shown, 1):
        doc.html.append("<section class='experiment'>")
        doc.heading(2, f"{i}. {p.section.title}", f"s{i}")
        if p.path is None:
            _missing(doc, p, spec, root)
        else:
            if p.path in (extra or {}):
                doc.para(f"This record is {html.escape(extra[p.path])}.",
                         f"This record is {extra[p.path]}.", "meta")
            _section(doc, chosen[p.path], p.section, i, scratch / str(i), notes, root,
                     [c for c in chosen.values() if c is not None], found or {})
        doc.html.append("</section>")

    doc.html.append("<section class='frame'>")
    doc.heading(2, f"{len(shown) + 1}. Discussion and conclusions", "discussion")
    doc.slot("Discussion and conclusions", [], "")
    doc.html.append("</section>")

    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(doc.html) + "</body></html>\n")
    (out / "report.md").write_text("\n".join(doc.md), encoding="utf-8")
    (out / "report.html").write_text(page, encoding="utf-8")
    # what the report covers, for `dlx plan` (a phase's written deliverable is done by it)
    meta = {"phase": spec.number if spec else None, "written_at": stamp,
            "records": [str(p.path) for p in present]}
    (out / "report.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return [out / "report.md", out / "report.html"]


def _missing(doc: Doc, p: Pick, spec, root: Path | None) -> None:
    cmd = command(p.section.experiment)
    again = f"dlx report --phase {spec.number}" if spec else "dlx report"
    where = f" under {root}" if root else ""
    text = (f"No finished run of <code>{p.section.experiment}</code>{html.escape(where)} yet. "
            f"Make it with <code>{html.escape(cmd)}</code>, then build this report again "
            f"(<code>{again}</code>).")
    md = (f"No finished run of `{p.section.experiment}`{where} yet. Make it with `{cmd}`, then "
          f"build this report again (`{again}`).")
    if p.newest_unfinished:
        path, how = p.newest_unfinished
        text += (f" The newest record, <code>{html.escape(_rel(path, root))}</code>, is not "
                 f"finished ({html.escape(how)}).")
        md += f" The newest record, `{_rel(path, root)}`, is not finished ({how})."
    doc.para(text, md, "missing-run")


def _section(doc: Doc, src: Source, section: Section, i: int, scratch: Path, notes: list[str],
             root: Path | None, given: list[Source] = (),
             found: dict[str, list[Path]] | None = None) -> None:
    where = _rel(src.path, root)
    doc.para(f"Record: <code>{html.escape(where)}</code> ({html.escape(src.status())})<br>"
             f"Made by: <code>{html.escape(src.command())}</code>",
             f"Record: `{where}` ({src.status()})  \nMade by: `{src.command()}`", "meta")
    if (unfinished := src.unfinished_note()) is not None:
        doc.para(html.escape(unfinished), f"**{unfinished}**", "missing-run")
        notes.append(f"{where}: {unfinished.split('. The numbers')[0].lower()}")
    figures = src.figures(scratch, notes)  # first: it finds the folder sweep numbers read
    what, head, rows = src.table()
    if len(rows) == 1:  # one run: its numbers down the page, not across it
        head, rows = ["quantity", "value"], [[h, v] for h, v in zip(head, rows[0])]
    doc.table(f"{section.title}: {what}; the experiment's own numbers from its records.",
              head, rows)
    numbers = src.sweep_numbers()
    if numbers:
        doc.table(f"{section.title}: fitted over the whole sweep.", ["quantity", "value"],
                  [[k, v if isinstance(v, str) else number(v) if isinstance(v, (int, float))
                    else str(v)] for k, v in numbers.items()])
    for name, head, rows in src.csv_tables():
        more = f" (first {MAX_ROWS} of {len(rows)} rows)" if len(rows) > MAX_ROWS else ""
        doc.table(f"{section.title}: {name}{more}.", head, rows[:MAX_ROWS])
    doc.html.append("<div class='figs'>")
    for fig in figures:
        label = fig.stem.replace("_", " ")
        if fig.parent != src.folder:  # a member's own figure
            label += f" (member {fig.parent.name})"
        doc.figure(fig, f"{section.title} — {label}.", src.name)
    doc.html.append("</div>")
    _yours(doc, src, section, scratch, notes, given, found or {})
    doc.slot(section.slot, src.notes(), where if root is None else str(src.path))
    cfg = json.dumps(src.config, indent=1)
    doc.html.append(f"<details><summary>config of {html.escape(where)}</summary>"
                    f"<pre>{html.escape(cfg)}</pre></details>")
