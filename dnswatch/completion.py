"""Shell completion for the three commands, generated from their argparse parsers by shtab.

    dnswatch completion bash > /etc/bash_completion.d/dnswatch
    dnswatch-agent completion zsh > "${fpath[1]}/_dnswatch-agent"
    dnswatch-collector --completion bash > /etc/bash_completion.d/dnswatch-collector

Generated, not written by hand, so a new flag or subcommand completes the day it is added. The collector has
no subcommands, and needs --db and --listen on every other call: it takes `--completion SHELL`, which prints
and exits before those are asked for, as `--version` does.
"""

from __future__ import annotations

import argparse

import shtab

__all__ = ["SHELLS", "add_completion_command", "add_completion_flag", "completion_script"]

SHELLS = tuple(shtab.SUPPORTED_SHELLS)
"""bash, zsh and tcsh (and what else the installed shtab writes)."""


def add_completion_command(commands: argparse._SubParsersAction, **parser_options) -> argparse.ArgumentParser:
    """`PROG completion SHELL` on a command's subcommands; the command's main prints `completion_script`."""
    completion = commands.add_parser("completion", help="print a shell completion script (bash, zsh, ...)",
                                     description="Print the completion script for SHELL on stdout, e.g. "
                                     "`source <(%(prog)s bash)`.", **parser_options)
    completion.add_argument("shell", choices=SHELLS)
    return completion


def add_completion_flag(parser: argparse.ArgumentParser) -> None:
    """`--completion SHELL` for a command without subcommands: prints the script and exits."""
    shtab.add_argument_to(parser, ["--completion"], help="print a shell completion script (bash, zsh, ...) "
                          "and exit")


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of `parser` (the command's root parser) for `shell`."""
    return shtab.complete(parser, shell=shell)
