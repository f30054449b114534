"""Open an ibcheck HTML report in headless Chromium and check that it renders: images load,
MathML is laid out as math, no external resources, no console errors.

    python scripts/check_report_in_browser.py [reports/index.html] [--screenshot page.png]

Exit status: 0 when the page is fine, 1 when something is wrong (listed), 2 when Chromium is
missing (install it with `apt-get install -y chromium`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from numerics.report.browser import check_in_browser, find_chromium


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", nargs="?", default="reports/index.html")
    parser.add_argument("--screenshot", help="also save a full-page PNG here")
    args = parser.parse_args()
    if find_chromium() is None:
        print("Chromium not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    if not Path(args.page).is_file():
        print(f"no such report: {args.page} (run `ibcheck report` first)", file=sys.stderr)
        return 2
    seen = check_in_browser(args.page, screenshot=bool(args.screenshot))
    page = seen.page
    loaded = sum(1 for i in page["images"] if i["complete"] and i["width"] > 0)
    print(f"page             {args.page}")
    print(f"title            {page['title']}")
    print(f"images loaded    {loaded} of {len(page['images'])}")
    print(f"math elements    {page['math']} (a fraction is laid out as '{page['fractionDisplay']}', "
          f"{page['fractionHeight'] or 0:.0f} px tall; a text line is {page['lineHeight']:.0f} px)")
    print(f"tables           {page['tables']}")
    print(f"console messages {len(seen.console)}")
    if page.get("matrix"):
        m = page["matrix"]
        print(f"summary matrix   {m['cells']} cells, {m['scrollWidth']} px wide in {m['clientWidth']} px "
              f"(window {m['viewport']} px); first column {m['firstColumn']}, header {m['header']}")
    if args.screenshot:
        Path(args.screenshot).write_bytes(seen.screenshot)
        print(f"screenshot       {args.screenshot}")
    problems = seen.problems()
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("OK: the report renders" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
