"""`dlx report PATH...`: the skeleton of the Phase 2 technical report on gradient flow.

One self-contained HTML file (figures embedded) and a Markdown twin (figures beside it), made
from the chosen runs and sweeps: for each, the command that reproduces it, its key numbers, its
figures and its config — and, under every heading, an empty place for the learner's own
explanation. The report states what was measured; it writes no analysis of its own.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.compare import fmt
from dlx.records.files import SUMMARY
from dlx.records.store import Run, check_dir, is_sweep, read_summary, sweep_members

ORDER = ["mnist_mlp", "init", "grad_flow", "batch_noise", "regularization", "dropout"]
TITLES = {"mnist_mlp": "A two-layer MLP on MNIST, backprop by hand",
          "init": "Initialization and the scale of signals across depth",
          "grad_flow": "Gradient flow through deep sigmoid, tanh and ReLU networks",
          "batch_noise": "Batch size and gradient noise",
          "regularization": "L1, L2 and elastic-net regularization",
          "dropout": "Dropout and DropConnect"}
HEADLINE = ("test/acc", "val/acc", "val/loss", "train/loss")
YOURS = "*Your explanation:* …"


class Source:
    """A run or a sweep, read for the report."""

    def __init__(self, path: Path):
        self.path = path
        self.sweep = is_sweep(path)
        members = sweep_members(path) if self.sweep else [path]
        self.runs = [Run(p) for p in members if (p / SUMMARY).is_file()]
        if not self.runs:
            raise UsageError(f"{path}: no run with a summary.json to report on")
        self.config = self.runs[0].config
        self.name = self.config.get("name", path.name)

    def command(self) -> str:
        first = read_summary(self.runs[0].path).get("overrides", [])
        if not self.sweep:
            return "dlx run " + " ".join(first)
        varying = set()
        for run in self.runs:
            varying |= set(run.overrides) - set(first)
        keys = {o.split("=", 1)[0] for o in varying} | {o.split("=", 1)[0] for o in first
                                                        if any(o.split("=", 1)[0] ==
                                                               v.split("=", 1)[0] for v in varying)}
        fixed = [o for o in first if o.split("=", 1)[0] not in keys]
        return "dlx run -m " + " ".join(fixed) + "  # a sweep of " + str(len(self.runs))

    def figures(self, scratch: Path, notes: list[str]) -> list[Path]:
        """The record's figures, the experiment's own first. A record without figures is drawn
        into ``scratch`` (the record itself is only read: it may be read-only)."""
        folder = self.path / "plots"
        if not folder.is_dir() or not any(folder.glob("*.png")):
            from dlx.figures import plot_path

            plot_path(self.path, "png", notes, out=scratch)
            folder = scratch
        m = self.runs[0].metrics
        generic = set(m["metric"]) | set(m["split"] + "_" + m["metric"]) | {"decision_boundary"}
        return sorted(folder.glob("*.png"), key=lambda p: (p.stem in generic, p.name))

    def table(self) -> tuple[list[str], list[list[str]]]:
        from dlx.records.store import differing

        diffs = differing([r.overrides for r in self.runs]) if self.sweep else [[]]
        keys = [k for k in HEADLINE if any(k in (r.summary.get("final") or {}) for r in self.runs)]
        head = ["run", "status", *keys]
        rows = []
        for run, diff in zip(self.runs, diffs):
            final = run.summary.get("final") or {}
            rows.append([", ".join(diff) or run.path.name, run.summary.get("status", "?"),
                         *[fmt(final.get(k)) for k in keys]])
        return head, rows

    def extra_numbers(self) -> list[tuple[str, str]]:
        """Experiment-specific numbers: what the runs recorded (e.g. slopes, noise scales) and
        what the experiment's ``report_numbers(run)`` reads from their files."""
        from dlx.experiments import experiment_of, hooks
        from dlx.records.store import differing

        module = hooks(experiment_of(self.config))
        diffs = differing([r.overrides for r in self.runs]) if self.sweep else [[]]
        out = []
        for run, diff in zip(self.runs, diffs):
            label = ", ".join(diff) or run.path.name
            if hasattr(module, "report_numbers"):
                out += [(f"{label}: {k}", fmt(v)) for k, v in module.report_numbers(run).items()]
            block = run.summary.get(self.name)
            if isinstance(block, dict):
                for k, v in _flatten(block):
                    out.append((f"{label}: {k}", fmt(v)))
        return out


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        elif not isinstance(v, list):
            yield f"{prefix}{k}", v


def build(paths: list[Path], out: Path, title: str, notes: list[str] | None = None) -> list[Path]:
    """Write ``out/report.html``, ``out/report.md`` and ``out/figures/``; figures that cannot
    be drawn are skipped with a line in ``notes``."""
    notes = [] if notes is None else notes
    sources = [Source(check_dir(p)) for p in paths]
    sources.sort(key=lambda s: (ORDER.index(s.name) if s.name in ORDER else len(ORDER), s.name))
    for src in sources:  # read every record before writing anything
        src.runs[0].metrics  # noqa: B018
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".figures-", dir=out))
    try:
        return _write(sources, out, title, notes, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write(sources: list[Source], out: Path, title: str, notes: list[str],
           scratch: Path) -> list[Path]:
    figdir = out / "figures"
    figdir.mkdir(exist_ok=True)
    md, body = [], []
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    md += [f"# {title}", "", f"*Assembled by `dlx report` on {stamp} from "
           f"{len(sources)} record(s). Every number and figure below comes from those runs; "
           "the explanations are yours to write.*", ""]
    body += [f"<h1>{html.escape(title)}</h1>",
             f"<p class='meta'>Assembled by <code>dlx report</code> on {stamp} from "
             f"{len(sources)} record(s). Every number and figure below comes from those runs; "
             "the explanations are yours to write.</p>"]
    for heading in ("Question", "Setup"):
        md += [f"## {heading}", "", YOURS, ""]
        body += [f"<h2>{heading}</h2>", "<p class='yours'>Your explanation: …</p>"]
    for i, src in enumerate(sources, 1):
        name = TITLES.get(src.name, src.name)
        md += [f"## {i}. {name}", "", f"Record: `{src.path}`  ", f"Reproduce: `{src.command()}`", ""]
        body += [f"<h2>{i}. {html.escape(name)}</h2>",
                 f"<p>Record: <code>{html.escape(str(src.path))}</code><br>"
                 f"Reproduce: <code>{html.escape(src.command())}</code></p>"]
        head, rows = src.table()
        md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        md += ["| " + " | ".join(r) + " |" for r in rows] + [""]
        body += ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
        body += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        body += ["</table>"]
        extra = src.extra_numbers()
        if extra:
            md += ["Measured:", ""] + [f"- {k}: **{v}**" for k, v in extra] + [""]
            body += ["<ul>"] + [f"<li>{html.escape(k)}: <b>{html.escape(v)}</b></li>"
                                for k, v in extra] + ["</ul>"]
        for fig in src.figures(scratch / str(i), notes):
            target = figdir / f"{i:02d}-{src.name}-{fig.name}"
            shutil.copyfile(fig, target)
            caption = fig.stem.replace("_", " ")
            md += [f"![{caption}](figures/{target.name})", ""]
            data = base64.b64encode(fig.read_bytes()).decode("ascii")
            body += [f"<figure><img src='data:image/png;base64,{data}' alt='{caption}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>"]
        md += ["### What this shows", "", YOURS, ""]
        body += ["<h3>What this shows</h3>", "<p class='yours'>Your explanation: …</p>"]
        cfg = json.dumps(src.config, indent=1)
        md += ["<details><summary>config</summary>", "", "```json", cfg, "```", "", "</details>", ""]
        body += [f"<details><summary>config</summary><pre>{html.escape(cfg)}</pre></details>"]
    for heading in ("Discussion", "Conclusions"):
        md += [f"## {heading}", "", YOURS, ""]
        body += [f"<h2>{heading}</h2>", "<p class='yours'>Your explanation: …</p>"]
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.45}"
             "img{max-width:100%}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
             ".yours{background:#fff8dc;padding:.6em;border-left:4px solid #e0b000}"
             ".meta{color:#555}pre{background:#f6f6f6;padding:.5em;overflow:auto}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>" + "\n".join(body) + "</body></html>")
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    return [out / "report.html", out / "report.md"]
