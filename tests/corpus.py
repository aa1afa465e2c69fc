"""The real captures of other projects' test suites (pcaps/corpus, copied from ../shared/pcaps/corpus so a
fresh clone carries them), with what tshark 4.0 finds in each (manifest.json)."""

import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "pcaps" / "corpus"
MANIFEST: list[dict] = json.loads((CORPUS / "manifest.json").read_text())
