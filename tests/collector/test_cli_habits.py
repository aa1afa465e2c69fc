"""The commands' manners, as real processes against a real collector: a mistake in the connection gets a hint
naming the flag to add or drop (gRPC's own words only with --log-level debug), `dnswatch`'s global flags go
before or after the subcommand and come from the environment too, `--version` and shell completion on all
three commands, `-o` the same for feeds and events, and an empty answer that says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.collector import RunningCollector, pulled
from tests.collector.eventdata import event
from tests.collector.running import db_url, feed_server, feeds_dir  # noqa: F401
from tests.collector.securitykit import CONSUMER_TOKENS, pki, tls_flags, token_file  # noqa: F401
from tests.collector.test_events_cli import compact, ingest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {"dnswatch": "consumer.cli", "dnswatch-agent": "agent.shell.cli", "dnswatch-collector": "collector.shell.main"}
# The environment of every run here, without the connection settings a developer may have exported.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("DNSWATCH_")}


def run(command: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", COMMANDS[command], *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**CLEAN_ENV, **(env or {})})


def one_error_line(result: subprocess.CompletedProcess, prog: str = "dnswatch") -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), result.stderr
    return lines[0]


@pytest.fixture
def plain(db_url, feeds_dir):  # noqa: F811
    with RunningCollector(db_url, feeds_dir) as collector:
        collector.wait_for(pulled("c2", "ips"), "both feeds pulled")
        yield collector


@pytest.fixture
def tls(db_url, feeds_dir, pki, tmp_path):  # noqa: F811
    tokens = token_file(tmp_path, CONSUMER_TOKENS[0], "consumer-tokens")
    with RunningCollector(db_url, feeds_dir, *tls_flags(pki), "--consumer-token-file", str(tokens)) as collector:
        yield collector


@pytest.fixture
def consumer_token(tmp_path) -> Path:
    return token_file(tmp_path, CONSUMER_TOKENS[0], "my-token")


# -- hints ----------------------------------------------------------------------------------------------------


def test_plaintext_against_tls_says_drop_insecure(tls):
    line = one_error_line(run("dnswatch", "--collector", tls.address, "--insecure", "feeds", "list"))
    assert "it serves TLS: drop --insecure and give --ca FILE" in line
    assert "Socket closed" not in line and "UNAVAILABLE" not in line


def test_tls_against_plaintext_says_add_insecure(plain, pki):
    line = one_error_line(run("dnswatch", "--collector", plain.address, "--ca", str(pki.ca), "feeds", "list"))
    assert "it talks plaintext (it runs with --insecure): drop --ca and add --insecure" in line
    assert "SSL" not in line and "WRONG_VERSION_NUMBER" not in line


def test_a_certificate_from_another_ca_says_give_the_right_ca(tls, pki):
    line = one_error_line(run("dnswatch", "--collector", f"localhost:{tls.port}", "--ca", str(pki.stranger_ca),
                              "feeds", "list"))
    assert f"not signed by the CA in --ca {pki.stranger_ca}: give --ca FILE with the CA that signed it" in line
    without = one_error_line(run("dnswatch", "--collector", f"localhost:{tls.port}", "feeds", "list"))
    assert "not signed by a CA this machine trusts: give --ca FILE" in without


def test_grpcs_own_words_only_with_log_level_debug(tls):
    quiet = run("dnswatch", "--collector", tls.address, "--insecure", "events", "list")
    assert "Socket closed" not in quiet.stderr
    loud = run("dnswatch", "--collector", tls.address, "--insecure", "events", "list", "--log-level", "debug")
    assert loud.returncode == 2 and "Socket closed" in loud.stderr and "it serves TLS" in loud.stderr


@pytest.mark.parametrize(("address", "says"), [
    ("::1:{port}", "an IPv6 address goes in brackets: --collector [::1]:{port}"),
    ("2001:db8::1", "an IPv6 address goes in brackets, followed by the port: --collector [2001:db8::1]:PORT"),
    ("https://127.0.0.1:{port}", "a URL, but --collector takes HOST:PORT: give --collector 127.0.0.1:{port}"),
    ("grpc://localhost", "a URL, but --collector takes HOST:PORT: give --collector localhost:PORT"),
    ("127.0.0.1", "no port: give HOST:PORT, e.g. --collector 127.0.0.1:7443"),
    ("127.0.0.1:99999", "the port must be a number from 1 to 65535"),
])
def test_a_malformed_address_is_named_with_the_form_to_use(plain, address, says):
    address, says = address.format(port=plain.port), says.format(port=plain.port)
    line = one_error_line(run("dnswatch", "--collector", address, "--insecure", "feeds", "list"))
    assert f"--collector {address}: {says}" in line and "Misformatted" not in line


def test_the_agents_collector_flags_get_the_same_hints(tls, plain, pki):
    demo = ["replay", "pcaps/demo.pcapng", "--node", "node-1", "--collector-timeout", "10s"]
    line = one_error_line(run("dnswatch-agent", *demo, "--collector", tls.address, "--insecure"), "dnswatch-agent")
    assert "it serves TLS: drop --insecure" in line and "Socket closed" not in line
    line = one_error_line(run("dnswatch-agent", *demo, "--collector", plain.address, "--ca", str(pki.ca)),
                          "dnswatch-agent")
    assert "it talks plaintext (it runs with --insecure): drop --ca and add --insecure" in line
    line = one_error_line(run("dnswatch-agent", *demo, "--collector", f"https://{plain.address}", "--insecure"),
                          "dnswatch-agent")
    assert f"a URL, but --collector takes HOST:PORT: give --collector {plain.address}" in line
    loud = run("dnswatch-agent", *demo, "--collector", tls.address, "--insecure", "--log-level", "debug")
    assert loud.returncode == 2 and "Socket closed" in loud.stderr


# -- global flags and the environment -------------------------------------------------------------------------


def test_global_flags_go_before_or_after_the_subcommand(plain):
    before = run("dnswatch", "--collector", plain.address, "--insecure", "-o", "json", "feeds", "list")
    after = run("dnswatch", "feeds", "list", "--collector", plain.address, "--insecure", "-o", "json")
    mixed = run("dnswatch", "--insecure", "feeds", "list", "-o", "json", "--collector", plain.address)
    assert before.returncode == after.returncode == mixed.returncode == 0, (before.stderr, after.stderr)
    assert [json.loads(line)["name"] for line in before.stdout.splitlines()] == ["c2", "ips"]
    assert before.stdout == after.stdout == mixed.stdout


def test_the_connection_comes_from_the_environment_and_flags_win(plain, tls, pki, tmp_path, consumer_token):
    env = {"DNSWATCH_COLLECTOR": plain.address, "DNSWATCH_INSECURE": "1"}
    result = run("dnswatch", "feeds", "list", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["name"] for line in result.stdout.splitlines()] == ["c2", "ips"]
    # --collector wins over DNSWATCH_COLLECTOR.
    elsewhere = run("dnswatch", "--collector", "127.0.0.1:1", "feeds", "list", env=env)
    assert "the collector at 127.0.0.1:1 cannot be reached" in one_error_line(elsewhere)
    # DNSWATCH_CA against a TLS collector; a --ca flag wins over it, and --insecure leaves it alone.
    tls_env = {"DNSWATCH_COLLECTOR": f"localhost:{tls.port}", "DNSWATCH_CA": str(pki.ca),
               "DNSWATCH_TOKEN_FILE": str(consumer_token)}
    listed = run("dnswatch", "feeds", "list", env=tls_env)
    assert listed.returncode == 0, listed.stderr
    wrong = run("dnswatch", "--ca", str(pki.stranger_ca), "feeds", "list", env=tls_env)
    assert f"--ca {pki.stranger_ca}" in one_error_line(wrong)
    plaintext = run("dnswatch", "--insecure", "--collector", plain.address, "feeds", "list", env=tls_env)
    assert plaintext.returncode == 0, plaintext.stderr
    # A TLS flag given leaves DNSWATCH_INSECURE alone (else --ca would be refused beside it).
    mixed = run("dnswatch", "--ca", str(pki.ca), "--collector", f"localhost:{tls.port}", "feeds", "list",
                env={**env, "DNSWATCH_TOKEN_FILE": str(consumer_token)})
    assert mixed.returncode == 0, mixed.stderr
    # DNSWATCH_TOKEN_FILE is read like --token-file.
    missing = run("dnswatch", "feeds", "list", env={**tls_env, "DNSWATCH_TOKEN_FILE": str(tmp_path / "nope")})
    assert f"--token-file {tmp_path / 'nope'}: no such file" in one_error_line(missing)


def test_no_collector_at_all_or_a_bad_insecure_value_is_one_line():
    assert "give --collector HOST:PORT, or set DNSWATCH_COLLECTOR" in one_error_line(run("dnswatch", "feeds", "list"))
    bad = run("dnswatch", "feeds", "list", env={"DNSWATCH_COLLECTOR": "h:1", "DNSWATCH_INSECURE": "maybe"})
    assert "DNSWATCH_INSECURE='maybe': expected 1, true or yes" in one_error_line(bad)


# -- --version and completion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_version(command):
    from dnswatch.version import package_version

    result = run(command, "--version")
    assert result.returncode == 0 and result.stdout == f"{command} {package_version()}\n"


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize(("command", "generate", "words", "expected"), [
    ("dnswatch", ["completion", "bash"], "dnswatch ", {"feeds", "events", "completion"}),
    ("dnswatch", ["completion", "bash"], "dnswatch events ", {"list", "watch"}),
    ("dnswatch", ["completion", "bash"], "dnswatch events list --na", {"--namespace"}),
    ("dnswatch-agent", ["completion", "bash"], "dnswatch-agent ", {"replay", "run", "completion"}),
    ("dnswatch-agent", ["completion", "bash"], "dnswatch-agent replay --fail", {"--fail-on-match"}),
    ("dnswatch-collector", ["--completion", "bash"], "dnswatch-collector --feeds-d", {"--feeds-dir",
                                                                                    "--feeds-dir-poll"}),
])
def test_bash_completion_offers_the_subcommands_and_flags(tmp_path, command, generate, words, expected):
    script = run(command, *generate)
    assert script.returncode == 0, script.stderr
    (tmp_path / "completion.bash").write_text(script.stdout)
    # What bash would offer after `words` + TAB: the script's completion function, run as bash runs it.
    line = words
    ask = (f"source {tmp_path / 'completion.bash'}\n"
           f"spec=$(complete -p {command}); fn=${{spec#*-F }}; fn=${{fn%% *}}\n"
           f"COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; read -ra COMP_WORDS <<< \"$COMP_LINE\"\n"
           f"[[ \"$COMP_LINE\" == *' ' ]] && COMP_WORDS+=('')\n"
           "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
           f"$fn {command} \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n"
           "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    offered = subprocess.run(["bash", "-c", ask], capture_output=True, text=True, timeout=30)
    assert offered.returncode == 0, offered.stderr
    assert expected <= {word.strip() for word in offered.stdout.split()}, offered


def test_zsh_completion_is_generated():
    script = run("dnswatch", "completion", "zsh")
    assert script.returncode == 0 and script.stdout.startswith("#compdef dnswatch")


# -- -o, the same for feeds and events; empty answers ---------------------------------------------------------


def test_feeds_and_events_take_the_same_outputs(plain, db_url):  # noqa: F811
    ingest(db_url, [event(1, namespace="shop", host="node-1")])
    connection = ["--collector", plain.address, "--insecure"]
    for output in ("table", "wide", "json", "yaml"):
        for args in (["feeds", "list"], ["events", "list"]):
            result = run("dnswatch", *connection, *args, "-o", output)
            assert result.returncode == 0 and result.stderr == "", (args, output, result.stderr)
    wide = run("dnswatch", *connection, "events", "list", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["TIME", "SOURCE", "CLIENT", "QNAME", "QTYPE", "RCODE", "FEEDS", "LISTED", "COUNT", "NODE", "ID"]
    assert wide[1].split()[-2:] == ["node-1", event(1)["id"]]
    feeds_wide = run("dnswatch", *connection, "feeds", "list", "-o", "wide").stdout.splitlines()
    assert feeds_wide[0].split()[:5] == ["NAME", "CONTENT", "MODE", "ENTRIES", "REJECTED"]
    assert feeds_wide[0].split()[-2:] == ["SHA256", "URL"] and "/c2.txt" in feeds_wide[1]
    listed = yaml.safe_load(run("dnswatch", *connection, "events", "list", "-o", "yaml").stdout)
    assert [json.loads(compact(e)) for e in listed] == [event(1, namespace="shop", host="node-1")]


def test_an_empty_list_says_so(db_url, tmp_path):  # noqa: F811
    with RunningCollector(db_url, tmp_path) as empty:  # no feeds, no events
        connection = ["--collector", empty.address, "--insecure"]
        for args, says in ((["feeds", "list"], "dnswatch: no feeds\n"), (["events", "list"], "dnswatch: no events match\n")):
            for output in ("table", "wide"):
                table = run("dnswatch", *connection, *args, "-o", output)
                assert (table.returncode, table.stdout, table.stderr) == (0, "", says)
            # Machine-readable output stays clean: JSON lines print no line at all, YAML an empty list.
            assert (run("dnswatch", *connection, *args, "-o", "json").stdout,
                    run("dnswatch", *connection, *args, "-o", "json").stderr) == ("", "")
            assert run("dnswatch", *connection, *args, "-o", "yaml").stdout == "[]\n"
