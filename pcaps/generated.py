"""What the sample-data generators share: the check that committed files are what they make, and their command.

Each generator (`pcaps.make_demo`, `pcaps.make_hostile`) is byte-for-byte reproducible and offers
`generate(directory) -> names`; `--check` regenerates into a temporary directory and compares.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

Generate = Callable[[Path], list[str]]


def stale_files(generate: Generate, directory: Path) -> list[str]:
    """Names of the files in `directory` that differ from a fresh generation (empty when all match)."""
    with tempfile.TemporaryDirectory() as scratch:
        names = generate(Path(scratch))
        return [name for name in names
                if not (directory / name).is_file() or not filecmp.cmp(Path(scratch) / name, directory / name, shallow=False)]


def generator_main(argv: Sequence[str] | None, *, module: str, description: str, generate: Generate,
                   default: Path) -> int:
    """`python -m pcaps.MODULE [--check] [--out DIR]`: write the files, or exit 1 when the committed ones are stale."""
    where = f"{default.relative_to(Path(__file__).resolve().parent.parent)}/"
    parser = argparse.ArgumentParser(prog=f"python -m pcaps.{module}", description=description)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the files in {where} are not what this script generates")
    parser.add_argument("--out", type=Path, default=default, help=f"directory to write into (default: {where})")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(generate, args.out)
        for name in stale:
            print(f"pcaps/{module}: {args.out / name} differs from a fresh generation; "
                  f"run `python -m pcaps.{module}` and commit", file=sys.stderr)
        return 1 if stale else 0
    for name in generate(args.out):
        print(args.out / name)
    return 0
