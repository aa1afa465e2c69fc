"""A real rsyslogd receiving syslog over TCP (or TLS) on 127.0.0.1, for the forwarding tests and benchmarks.

    with RsyslogReceiver(folder) as receiver:             # or tls=(ca.pem, cert.pem, key.pem)
        url = f"syslog+tcp://127.0.0.1:{receiver.port}"
        ...
        receiver.stop(); receiver.start()                  # away for a while, back on the same port
        messages = receiver.messages()                     # what it wrote, in arrival order

rsyslogd runs in the foreground (-n) with a configuration of its own in `folder`: the imtcp module on a
loopback port (gtls in anonymous-client mode for TLS), octet-counted framing, and omfile writing each message
as `SEVERITY|HOSTNAME|APP-NAME|PROCID|MSGID|STRUCTURED-DATA|MSG` to a file there. It never reads the system's
configuration nor opens /dev/log. `RsyslogUnavailable` when rsyslogd (or, for TLS, its gtls driver) is not
installed (Debian's `rsyslog` and `rsyslog-gnutls`, `make apt`).
"""

from __future__ import annotations

import glob
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RsyslogReceiver", "RsyslogUnavailable", "SyslogMessage", "rsyslogd_path"]

_START_SECONDS = 15.0
_FIELDS = 7


class RsyslogUnavailable(Exception):
    """rsyslogd, or its TLS driver, is not installed: the message says which package brings it."""


@dataclass(frozen=True)
class SyslogMessage:
    severity: int
    hostname: str
    app_name: str
    procid: str
    msgid: str
    structured_data: str
    msg: str


def rsyslogd_path(tls: bool = False) -> str:
    """rsyslogd's path, or RsyslogUnavailable saying what to install."""
    found = shutil.which("rsyslogd") or next((p for p in ("/usr/sbin/rsyslogd", "/sbin/rsyslogd")
                                             if Path(p).is_file()), None)
    if found is None:
        raise RsyslogUnavailable("rsyslogd is not installed (Debian's `rsyslog` package, `make apt`)")
    if tls and not glob.glob("/usr/lib/*/rsyslog/lmnsd_gtls.so") + glob.glob("/usr/lib/rsyslog/lmnsd_gtls.so"):
        raise RsyslogUnavailable("rsyslog's TLS driver is not installed (Debian's `rsyslog-gnutls`, `make apt`)")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RsyslogReceiver:
    def __init__(self, folder: Path, *, tls: tuple[Path, Path, Path] | None = None, port: int | None = None) -> None:
        """`tls` is (CA certificate, the receiver's certificate, its key), PEM files."""
        self.binary = rsyslogd_path(tls is not None)
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.output = folder / "received.log"
        self.config = folder / "rsyslog.conf"
        self.pidfile = folder / "rsyslogd.pid"
        (folder / "work").mkdir(exist_ok=True)
        self.config.write_text(self._config(tls))
        self.process: subprocess.Popen | None = None
        self.log = folder / "rsyslogd.stderr"

    def _config(self, tls: tuple[Path, Path, Path] | None) -> str:
        certs = ""
        driver = ""
        if tls is not None:
            ca, cert, key = tls
            certs = (f' defaultNetstreamDriverCAFile="{ca}" defaultNetstreamDriverCertFile="{cert}"'
                     f' defaultNetstreamDriverKeyFile="{key}"')
            driver = ' streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"'
        return (f'global(workDirectory="{self.folder / "work"}" maxMessageSize="64k"{certs})\n'
                f'module(load="imtcp"{driver})\n'
                f'input(type="imtcp" address="127.0.0.1" port="{self.port}")\n'
                'template(name="fields" type="string" string="%syslogseverity%|%hostname%|%app-name%|%procid%|'
                '%msgid%|%structured-data%|%msg%\\n")\n'
                f'action(type="omfile" file="{self.output}" template="fields" flushOnTXEnd="on" '
                'asyncWriting="off")\n')

    def __enter__(self) -> "RsyslogReceiver":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start rsyslogd and wait until it takes connections."""
        self.process = subprocess.Popen([self.binary, "-n", "-f", str(self.config), "-i", str(self.pidfile)],
                                        stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"rsyslogd did not listen on port {self.port}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it is still there 10 s later."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def messages(self) -> list[SyslogMessage]:
        """Every message written so far, in order."""
        if not self.output.exists():
            return []
        found = []
        for line in self.output.read_text(encoding="utf-8").splitlines():
            fields = line.split("|", _FIELDS - 1)
            if len(fields) == _FIELDS:
                severity, *rest, msg = fields
                found.append(SyslogMessage(int(severity), *rest, msg.lstrip(" ")))
        return found
