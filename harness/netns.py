"""The live-capture testbed: a "node" network namespace, "pod" namespaces joined to it by veth
pairs, dnsmasq in the node as the cluster DNS, dig/kdig in the pods as clients.

    with Testbed.create() as bed:              # or the tests' `testbed` fixture (tests/netns.py)
        web = bed.add_pod("web", namespace="shop", labels={"app": "web"})
        bed.dig(web, "evil.example", tcp=True, ipv6=True)
        agent = bed.popen_in_node([...])       # anything that must run on the node (the agent)
        bed.delete_pod(web)

Layout. Pod number i gets a veth pair: `eth0` in the pod with 10.200.i.2/24 and fd00:200:i::2/64 and default
routes through the node side, `cali<11 hex>` in the node (Calico's naming) with 10.200.i.1/24 and
fd00:200:i::1/64. The cluster DNS listens on 10.96.0.10 and fd00:96::10, addresses of the node's loopback (a
host-network DNS, as NodeLocal DNSCache is; the dummy interface it uses needs a kernel module not everywhere
loaded), UDP and TCP, and answers only from its `--address` lines: no upstream, so a name it does not know is
REFUSED and nothing leaves the testbed. The node forwards between pods, so a pod may also serve DNS to another
(`start_dns(pod)`); `add_pod(..., reuse=old)` gives a new pod the addresses of a deleted one.

Servers the test itself runs: `call_in_node(fn)` runs `fn` on a thread inside the node's namespace (a fake
API server started there listens on the node's 127.0.0.1); `link_to_host()` joins the test's namespace and
the node with a veth pair, for servers that must also be reached from the test (a collector).

Every name (namespaces, interfaces) carries a per-testbed id, so runs side by side do not meet; everything is
removed on exit, processes first (`ip netns exec` execs the command, so a Popen's pid is the process itself).
IPv6 duplicate address detection is off in every namespace: an address is usable at once, not after ~1 s.
"""

from __future__ import annotations

import ctypes
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


CLONE_NEWNET = 0x40000000

DNS_IPV4 = "10.96.0.10"
DNS_IPV6 = "fd00:96::10"

# What the cluster DNS answers (dnsmasq --address): the suspicious names and a few clean ones.
LOCAL_ANSWERS: tuple[tuple[str, str], ...] = (
    ("evil.example", "198.51.100.7"),
    ("evil.example", "2001:db8::7"),
    ("c2.tunnel.example", "198.51.100.8"),
    ("clean.example", "192.0.2.10"),
    ("clean.example", "2001:db8::10"),
    ("cdn.example", "203.0.113.9"),
    ("bench.example", "192.0.2.20"),
)


class NamespacesUnavailable(RuntimeError):
    """`ip netns add` failed: not root, or no CAP_SYS_ADMIN in this container."""


@dataclass(frozen=True)
class Pod:
    """One pod of the testbed: its network namespace and both ends of its veth pair."""

    name: str
    namespace: str
    """The Kubernetes namespace the pod list gives it."""
    netns: str
    """The network namespace (`ip netns exec NETNS ...`)."""
    host_interface: str
    """The node side of its veth pair, `cali…`: what the agent captures on."""
    ipv4: str
    ipv6: str
    node_ipv4: str
    """The node side's addresses (the pod's gateways)."""
    node_ipv6: str
    labels: dict = field(default_factory=dict)
    uid: str = ""

    def as_kubernetes(self, node: str) -> dict:
        """The pod as `kubectl get pods -o json` would list it (what `--pods` reads)."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(self.labels),
                         "uid": self.uid},
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}]},
            "status": {"phase": "Running", "podIP": self.ipv4, "podIPs": [{"ip": self.ipv4}, {"ip": self.ipv6}]},
        }


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


class Testbed:
    """A node namespace with cluster DNS; pods come and go. Build with `create()`, always `close()`."""

    __test__ = False  # pytest: a helper, not a test class

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.node = f"dnsw-{run_id}-node"
        """The node's network namespace: run the agent there (`popen_in_node`)."""
        self.node_name = f"node-{run_id}"
        """The node's name in the pod list and in events (`--node`)."""
        self.pods: dict[str, Pod] = {}
        self._namespaces: list[str] = []
        self._processes: list[subprocess.Popen] = []
        self._next_pod = 1
        self._host_link: str | None = None
        self._host_addresses = ("", "")

    # -- life cycle ----------------------------------------------------------------------------------------

    @classmethod
    def create(cls, dns_args: Sequence[str] = ()) -> Testbed:
        """The node with its DNS running; raises NamespacesUnavailable when namespaces cannot be made."""
        for tool in ("ip", "dnsmasq", "dig", "kdig"):
            if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
                raise NamespacesUnavailable(f"{tool} is not installed")
        bed = cls(f"{os.getpid() % 0x10000:04x}{secrets.token_hex(2)}")
        try:
            probe = subprocess.run(["ip", "netns", "add", bed.node], capture_output=True, text=True)
            if probe.returncode != 0:
                raise NamespacesUnavailable(f"`ip netns add` failed: {probe.stderr.strip()}")
            bed._namespaces.append(bed.node)
            bed._quiet_namespace(bed.node)
            bed._node_ip("link", "set", "lo", "up")
            bed._node_ip("addr", "add", f"{DNS_IPV4}/32", "dev", "lo")
            bed._node_ip("addr", "add", f"{DNS_IPV6}/128", "dev", "lo", "nodad")
            bed.in_node("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
            bed.start_dns(None, dns_args)
        except BaseException:
            bed.close()
            raise
        return bed

    def close(self) -> None:
        """Stop every process started here, then remove every namespace (the veth pairs go with them)."""
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._processes.clear()
        if self._host_link is not None:
            subprocess.run(["ip", "link", "del", self._host_link], capture_output=True)
            self._host_link = None
        for netns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        self._namespaces.clear()

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- pods --------------------------------------------------------------------------------------------

    def add_pod(self, name: str, namespace: str = "default", labels: dict | None = None,
                reuse: Pod | None = None) -> Pod:
        """A new pod namespace joined to the node by a veth pair, addressed and routed, ready to query.
        `reuse`: a deleted pod whose addresses the new one gets (as IPAM hands a freed address out again)."""
        if name in self.pods:
            raise ValueError(f"pod {name} exists")
        pod = self.planned_pod(name, namespace, labels, reuse)
        if reuse is None:
            self._next_pod += 1
        run(["ip", "netns", "add", pod.netns])
        self._namespaces.append(pod.netns)
        self._quiet_namespace(pod.netns)
        self._node_ip("link", "add", pod.host_interface, "type", "veth", "peer", "name", "eth0", "netns", pod.netns)
        self._node_ip("addr", "add", f"{pod.node_ipv4}/24", "dev", pod.host_interface)
        self._node_ip("addr", "add", f"{pod.node_ipv6}/64", "dev", pod.host_interface, "nodad")
        self._node_ip("link", "set", pod.host_interface, "up")
        pod_ip = ["ip", "-n", pod.netns]
        run([*pod_ip, "link", "set", "lo", "up"])
        run([*pod_ip, "addr", "add", f"{pod.ipv4}/24", "dev", "eth0"])
        run([*pod_ip, "addr", "add", f"{pod.ipv6}/64", "dev", "eth0", "nodad"])
        run([*pod_ip, "link", "set", "eth0", "up"])
        run([*pod_ip, "route", "add", "default", "via", pod.node_ipv4])
        run([*pod_ip, "-6", "route", "add", "default", "via", pod.node_ipv6])
        self.pods[name] = pod
        return pod

    def delete_pod(self, pod: Pod) -> None:
        """The pod's namespace removed: its veth pair, the node side included, vanishes with it."""
        for process in [p for p in self._processes if getattr(p, "dnsw_netns", None) == pod.netns]:
            process.kill()
            process.wait(timeout=10)
            self._processes.remove(process)
        # The veth first, at once: a namespace is destroyed asynchronously, and its pair would linger in the
        # node (holding the addresses a new pod may be about to get) for a moment after `ip netns del`.
        self._node_ip("link", "del", pod.host_interface)
        run(["ip", "netns", "del", pod.netns])
        self._namespaces.remove(pod.netns)
        del self.pods[pod.name]

    def pod_list(self, extra: Sequence[Pod] = ()) -> dict:
        """The pods as `kubectl get pods -A -o json` lists them (plus `extra`, e.g. a pod not created yet)."""
        items = [pod.as_kubernetes(self.node_name) for pod in [*self.pods.values(), *extra]]
        return {"apiVersion": "v1", "kind": "List", "items": items}

    def write_pod_list(self, path: Path, extra: Sequence[Pod] = ()) -> Path:
        path.write_text(json.dumps(self.pod_list(extra)))
        return path

    def planned_pod(self, name: str, namespace: str = "default", labels: dict | None = None,
                    reuse: Pod | None = None) -> Pod:
        """The Pod `add_pod` would make next with these arguments, without making it (for a pod list
        written before the pod exists)."""
        if reuse is not None:
            if reuse.name in self.pods:
                raise ValueError(f"pod {reuse.name} still holds its addresses: delete it first")
            number = int(reuse.ipv4.split(".")[2])
        else:
            number = self._next_pod
        if number > 250:
            raise ValueError("at most 250 pods per testbed")
        digest = hashlib.sha1(f"{self.run_id}/{namespace}/{name}".encode()).hexdigest()
        return Pod(
            name=name,
            namespace=namespace,
            netns=f"dnsw-{self.run_id}-p{number}{'r' if reuse else ''}-{digest[:4]}",
            host_interface=f"cali{digest[:11]}",
            ipv4=f"10.200.{number}.2",
            ipv6=f"fd00:200:{number:x}::2",
            node_ipv4=f"10.200.{number}.1",
            node_ipv6=f"fd00:200:{number:x}::1",
            labels=dict(labels or {}),
            uid=f"{digest[:8]}-0000-4000-8000-{digest[8:20]}",
        )

    def link_to_host(self) -> tuple[str, str]:
        """A veth pair between the test's own namespace and the node, for servers the test runs itself (a
        collector): (the address on the test's side, the node's). Removed by `close()`."""
        if self._host_link is None:
            subnet = int(self.run_id[-2:], 16)  # a /30 of its own per testbed, as far as 256 allow
            name = f"dnsh{self.run_id}"
            host, node = f"10.199.{subnet}.1", f"10.199.{subnet}.2"
            run(["ip", "link", "add", name, "type", "veth", "peer", "name", "host0", "netns", self.node])
            self._host_link = name
            run(["ip", "addr", "add", f"{host}/30", "dev", name])
            run(["ip", "link", "set", name, "up"])
            self._node_ip("addr", "add", f"{node}/30", "dev", "host0")
            self._node_ip("link", "set", "host0", "up")
            self._host_addresses = (host, node)
        return self._host_addresses

    def call_in_node(self, function, *args):
        """`function(*args)` on a thread that has entered the node's network namespace, and its result:
        sockets it opens live in the node (a server the agent must reach on the node's 127.0.0.1)."""
        result: list = []

        def enter_and_call() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{self.node}") as netns:
                if libc.setns(netns.fileno(), CLONE_NEWNET) != 0:
                    result.append(OSError(ctypes.get_errno(), "setns into the node namespace failed"))
                    return
            try:
                result.append(function(*args))
            except BaseException as error:  # handed to the caller's thread
                result.append(error)

        # Only this short-lived thread changes namespace; threads it starts stay in the node's.
        thread = threading.Thread(target=enter_and_call)
        thread.start()
        thread.join()
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    # -- DNS ---------------------------------------------------------------------------------------------

    def start_dns(self, pod: Pod | None, extra_args: Sequence[str] = (),
                  addresses: Sequence[str] = ()) -> subprocess.Popen:
        """dnsmasq answering LOCAL_ANSWERS over UDP and TCP: on the node's DNS addresses (pod None) or on a
        pod's own, or on `addresses` (in the node: added to its loopback); returns once it answers."""
        if pod is None:
            netns = self.node
            for address in addresses:
                self._node_ip("addr", "add", f"{address}/{ipaddress.ip_address(address).max_prefixlen}", "dev",
                              "lo", *(["nodad"] if ":" in address else []))
            addresses = tuple(addresses) or (DNS_IPV4, DNS_IPV6)
        else:
            netns, addresses = pod.netns, tuple(addresses) or (pod.ipv4, pod.ipv6)
        argv = [
            "/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--no-poll", "--bind-interfaces", "--user=root", "--group=root",
            "--pid-file=", "--port=53", "--cache-size=10000", "--dns-forward-max=10000",
            *[f"--listen-address={address}" for address in addresses],
            *[f"--address=/{name}/{answer}" for name, answer in LOCAL_ANSWERS],
            *extra_args,
        ]
        process = self._popen(netns, argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            answer = run(["ip", "netns", "exec", netns, "dig", f"@{addresses[0]}", "+short", "+time=1",
                          "+tries=1", "clean.example"], check=False)
            if answer.stdout.strip() == "192.0.2.10":
                return process
            if process.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {process.stderr.read().decode(errors='replace').strip()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq in {netns} does not answer: {answer.stdout} {answer.stderr}")
            time.sleep(0.1)

    def dig(self, pod: Pod, name: str, *, qtype: str = "A", tcp: bool = False, ipv6: bool = False,
            server: str | None = None) -> list[str]:
        """`dig` in the pod against the cluster DNS (or `server`); the answer lines (`+short`)."""
        server = server or (DNS_IPV6 if ipv6 else DNS_IPV4)
        argv = ["dig", f"@{server}", name, qtype, "+short", "+time=2", "+tries=1"]
        if tcp:
            argv.append("+tcp")
        result = self.in_pod(pod, *argv)
        return result.stdout.split()

    def kdig(self, pod: Pod, name: str, *, qtype: str = "A", tcp: bool = False, ipv6: bool = False,
             server: str | None = None) -> list[str]:
        """`kdig` (Knot's dig) in the pod: a second client implementation, with its own message layout."""
        server = server or (DNS_IPV6 if ipv6 else DNS_IPV4)
        argv = ["kdig", f"@{server}", name, qtype, "+short", "+time=2", "+retry=0", "+tcp" if tcp else "+notcp"]
        result = self.in_pod(pod, *argv)
        return result.stdout.split()

    # -- running things ------------------------------------------------------------------------------------

    def in_pod(self, pod: Pod, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", pod.netns, *argv], check=check, timeout=timeout)

    def in_node(self, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", self.node, *argv], check=check, timeout=timeout)

    def popen_in_node(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        """A process in the node namespace, killed by `close()` if still running then."""
        return self._popen(self.node, argv, **kwargs)

    def popen_in_pod(self, pod: Pod, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        return self._popen(pod.netns, argv, **kwargs)

    def _popen(self, netns: str, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(["ip", "netns", "exec", netns, *argv], **kwargs)
        process.dnsw_netns = netns  # type: ignore[attr-defined]  # so delete_pod stops what ran in the pod
        self._processes.append(process)
        return process

    def _node_ip(self, *argv: str) -> None:
        run(["ip", "-n", self.node, *argv])

    @staticmethod
    def _quiet_namespace(netns: str) -> None:
        # No DAD (addresses usable at once) and no router solicitations or MLD reports adding noise.
        run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
             "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.default.router_solicitations=0"])


def address_bytes(text: str) -> bytes:
    return ipaddress.ip_address(text).packed
