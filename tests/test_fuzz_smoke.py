"""Every fuzz target of fuzz/ runs for a few seconds, as `python -m fuzz TARGET` runs it: seeded from the
repository, instrumented, in a process of its own (atheris ends the process on a finding). Any crash, hang
or broken invariant in that time fails the suite; the long runs are `make fuzz`'s (docs/fuzzing.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fuzz import registry
from fuzz.oracle import HANG_MS, Hang, bounded

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 3  # per target: seven targets stay well under a minute in all
# A guard against a run that never ends (libFuzzer's -max_total_time stops it), not a speed target.
RUN_TIMEOUT_S = 90


@pytest.mark.parametrize("target", registry.names())
def test_fuzz_target_runs_clean_for_a_few_seconds(target, tmp_path):
    findings = tmp_path / "findings"
    result = subprocess.run(
        [sys.executable, "-m", "fuzz", target, "--seconds", str(SECONDS), "--corpus", str(tmp_path / "corpus"),
         "--findings", str(findings)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    output = result.stdout + result.stderr
    tail = output[-4000:]
    assert result.returncode == 0, tail
    assert "Uncaught Python exception" not in output, tail
    assert list(findings.iterdir()) == [], tail
    seeds = int(re.search(rf"fuzz {target}: (\d+) seeds", output).group(1))
    runs = int(re.search(r"Done (\d+) runs", output).group(1))
    assert seeds > 0 and runs > seeds, tail  # it read every seed, then went on to mutate them


def _busy(ms: float) -> None:
    """Work for `ms` milliseconds of this thread's CPU time (what the oracle counts)."""
    until = time.thread_time() + ms / 1000
    while time.thread_time() < until:
        pass


def test_an_input_slower_than_the_limit_on_every_try_is_a_hang():
    with pytest.raises(Hang, match=r"one input of 3 bytes took .* ms of CPU at best \(limit 50 ms\)"):
        bounded(lambda data: _busy(HANG_MS * 1.5))(b"abc")


def test_one_slow_try_among_fast_ones_is_no_hang():
    tries = []

    def slow_once(data: bytes) -> None:
        tries.append(data)
        if len(tries) == 1:
            _busy(HANG_MS * 1.5)  # a stall of the machine, not of the code: the retry is fast

    bounded(slow_once)(b"x")
    assert len(tries) == 2
