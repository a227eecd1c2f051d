"""The learner's notes (``RUN/notes.md``, :mod:`dlx.records.notes`) as HTML: a small, safe subset of Markdown.

Everything is HTML-escaped first, so a note can never inject markup or scripts into the report;
then headings, paragraphs, bullet and numbered lists, fenced and inline code, **bold** and
*italic* are recognized. Anything else stays the plain text it was written as. (A Markdown
library would add a dependency for what a report's notes need: a few dated headings and prose.)
"""

from __future__ import annotations

import html
import re
from pathlib import Path

_INLINE = [(re.compile(r"\*\*(.+?)\*\*"), r"<b>\1</b>"),
           (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<i>\1</i>")]
_LIST = re.compile(r"^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def read_notes(path: Path) -> str | None:
    """The text of ``path/notes.md`` (written by ``dlx note``), or None when it has none."""
    from dlx.records.notes import read_notes as read

    text = read(path)
    return text if text.strip() else None


def _inline(text: str) -> str:
    """Escape, then code spans (whose contents are left alone), then bold and italic."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            part = html.escape(part)
            for pattern, repl in _INLINE:
                part = pattern.sub(repl, part)
            out.append(part)
    return "".join(out)


def demote(text: str, top: int = 4) -> str:
    """``text`` (Markdown) with its ``#`` headings moved down as :func:`to_html` moves them
    (``#`` -> ``####``, ``##`` -> ``#####``, at most six), code fences left alone: the
    Markdown twin's outline then matches the HTML's, notes under the report's sections."""
    out, fence = [], ""
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.lstrip()
        if fence:
            fence = "" if stripped.startswith(fence) else fence
        elif stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        elif m := _HEADING.match(line):
            line = "#" * min(6, top + len(m.group(1)) - 1) + " " + m.group(2)
        out.append(line)
    return "\n".join(out)


def to_html(text: str, top: int = 4) -> str:
    """``text`` (Markdown) as HTML; its ``#`` headings become ``<h{top}>``, ``##`` one level
    below, and so on (at most h6), so notes sit under the report's own headings."""
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    kind = ""  # "ul" or "ol" while a list is open
    lines = text.replace("\r\n", "\n").split("\n")

    def flush():
        nonlocal kind
        if para:
            out.append("<p>" + _inline(" ".join(s.strip() for s in para)) + "</p>")
            para.clear()
        if items:
            out.append(f"<{kind}>" + "".join(f"<li>{_inline(i)}</li>" for i in items)
                       + f"</{kind}>")
            items.clear()
        kind = ""

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            flush()
            fence, body = line.lstrip()[:3], []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith(fence):
                body.append(lines[i])
                i += 1
            out.append("<pre><code>" + html.escape("\n".join(body)) + "</code></pre>")
        elif not line.strip():
            flush()
        elif m := _HEADING.match(line):
            flush()
            level = min(6, top + len(m.group(1)) - 1)
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif m := _LIST.match(line):
            new = "ul" if m.group(1) else "ol"
            if para or (kind and kind != new):
                flush()
            kind = new
            items.append(m.group(3))
        elif items and line.startswith((" ", "\t")):  # a list item carried onto the next line
            items[-1] += " " + line.strip()
        else:
            if items:
                flush()
            para.append(line)
        i += 1
    flush()
    return "\n".join(out)
