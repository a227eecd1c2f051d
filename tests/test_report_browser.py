"""The report in a real headless browser (Debian's Chromium): it renders, every image loads, and
printing it gives the number of A4 pages its content needs. Skipped without Chromium, unless
DLX_REQUIRE names it (CI does when it could install Chromium)."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import pytest

from dlx.report.pdf import chromium, pages

PNG = b"\x89PNG\r\n\x1a\n"
# after the load event: mark how many images there are and how many did not decode
PROBE = ("<script>addEventListener('load', () => { const imgs = [...document.images];"
         "document.body.dataset.images = imgs.length;"
         "document.body.dataset.broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0))"
         ".length;"
         "});</script>")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG and data[12:16] == b"IHDR", data[:16]
    return struct.unpack(">II", data[16:24])


@pytest.mark.needs("chromium")
@pytest.mark.slow
def test_phase_report_prints_with_every_image_loaded(cli):
    # Phase 1 from small real runs: conditioning (3 figures), lr_range (1, with notes) and a
    # learning-rate sweep of one seed; optimizers and lr_schedules have no run
    for args in (["experiment=conditioning", "conditioning.kappas=[10,100]"],
                 ["experiment=lr_range", "epochs=4"],
                 ["-m", "experiment=learning_rate", "seed=0", "epochs=3"]):
        result = cli("run", *args)
        assert result.returncode == 0, result.stderr
    run = sorted((cli.cwd / "runs").glob("*-lr_range-*"))[0]
    (run / "notes.md").write_text("## 2026-11-24\nThe suggestion sits a decade below the "
                                  "runaway.\n\n- rule: minimum / 10\n")
    out = cli.cwd / "report"
    result = cli("report", "--phase", "1", "--out", str(out), "--pdf")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == str(out / "report.pdf") and lines[-2] == str(out / "report.html")
    printed = int(re.search(r"report\.pdf: (\d+) pages", result.stderr).group(1))

    # every figure is embedded (self-contained) and is a PNG with a size
    page = (out / "report.html").read_text()
    uris = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(uris) == page.count("<img ") == len(list((out / "figures").glob("*.png"))) >= 5
    for uri in uris:
        width, height = _png_size(base64.b64decode(uri))
        assert width > 100 and height > 100

    # in the browser, after load, every image decoded (naturalWidth > 0)
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = chromium(["--dump-dom", "--virtual-time-budget=10000", probe.as_uri()]).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert f'data-images="{len(uris)}"' in body, body
    assert 'data-broken="0"' in body, body

    # the PDF: A4 pages in the range its content needs. Title page and contents (1), the three
    # records with 5 figures and 3 tables and two short missing-run sections (3-5 pages, each
    # figure at most ~11 cm high), the discussion on a page of its own (1).
    pdf = out / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pages(pdf) == printed
    assert 5 <= printed <= 7, printed
    assert re.search(rb"/MediaBox\s*\[\s*0 0 59[45]\.\d* 84[12]\.\d*\s*\]", pdf.read_bytes())  # A4


def test_page_count_reads_page_objects_not_the_page_tree(tmp_path):
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>\n"
                    b"2 0 obj << /Type /Page /Parent 1 0 R >>\n"
                    b"3 0 obj <</Type/Page/Parent 1 0 R>>\n")
    assert pages(pdf) == 2


def test_no_browser_is_one_error(monkeypatch):
    from dlx.errors import UsageError

    monkeypatch.setenv("PATH", str(Path("/nonexistent")))
    with pytest.raises(UsageError, match="apt-get install chromium"):
        chromium(["--version"])
