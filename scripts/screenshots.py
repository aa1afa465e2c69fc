"""Screenshots of the web UI on the demo's events, for the README: docs/screenshots/*.png.

Usage: `python scripts/screenshots.py [--out docs/screenshots]` (after `make venv` and `make apt`, which
installs Debian's Chromium). It runs the demo (`python -m pcaps.demo --keep`), so the collector holds
exactly the events `make demo` prints, opens its UI in headless Chromium at 1440x900 in UTC (the same
pictures on every machine, whatever its zone), saves each page, and stops the collector.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run"]
EVIL = "6b09e3f83c989cc963a157772a03f859"  # the demo's evil.example, queried six times (README)

SHOTS = [
    ("events.png", "#/events", "#events-table tbody tr[data-id]"),
    ("event-detail.png", f"#/events/{EVIL}", "#event-detail table.matches"),
    ("feeds.png", "#/feeds", "#feeds-table tbody tr[data-feed]"),
    ("exceptions.png", "#/exceptions", "#exceptions-table tbody tr th"),
]


def add_exception(ui_url: str) -> None:
    """One exception, so that its page shows one: the monitoring agent's lookup of the demo's relay."""
    manifest = {"apiVersion": "dnswatch.dev/v1", "kind": "AlertException", "metadata": {"name": "node-exporter-relay"},
                "spec": {"description": "the exporter's probe resolves the relay on purpose",
                         "selector": 'source_namespace = "monitoring" AND "record.suspicious_domains" IN '
                                     '{"c2-relay.example"}'}}
    request = urllib.request.Request(f"{ui_url}api/v1/exceptions", data=json.dumps(manifest).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="dnswatch-shots-") as folder:
        workdir = Path(folder)
        demo = subprocess.run([sys.executable, "-m", "pcaps.demo", "--keep", "--workdir", str(workdir)],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
        found = re.search(r"web UI: (http://\S+)", demo.stderr)
        if demo.returncode != 0 or not found:
            print(f"screenshots: the demo failed:\n{demo.stderr}", file=sys.stderr)
            return 1
        pid = int((workdir / "collector.pid").read_text())
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
                context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="UTC",
                                              locale="en-GB")
                page = context.new_page()
                for name, route, ready in SHOTS:
                    if name == "exceptions.png":
                        add_exception(found.group(1))
                    page.goto(found.group(1) + route)
                    page.locator(ready).first.wait_for()
                    page.screenshot(path=str(args.out / name))
                    print(f"screenshots: {args.out / name}")
                browser.close()
        finally:
            os.kill(pid, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
