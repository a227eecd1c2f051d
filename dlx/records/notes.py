"""The learner's own words on a run: notes (``notes.md``) and tags (``tags.txt``).

Both live in the run's (or sweep's) directory next to the record, in files of their own, so the
record that dlx wrote is never rewritten: ``summary.json`` is written by the runner (atomically,
and again if the run is resumed or re-run in place), and a tag kept inside it could be lost to
that rewrite or corrupt the record if an edit were cut short. A lost ``tags.txt`` loses tags;
a lost ``summary.json`` loses the run.

``notes.md`` is Markdown that ``dlx report`` puts under the run's heading: each note a dated
``## YYYY-mm-dd HH:MM`` heading (local time), a blank line, and the text.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from dlx.errors import UsageError
from dlx.records.files import NOTES, TAGS  # noqa: F401 - re-exported: readers import them here
from dlx.records.lock import editing
from dlx.records.store import check_dir, is_run, is_sweep
from dlx.writable import check_file

_HEADING = re.compile(r"^## \d{4}-\d{2}-\d{2} \d{2}:\d{2}\s*$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]*$")


def annotated_dir(path: str | Path) -> Path:
    """``path`` as a run, sweep or sweep-member directory that notes and tags can go into."""
    path = check_dir(path)
    if not (is_run(path) or is_sweep(path)):  # check_dir already says what it is instead
        raise UsageError(f"{path}: not a run or sweep directory")
    return path


def _writable(path: Path) -> Path:
    """``path`` if it can be written, else one UsageError naming it (a read-only run folder,
    e.g. a copy on a read-only mount: notes and tags then change nothing)."""
    return check_file(path, hint="notes and tags are kept in the run's folder")


def _write_atomic(path: Path, text: str) -> None:
    _writable(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        # The cleanup can fail for the same reason the write did (unlink on a read-only mount
        # is EROFS even for a file that is not there): it must not hide the real error.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None


# ---------------------------------------------------------------------------------------------
# notes


def heading(when: datetime | None = None) -> str:
    return f"## {(when or datetime.now()).strftime('%Y-%m-%d %H:%M')}"


def read_notes(path: Path) -> str:
    """The run's notes.md ("" if it has none, or if it is a symlink: a record's notes are its
    own file, never one it points to, which `dlx show` and a report would pass on)."""
    if (Path(path) / NOTES).is_symlink():
        return ""
    try:
        return (Path(path) / NOTES).read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {Path(path) / NOTES}: {getattr(e, 'strerror', None) or e}"
                         ) from None


def _joined(old: str, entry: str) -> str:
    """``old`` notes with ``entry`` appended after one blank line."""
    if not old.strip():
        return entry
    return old.rstrip("\n") + "\n\n" + entry


def add_note(path: str | Path, text: str, when: datetime | None = None) -> Path:
    """Append a dated note to ``path``/notes.md; returns the file."""
    path = annotated_dir(path)
    text = text.strip("\n")
    if not text.strip():
        raise UsageError("the note is empty (give its text, or --edit to write it in $EDITOR)")
    entry = f"{heading(when)}\n\n{text}\n"
    _writable(path / NOTES)
    with editing(path):  # another `dlx note` waits: both notes are kept
        _write_atomic(path / NOTES, _joined(read_notes(path), entry))
    return path / NOTES


def edit_notes(path: str | Path, editor: str | None = None) -> Path | None:
    """Open notes.md in ``$EDITOR`` (``vi`` if unset) with a new dated heading at its end.
    Returns the file if it changed, None if not: a file left as it was, emptied, or with
    nothing written under the new heading changes nothing (no empty note is ever added)."""
    path = annotated_dir(path)
    _writable(path / NOTES)  # before the editor opens: text written there must not be lost
    old = read_notes(path)
    template = _joined(old, f"{heading()}\n\n")
    editor = editor or os.environ.get("EDITOR") or "vi"
    fd, name = tempfile.mkstemp(prefix="dlx-note-", suffix=".md")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(template)
        try:
            code = subprocess.call([*shlex.split(editor), str(tmp)])
        except OSError as e:
            raise UsageError(f"cannot start the editor {editor!r}: {e.strerror or e} "
                             "(set $EDITOR, or give the note as text)") from None
        if code != 0:
            raise UsageError(f"the editor {editor!r} exited with status {code}: notes unchanged")
        new = tmp.read_text(encoding="utf-8")
    finally:
        tmp.unlink(missing_ok=True)
    new = _drop_empty_last_note(new)
    if not new.strip() or new.strip() == old.strip():
        return None
    with editing(path):
        now = read_notes(path)
        if now != old:  # a note added while the editor was open: keep it, after the edit
            added = now[len(old):] if now.startswith(old) else now
            new = _joined(new, added.strip("\n") + "\n")
        _write_atomic(path / NOTES, new.rstrip("\n") + "\n")
    return path / NOTES


def _drop_empty_last_note(text: str) -> str:
    """Without a trailing dated heading that has nothing under it (the one --edit offered)."""
    lines = text.rstrip().split("\n")
    if lines and _HEADING.match(lines[-1]):
        lines.pop()
    return "\n".join(lines).rstrip() + ("\n" if "".join(lines).strip() else "")


def split_notes(text: str) -> list[tuple[str, str]]:
    """``[(heading date, text), ...]`` of a notes.md; text before any heading has date ''."""
    notes: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        if _HEADING.match(line):
            notes.append((line[3:].strip(), []))
        else:
            notes[-1][1].append(line)
    out = [(d, "\n".join(lines).strip()) for d, lines in notes]
    return [(d, t) for d, t in out if t or d]


def excerpt(path: Path, width: int | None = None) -> str:
    """The latest note's first line (at most ``width`` characters if given), with the number of
    notes when there are several: ``(3 notes) loss plateaus at lr 0.1``; "" without notes."""
    notes = [(d, t) for d, t in split_notes(read_notes(path)) if t]
    if not notes:
        return ""
    first = notes[-1][1].splitlines()[0].strip()
    if width is not None and len(first) > width:
        first = first[: width - 1].rstrip() + "…"
    return f"({len(notes)} notes) {first}" if len(notes) > 1 else first


def full_text(path: Path) -> str:
    """Every note of ``path``, oldest first, each ``YYYY-mm-dd HH:MM: text`` (the text whole,
    lines and all), one blank line apart; "" without notes."""
    return "\n\n".join(f"{d}: {t}" if d else t for d, t in split_notes(read_notes(path)) if t)


# ---------------------------------------------------------------------------------------------
# tags


def read_tags(path: Path) -> list[str]:
    """The run's tags (tags.txt, one per line), in the order they were added (none from a
    symlink: see :func:`read_notes`)."""
    if (Path(path) / TAGS).is_symlink():
        return []
    try:
        text = (Path(path) / TAGS).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return list(dict.fromkeys(t.strip() for t in text.splitlines() if t.strip()))


def check_tag(name: str) -> str:
    if not _TAG.match(name):
        raise UsageError(f"invalid tag {name!r}: letters, digits and _ . : + - "
                         "(starting with a letter or digit), e.g. baseline or best-lr")
    return name


def set_tags(path: str | Path, names: list[str], remove: bool = False) -> tuple[list[str], list[str]]:
    """Add (or remove) tags; returns (the tags that changed, the run's tags now). Removing a tag
    the run does not have is refused, so that a typo is not taken for a success."""
    path = annotated_dir(path)
    for name in names:
        check_tag(name)
    _writable(path / TAGS)
    with editing(path):  # another `dlx tag` waits: both sets of tags are kept
        return _set_tags(path, names, remove)


def _set_tags(path: Path, names: list[str], remove: bool) -> tuple[list[str], list[str]]:
    tags = read_tags(path)
    if remove:
        missing = [n for n in names if n not in tags]
        if missing:
            have = ", ".join(tags) or "none"
            raise UsageError(f"{path} has no tag {missing[0]!r} (its tags: {have})")
        changed = [t for t in tags if t in names]
        tags = [t for t in tags if t not in names]
    else:
        changed = [n for n in dict.fromkeys(names) if n not in tags]
        tags = tags + changed
    if changed:
        if tags:
            _write_atomic(path / TAGS, "".join(f"{t}\n" for t in tags))
        else:
            try:
                _writable(path / TAGS)
                (path / TAGS).unlink(missing_ok=True)
            except OSError as e:
                raise UsageError(f"cannot write {path / TAGS}: {e.strerror or e}") from None
    return changed, tags
