"""Where `dlx check` keeps its verdicts: ``<workspace>/.dlx/checks.json``, one entry per class of
the learner's (its module file and its name) holding a verdict per sha256 of that file as it
was checked (the latest KEEP versions: undoing an edit finds the old verdict again).

A verdict holds only for those bytes: `dlx exercise list`, `dlx list` and `dlx show` look a
class up with the file's hash now (or a run's recorded hash) and find nothing once it changed.
The file is replaced atomically (a reader never sees half of it); one that cannot be read is
treated as empty (it holds verdicts only, which the next `dlx check` writes again).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

FILE = Path(".dlx") / "checks.json"
KEEP = 20  # verdicts kept per class: the latest versions of its file


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load(ws: Path) -> dict:
    try:
        data = json.loads((ws / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def source_of(cls) -> tuple[Path, str, str] | None:
    """(workspace, the class's file relative to it, the file's sha256), or None when the class
    is not defined in a file of the active workspace (a notebook cell, dlx's own)."""
    from dlx.learner import workspace

    ws = workspace()
    try:
        path = Path(inspect.getsourcefile(cls) or "").resolve()
    except (TypeError, OSError):
        return None
    if ws is None or not path.is_file() or ws.resolve() not in path.parents:
        return None
    return ws, path.relative_to(ws.resolve()).as_posix(), digest(path.read_bytes())


def save(cls, result, command: str, reference: str) -> None:
    """Keep ``result`` as the verdict on ``cls`` as its file is now (nothing outside a
    workspace). A workspace that cannot be written to keeps nothing: the check still printed."""
    found = source_of(cls)
    if found is None:
        return
    ws, rel, sha = found
    entries = _load(ws)
    key = f"{rel}:{cls.__qualname__}"
    kept = entries.get(key, {}).get("verdicts") if isinstance(entries.get(key), dict) else None
    kept = {k: v for k, v in (kept if isinstance(kept, dict) else {}).items() if k != sha}
    kept[sha] = {  # the newest last; an undone edit finds its old verdict again
        "passed": bool(result.passed), "stage": result.failed, "diagnosis": result.diagnosis,
        "stages": [list(st) for st in result.stages],
        "variant": result.variant, "reference": reference, "command": command,
        "checked": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    entries[key] = {"file": rel, "class": cls.__qualname__,
                    "verdicts": dict(list(kept.items())[-KEEP:])}
    folder, tmp = ws / FILE.parent, None
    try:
        folder.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".checks-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from a shared workspace's readers
        os.replace(tmp, ws / FILE)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def lookup(ws: Path, rel: str, cls: str, sha: str) -> dict | None:
    """The verdict on class ``cls`` of file ``rel`` when it was checked with these bytes."""
    entry = _load(ws).get(f"{rel}:{cls}")
    verdicts = entry.get("verdicts") if isinstance(entry, dict) else None
    found = verdicts.get(sha) if isinstance(verdicts, dict) else None
    return found if isinstance(found, dict) else None


def for_target(ws: Path, target: str, files: dict[str, str]) -> dict | None:
    """The verdict on a run's ``target`` (``mine.optim.Adam``) as the run's source recorded it
    (``files``: relative path -> sha256)."""
    module, _, cls = target.rpartition(".")
    stem = module.replace(".", "/")
    for rel in (f"{stem}.py", f"{stem}/__init__.py"):
        if rel in files:
            return lookup(ws, rel, cls, files[rel])
    return None


def entry(target: str, files: dict) -> dict | None:
    """The verdict on a run's ``target`` kept in the workspace this command runs in (never one
    a run's record names: a record is untrusted input), or None."""
    ws = os.environ.get("DLX_WORKSPACE")
    if not ws or not isinstance(files, dict):
        return None
    return for_target(Path(ws), target, {str(k): str(v) for k, v in files.items()})


def checked(target: str, files: dict) -> str | None:
    """What `dlx check` said of a run's ``target`` as the run recorded its files ("check
    passed", "check failed: stage 1 fixed inputs", "not checked"), from the workspace this
    command runs in (never one a run's record names: a record is untrusted input); None
    outside a workspace."""
    if not os.environ.get("DLX_WORKSPACE") or not isinstance(files, dict):
        return None
    found = entry(target, files)
    if found is None:
        return "not checked"
    if found.get("passed"):
        return "check passed"
    return f"check failed: {found.get('stage')}"
