"""Generate the Python gRPC stubs (with .pyi type stubs) from proto/ into the crowdquant package.

The proto directory mirrors the Python package (``proto/crowdquant/scoring/v1`` ->
``crowdquant.scoring.v1``), so generated modules import each other absolutely and work both in the
repository and after ``pip install``. Generated files are never edited by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"


def main() -> int:
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO}",
        f"-I{include}",
        f"--python_out={ROOT}",
        f"--grpc_python_out={ROOT}",
        f"--pyi_out={ROOT}",
        *files,
    ]
    if protoc.main(args) != 0:
        print("protoc failed", file=sys.stderr)
        return 1
    for rel in files:
        package_dir = ROOT / Path(rel).parent
        for parent in [package_dir, *package_dir.parents]:
            if parent == ROOT or ROOT not in parent.parents:
                break
            init = parent / "__init__.py"
            if not init.exists():
                init.write_text('"""Generated gRPC stubs (make proto)."""\n')
    print(f"generated stubs for {len(files)} proto files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
