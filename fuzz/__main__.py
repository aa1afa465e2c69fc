"""`python -m fuzz TARGET [--seconds N]`, `python -m fuzz --all [--seconds N]`, `python -m fuzz --list`,
`python -m fuzz TARGET --replay FILE...` (run saved inputs once, uninstrumented: a finding's regression check).

A target's corpus lives in `$TMPDIR/dnswatch-fuzz/TARGET/corpus` unless `--corpus` says otherwise: it is
seeded from the repository at each start and grows from run to run. Findings (the input that crashed or
hung) are written to `$TMPDIR/dnswatch-fuzz/TARGET/findings/` (`--findings`). Arguments after `--` go to
libFuzzer as they are (`-- -jobs=2 -dict=...`).
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from fuzz import registry

# libFuzzer's own alarm, a last resort for an input that never returns (fuzz.oracle times each one at 50 ms).
NEVER_RETURNS_S = 10


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", choices=registry.names(), help="what to fuzz")
    parser.add_argument("--all", action="store_true", help="every target in turn, each for --seconds")
    parser.add_argument("--list", action="store_true", help="print the targets and what each covers")
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz (each, with --all; default 60)")
    parser.add_argument("--runs", type=int, help="stop after this many inputs instead")
    parser.add_argument("--corpus", type=Path, help="the corpus directory (default: under $TMPDIR/dnswatch-fuzz)")
    parser.add_argument("--findings", type=Path, help="where crashing or hanging inputs are written")
    parser.add_argument("--replay", type=Path, nargs="+", metavar="FILE", help="run these inputs once and report")
    args = parser.parse_args(argv)
    if not (args.all or args.list) and args.target is None:
        parser.error("name a target, or give --all or --list")
    return args, extra


def work_dir(target: str) -> Path:
    return Path(tempfile.gettempdir()) / "dnswatch-fuzz" / target


def run_target(args: argparse.Namespace, extra: list[str]) -> int:
    import atheris

    with atheris.instrument_imports(include=["agent", "dnslib"]):
        target = registry.load(args.target)
    corpus = args.corpus or work_dir(target.name) / "corpus"
    findings = args.findings or work_dir(target.name) / "findings"
    corpus.mkdir(parents=True, exist_ok=True)
    findings.mkdir(parents=True, exist_ok=True)
    seeds = [seed for seed in target.seeds() if len(seed) <= target.max_len]
    for seed in seeds:
        path = corpus / ("seed-" + hashlib.sha1(seed).hexdigest())
        if not path.exists():
            path.write_bytes(seed)
    print(f"fuzz {target.name}: {target.covers}", file=sys.stderr)
    print(f"fuzz {target.name}: {len(seeds)} seeds, corpus {corpus}, findings {findings}/", file=sys.stderr)
    limit = [f"-runs={args.runs}"] if args.runs is not None else [f"-max_total_time={args.seconds}"]
    # Files after `--` (a crash to minimise, inputs to run) replace the corpus, as libFuzzer expects.
    inputs = [] if any(not arg.startswith("-") for arg in extra) else [str(corpus)]
    # libFuzzer runs argv[0] again (through the shell) to minimise a crash or run -jobs: make it this command.
    again = f"{shlex.quote(sys.executable)} -m fuzz {target.name} --"
    libfuzzer = [again, *limit, f"-max_len={target.max_len}", f"-timeout={NEVER_RETURNS_S}",
                 f"-artifact_prefix={findings}/", "-print_final_stats=1", *extra, *inputs]
    atheris.Setup(libfuzzer, target.one_input)
    atheris.Fuzz()  # exits the process: 0 when the time is up, non-zero on a finding
    return 0


def replay(args: argparse.Namespace) -> int:
    target = registry.load(args.target)
    failed = 0
    for path in args.replay:
        data = path.read_bytes()
        try:
            target.one_input(data)
        except Exception:  # noqa: BLE001 - any exception is the finding being reported
            failed += 1
            print(f"{path}: FAILS ({len(data)} bytes: {data!r:.200})", file=sys.stderr)
            traceback.print_exc()
        else:
            print(f"{path}: ok", file=sys.stderr)
    return 1 if failed else 0


def run_all(args: argparse.Namespace, extra: list[str]) -> int:
    failed = []
    for name in registry.names():
        command = [sys.executable, "-m", "fuzz", name, "--seconds", str(args.seconds)]
        if args.runs is not None:
            command += ["--runs", str(args.runs)]
        if args.corpus is not None:
            command += ["--corpus", str(args.corpus / name)]
        if args.findings is not None:
            command += ["--findings", str(args.findings / name)]
        started = time.monotonic()
        code = subprocess.call(command + (["--", *extra] if extra else []))
        print(f"fuzz {name}: exit {code} after {time.monotonic() - started:.0f}s", file=sys.stderr)
        if code:
            failed.append(name)
    if failed:
        print(f"fuzz: findings in {', '.join(failed)}; see each target's findings directory", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for name in registry.names():
            print(f"{name:12} {registry.load(name).covers}")
        return 0
    if args.all:
        return run_all(args, extra)
    if args.replay:
        return replay(args)
    return run_target(args, extra)


if __name__ == "__main__":
    sys.exit(main())
