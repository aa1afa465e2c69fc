import os
import signal
import subprocess
import sys

import pytest

from agent.shell.spool import LOG_NAME, MAGIC, Spool, SpoolError


def event(event_id: str, count: int = 1, pad: int = 0) -> dict:
    return {"id": event_id, "type": "gtf_suspicious_dns_query", "record": {"count": count}, "pad": "x" * pad}


def held(spool: Spool) -> list[tuple[str, int]]:
    return [(e["id"], e["record"]["count"]) for e in spool.recover()]


def reopen(spool: Spool, max_bytes: int = 1 << 20) -> Spool:
    spool.close()
    return Spool.open(spool.directory, max_bytes)


def test_events_round_trip_through_a_restart(tmp_path):
    spool = Spool.open(tmp_path / "spool", 1 << 20)
    assert spool.recover() == []
    spool.append([event("a"), event("b", 2)])
    assert held(spool) == [("a", 1), ("b", 2)]
    spool = reopen(spool)
    assert spool.recover() == [event("a"), event("b", 2)]
    spool.close()


def test_acknowledged_events_stay_forgotten_after_a_restart(tmp_path):
    spool = Spool.open(tmp_path, 1 << 20)
    spool.append([event("a"), event("b"), event("c")])
    spool.acknowledge(["b", "unknown"])
    spool = reopen(spool)
    assert held(spool) == [("a", 1), ("c", 1)]
    spool.close()


def test_a_reemission_replaces_and_moves_to_the_back(tmp_path):
    spool = Spool.open(tmp_path, 1 << 20)
    spool.append([event("a", 1), event("b", 1)])
    spool.append([event("a", 7)])
    spool.append([event("c", 1), event("c", 2)])
    assert held(spool) == [("b", 1), ("a", 7), ("c", 2)]
    spool = reopen(spool)
    assert held(spool) == [("b", 1), ("a", 7), ("c", 2)]
    spool.close()


def test_an_id_acknowledged_then_emitted_again_is_held(tmp_path):
    spool = Spool.open(tmp_path, 1 << 20)
    spool.append([event("a", 1)])
    spool.acknowledge(["a"])
    spool.append([event("a", 2)])
    spool = reopen(spool)
    assert held(spool) == [("a", 2)]
    spool.close()


def written_with_a_last_record(directory) -> tuple[int, int]:
    """A spool whose intact part holds b and c; returns (size before the last record, size after it)."""
    spool = Spool.open(directory, 1 << 20)
    spool.append([event("a"), event("b")])
    spool.acknowledge(["a"])
    spool.append([event("c")])
    intact = os.path.getsize(directory / LOG_NAME)
    spool.append([event("d", pad=50)])
    spool.close()
    return intact, os.path.getsize(directory / LOG_NAME)


@pytest.mark.parametrize("into_the_record", [1, 5, 9, 12, 40, -1])
def test_a_torn_last_record_recovers_everything_before_it(tmp_path, into_the_record):
    intact, end = written_with_a_last_record(tmp_path)
    cut = (end if into_the_record < 0 else intact) + into_the_record
    os.truncate(tmp_path / LOG_NAME, cut)  # what kill -9 in the middle of the write leaves
    spool = Spool.open(tmp_path, 1 << 20)
    assert held(spool) == [("b", 1), ("c", 1)]
    assert spool.stats().torn_bytes == cut - intact
    spool.append([event("e")])  # appended after the torn tail was cut away, so not lost behind it
    spool = reopen(spool)
    assert held(spool) == [("b", 1), ("c", 1), ("e", 1)]
    assert spool.stats().torn_bytes == 0
    spool.close()


def test_a_damaged_record_ends_recovery_there(tmp_path):
    spool = Spool.open(tmp_path, 1 << 20)
    spool.append([event("a")])
    intact = os.path.getsize(tmp_path / LOG_NAME)
    spool.append([event("b")])
    spool.close()
    with open(tmp_path / LOG_NAME, "r+b") as log:
        log.seek(intact + 20)
        byte = log.read(1)
        log.seek(intact + 20)
        log.write(bytes([byte[0] ^ 0xFF]))
    spool = Spool.open(tmp_path, 1 << 20)
    assert held(spool) == [("a", 1)]
    spool.close()


def test_a_torn_first_write_is_an_empty_spool(tmp_path):
    (tmp_path / LOG_NAME).write_bytes(MAGIC[:3])
    spool = Spool.open(tmp_path, 1 << 20)
    assert spool.recover() == [] and spool.stats().torn_bytes == 3
    spool.close()


def test_compaction_keeps_exactly_the_unacknowledged_events(tmp_path):
    max_bytes = 32768
    spool = Spool.open(tmp_path, max_bytes)
    expected = []
    for i in range(600):
        spool.append([event(f"e{i}", pad=40)])
        expected.append((f"e{i}", 1))
        if i % 5:
            spool.acknowledge([f"e{i}"])
            expected.remove((f"e{i}", 1))
        if i % 10 == 0:
            spool.append([event("grows", count=i)])
    stats = spool.stats()
    assert stats.compactions > 1 and stats.dropped == 0
    assert os.path.getsize(tmp_path / LOG_NAME) == stats.file_bytes <= max_bytes
    assert [h for h in held(spool) if h[0] != "grows"] == expected
    assert ("grows", 590) in held(spool)
    spool = reopen(spool, max_bytes)
    assert [h for h in held(spool) if h[0] != "grows"] == expected
    # the open compacts too: the file holds the magic and one record per live event
    assert spool.stats().file_bytes == len(MAGIC) + spool.stats().live_bytes
    spool.close()


def test_the_byte_bound_drops_the_oldest_and_counts_them(tmp_path):
    max_bytes = 8192
    spool = Spool.open(tmp_path, max_bytes)
    dropped = []
    for i in range(100):
        dropped += spool.append([event(f"e{i}", pad=200)])
        assert os.path.getsize(tmp_path / LOG_NAME) <= max_bytes
    stats = spool.stats()
    assert stats.dropped == len(dropped) > 0
    assert stats.live_bytes <= max_bytes // 2
    survivors = [h[0] for h in held(spool)]
    assert dropped == [f"e{i}" for i in range(len(dropped))]
    assert survivors == [f"e{i}" for i in range(len(dropped), 100)]
    spool = reopen(spool, max_bytes)
    assert [h[0] for h in held(spool)] == survivors
    spool.close()


def test_an_event_larger_than_the_bound_is_dropped_alone(tmp_path):
    spool = Spool.open(tmp_path, 4096)
    spool.append([event("a")])
    assert spool.append([event("huge", pad=5000)]) == ("huge",)
    assert held(spool) == [("a", 1)] and spool.stats().dropped == 1
    spool.close()


def test_a_smaller_bound_at_restart_drops_the_oldest(tmp_path):
    spool = Spool.open(tmp_path, 1 << 20)
    spool.append([event(f"e{i}", pad=200) for i in range(40)])
    spool = reopen(spool, 4096)
    kept = [h[0] for h in held(spool)]
    assert kept == [f"e{i}" for i in range(40 - len(kept), 40)] and 0 < len(kept) < 40
    assert spool.stats().dropped == 40 - len(kept)
    spool.close()


def test_one_process_at_a_time(tmp_path):
    spool = Spool.open(tmp_path, 1 << 20)
    with pytest.raises(SpoolError, match="in use"):
        Spool.open(tmp_path, 1 << 20)
    spool.close()
    Spool.open(tmp_path, 1 << 20).close()


def test_a_file_that_is_no_spool_is_refused(tmp_path):
    (tmp_path / LOG_NAME).write_bytes(b"something else entirely")
    with pytest.raises(SpoolError, match="not a dnswatch spool"):
        Spool.open(tmp_path, 1 << 20)
    Spool.open(tmp_path / "elsewhere", 1 << 20).close()  # and the refused one left no lock behind
    (tmp_path / LOG_NAME).unlink()
    Spool.open(tmp_path, 1 << 20).close()


def test_a_too_small_bound_is_refused(tmp_path):
    with pytest.raises(SpoolError, match="too small"):
        Spool.open(tmp_path, 100)


WRITER = """
import sys
from agent.shell.spool import Spool
spool = Spool.open(sys.argv[1], 8192)
start = int(sys.argv[2])
sync = sys.argv[3] == "sync"
spool.acknowledge([e["id"] for e in spool.recover()])  # as if resent and stored
i = start
while True:
    spool.append([{"id": f"e{i}", "record": {"count": i}, "pad": "x" * 60}], sync=sync)
    if i - 10 >= start:
        spool.acknowledge([f"e{i - 10}"])
    print(i, flush=True)
    i += 1
"""


@pytest.mark.parametrize("sync", ["sync", "nosync"])
def test_kill_9_mid_stream_loses_no_returned_append_and_resurrects_no_acknowledged_event(tmp_path, sync):
    """A writer appends e0, e1, … and acknowledges all but the last ten; it is killed wherever it happens to be
    (a record, an ack or a compaction half written) and restarted from what the spool recovered. An append
    without its fsync survives a kill as well: it returns once its write system call has."""
    start = 0
    for _ in range(3):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(start), sync],
                                  stdout=subprocess.PIPE, text=True)
        for _ in range(300):  # several compactions' worth
            reported = int(writer.stdout.readline())
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        spool = Spool.open(tmp_path, 8192)
        numbers = [int(e["id"][1:]) for e in spool.recover()]
        spool.close()
        last = numbers[-1]
        assert last >= reported  # every append that returned survived
        assert numbers == list(range(numbers[0], last + 1))  # in order, no gap, nothing acknowledged came back
        assert last - numbers[0] in (9, 10)  # ten or eleven held, as the writer leaves them
        start = last + 1


FULL_DISK = """
import resource, signal, sys
from agent.shell.spool import Spool, SpoolError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like a full disk
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
spool = Spool.open(sys.argv[1], 1 << 20)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))
written = 0
try:
    while True:
        spool.append([{"id": f"e{written}", "pad": "x" * 150}])
        written += 1
except SpoolError as e:
    print(written, e, file=sys.stderr)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
spool.append([{"id": "after", "pad": ""}])
spool.close()
print(written)
"""


def test_a_failed_write_is_cut_off_and_later_appends_survive(tmp_path):
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True,
                          check=True)
    written = int(done.stdout)
    assert 0 < written and "cannot write spool" in done.stderr
    spool = Spool.open(tmp_path, 1 << 20)
    assert [e["id"] for e in spool.recover()] == [f"e{i}" for i in range(written)] + ["after"]
    assert spool.stats().torn_bytes == 0
    spool.close()


def test_appends_without_fsync_are_synced_by_a_detached_call_even_after_a_compaction(tmp_path):
    spool = Spool.open(tmp_path, 8192)
    assert spool.detach_sync() is None, "nothing appended: nothing to sync"
    spool.append([event("a")], sync=False)
    first = spool.detach_sync()
    assert first is not None and spool.detach_sync() is None
    spool.append([event("b")], sync=False)
    second = spool.detach_sync()
    compactions = spool.stats().compactions
    number = 0
    while spool.stats().compactions == compactions:  # the log is rewritten: a new file, a new descriptor
        spool.append([event(f"c{number}", pad=200)], sync=False)
        spool.acknowledge([f"c{number}"])
        number += 1
    first()
    second()  # each syncs its own duplicate of the descriptor of its time, replaced file or not
    assert spool.detach_sync() is not None
    spool.append([event("d")], sync=False)
    spool.append([event("e")])  # its fsync covers everything written before it
    assert spool.detach_sync() is None
    spool = reopen(spool)
    assert [e["id"] for e in spool.recover()] == ["a", "b", "d", "e"]
    spool.close()
