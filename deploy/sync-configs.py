#!/usr/bin/env python3
"""Copy the collector configs into the Kubernetes ConfigMaps of deploy/kubernetes/.

Each ConfigMap that names a file in its ``tradetel/source`` annotation gets that file, unchanged, as its
``config.yaml``, so the manifests only ever carry configs that collector/check-configs.sh validated.

    python deploy/sync-configs.py           # rewrite the manifests
    python deploy/sync-configs.py --check   # exit 1 if a manifest is not current
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "deploy" / "kubernetes"
SOURCE = "    tradetel/source: "
DATA = "  config.yaml: |"


def render(text: str) -> str:
    """``text`` (a multi-document manifest) with every sourced ConfigMap's config.yaml set to its file."""
    out: list[str] = []
    source: Path | None = None
    lines = text.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        if line.startswith(SOURCE):
            source = REPO / line[len(SOURCE) :].strip()
        elif line.rstrip("\n") == DATA and source is not None:
            while index < len(lines) and not lines[index].startswith("---"):
                index += 1  # the old block runs to the end of the document: data is a ConfigMap's last key
            out.extend(f"    {row}" if row.strip() else "\n" for row in source.read_text().splitlines(keepends=True))
            source = None
    return "".join(out)


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    stale = []
    for manifest in sorted(MANIFESTS.glob("*.yaml")):
        text = manifest.read_text()
        wanted = render(text)
        if wanted != text:
            stale.append(manifest.relative_to(REPO))
            if not check:
                manifest.write_text(wanted)
    if check and stale:
        print("not current (run python deploy/sync-configs.py):", *stale, file=sys.stderr)
        return 1
    for name in stale:
        print(f"updated {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
