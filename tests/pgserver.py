"""A throwaway PostgreSQL server for the tests, started from the installed binaries.

`PostgresServer.start()` runs initdb into a fresh temporary directory, starts the server on a unix socket in
that directory and on 127.0.0.1 at a free port, waits until it accepts connections, and returns. `stop()`
always brings it down (fast shutdown, then a kill of the postmaster if that fails) and removes the directory;
an atexit hook calls it too, so an interrupted test run leaves no server behind.

PostgreSQL refuses to run as root, and CI runs the suite as root: then the server runs as the `postgres`
system user (created if missing) through `runuser`, and the temporary directory is handed to that user.
The server is throwaway: fsync is off (the store's own durability settings are what the tests exercise,
not the disk under this server), and authentication is `trust` on the socket and loopback only.

Run it by hand with `python -m tests.pgserver` to get a server for a minute of manual poking.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_SERVER_USER = "postgres"
_READY_TIMEOUT_S = 30.0


class PostgresUnavailable(Exception):
    """The PostgreSQL server binaries (or a user to run them as) are missing: tests skip, saying which."""


class PostgresFailed(RuntimeError):
    """The binaries are there but initdb or the server failed: tests fail, with the server's words."""


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres, or PostgresUnavailable naming where we looked."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    # Debian/Ubuntu keep the server binaries out of PATH, one directory per major version: newest first.
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major_version, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    for directory in candidates:
        if all((Path(directory) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found (looked at `pg_config --bindir`, /usr/lib/postgresql/*/bin "
        "and PATH); install the `postgresql` package (`make apt`)")


def _major_version(bindir: str) -> int:
    try:
        return int(Path(bindir).parent.name)
    except ValueError:
        return 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; `url(database)` gives a libpq URL over 127.0.0.1."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.port = 0
        self.root: Path | None = None
        self._as_user = _SERVER_USER if os.geteuid() == 0 else None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> "PostgresServer":
        if self._as_user:
            _ensure_system_user(self._as_user)
        # As root, under /tmp: the server's user must be able to reach the directory (TMPDIR may not be),
        # and the unix socket path must stay under the 107 bytes a socket address holds.
        base = "/tmp" if self._as_user and os.path.isdir("/tmp") else None
        self.root = Path(tempfile.mkdtemp(prefix="dnswatch-pg-", dir=base))
        atexit.register(self.stop)
        try:
            if self._as_user:
                entry = pwd.getpwnam(self._as_user)
                os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._run(["initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                       "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            for attempt in range(3):
                self.port = free_port()
                try:
                    self._start_server()
                    break
                except PostgresFailed:
                    if attempt == 2:  # the port was taken between probe and bind, three times: give up
                        raise
            self._started = True
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call twice, or after a failed start."""
        if self.root is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            try:
                self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "20", "stop"])
            except (PostgresFailed, OSError, subprocess.SubprocessError):
                self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
        self._started = False
        atexit.unregister(self.stop)

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database `name` (dropping any previous one) and return its URL."""
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def sql(self, statement: str) -> None:
        """Run one statement as the superuser over the unix socket (autocommit, so CREATE DATABASE works)."""
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    # -- internals ---------------------------------------------------------------------------------------

    def _start_server(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} -F "
                   "-c max_connections=50 -c shared_buffers=16MB")
        log = self.root / "server.log"  # type: ignore[operator]
        try:
            self._run(["pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-o", options, "-w",
                       "-t", str(int(_READY_TIMEOUT_S)), "start"])
        except PostgresFailed as error:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self._kill_postmaster()
            raise PostgresFailed(f"{error}\n{tail}") from None

    def _run(self, argv: list[str]) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self._as_user:
            if shutil.which("runuser"):
                command = ["runuser", "-u", self._as_user, "--", *command]
            else:
                command = ["su", "-s", "/bin/sh", self._as_user, "-c", shlex.join(command)]
        # The server's stdout/stderr go to its log file; never hand it our pipes, or run() waits forever.
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=_READY_TIMEOUT_S + 30, cwd=self.root)
        if done.returncode != 0:
            raise PostgresFailed(
                f"{argv[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-1500:]}")

    def _kill_postmaster(self) -> None:
        pid_file = self.data_dir / "postmaster.pid" if self.root else None
        if pid_file is None or not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown of the postmaster and all its children
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise PostgresUnavailable(f"running as root and there is no `{name}` user to run PostgreSQL as "
                                  "(and no useradd to create one)")
    done = subprocess.run([useradd, "--system", "--user-group", "--no-create-home", "--shell", "/bin/false",
                           name], capture_output=True, text=True)
    if done.returncode != 0 and not _user_exists(name):
        raise PostgresUnavailable(f"cannot create the `{name}` user to run PostgreSQL as: "
                                  f"{done.stderr.strip()}")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    with PostgresServer() as server:
        print(server.create_database("dnswatch"), flush=True)
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            pass
