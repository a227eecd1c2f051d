"""`dlx rerun RUN [--verify]`: run a record's config again, into a new run directory next to it,
and with ``--verify`` check that metrics.csv came out byte for byte the same.

The rerun is ``dlx run`` with the record's overrides (Hydra's own ``hydra.*`` overrides, the
runs directory and the progress display left out), its seed and its ``threads`` setting made
explicit, and the thread environment variables the run recorded (what ``threads: null`` leaves
the libraries to read). It runs in a child process, as the user's own ``dlx run`` would: the
BLAS libraries read those variables when they load. A config that no longer composes to the
recorded one (the code's defaults changed since) is said in one warning line; the run still
happens, and --verify then shows whether the numbers moved.

A sweep is refused: its members are rerun one at a time (``dlx rerun SWEEP/3 --verify``), or
the whole sweep with ``dlx run -m`` and its overrides, which the error names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.files import METRICS, MULTIRUN
from dlx.records.store import (
    check_dir,
    config_changes,
    is_run,
    is_sweep,
    read_config,
    read_overrides,
    read_summary,
)

DROPPED = ("runs_dir", "progress")  # where and how a run is shown: not what it computes
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # = threads.ENV_VARS


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _hydras(override: str) -> bool:
    """Hydra's own settings, in any spelling (``hydra.run.dir=``, ``++hydra.job.chdir=``,
    ``hydra/callbacks=``): where and how a run is written, never what it computes, and what a
    crafted record would use to write outside the runs root."""
    key = _key(override).strip()
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def _unlike(override: str, config: dict) -> str | None:
    """How ``override`` contradicts the recorded config, or None: a command-line option, a
    key the config does not hold, or a value it does not hold there."""
    if override.startswith("-"):
        return "is a command-line option, not an override"
    if override.startswith("~"):
        return None  # a key the run deleted: nothing to compare
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides([override])[0]
        value = parsed.value()
    except (HydraException, ValueError, IndexError):
        return "cannot be parsed"
    node: object = config
    for part in parsed.key_or_group.replace("/", ".").split("."):
        if not isinstance(node, dict) or part not in node:
            return f"names {parsed.key_or_group}, which its config.yaml does not hold"
        node = node[part]
    if isinstance(node, dict):  # a group's option: the config records its name
        return None if str(node.get("name")) == str(value) else \
            f"chose {value!r}, its config.yaml {node.get('name')!r}"
    same = node == value or (isinstance(node, (int, float)) and isinstance(value, (int, float))
                             and float(node) == float(value))
    return None if same else f"sets {value!r}, its config.yaml {node!r}"


def _sweep_overrides(sweep: Path) -> list[str]:
    import yaml

    try:
        data = yaml.safe_load((sweep / MULTIRUN).read_text(encoding="utf-8"))
        task = data["hydra"]["overrides"]["task"]
    except (OSError, yaml.YAMLError, UnicodeDecodeError, KeyError, TypeError):
        return []
    return [str(t) for t in task or [] if not _hydras(str(t))]


def plan(path: Path) -> tuple[list[str], dict, dict, dict]:
    """What to run: (the overrides, the environment, the record's summary, its config)."""
    path = check_dir(path)
    if is_sweep(path) and not is_run(path):
        task = " ".join(_sweep_overrides(path))
        raise UsageError(f"{path} is a sweep: rerun a member (dlx rerun {path}/0 --verify), or the "
                         f"whole sweep as a new one (dlx run -m {task or '...'})")
    summary, config = read_summary(path), read_config(path)
    overrides = summary.get("overrides")
    if not isinstance(overrides, list):
        overrides = read_overrides(path)
    kept = [str(o) for o in overrides if not _hydras(str(o))
            and _key(str(o)) not in (*DROPPED, "seed", "threads")]
    for o in kept:  # the record is untrusted input: its overrides must be its config's
        said = _unlike(o, config)
        if said:
            raise UsageError(f"{path}: the record's override {o!r} {said}: an edited or damaged "
                             f"record; dlx rerun runs only what its config.yaml recorded")
    threads = config.get("threads", 1)
    args = [*kept, f"seed={config.get('seed', summary.get('seed'))}",
            f"threads={'null' if threads is None else threads}"]
    recorded = summary.get("threads") or {}
    env = dict(os.environ)
    if isinstance(recorded, dict) and "requested" in recorded:  # runs from before had no record
        for var in THREAD_VARS:
            if var in recorded:
                env[var] = str(recorded[var])
            else:
                env.pop(var, None)
    return args, env, summary, config


def learner_source(path: Path, summary: dict, code: str | None) -> dict[str, str]:
    """The environment a rerun of a run of the learner's code needs, or a UsageError.

    The record holds the sha256 of each of the learner's files it ran. Today's workspace files
    are used when they are the same; when one differs the rerun is refused, naming it, unless
    ``code`` says which to run: ``current`` (today's files) or ``recorded`` (the copy in
    RUN/source/, checked against the hashes first; it is imported before the workspace)."""
    from dlx.learner import sha256

    source = summary.get("source")
    files = source.get("files") if isinstance(source, dict) else None
    targets = source.get("targets") if isinstance(source, dict) else None
    inline = [str(t).rpartition(".")[2] for t in (targets or {}).values()
              if str(t).startswith("__dlx_inline__.")]
    if inline:  # a class of a notebook cell lives in that process only
        raise UsageError(f"{path} ran {', '.join(inline)}, given to dlx.run from Python: dlx rerun "
                         f"cannot import it; run that dlx.run(...) again (its source is in "
                         f"{path / 'source' / '__dlx_inline__'})")
    if not isinstance(files, dict) or not files:
        return {}
    ws = os.environ.get("DLX_WORKSPACE")
    if not ws:
        raise UsageError(f"{path} ran your code (workspace {source.get('workspace')}): rerun it "
                         f"from inside your workspace, or with --workspace DIR")
    if code == "current":
        return {}
    if code == "recorded":
        copy = path / "source"
        for rel, digest in files.items():
            f = copy / rel
            if copy.is_symlink() or not f.is_file() or f.is_symlink() or sha256(f) != digest:
                raise UsageError(f"{f}: missing or not the file the run recorded (sha256 "
                                 f"{str(digest)[:12]}): the copy cannot be rerun")
        return {"DLX_SOURCE": str(copy.resolve())}
    for rel, digest in files.items():
        today = Path(ws) / rel
        now = sha256(today) if today.is_file() else None
        if now != digest:
            what = f"sha256 {str(digest)[:6]} -> {now[:6]}" if now else "it is gone"
            raise UsageError(f"{today} changed since {path.name} ran ({what}): rerun with "
                             f"--code current (today's files) or --code recorded (the copy in "
                             f"{path / 'source'})")
    return {}


def rerun(path: Path, code: str | None = None) -> tuple[Path, int, list[str]]:
    """Run ``path``'s config again under its runs root; returns (the new run directory, dlx run's
    exit code, warnings). A run that cannot start raises UsageError with dlx run's own error.
    ``code``: for a run of the learner's code whose files changed since, which to run (see
    :func:`learner_source`)."""
    args, env, summary, config = plan(path)
    env.update(learner_source(check_dir(path), summary, code))
    path = Path(path).resolve()
    root = path.parent.parent if is_sweep(path.parent) else path.parent
    cmd = [sys.executable, "-m", "dlx.cli", "run", *args]
    env["DLX_RUNS_DIR"] = str(root)  # next to the record (as the environment: not an override)
    print(f"rerun of {path}: dlx run {' '.join(args)}", file=sys.stderr)
    stdout, code = _run_child(cmd, env)
    lines = stdout.strip().splitlines()
    new = Path(lines[-1]) if lines else None
    if new is None or not new.is_dir() or not is_run(new):
        # dlx run printed its own `error:` line; exit with its code
        raise _Failed(code or 1)
    warnings = []
    try:
        changes = config_changes({k: v for k, v in config.items() if k not in DROPPED},
                           {k: v for k, v in read_config(new).items() if k not in DROPPED})
    except UsageError:
        changes = []
    if changes:
        more = f", +{len(changes) - 3} more" if len(changes) > 3 else ""
        warnings.append(f"the rerun's config differs from the record's ({', '.join(changes[:3])}"
                        f"{more}): dlx's defaults have changed since the run")
    return new, code, warnings


def _run_child(cmd: list[str], env: dict) -> tuple[str, int]:
    """Run ``dlx run`` and return its stdout and exit code. Ctrl-C reaches the child too (one
    process group): the child stops its run and keeps the record, and this process waits for
    it rather than killing it mid-write (what subprocess.run does after 0.25 s); a SIGTERM is
    passed on."""
    import signal

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    try:
        stdout, _ = proc.communicate()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return stdout, proc.returncode


class _Failed(Exception):
    """dlx run failed before it made a run (it has said why); carries its exit code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def check_verifiable(path: Path) -> None:
    """--verify needs a finished record to compare with: refuse before running anything."""
    path = check_dir(path)
    if is_sweep(path) and not is_run(path):
        plan(path)  # raises the sweep's error
    status = read_summary(path)["status"]
    if status not in ("completed", "diverged"):
        raise UsageError(f"{path} is {status}: its metrics.csv is not a finished record to verify "
                         "against (rerun it without --verify)")
    if not (path / METRICS).is_file():
        raise UsageError(f"{path / METRICS}: missing, nothing to verify against")


def first_difference(old: Path, new: Path) -> tuple[int, str | None, str | None] | None:
    """None if the two files are byte for byte identical, else (line number from 1, the old
    line, the new line), a line None where its file has ended."""
    a, b = Path(old).read_bytes(), Path(new).read_bytes()
    if a == b:
        return None
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if x != y:
            return i + 1, _shown(x, y), _shown(y, x)
    raise AssertionError("unreachable: different bytes split into equal lines")


def _shown(line: bytes | None, other: bytes | None) -> str | None:
    """A line as text, without its newline; said when the newline alone makes it differ."""
    if line is None:
        return None
    text = line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
    if other is not None and line.rstrip(b"\r\n") == other.rstrip(b"\r\n") and \
            not line.endswith(b"\n"):
        text += " (no newline at the end)"
    return text
