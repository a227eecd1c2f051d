"""Reading runs and sweeps back: the notebook API (``dlx.load_run``) and what the CLI lists.

Every reader checks what it opens and raises :class:`~dlx.errors.UsageError` with one line
naming the problem, so ``dlx plot/show`` on a bad directory fails cleanly.
"""

from __future__ import annotations

import io
import json
import math
import os
import socket
from functools import cached_property
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.files import (  # noqa: F401 - re-exported: the names readers use
    CHECKPOINT,
    CONFIG,
    LAYER_STATS,
    LOG,
    METRICS,
    MODEL,
    MULTIRUN,
    PLOTS,
    SUMMARY,
    TIMING,
    write_bytes,
)
from dlx.records.metrics import HEADER


def write_json(path: Path, data: dict, in_place_if_full: bool = False) -> None:
    """Write JSON atomically (temp file + rename); non-finite floats become null (strict JSON)."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    write_bytes(path, (json.dumps(clean(data), indent=2) + "\n").encode(), in_place_if_full)


def is_sweep(path: Path) -> bool:
    return (path / MULTIRUN).is_file()


def is_run(path: Path) -> bool:
    return (path / SUMMARY).is_file() or (path / METRICS).is_file()


def sweep_members(path: Path) -> list[Path]:
    """A sweep's member directories (Hydra's job numbers 0, 1, ...), in job order."""
    return sorted((p for p in path.iterdir() if p.is_dir() and p.name.isdigit()),
                  key=lambda p: int(p.name))


def check_dir(path: str | Path) -> Path:
    """``path`` as a run or sweep directory, or a UsageError saying what it is instead."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such directory (give a run or sweep directory under runs/)")
    if not path.is_dir():
        raise UsageError(f"{path}: not a directory (give a run or sweep directory under runs/)")
    if not (is_run(path) or is_sweep(path)):
        raise UsageError(f"{path}: not a run or sweep directory "
                         f"(a run has {SUMMARY} and {METRICS}; a sweep has multirun.yaml)")
    return path


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None if unknown:
    with the pid, it names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22, after the command name


def _dead(summary: dict) -> bool:
    """True if the process that wrote a ``running`` summary is known to be gone: it ran on this
    host and its pid is no longer that process. (From another host nothing is known.)"""
    pid = summary.get("pid")
    if not isinstance(pid, int) or summary.get("host") != socket.gethostname():
        return False
    if Path("/proc/self/stat").exists():
        return process_start(pid) != summary.get("pid_start")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


_NUMBER = (int, float)
_TYPES = {"status": (str,), "experiment": (str, type(None)), "final": (dict,), "best": (dict,),
          "wall_time_s": (*_NUMBER, type(None)), "steps_per_s": (*_NUMBER, type(None)),
          "steps": (int, type(None)), "seed": (int, type(None)),
          "diverged_at_step": (int, type(None)), "resumed_from_epoch": (int, type(None)),
          "started_at": (str, type(None)), "finished_at": (str, type(None)),
          "error": (str, type(None)), "overrides": (list, type(None)),
          "run_id": (str,), "host": (str, type(None)), "pid": (int, type(None)),
          "threads": (dict, type(None)), "source": (dict, type(None))}


def _wrong_type(data: dict) -> str | None:
    """What in a parsed summary.json is not of the type dlx writes, or None."""
    for key, types in _TYPES.items():
        value = data.get(key)
        if key in data and (not isinstance(value, types) or isinstance(value, bool)):
            return f"{key!r} is {type(value).__name__} {str(value)[:30]!r}"
        if isinstance(value, int) and abs(value) >= 2 ** 62:
            return f"{key!r} is out of range ({str(value)[:30]})"
    for key in ("final", "best"):
        for name, value in (data.get(key) or {}).items():
            if not isinstance(value, (*_NUMBER, type(None))) or isinstance(value, bool):
                return f"{key}[{str(name)[:30]!r}] is {type(value).__name__}, not a number"
    return None


def read_summary(run_dir: Path) -> dict:
    path = run_dir / SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: missing (the run did not start properly)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: corrupt JSON ({e})") from None
    if not isinstance(data, dict) or "status" not in data:
        raise UsageError(f"{path}: not a dlx summary (no 'status')")
    wrong = _wrong_type(data)
    if wrong:  # valid JSON, but not what dlx writes: unreadable, never a traceback of a reader
        raise UsageError(f"{path}: not a dlx summary ({wrong})")
    if data["status"] == "running" and _dead(data):
        data["status"] = "lost"  # killed (SIGKILL, a crash, a reboot) before it could say so
    return data


# What Hydra and the log may leave in a directory before a run has started in it.
BEFORE_A_RUN = {".hydra", "run.log", ".dlx.lock", ".dlx.lock.who", ".dlx.notes.lock"}  # = lock


def _changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """What differs between two configs, as ``key: old -> new`` (a group by its name)."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            if "name" in a and a.get("name") != b.get("name"):
                out.append(f"{prefix}{key}: {a['name']} -> {b.get('name')}")
            else:
                out.extend(_changes(a, b, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


config_changes = _changes  # the public name (dlx rerun says what a rerun's config changed)


def sweep_occupant(sweep_dir: Path, n_members: int | None) -> str | None:
    """Why ``sweep_dir`` cannot take a sweep of ``n_members`` members, or None if it can: it is
    new, empty, or a sweep whose members this one covers (each member is then checked by
    :func:`occupant`: same config skipped or resumed, another config refused)."""
    if not sweep_dir.exists():
        return None
    if not sweep_dir.is_dir():
        return f"{sweep_dir} is a file, not a sweep directory"
    entries = [p for p in sweep_dir.iterdir() if p.name not in BEFORE_A_RUN]
    if not entries:
        return None
    if is_run(sweep_dir):
        return f"{sweep_dir} holds a run, not a sweep"
    if not is_sweep(sweep_dir):
        return f"{sweep_dir} is not empty and holds no dlx sweep"
    members = sweep_members(sweep_dir)
    if n_members is not None and members and int(members[-1].name) >= n_members:
        return (f"{sweep_dir} holds a sweep of {int(members[-1].name) + 1} members and this one "
                f"has {n_members}: its members would no longer match its record")
    return None


def not_a_record(path: str | Path) -> Path:
    """``path``, for an output option (``--csv``, ``--out``): refused when it is a file of a run
    or sweep record already there, or one a record names (its summary, metrics, config, ...):
    an output never overwrites the record it was made from."""
    from dlx.records.files import NOTES, TAGS

    path = Path(path)
    real = path.resolve()
    own = {SUMMARY, METRICS, CONFIG, MODEL, CHECKPOINT, TIMING, LAYER_STATS, LOG, MULTIRUN,
           NOTES, TAGS}
    for folder in list(real.parents)[:3]:
        if is_run(folder) or is_sweep(folder):
            if real.exists() or (real.parent == folder and real.name in own):
                raise UsageError(f"{path} is a file of the record {folder}: an output never "
                                 f"overwrites a record (choose a file outside it)")
            break
    return path


def never_started(path: Path) -> bool:
    """A directory a run's start left before its record began (Hydra's .hydra/ and run.log,
    perhaps a config.yaml): `dlx list` names it, `dlx rm` removes it, the same command carries
    on in it. (One with a summary is a record: listed as `lost` once its process is gone.)"""
    try:
        entries = {p.name for p in path.iterdir()}
    except OSError:
        return False
    return bool(entries) and not (is_run(path) or is_sweep(path)) \
        and (not entries - BEFORE_A_RUN or _start_cut_short(path, entries))


def _start_cut_short(run_dir: Path, entries: set[str]) -> bool:
    """A run's start interrupted before its record was whole: nothing but what a start-up
    writes (its copy of the learner's source, a summary that says `running` with no step
    made), and no process at work in it (the caller holds its lock, or it is free)."""
    if not entries - BEFORE_A_RUN <= {SUMMARY, CONFIG, "source"}:
        return False
    if SUMMARY not in entries:  # config.yaml alone (dlx wrote it first before this version)
        return True
    try:
        summary = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("status") == "running" \
        and not summary.get("steps") and not (run_dir / METRICS).exists()


def occupant(run_dir: Path, config: dict) -> str | None:
    """Why ``run_dir`` cannot take a run of ``config``, or None if it can: it is new, holds
    nothing but what a start-up leaves, or holds a finished or stopped run of the same config
    (skipped or resumed)."""
    from dlx.records.checkpoint import config_key

    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        return f"{run_dir} is a file, not a run directory"
    entries = {p.name for p in run_dir.iterdir()}
    if not entries - BEFORE_A_RUN:
        return None
    if is_sweep(run_dir):
        return f"{run_dir} holds a sweep, not a run"
    if SUMMARY not in entries or CONFIG not in entries:
        if _start_cut_short(run_dir, entries):
            return None  # interrupted between its first files: the same command carries on
        return f"{run_dir} is not empty and holds no dlx run"
    summary, old = read_summary(run_dir), read_config(run_dir)
    status = summary["status"]
    if config_key(old) == config_key(config):
        if status == "running":
            return (f"{run_dir} holds a run of this config still in progress "
                    f"(pid {summary.get('pid')} on {summary.get('host')})")
        return None
    changes = _changes({k: v for k, v in old.items() if k not in ("progress", "runs_dir")},
                       {k: v for k, v in config.items() if k not in ("progress", "runs_dir")})
    more = f", +{len(changes) - 3} more" if len(changes) > 3 else ""
    return (f"{run_dir} holds a{'n' if status[0] in 'aeiou' else ''} {status} run with a "
            f"different config ({', '.join(changes[:3])}{more})")


def read_metrics(run_dir: Path):
    """metrics.csv as a long DataFrame (step, epoch, split, metric, value).

    A last line without its newline is one a crash cut short; it is dropped, as promised by the
    writer. Anything else that does not parse is reported as corrupt.
    """
    import pandas as pd

    path = run_dir / METRICS
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: missing (the run recorded no metrics)") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: corrupt (not UTF-8 text)") from None
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if text.split("\n", 1)[0] != HEADER:
        raise UsageError(f"{path}: corrupt (the header is not {HEADER!r})")
    try:
        df = pd.read_csv(io.StringIO(text), dtype={"split": str, "metric": str},
                         keep_default_na=False, na_values={"value": ["nan"]})
        df["step"] = df["step"].astype("int64")
        df["epoch"] = df["epoch"].astype("int64")
        df["value"] = pd.to_numeric(df["value"], errors="raise").astype("float64")
    except (ValueError, TypeError, pd.errors.ParserError) as e:
        raise UsageError(f"{path}: corrupt ({str(e).splitlines()[0]})") from None
    if df[["split", "metric"]].eq("").any().any():
        raise UsageError(f"{path}: corrupt (a row has an empty split or metric)")
    return df


def wide(metrics):
    """One column per ``split/metric``, indexed by step (the last value where a step repeats)."""
    key = metrics["split"] + "/" + metrics["metric"]
    table = metrics.assign(key=key).pivot_table(index="step", columns="key", values="value",
                                                aggfunc="last", dropna=False)
    table.columns.name = None
    return table


class Run:
    """A run directory, read lazily: ``config`` and ``summary`` (dicts), ``metrics`` (long
    DataFrame) and ``wide()`` (one column per split/metric, indexed by step)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.summary.get('status')!r})"

    def _repr_html_(self) -> str:
        """In Jupyter: the run's status, final metrics and figures, inline."""
        import base64
        import html

        final = self.summary.get("final") or {}
        head = (f"<b>{html.escape(self.path.name)}</b> {html.escape(str(self.summary.get('status')))}"
                + "".join(f" · {html.escape(k)} {v:.4g}" for k, v in final.items()
                          if isinstance(v, float) and k.startswith("val/")))
        images = "".join(
            f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" '
            f'title="{html.escape(p.name)}" style="max-width:48%">'
            for p in sorted((self.path / "plots").glob("*.png"))
            if p.is_file() and not p.is_symlink())
        return f"<div>{head}</div><div>{images}</div>"

    @cached_property
    def summary(self) -> dict:
        return read_summary(self.path)

    @cached_property
    def config(self) -> dict:
        return read_config(self.path)

    @cached_property
    def metrics(self):
        return read_metrics(self.path)

    def wide(self):
        return wide(self.metrics)

    def series(self, split: str, metric: str):
        """Rows of one split/metric (step, epoch, value), in order."""
        m = self.metrics
        return m[(m["split"] == split) & (m["metric"] == metric)][["step", "epoch", "value"]]

    def timing(self):
        """timing.csv (epoch, step, seconds since training started), or None if absent."""
        import pandas as pd

        path = self.path / "timing.csv"
        return pd.read_csv(path) if path.is_file() else None

    @cached_property
    def overrides(self) -> list[str]:
        return read_overrides(self.path)


def read_config(run_dir: Path) -> dict:
    import yaml

    path = run_dir / CONFIG
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: missing") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: corrupt YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: corrupt (not a mapping)")
    return data


def read_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides of a run (Hydra's .hydra/overrides.yaml), [] if none."""
    import yaml

    path = run_dir / ".hydra" / "overrides.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []


def load_run(path: str | Path) -> Run:
    path = check_dir(path)
    if is_sweep(path) and not is_run(path):
        members = ", ".join(p.name for p in sweep_members(path)) or "none"
        raise UsageError(f"{path}: a sweep, not a run (load one of its members: {members})")
    run = Run(path)
    run.summary  # noqa: B018 - fail now, not at first attribute access
    return run


def learner_groups(summary: dict) -> set[str]:
    """The config groups in which a run used the learner's own code (summary.json's
    ``source``): ``{"optimizer"}``, ``{"model"}`` for ``model.activation``, ..."""
    source = summary.get("source") if isinstance(summary, dict) else None
    targets = source.get("targets") if isinstance(source, dict) else None
    return {str(k).partition(".")[0] for k in targets} if isinstance(targets, dict) else set()


def mark_learner(overrides: list[str], summary: dict) -> list[str]:
    """``optimizer=my_adam`` -> ``optimizer=my_adam (mine.optim:Adam @60b7ba, check passed)``
    where the run used the learner's own code for that group: the class, its module file's
    sha256 prefix (summary.json's ``source``) and, inside a workspace, what `dlx check` said of
    those very bytes, so that a table or legend tells it from dlx's reference."""
    from dlx.checks.store import checked

    source = summary.get("source") if isinstance(summary, dict) else None
    if not isinstance(source, dict) or not isinstance(source.get("targets"), dict):
        return overrides
    files = source.get("files") if isinstance(source.get("files"), dict) else {}
    out = []
    for o in overrides:
        target = source["targets"].get(o.partition("=")[0])
        if isinstance(target, str) and "=" in o:
            module, _, name = target.rpartition(".")
            path = module.replace(".", "/")
            digest = files.get(f"{path}.py") or files.get(f"{path}/__init__.py")
            verdict = checked(target, files)
            o = (f"{o} ({module}:{name}{' @' + str(digest)[:6] if digest else ''}"
                 f"{', ' + verdict if verdict else ''})")
        out.append(o)
    return out


def differing(overrides: list[list[str]]) -> list[list[str]]:
    """For each member's overrides, only those not shared by every member (what varies)."""
    if not overrides:
        return []
    common = set(overrides[0]).intersection(*map(set, overrides[1:]))
    return [[o for o in ov if o not in common] for ov in overrides]
