"""`dlx rm`: runs and sweeps are moved to ``<runs root>/.trash/``, not deleted.

A trashed directory keeps its name and content, so it is restored by moving it back
(``mv runs/.trash/ID runs/``); ``dlx list`` and ``dlx plan`` never see it (they read only the
root's own run and sweep directories). ``dlx rm --purge`` deletes the trash for good.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.lock import busy
from dlx.records.store import check_dir, is_sweep, never_started, read_summary, sweep_members

TRASH = ".trash"


def _still_running(run: Path) -> str | None:
    """Why ``run`` must not be moved now (its process is alive), or None."""
    try:
        summary = read_summary(run)
    except UsageError:
        return None  # unreadable: nothing is writing a summary there
    if summary["status"] == "running":  # read_summary says `lost` when its process is dead
        return (f"{run} is still running (pid {summary.get('pid')} on {summary.get('host')}): "
                "stop it first (a run whose process died shows as lost and can be removed)")
    return None


def _trash(root: Path) -> Path:
    """``root/.trash``, refused when it is a symlink: dlx moves and deletes only inside the
    runs root, and a run directory (or a root) copied from elsewhere is untrusted input."""
    trash = root / TRASH
    if trash.is_symlink():
        raise UsageError(f"{trash} is a symlink (to {os_readlink(trash)}): dlx rm moves and "
                         f"deletes only inside the runs root; remove the link (rm {trash})")
    return trash


def os_readlink(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:
        return "?"


def check_removable(paths: list[Path], root: Path) -> list[Path]:
    """The directories to move, each checked: a run or sweep directly under ``root`` (not a
    sweep member, not in the trash) with no run in progress. The first problem is raised
    before anything moves."""
    root_abs = root.resolve()
    out: list[Path] = []
    for given in paths:
        # a start cut short (a folder that holds no record yet) may go too
        path = Path(given) if Path(given).is_dir() and never_started(Path(given)) \
            else check_dir(given)
        real = path.resolve()
        if real.parent.name == TRASH and real.parent.parent == root_abs:
            raise UsageError(f"{given} is in the trash already (`dlx rm --purge` deletes it)")
        if real.parent != root_abs:
            if real.parent.parent == root_abs and is_sweep(real.parent):
                raise UsageError(f"{given} is a member of the sweep {real.parent.name}: remove "
                                 f"the whole sweep ({root / real.parent.name}), not one member")
            raise UsageError(f"{given} is not under the runs root {root} (dlx rm moves runs "
                             "within their root; --root DIR names another)")
        members = sweep_members(path) if is_sweep(path) else [path]
        for folder in dict.fromkeys([path, *members]):
            who = busy(folder)  # a run or sweep at work (a member starting has no summary yet)
            if who:
                raise UsageError(f"{folder} is in use ({who}): stop it first")
        for run in members:
            problem = _still_running(run)
            if problem:
                raise UsageError(problem)
        if real in out:
            continue
        out.append(real)
    return out


def move_to_trash(paths: list[Path], root: Path) -> list[Path]:
    """Move runs and sweeps into ``root/.trash/`` (each under its own name, or NAME.1, NAME.2 if
    the trash holds that name already); returns where each went."""
    todo = check_removable(paths, root)
    trash = _trash(root)
    try:
        trash.mkdir(exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {trash}: {e.strerror or e}") from None
    moved = []
    for path in todo:
        target, n = trash / path.name, 0
        while target.exists():
            n += 1
            target = trash / f"{path.name}.{n}"
        try:
            path.rename(target)  # same file system: atomic, nothing half-moved
        except OSError as e:
            raise UsageError(f"cannot move {path} to {target}: {e.strerror or e}"
                             + (f" ({len(moved)} moved before it)" if moved else "")) from None
        moved.append(target)
    return moved


def trash_content(root: Path) -> tuple[list[Path], int]:
    """What the trash holds (its entries) and their size in bytes."""
    trash = _trash(root)
    if not trash.is_dir():
        return [], 0
    entries = sorted(trash.iterdir())
    size = sum(f.stat().st_size for e in entries for f in ([e] if e.is_file() else e.rglob("*"))
               if f.is_file() and not f.is_symlink())
    return entries, size


def purge(root: Path) -> int:
    """Delete everything in the trash; returns how many entries were deleted."""
    entries, _ = trash_content(root)
    for entry in entries:
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as e:
            raise UsageError(f"cannot delete {entry}: {e.strerror or e}") from None
    return len(entries)
