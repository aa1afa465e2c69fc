"""The real captures of other projects' test suites (pcaps/corpus, carried in the repository so that a fresh
clone tests against them), with what tshark 4.0 finds in each (manifest.json)."""

import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "pcaps" / "corpus"
MANIFEST: list[dict] = json.loads((CORPUS / "manifest.json").read_text())
