#!/usr/bin/env bash
# Print a phase's report to PDF with headless Chromium and say how many A4 pages it has.
#   scripts/report-pdf.sh PHASE [RUNS_DIR]   build `dlx report --phase PHASE` from RUNS_DIR
#                                            (default $DLX_RUNS_DIR or ./runs) and print it
#   scripts/report-pdf.sh REPORT.html        print a report already built (beside it, .pdf)
# Needs Chromium (Debian: apt-get install chromium). Prints the PDF's path and its page count.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$here/.venv/bin/python}"; [ -x "$py" ] || py=python3
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n 2,6p "$0" | sed 's/^# \{0,1\}//' >&2; exit 2
fi
if [[ "$1" == *.html ]]; then
  [ -f "$1" ] || { echo "error: $1: no such file" >&2; exit 2; }
  pdf="${1%.html}.pdf"
  n=$("$py" -c 'import sys; from pathlib import Path; from dlx.report.pdf import print_pdf
print(print_pdf(Path(sys.argv[1]), Path(sys.argv[2])))' "$1" "$pdf")
else
  err="$(mktemp)"; trap 'rm -f "$err"' EXIT
  status=0
  out=$("$py" -m dlx.cli report --phase "$1" --root "${2:-${DLX_RUNS_DIR:-runs}}" --pdf 2> "$err") \
    || status=$?
  grep -v '^report.pdf: ' "$err" >&2 || true
  [ "$status" = 0 ] || exit "$status"
  pdf=$(tail -1 <<< "$out")
  n=$(sed -n 's/^report.pdf: \([0-9]*\) page.*/\1/p' "$err")
fi
echo "$pdf"
echo "$n pages (A4)"
