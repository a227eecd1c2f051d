"""Which runs `dlx list` shows, and in what order: ``--status``, ``--experiment``, ``--tag``,
``--since``, ``--sort``, ``--limit``.

Filters apply to runs: a sweep is listed with those of its members that match (a member carries
its sweep's tags as well as its own), and not at all when none does. ``--limit N`` counts
runs, a sweep's members one by one: ``--sort -val/acc --limit 5`` shows the five best runs,
plain or in sweeps (each under its sweep's line), and without ``--sort`` the five most recent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dlx.errors import UsageError

STATUSES = ("completed", "diverged", "interrupted", "failed", "running", "lost", "unreadable")
SORT_COLUMNS = ("started", "duration", "id", "status", "experiment")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|min|h|d|w)$")
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_STAMP = re.compile(r"^(\d{8}-\d{6})-")


def _split(value: str | None) -> set[str] | None:
    if value is None:
        return None
    items = {v.strip() for v in value.split(",") if v.strip()}
    return items or None


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``2d``, ``12h``, ``30m``, ``1w`` (that long ago) or a date/time in ISO form
    (``2026-11-20``, ``2026-11-20 14:00``; local time unless it names a zone)."""
    now = now or datetime.now(timezone.utc)
    m = _DURATION.match(value.strip())
    try:
        if m:
            return now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
        when = datetime.fromisoformat(value.strip())
        return when if when.tzinfo else when.astimezone()  # naive: the local time zone
    except (ValueError, OverflowError):
        raise UsageError(f"--since {value!r}: give a date (2026-11-20, 2026-11-20 14:00) or a "
                         "duration (30m, 12h, 2d, 1w) within the calendar") from None


def started(summary: dict, path: Path) -> datetime | None:
    """When a run started: its summary's ``started_at``, else its directory's time stamp (its
    own, or its sweep's)."""
    text = summary.get("started_at")
    if isinstance(text, str):
        try:
            when = datetime.fromisoformat(text)
            return when if when.tzinfo else when.astimezone()
        except ValueError:
            pass
    for p in (path, path.parent):
        m = _STAMP.match(p.name)
        if m:
            return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").astimezone()
    return None


@dataclass
class Selection:
    status: set[str] | None = None
    experiment: set[str] | None = None
    tags: set[str] | None = None
    since: datetime | None = None
    sort: str | None = None
    descending: bool = False
    limit: int | None = None
    given: list[str] = field(default_factory=list)  # the filters as given, for "no runs match"

    @classmethod
    def parse(cls, status: str | None = None, experiment: str | None = None,
              tag: str | None = None, since: str | None = None, sort: str | None = None,
              limit: int | None = None) -> "Selection":
        sel = cls(status=_split(status), experiment=_split(experiment), tags=_split(tag),
                  since=parse_since(since) if since else None, limit=limit)
        if sel.status:
            bad = sorted(sel.status - set(STATUSES))
            if bad:
                raise UsageError(f"unknown status {bad[0]!r} (valid: {', '.join(STATUSES)})")
        if limit is not None and limit < 1:
            raise UsageError(f"--limit must be >= 1, got {limit}")
        if sort:
            sel.descending = sort.startswith("-")
            sel.sort = sort.lstrip("-")
            if not sel.sort:
                raise UsageError("--sort needs a column: " + ", ".join(SORT_COLUMNS)
                                 + ", or a metric such as val/acc")
        for name, value in (("status", status), ("experiment", experiment), ("tag", tag),
                            ("since", since)):
            if value:
                sel.given.append(f"--{name} {value}")
        return sel

    @property
    def filters(self) -> bool:
        return bool(self.status or self.experiment or self.tags or self.since)

    def matches(self, summary: dict, tags: list[str], path: Path) -> bool:
        if self.status and summary.get("status") not in self.status:
            return False
        if self.experiment and str(summary.get("experiment") or "none") not in self.experiment:
            return False
        if self.tags and not self.tags & set(tags):
            return False
        if self.since:
            when = started(summary, path)
            if when is None or when < self.since:
                return False
        return True

    def check_sort(self, metrics: set[str]) -> None:
        """Refuse a --sort that names neither a column nor a metric any listed run has."""
        if self.sort and self.sort not in SORT_COLUMNS and self.sort not in metrics:
            shown = ", ".join(sorted(metrics)[:8]) or "none recorded"
            raise UsageError(f"cannot sort by {self.sort!r}: give one of "
                             f"{', '.join(SORT_COLUMNS)} or a final metric ({shown}); "
                             "-KEY sorts descending")

    def key(self, summary: dict, path: Path):
        """The sort key of a run: missing values last whichever the direction."""
        name = self.sort or "started"
        if name == "started":
            when = started(summary, path)
            value = when.timestamp() if when else None
        elif name == "duration":
            value = summary.get("wall_time_s")
        elif name == "id":  # a sweep's members by job number (2 before 10)
            value = (str(path.parent), int(path.name)) if path.name.isdigit() else (str(path), -1)
        elif name in ("status", "experiment"):
            value = summary.get(name)
            value = None if value is None else str(value)
        else:
            value = (summary.get("final") or {}).get(name)
            if not isinstance(value, (int, float)) or value != value:  # NaN sorts as missing
                value = None
        return value
