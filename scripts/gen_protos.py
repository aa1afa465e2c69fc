"""Generate dnswatch_pb/ from proto/ with grpc_tools.protoc: messages, gRPC stubs and .pyi type stubs.

Usage: `python scripts/gen_protos.py` (rewrites dnswatch_pb/ in the repo) or `--out DIR` (writes DIR/dnswatch_pb,
which tests/test_protos_fresh.py compares byte for byte with the committed package, so CI fails when it is stale).

Why the import lines are rewritten: protoc names Python modules after the proto paths (`dnswatch/v1/feeds.proto`
→ `dnswatch.v1.feeds_pb2`), but the code must not live under a bare top-level name of ours that may clash, so
`dnswatch.v1` becomes `dnswatch_pb.v1` in imports and module names. The proto file names registered in the
descriptor pool stay `dnswatch/v1/*.proto`, which is what server reflection (grpcurl) shows.

The output depends only on the .proto files and the grpcio-tools version (recorded in dnswatch_pb/__init__.py):
files are generated in sorted order, with no timestamps or absolute paths.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from importlib import metadata, resources
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "proto"
PACKAGE = "dnswatch_pb"

_INIT_DOC = '''"""Generated protobuf and gRPC code for proto/{proto_package}/ (proto package {dotted}). DO NOT EDIT.

Regenerate with `python scripts/gen_protos.py` (grpcio-tools {tools_version}).
"""
'''
# Only Python module names are rewritten: `from dnswatch.v1 import x_pb2`, `import dnswatch.v1.x_pb2` and the
# module name given to the descriptor builder (`'dnswatch.v1.x_pb2'`). Proto names (`/dnswatch.v1.Feeds/List`,
# `'dnswatch.v1.Feeds'`) are the wire contract and stay as they are.
_OWN_MODULE = re.compile(r"^(from|import) dnswatch\.(v\d+)\b|'dnswatch\.(v\d+)(\.\w+_pb2)'", re.MULTILINE)


def _rename_module(match: re.Match[str]) -> str:
    keyword, version, quoted_version, module = match.groups()
    if keyword:
        return f"{keyword} {PACKAGE}.{version}"
    return f"'{PACKAGE}.{quoted_version}{module}'"


def generate(out_root: Path) -> list[Path]:
    """Write `out_root/dnswatch_pb/` afresh from every .proto under proto/; return the files written, sorted."""
    from grpc_tools import protoc  # a dev dependency: imported only when generating

    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT}")
    well_known = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as raw_dir:
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--proto_path={well_known}",
            f"--python_out={raw_dir}",
            f"--pyi_out={raw_dir}",
            f"--grpc_python_out={raw_dir}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed (its message is above)")
        package_dir = out_root / PACKAGE
        if package_dir.exists():
            shutil.rmtree(package_dir)
        written = []
        for source in sorted(Path(raw_dir).rglob("*.py*")):
            relative = source.relative_to(Path(raw_dir) / "dnswatch")  # v1/feeds_pb2.py
            target = package_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_OWN_MODULE.sub(_rename_module, source.read_text()))
            written.append(target)
    tools_version = metadata.version("grpcio-tools")
    for directory in sorted({package_dir, *(path.parent for path in written)}):
        inner = directory.relative_to(package_dir).as_posix()
        proto_package = "dnswatch" if inner == "." else f"dnswatch/{inner}"  # dnswatch_pb/v1 holds dnswatch.v1
        init = directory / "__init__.py"
        init.write_text(
            _INIT_DOC.format(
                proto_package=proto_package, dotted=proto_package.replace("/", "."), tools_version=tools_version
            )
        )
        written.append(init)
    return sorted(written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO, help="where to write dnswatch_pb/ (default: the repo)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path.relative_to(args.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
