"""The agent's root exception; the shell turns it into one line on stderr."""


class DnswatchError(Exception):
    """Base of every error the agent reports to a user (bad input, unreadable files...)."""


class BadInput(DnswatchError):
    """Input the user gave us (a file, a flag, a manifest) cannot be used; the message says why."""
