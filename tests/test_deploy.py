"""deploy/ (docs/operations.md): every manifest of deploy/base/, and every object its overlays and components render, is valid against the Kubernetes schemas (kubernetes-validate, strict, for
the oldest and the newest Kubernetes it bundles from 1.30 on), the agent's security context is the narrow one
the SPEC asks for, RBAC is least privilege, the manifests agree with each other and with the commands' real
flags, and the Dockerfile is well formed.

Building the image needs a container runtime and the network, neither of which the test machines have: the
Dockerfile is parsed and checked here, not built.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
VENV_BIN = Path(sys.executable).parent

MANIFEST_FILES = sorted(p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

@functools.cache
def _parsed(name: str) -> str:
    with open(BASE / name) as handle:
        return json.dumps([doc for doc in yaml.safe_load_all(handle) if doc is not None])


def documents(name: str) -> list[dict]:
    """The objects of a manifest, parsed once (the CRD is large) and handed out as fresh copies."""
    return json.loads(_parsed(name))


def comments(name: str) -> str:
    """The YAML comments of a manifest as one line of text (so a wrapped sentence still reads whole)."""
    lines = (BASE / name).read_text().splitlines()
    return " ".join(line.split("#", 1)[1].strip() for line in lines if "#" in line)


def all_objects() -> list[tuple[str, dict]]:
    return [(name, doc) for name in MANIFEST_FILES for doc in documents(name)]


def the(kind: str, name: str) -> dict:
    found = [doc for _, doc in all_objects() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def kubernetes_versions() -> list[str]:
    from kubernetes_validate.utils import all_versions

    versions = [v for v in all_versions() if Version(v) >= Version("1.30")]
    assert versions, "kubernetes-validate bundles no schema for 1.30 or newer"
    return sorted({versions[0], versions[-1]}, key=Version)


# ---------------------------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("version", kubernetes_versions())
@pytest.mark.parametrize("name", MANIFEST_FILES)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(name, version):
    docs = documents(name)
    assert docs, f"{name} holds no object"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.path)
            pytest.fail(f"{name}: {doc['kind']} {doc['metadata'].get('name')}: {where}: {error.message}")


def test_strict_validation_refuses_a_misspelt_field_and_a_wrong_type():
    """The check above has teeth: a field the schema does not know, or a value of the wrong type, fails."""
    daemonset = the("DaemonSet", "dnswatch-agent")
    misspelt = json.loads(json.dumps(daemonset))
    misspelt["spec"]["template"]["spec"]["hostNetwrk"] = True
    wrong_type = json.loads(json.dumps(daemonset))
    wrong_type["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = "false"
    for doc in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, kubernetes_versions()[-1], strict=True)


def test_the_crd_is_among_them_and_the_kustomization_lists_every_manifest():
    assert "crd-globalthreatfeed.yaml" in MANIFEST_FILES
    kustomization = documents("kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == MANIFEST_FILES
    # Namespace and CRD first: kustomize orders them anyway, and so does this list for anyone reading it.
    assert kustomization["resources"][:4] == ["namespace.yaml", "crd-globalthreatfeed.yaml", "crd-alertexception.yaml",
                                              "crd-securityeventwebhook.yaml"]
    # deploy/ itself is base/, so `kubectl apply -k deploy/` installs the same.
    assert yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"] == ["base"]


def test_kustomize_renders_every_object_namespace_and_crd_first():
    """`kubectl apply -k deploy/` as documented, rendered offline (kubectl is not among the test packages)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed here")
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    key = lambda doc: (doc["kind"], doc["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, rendered)) == sorted(key(doc) for _, doc in all_objects())
    assert [doc["kind"] for doc in rendered[:2]] == ["Namespace", "CustomResourceDefinition"]


def test_every_namespaced_object_is_in_the_dnswatch_namespace():
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for name, doc in all_objects():
        if doc["kind"] in cluster_scoped:
            assert "namespace" not in doc["metadata"], f"{name}: {doc['kind']} is cluster-scoped"
        else:
            assert doc["metadata"].get("namespace") == "dnswatch", f"{name}: {doc['kind']} {doc['metadata']['name']}"


# ---------------------------------------------------------------------------------------------- the agent


def agent_pod() -> dict:
    return the("DaemonSet", "dnswatch-agent")["spec"]["template"]["spec"]


def agent_container() -> dict:
    containers = agent_pod()["containers"]
    assert len(containers) == 1
    return containers[0]


def test_agent_security_context_is_net_raw_only_unprivileged_and_read_only():
    pod, context = agent_pod(), agent_container()["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW"]}
    assert context["privileged"] is False
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    # uid 0 is a documented decision (raw sockets, see the manifest's comment), not an omission.
    assert context["runAsUser"] == 0 and context["runAsNonRoot"] is False
    assert {"CAP_NET_RAW", "effective", "no_new_privs"} <= set(re.findall(r"[\w]+", comments("daemonset.yaml")))
    assert pod.get("securityContext", {}).get("seccompProfile") == {"type": "RuntimeDefault"}
    for key in ("hostPID", "hostIPC"):
        assert not pod.get(key), key
    for container in pod.get("initContainers", []):
        assert not container.get("securityContext", {}).get("privileged")


OPEN_PACKET_SOCKET = "import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)).close()"


def run_with_capabilities(bounding: list[str], *identity: str) -> subprocess.CompletedProcess:
    """Python with only `bounding` capabilities, no inheritable ones, and no_new_privs (allowPrivilegeEscalation:
    false), as `identity` (setpriv flags; none: uid 0) — the way a container runtime starts the agent."""
    caps = ",".join(["-all", *(f"+{cap.lower()}" for cap in bounding)])
    return subprocess.run(["setpriv", *identity, "--inh-caps=-all", f"--bounding-set={caps}", "--no-new-privs",
                           sys.executable, "-c", OPEN_PACKET_SOCKET], capture_output=True, text=True, timeout=60)


def test_the_agents_capabilities_open_a_packet_socket_as_uid_0_and_not_as_another_user():
    """The manifest's reason for uid 0, checked with real processes: NET_RAW alone suffices for uid 0, and a
    non-root uid with the same capability added cannot open the socket (Kubernetes sets no ambient caps)."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv (util-linux) to start processes with a chosen capability set")
    added = agent_container()["securityContext"]["capabilities"]["add"]
    as_root = run_with_capabilities(added)
    assert as_root.returncode == 0, as_root.stderr

    def refused(result: subprocess.CompletedProcess) -> bool:  # by socket(), not by a file it could not read
        last_frame = result.stderr.rsplit('File "', 1)[-1]
        return (result.returncode != 0 and last_frame.split('"', 1)[0].endswith("/socket.py")
                and "PermissionError: [Errno 1]" in last_frame)

    assert refused(run_with_capabilities([]))  # the check has teeth
    as_user = run_with_capabilities(added, "--reuid=10001", "--regid=10001", "--clear-groups")
    assert refused(as_user), as_user.stderr


def test_agent_sees_the_host_network_on_every_node_and_knows_its_node():
    pod, container = agent_pod(), agent_container()
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert {"operator": "Exists"} in pod["tolerations"]
    env = {item["name"]: item for item in container["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert "--node=$(NODE_NAME)" in container["args"]
    assert pod["serviceAccountName"] == "dnswatch-agent"


def test_agent_has_requests_limits_and_probes_on_its_metrics_port():
    container = agent_container()
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert flag_value(container["args"], "--metrics-port") == str(ports["metrics"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_agent_reaches_the_collector_service_with_a_token_for_the_collectors_audience():
    container, pod = agent_container(), agent_pod()
    service = the("Service", "dnswatch-collector")
    grpc_port = next(port["port"] for port in service["spec"]["ports"] if port["name"] == "grpc")
    assert flag_value(container["args"], "--collector") == f"dnswatch-collector.dnswatch.svc:{grpc_port}"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    token_source = volumes["collector-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert flag_value(container["args"], "--token-file") == f"{mounts['collector-token']}/{token_source['path']}"
    collector_args = collector_container()["args"]
    assert token_source["audience"] in flag_values(collector_args, "--token-audience")
    assert "dnswatch/dnswatch-agent" in flag_values(collector_args, "--agent-service-account")
    assert "--token-review" in collector_args
    # The CA comes from a ConfigMap: no kubelet needs the collector's private key to start an agent.
    assert flag_value(container["args"], "--ca") == f"{mounts['collector-ca']}/ca.crt"
    assert "configMap" in volumes["collector-ca"]
    assert not any("secret" in volume for volume in pod["volumes"])


def test_every_mount_has_its_volume_and_the_spool_is_a_documented_host_path():
    for pod in (agent_pod(), collector_pod()):
        names = {volume["name"] for volume in pod["volumes"]}
        for container in pod["containers"]:
            assert {mount["name"] for mount in container["volumeMounts"]} <= names
    spool = next(volume for volume in agent_pod()["volumes"] if volume["name"] == "spool")
    assert spool["hostPath"]["type"] == "DirectoryOrCreate"
    mounts = {mount["name"]: mount["mountPath"] for mount in agent_container()["volumeMounts"]}
    assert flag_value(agent_container()["args"], "--spool-dir") == mounts["spool"]
    assert "rather than an emptyDir" in comments("daemonset.yaml")  # the choice is explained


# ---------------------------------------------------------------------------------------------- the collector


def collector_pod() -> dict:
    return the("Deployment", "dnswatch-collector")["spec"]["template"]["spec"]


def collector_container() -> dict:
    (container,) = collector_pod()["containers"]
    return container


def test_collector_runs_as_non_root_and_meets_the_restricted_pod_security_level():
    pod, container = collector_pod(), collector_container()
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
    assert not pod.get("hostNetwork")


def test_collector_service_probes_storage_and_tls():
    deployment, pod, container = the("Deployment", "dnswatch-collector"), collector_pod(), collector_container()
    service = the("Service", "dnswatch-collector")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels[key] == value for key, value in service["spec"]["selector"].items())
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert {(port["name"], port["port"]) for port in service["spec"]["ports"]} == {
        ("grpc", 7443), ("https", 8443), ("metrics", 9090)}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= set(ports)
    assert flag_value(container["args"], "--listen").endswith(f":{ports['grpc']}")
    assert flag_value(container["args"], "--http-listen").endswith(f":{ports['https']}")
    assert flag_value(container["args"], "--metrics-port") == str(ports["metrics"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    # SQLite on a claim, one replica, never two pods on the file at once; PostgreSQL documented for more.
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    the("PersistentVolumeClaim", claim)
    assert flag_value(container["args"], "--db") == f"sqlite://{mounts['data']}/db.sqlite"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    assert "Several replicas: use PostgreSQL" in comments("collector.yaml")
    assert volumes["tls"]["secret"]["secretName"] == "dnswatch-collector-tls"
    assert flag_value(container["args"], "--tls-cert") == f"{mounts['tls']}/tls.crt"
    assert flag_value(container["args"], "--tls-key") == f"{mounts['tls']}/tls.key"
    assert "--insecure" not in container["args"]


# ---------------------------------------------------------------------------------------------- RBAC


def rules_of(subject: str) -> list[dict]:
    """Every rule granted to ServiceAccount dnswatch/`subject` by the bindings in deploy/, with its scope."""
    rules = []
    for _, binding in all_objects():
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == subject and s["namespace"] == "dnswatch"
                   for s in binding["subjects"]):
            continue
        role = the(binding["roleRef"]["kind"], binding["roleRef"]["name"])
        scope = binding["metadata"].get("namespace", "*")
        rules += [{**rule, "scope": scope} for rule in role["rules"]]
    return rules


def grants(rules: list[dict]) -> set[tuple]:
    return {(group, resource, verb, tuple(rule.get("resourceNames", ())), rule["scope"])
            for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


def test_no_wildcards_and_no_dangerous_verbs_anywhere():
    for name, doc in all_objects():
        for rule in doc.get("rules", []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{name}: {doc['metadata']['name']}: {field} has *"
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
            assert "nonResourceURLs" not in rule
            if "resourceNames" in rule:
                assert rule["resourceNames"], "an empty resourceNames list grants every name"


def test_agents_get_list_and_watch_pods_and_nothing_else():
    assert grants(rules_of("dnswatch-agent")) == {("", "pods", verb, (), "*") for verb in ("get", "list", "watch")}


def test_agents_cannot_read_secrets():
    assert not [rule for rule in rules_of("dnswatch-agent") if "secrets" in rule["resources"]]


def test_collector_gets_the_crd_its_status_token_reviews_and_only_named_secrets_and_configmaps():
    granted = grants(rules_of("dnswatch-collector"))
    cluster = {(group, "globalthreatfeeds", verb, (), "*") for verb in ("get", "list", "watch")
               for group in ("dnswatch.dev", "projectcalico.org")}  # ours, and Calico's read as they are
    # The HTTP API writes ours (docs/http-api.md), never Calico's.
    cluster |= {("dnswatch.dev", plural, verb, (), "*") for verb in ("create", "update", "delete")
                for plural in ("globalthreatfeeds", "alertexceptions", "securityeventwebhooks")}
    cluster |= {(group, "globalthreatfeeds/status", verb, (), "*") for verb in ("update", "patch")
                for group in ("dnswatch.dev", "projectcalico.org")}
    cluster |= {("dnswatch.dev", "alertexceptions", verb, (), "*") for verb in ("get", "list", "watch")}
    cluster |= {("dnswatch.dev", "alertexceptions/status", verb, (), "*") for verb in ("update", "patch")}
    cluster |= {("dnswatch.dev", "securityeventwebhooks", verb, (), "*") for verb in ("get", "list", "watch")}
    cluster |= {("dnswatch.dev", "securityeventwebhooks/status", verb, (), "*") for verb in ("update", "patch")}
    cluster |= {("authentication.k8s.io", "tokenreviews", "create", (), "*")}
    assert {g for g in granted if g[4] == "*"} == cluster
    named = {g for g in granted if g[4] != "*"}
    assert named and all(g[4] == "dnswatch" and g[1] in ("secrets", "configmaps") and g[2] == "get" and g[3]
                         for g in named)
    assert "add its name to the list below" in comments("rbac.yaml")


def test_consumers_have_an_identity_and_no_permissions():
    the("ServiceAccount", "dnswatch-consumer")
    assert rules_of("dnswatch-consumer") == []
    assert "dnswatch/dnswatch-consumer" in flag_values(collector_container()["args"], "--consumer-service-account")


def test_viewers_of_the_http_api_have_an_identity_and_no_permissions():
    the("ServiceAccount", "dnswatch-viewer")
    assert rules_of("dnswatch-viewer") == []
    assert "dnswatch/dnswatch-viewer" in flag_values(collector_container()["args"], "--viewer-service-account")


def test_the_service_accounts_the_pods_use_exist():
    for pod in (agent_pod(), collector_pod()):
        the("ServiceAccount", pod["serviceAccountName"])


# ---------------------------------------------------------------------------------------------- commands


def flag_values(args: list[str], flag: str) -> list[str]:
    values = []
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
        elif arg == flag and index + 1 < len(args):
            values.append(args[index + 1])
    return values


def flag_value(args: list[str], flag: str) -> str:
    values = flag_values(args, flag)
    assert len(values) == 1, f"{flag}: {values}"
    return values[0]


def command_lines() -> dict[str, list[str]]:
    """`dnswatch-agent run` / `dnswatch-collector` -> the flags its container passes."""
    lines = {}
    for container in (agent_container(), collector_container()):
        command, args = container["command"], container["args"]
        key = " ".join(command + [arg for arg in args[:1] if not arg.startswith("-")])
        lines[key] = [arg.split("=", 1)[0] for arg in args if arg.startswith("-")]
    return lines


def help_flags(command: str) -> set[str]:
    words = shlex.split(command)
    result = subprocess.run([str(VENV_BIN / words[0]), *words[1:], "--help"], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", result.stdout))


def test_the_commands_are_console_scripts_of_the_project():
    for container in (agent_container(), collector_container()):
        (script,) = container["command"]
        assert script in SCRIPTS, script
        assert (VENV_BIN / script).exists(), f"{script} is not installed in the venv"
    assert the_entrypoint()[0] in SCRIPTS


def test_every_flag_the_manifests_pass_is_one_the_command_has():
    for command, flags in command_lines().items():
        unknown = set(flags) - help_flags(command)
        assert not unknown, f"{command}: no such flag: {sorted(unknown)}"
        assert len(flags) == len(set(flags)) or command == "dnswatch-collector", f"{command}: a flag given twice"


# ---------------------------------------------------------------------------------------------- Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    instructions, pending = [], ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, arguments = text.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    start = max(index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[start:]


def the_entrypoint() -> list[str]:
    (entrypoint,) = [arguments for keyword, arguments in final_stage() if keyword == "ENTRYPOINT"]
    return json.loads(entrypoint)  # the exec form: signals reach the process, not a shell


def test_dockerfile_is_well_formed():
    known = {"FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "EXPOSE", "ENTRYPOINT", "CMD",
             "LABEL", "HEALTHCHECK", "STOPSIGNAL", "VOLUME", "SHELL", "ONBUILD"}
    instructions = dockerfile()
    assert instructions[0][0] == "FROM"
    assert {keyword for keyword, _ in instructions} <= known
    for keyword, arguments in instructions:
        if keyword == "FROM":
            assert arguments.split()[0] == "python:3.11-slim", arguments
    assert json.loads(dict(final_stage())["CMD"])


def test_dockerfile_installs_the_project_without_dev_extras_and_libpcap():
    runs = " ".join(arguments for keyword, arguments in dockerfile() if keyword == "RUN")
    assert "pip wheel" in runs and "pip install" in runs
    assert "[dev]" not in runs and "dev" not in re.findall(r"\[([^\]]*)\]", runs)
    assert "libpcap0.8" in " ".join(arguments for keyword, arguments in final_stage() if keyword == "RUN")
    for keyword, arguments in dockerfile():
        if keyword == "COPY" and not arguments.startswith("--from"):
            for source in arguments.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_the_files_the_image_copies_build_a_wheel_with_the_console_scripts(tmp_path):
    """The image's build step (`pip wheel .` over exactly what the Dockerfile copies), run here without Docker:
    a file the build needs but the Dockerfile forgets to copy fails here, not in CI's image build."""
    source = tmp_path / "src"
    source.mkdir()
    for keyword, arguments in dockerfile():
        if keyword == "COPY" and not arguments.startswith("--from"):
            *sources, _ = arguments.split()
            for name in sources:
                path = ROOT / name
                if path.is_dir():
                    shutil.copytree(path, source / path.name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(path, source / path.name)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "--wheel-dir", str(tmp_path / "wheels"), str(source)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "wheels").glob("dnswatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    for package in ("agent/shell/cli.py", "collector/shell/main.py", "consumer/cli.py",
                    "dnswatch/pbconvert/feeds.py"):
        assert package in names, package
    assert any(name.startswith("dnswatch_pb/") and name.endswith("_pb2.py") for name in names)
    assert not any(name.startswith("tests/") for name in names)
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in entry_points


def test_dockerfile_runs_as_a_non_root_user():
    users = [arguments for keyword, arguments in final_stage() if keyword == "USER"]
    assert users, "the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # The collector's manifest runs as the same uid the image creates, so its volume's fsGroup fits.
    assert f"--uid {user}" in " ".join(arguments for keyword, arguments in final_stage() if keyword == "RUN")
    assert collector_pod()["securityContext"]["runAsUser"] == int(user)


def test_dockerignore_keeps_what_the_image_copies():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for keyword, arguments in dockerfile():
        if keyword == "COPY" and not arguments.startswith("--from"):
            for source in arguments.split()[:-1]:
                assert f"!{source.rstrip('/')}" in [line.rstrip("/") for line in ignore], source


# ---------------------------------------------------------------------------------------------- overlays and components


OVERLAYS = sorted(p.parent.name for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
COMPONENTS = sorted(p.parent.name for p in (DEPLOY / "components").glob("*/kustomization.yaml"))
MONITORING = DEPLOY / "components" / "monitoring"
CUSTOM_KINDS = {"Issuer", "Certificate", "PrometheusRule"}


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl (its kustomize) is not installed here")
    return found


@functools.cache
def _rendered(build: str) -> str:
    if build == "every-component":
        # A throwaway overlay of base/ with every component, as a user's own would be (kustomize takes
        # relative paths only).
        with tempfile.TemporaryDirectory() as folder:
            up = os.path.relpath(DEPLOY, folder)
            (Path(folder) / "kustomization.yaml").write_text(yaml.safe_dump({
                "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                "resources": [f"{up}/base"], "components": [f"{up}/components/{name}" for name in COMPONENTS]}))
            result = subprocess.run([kubectl(), "kustomize", folder], capture_output=True, text=True, timeout=60)
    else:
        result = subprocess.run([kubectl(), "kustomize", str(DEPLOY / build)], capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 0, result.stderr
    return json.dumps([doc for doc in yaml.safe_load_all(result.stdout) if doc])


def rendered(build: str) -> list[dict]:
    """What `kubectl apply -k deploy/BUILD` would apply (`every-component`: base/ with every component)."""
    return json.loads(_rendered(build))


def rendered_one(build: str, kind: str, name: str) -> dict:
    found = [doc for doc in rendered(build) if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{build}: expected one {kind} {name}, found {len(found)}"
    return found[0]


BUILDS = [f"overlays/{name}" for name in OVERLAYS] + ["every-component"]


def test_the_overlays_and_components_are_there_and_use_every_file_they_hold():
    assert {"cert-manager", "ha-postgres"} <= set(OVERLAYS)
    assert {"cert-manager", "monitoring"} <= set(COMPONENTS)
    for folder in [DEPLOY / "overlays" / name for name in OVERLAYS] + [DEPLOY / "components" / name
                                                                        for name in COMPONENTS]:
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        used = set(kustomization.get("resources", [])) | {patch["path"] for patch in kustomization.get("patches", [])
                                                          if "path" in patch}
        used |= {file for generator in kustomization.get("configMapGenerator", []) for file in generator["files"]}
        held = {p.name for p in folder.iterdir() if p.name != "kustomization.yaml"}
        assert held <= used, f"{folder.relative_to(ROOT)}: {sorted(held - used)} used by nothing"


def own_objects() -> list[tuple[str, dict]]:
    """The whole objects the overlays and components add, as written (patches left out): checked even where no
    kustomize can render them."""
    objects = []
    for kustomization in sorted((DEPLOY / "overlays").glob("*/kustomization.yaml")) + sorted(
            (DEPLOY / "components").glob("*/kustomization.yaml")):
        for name in yaml.safe_load(kustomization.read_text()).get("resources", []):
            path = kustomization.parent / name
            if path.is_file():
                objects += [(str(path.relative_to(DEPLOY)), doc) for doc in yaml.safe_load_all(path.read_text())]
    return objects


def test_the_objects_the_overlays_and_components_add_are_valid_as_written():
    objects = own_objects()
    assert {doc["kind"] for _, doc in objects} >= {"Issuer", "Certificate", "PrometheusRule", "PodDisruptionBudget"}
    for where, doc in objects:
        if doc["kind"] in CUSTOM_KINDS:
            check_custom_resource(doc)
        else:
            kubernetes_validate.validate(doc, kubernetes_versions()[-1], strict=True)
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "dnswatch", where


@pytest.mark.parametrize("version", kubernetes_versions())
@pytest.mark.parametrize("build", BUILDS)
def test_every_rendered_object_is_valid(build, version):
    docs = rendered(build)
    base = {(doc["kind"], doc["metadata"]["name"]) for _, doc in all_objects()}
    assert {(doc["kind"], doc["metadata"]["name"]) for doc in docs} & base, f"{build} renders none of base/"
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            check_custom_resource(doc)
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.path)
            pytest.fail(f"{build}: {doc['kind']} {doc['metadata'].get('name')}: {where}: {error.message}")
        cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
        assert (doc["kind"] in cluster_scoped) == ("namespace" not in doc["metadata"]), doc["metadata"]


# The custom resources against their schemas: the CRDs of cert-manager and Prometheus Operator are not among the
# schemas kubernetes-validate bundles, but cloudcoil's models of them are generated from those CRDs (types,
# enums, required fields). The models ignore unknown fields, so `unknown_fields` walks them for strictness.
GO_DURATION = re.compile(r"^(\d+(\.\d+)?(h|m|s|ms))+$")


@functools.cache
def custom_models() -> dict[str, type]:
    from cloudcoil.models.cert_manager import v1 as cert_manager
    from cloudcoil.models.prometheus_operator import v1 as prometheus_operator

    return {"Issuer": cert_manager.Issuer, "Certificate": cert_manager.Certificate,
            "PrometheusRule": prometheus_operator.PrometheusRule}


def unknown_fields(model: type, data: object, path: str = "") -> list[str]:
    """Paths of the keys in `data` that `model` (a pydantic model), or a model nested in it, has no field for."""
    if not isinstance(data, dict):
        return []
    fields = {}
    for name, field in model.model_fields.items():
        fields[name] = fields[field.alias or name] = field.annotation
    unknown = []
    for key, value in data.items():
        if key not in fields:
            unknown.append(f"{path}/{key}")
        else:
            unknown += _unknown_in(fields[key], value, f"{path}/{key}")
    return unknown


def _unknown_in(annotation: object, value: object, path: str) -> list[str]:
    import types
    import typing

    from pydantic import BaseModel

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _unknown_in(args[0], value, path)
    if origin in (typing.Union, types.UnionType):
        found = [_unknown_in(arg, value, path) for arg in args if arg is not type(None)]
        return min(found, key=len) if found else []
    if origin is list and isinstance(value, list):
        return [key for index, item in enumerate(value) for key in _unknown_in(args[0], item, f"{path}/{index}")]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return unknown_fields(annotation, value, path)
    return []


def check_custom_resource(doc: dict) -> None:
    what = f"{doc['kind']} {doc['metadata']['name']}"
    assert doc["apiVersion"] == {"PrometheusRule": "monitoring.coreos.com/v1"}.get(doc["kind"], "cert-manager.io/v1")
    assert doc["metadata"].get("namespace") == "dnswatch", what
    model = custom_models()[doc["kind"]]
    model.model_validate_json(json.dumps(doc), strict=True)  # ValidationError: a type, an enum value, a required field
    assert not unknown_fields(model, doc), f"{what}: no such field: {unknown_fields(model, doc)}"
    spec = doc["spec"]
    if doc["kind"] == "Certificate":
        for field in ("duration", "renewBefore"):
            assert GO_DURATION.match(spec.get(field, "1h")), f"{what}: {field}"
    if doc["kind"] == "PrometheusRule":
        names = [group["name"] for group in spec["groups"]]
        assert len(names) == len(set(names)), f"{what}: a group name twice"
        for rule in (rule for group in spec["groups"] for rule in group["rules"]):
            assert ("alert" in rule) != ("record" in rule), rule
            assert balanced(rule["expr"]) and GO_DURATION.match(rule.get("for", "1m")), rule


def balanced(expr: str) -> bool:
    depth = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in expr:
        if char in "([{":
            depth.append(char)
        elif char in pairs and (not depth or depth.pop() != pairs[char]):
            return False
    return not depth


def test_the_custom_resource_checks_have_teeth():
    from pydantic import ValidationError

    certificate = yaml.safe_load((DEPLOY / "components" / "cert-manager" / "certificate.yaml").read_text())
    check_custom_resource(certificate)
    for broken in ({"secretNam": "x"}, {"usages": ["server"]}, {"duration": "90d"}, {"isCA": "yes"},
                   {"privateKey": {"algorithm": "DSA"}}, {"issuerRef": {"nme": "dnswatch-ca"}}):
        doc = json.loads(json.dumps(certificate))
        doc["spec"].update(broken)
        with pytest.raises((AssertionError, ValidationError)):
            check_custom_resource(doc)
    rule = json.loads((json.dumps(prometheus_rule())))
    check_custom_resource(rule)
    rule["spec"]["groups"][0]["rules"][0]["fro"] = "5m"
    with pytest.raises(AssertionError, match="rules/0/fro"):
        check_custom_resource(rule)


# -- cert-manager


def test_cert_manager_issues_the_secret_the_collector_mounts_for_the_names_agents_and_consumers_dial():
    build = "overlays/cert-manager"
    pod = rendered_one(build, "Deployment", "dnswatch-collector")["spec"]["template"]["spec"]
    secret = next(volume["secret"]["secretName"] for volume in pod["volumes"] if volume["name"] == "tls")
    (certificate,) = [doc for doc in rendered(build) if doc["kind"] == "Certificate"
                      and doc["spec"]["secretName"] == secret]
    agent_args = rendered_one(build, "DaemonSet", "dnswatch-agent")["spec"]["template"]["spec"]["containers"][0]["args"]
    dialled = flag_value(agent_args, "--collector").rpartition(":")[0]
    server_names = re.findall(r"--server-name (\S+)", (DEPLOY / "README.md").read_text())
    assert server_names and {dialled, *server_names} <= set(certificate["spec"]["dnsNames"])
    assert "server auth" in certificate["spec"]["usages"] and not certificate["spec"].get("isCA")
    # Signed by the CA Issuer, whose CA certificate the self-signed Issuer signed.
    ca_issuer = rendered_one(build, "Issuer", certificate["spec"]["issuerRef"]["name"])
    (ca,) = [doc for doc in rendered(build) if doc["kind"] == "Certificate"
             and doc["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"]]
    assert ca["spec"]["isCA"] is True and ca["spec"]["privateKey"]["rotationPolicy"] == "Never"
    assert "selfSigned" in rendered_one(build, "Issuer", ca["spec"]["issuerRef"]["name"])["spec"]
    for doc in (certificate, ca):
        assert doc["spec"]["issuerRef"]["kind"] == "Issuer"
    # The agents still trust a ConfigMap, never a Secret: the README says how to fill it from the CA's Secret.
    agent_volumes = rendered_one(build, "DaemonSet", "dnswatch-agent")["spec"]["template"]["spec"]["volumes"]
    assert not any("secret" in volume for volume in agent_volumes)
    readme = (DEPLOY / "README.md").read_text()
    assert f"get secret {ca['spec']['secretName']}" in readme and "create configmap dnswatch-collector-ca" in readme


def test_the_one_shot_openssl_alternative_makes_what_the_manifests_mount(tmp_path):
    """deploy/README.md's openssl steps, run here: a CA and a server certificate for the names the agents dial."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed here")
    readme = (DEPLOY / "README.md").read_text()
    script = re.search(r"```sh\n\s*(# one-shot certificates.*?)```", readme, re.S)
    assert script, "deploy/README.md has no one-shot openssl block"
    lines = [line.strip() for line in script.group(1).splitlines()]
    commands = [line for line in lines if not line.startswith("kubectl")]
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(commands)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {"ca.crt", "tls.crt", "tls.key"} <= {p.name for p in tmp_path.iterdir()}
    verify = subprocess.run(["openssl", "verify", "-CAfile", "ca.crt", "-purpose", "sslserver", "tls.crt"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    names = subprocess.run(["openssl", "x509", "-in", "tls.crt", "-noout", "-ext", "subjectAltName"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60).stdout
    assert "DNS:dnswatch-collector.dnswatch.svc" in names, names
    assert "create secret tls dnswatch-collector-tls --cert=tls.crt --key=tls.key" in script.group(1)


# -- several replicas on PostgreSQL


def test_ha_postgres_runs_several_replicas_on_a_database_url_from_a_secret_with_a_disruption_budget():
    build = "overlays/ha-postgres"
    deployment = rendered_one(build, "Deployment", "dnswatch-collector")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert flag_value(container["args"], "--db") == "$(DNSWATCH_DB_URL)"
    env = {item["name"]: item for item in container["env"]}
    assert env["DNSWATCH_DB_URL"]["valueFrom"] == {"secretKeyRef": {"name": "dnswatch-db", "key": "url"}}
    # $(VAR) in args is expanded only from a variable the container defines.
    assert "postgresql://" in help_text("dnswatch-collector")
    assert not [doc for doc in rendered(build) if doc["kind"] == "PersistentVolumeClaim"]
    names = {volume["name"] for volume in pod["volumes"]}
    assert "data" not in names and {mount["name"] for mount in container["volumeMounts"]} <= names
    budget = rendered_one(build, "PodDisruptionBudget", "dnswatch-collector")
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    allowed = budget["spec"].get("maxUnavailable", deployment["spec"]["replicas"] - budget["spec"].get("minAvailable", 0))
    assert 0 < allowed < deployment["spec"]["replicas"]
    # The rest of the collector is base/'s: the same probes, ports, TLS and security context.
    base = the("Deployment", "dnswatch-collector")["spec"]["template"]["spec"]
    for key in ("livenessProbe", "readinessProbe", "ports", "securityContext"):
        assert container[key] == base["containers"][0][key], key
    assert [arg for arg in container["args"] if not arg.startswith("--db")] == [
        arg for arg in base["containers"][0]["args"] if not arg.startswith("--db")]


def help_text(command: str) -> str:
    result = subprocess.run([str(VENV_BIN / command), "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- monitoring


def prometheus_rule() -> dict:
    (rule,) = yaml.safe_load_all((MONITORING / "prometheusrule.yaml").read_text())
    return rule


def dashboard() -> dict:
    return json.loads((MONITORING / "dashboard.json").read_text())


def dashboard_expressions() -> list[str]:
    def walk(panels):
        for panel in panels:
            yield from (target["expr"] for target in panel.get("targets", []))
            yield from walk(panel.get("panels", []))

    return list(walk(dashboard()["panels"]))


def alert_rules() -> list[dict]:
    return [rule for group in prometheus_rule()["spec"]["groups"] for rule in group["rules"] if "alert" in rule]


def exported_series() -> dict[str, set[str]]:
    """Every sample name either process exports, with its labels: real registries, every family made to appear
    (some appear only once their part runs: the spool, the loop, the pod watch, a feed, an interface)."""
    from types import SimpleNamespace

    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from agent.shell.metrics import AgentMetrics
    from collector.shell.metrics import CollectorMetrics
    from dnswatch.feeds.feedinfo import FeedInfo
    from dnswatch.feeds.status import FeedStatus

    agent = AgentMetrics(node="node-1")
    agent.observe_interface("cali1", packets=3, drops=1)
    agent.observe_loop_progress(1.0)
    agent.set_liveness_timeout(30)
    agent.observe_shipper(SimpleNamespace(acked=1, dropped=1, replaced=0, queued=1, in_flight=0, recovered=0,
                                          streams=1, spooled=1, spool_dropped=0, streaming=True))
    agent.observe_outbox(SimpleNamespace(acked=1, dropped=1, replaced=0, queued=1, queued_bytes=10, in_flight=0,
                                         in_flight_bytes=0))
    agent.observe_spool(SimpleNamespace(events=1, dropped=0, file_bytes=100))
    agent.observe_sent(1)
    agent.set_collector_connected("feeds", True)
    agent.set_feeds([SimpleNamespace(name="c2", content="DomainNameSet", version=1, entries=8)])
    agent.set_pods(3)
    collector = CollectorMetrics()
    collector.set_feeds([FeedInfo(name="c2", content="DomainNameSet", mode="Enabled", status=FeedStatus(
        last_successful_sync="2026-11-27T21:53:31Z", entries=8, version=1))])
    collector.observe_pull("c2", "Updated")
    collector.observe_auth_failure("no-token")
    series: dict[str, set[str]] = {}
    for metrics in (agent, collector):
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
            for sample in family.samples:
                series.setdefault(sample.name, set()).update(sample.labels)
    return series


METRIC_NAME = re.compile(r"\bdnswatch_[a-z0-9_]+\b")
# Labels Prometheus adds at the scrape (Kubernetes pod discovery) rather than the processes.
TARGET_LABELS = {"instance", "job", "namespace", "pod", "container", "node"}


def test_every_metric_and_label_the_dashboard_and_the_alerts_use_is_exported():
    series = exported_series()
    expressions = dashboard_expressions() + [rule["expr"] for rule in alert_rules()]
    assert len(dashboard_expressions()) >= 10 and len(alert_rules()) >= 4
    used = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
    assert used, "no dnswatch metric is used"
    assert not used - set(series), f"not exported by either process: {sorted(used - set(series))}"
    labels = set().union(*series.values()) | TARGET_LABELS
    grouped = {label.strip() for expr in expressions for group in re.findall(r"\bby \(([^)]*)\)", expr)
               for label in group.split(",")}
    legends = {label for panel in dashboard()["panels"] for target in panel.get("targets", [])
               for label in re.findall(r"\{\{(\w+)\}\}", target.get("legendFormat", ""))}
    templated = {label for rule in alert_rules() for text in rule.get("annotations", {}).values()
                 for label in re.findall(r"\$labels\.(\w+)", text)}
    assert not (grouped | legends | templated) - labels, sorted((grouped | legends | templated) - labels)
    # The check has teeth: a misspelt name is caught.
    assert "dnswatch_agent_kernel_drop_total" not in series and "dnswatch_collector_streams" in series


def test_the_alerts_are_the_ones_the_readmes_recommend():
    """README.md (the liveness alert), deploy/README.md and docs/operations.md (their alert lists) and the
    PrometheusRule name the same alerts: every metric a recommendation names has an alert on it."""
    exprs = [rule["expr"] for rule in alert_rules()]
    alerted = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    recommended = set()
    for path in (ROOT / "README.md", DEPLOY / "README.md", ROOT / "docs" / "operations.md"):
        text = " ".join(path.read_text().split())
        for sentence in re.findall(r"(?:[Aa]lert on|[Tt]o alert on it)[^.]*\.?[^.]*", text):
            recommended |= set(METRIC_NAME.findall(sentence))
    recommended = {re.sub(r"_total$", "", name) for name in recommended}
    alerted_families = {re.sub(r"_total$", "", name) for name in alerted}
    assert recommended, "no recommended alert found"
    assert recommended <= alerted_families, sorted(recommended - alerted_families)
    liveness = "time() - dnswatch_agent_loop_last_progress_timestamp_seconds > dnswatch_agent_loop_liveness_timeout_seconds"
    assert liveness in " ".join((ROOT / "README.md").read_text().split()) and liveness in exprs
    assert "PrometheusRule" in (DEPLOY / "README.md").read_text()


def test_the_dashboard_is_a_configmap_grafanas_sidecar_loads():
    config_map = rendered_one("every-component", "ConfigMap", "dnswatch-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["dashboard.json"]) == dashboard()
    assert dashboard()["uid"] == "dnswatch"
    datasources = {target["datasource"]["uid"] for panel in dashboard()["panels"]
                   for target in panel.get("targets", [])}
    assert datasources == {"${datasource}"}  # the one templated Prometheus, whatever the Grafana calls it
    assert rendered_one("every-component", "PrometheusRule", "dnswatch") == prometheus_rule()
