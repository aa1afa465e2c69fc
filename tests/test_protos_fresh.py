"""The committed dnswatch_pb/ is what scripts/gen_protos.py makes from proto/ (CI fails when it is stale), every
generated module imports, every element of the contract is documented, and the stubs work over a real channel."""

import importlib
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "dnswatch_pb"


def generated_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_committed_code_is_fresh(tmp_path):
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh, committed = generated_files(tmp_path / "dnswatch_pb"), generated_files(COMMITTED)
    hint = (
        "dnswatch_pb/ is stale: run `.venv/bin/python scripts/gen_protos.py` and commit the result "
        "(with the grpcio-tools version dnswatch_pb/__init__.py names, or update it)"
    )
    assert sorted(fresh) == sorted(committed), hint
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{hint}; differing: {stale}"


@pytest.mark.parametrize(
    "module",
    sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in COMMITTED.rglob("*.py")
        if path.name != "__init__.py"
    ),
)
def test_generated_module_imports(module):
    importlib.import_module(module)


def test_generated_code_never_uses_the_name_proto():
    for name, text in generated_files(COMMITTED).items():
        for line in text.decode().splitlines():
            assert not line.startswith(("import proto", "from proto")), f"{name}: {line}"


# (field number in the descriptor, attribute) of the documented children of each element, as SourceCodeInfo
# paths count them (google/protobuf/descriptor.proto).
_FILE_CHILDREN = ((4, "message_type"), (5, "enum_type"), (6, "service"))
_CHILDREN = {
    descriptor_pb2.DescriptorProto: ((2, "field"), (3, "nested_type"), (4, "enum_type"), (8, "oneof_decl")),
    descriptor_pb2.EnumDescriptorProto: ((2, "value"),),
    descriptor_pb2.ServiceDescriptorProto: ((2, "method"),),
}


def _synthetic_oneofs(message: descriptor_pb2.DescriptorProto) -> set[int]:
    return {field.oneof_index for field in message.field if field.proto3_optional}


def documented_elements(tmp_path: Path) -> list[tuple[str, bool]]:
    """(element path, has a leading comment) for every message, field, enum, value, service and method."""
    from grpc_tools import protoc

    out = tmp_path / "set.pb"
    protos = sorted(p.relative_to(REPO / "proto").as_posix() for p in (REPO / "proto").rglob("*.proto"))
    well_known = str(Path(protoc.__file__).parent / "_proto")
    args = [f"-I{REPO / 'proto'}", f"-I{well_known}", "--include_source_info", f"--descriptor_set_out={out}"]
    assert protoc.main(["protoc", *args, *protos]) == 0
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    found = []
    for file in files.file:
        comments = {tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location}

        def visit(path, name, item):
            found.append((f"{file.name}:{name}", bool(comments.get(tuple(path)))))
            for number, children in _CHILDREN.get(type(item), ()):
                for index, child in enumerate(getattr(item, children)):
                    if isinstance(child, descriptor_pb2.DescriptorProto) and child.options.map_entry:
                        continue  # synthesised by protoc for a map field
                    if children == "oneof_decl" and index in _synthetic_oneofs(item):
                        continue  # synthesised by protoc for a proto3 `optional` field, documented as the field
                    visit([*path, number, index], f"{name}.{child.name}", child)

        for number, children in _FILE_CHILDREN:
            for index, item in enumerate(getattr(file, children)):
                visit([number, index], item.name, item)
    return found


def test_every_element_of_the_contract_is_documented(tmp_path):
    elements = documented_elements(tmp_path)
    assert len(elements) > 100
    assert [name for name, documented in elements if not documented] == []


def test_stubs_talk_over_a_real_channel():
    from dnswatch_pb.v1 import distribution_pb2, distribution_pb2_grpc, feeds_pb2

    class Distribution(distribution_pb2_grpc.FeedDistributionServicer):
        def Subscribe(self, request, context):
            yield distribution_pb2.FeedUpdate(
                snapshot=distribution_pb2.FeedSnapshot(
                    name="c2", content=feeds_pb2.FEED_CONTENT_DOMAIN_NAME_SET, version=request.have.get("c2", 0) + 1
                )
            )
            yield distribution_pb2.FeedUpdate(synced=distribution_pb2.Synced())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    distribution_pb2_grpc.add_FeedDistributionServicer_to_server(Distribution(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = distribution_pb2_grpc.FeedDistributionStub(channel)
            updates = list(stub.Subscribe(distribution_pb2.SubscribeRequest(node="n1", have={"c2": 6}), timeout=10))
    finally:
        server.stop(grace=None).wait()
    assert [update.WhichOneof("update") for update in updates] == ["snapshot", "synced"]
    assert updates[0].snapshot.version == 7
