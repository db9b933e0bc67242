#!/usr/bin/env python3
"""Print the exclude and version-replace directives of a go.mod, for a wrapper module that builds it.

Replacements by local paths (`=> ./x`) are dropped: they only mean something inside that module's tree.
Usage: scripts/gomod-directives.py path/to/go.mod
"""
import re
import sys


def directives(text: str) -> list[str]:
    out: list[str] = []
    block = None
    for raw in text.splitlines():
        line = raw.split("//")[0].strip()
        if not line:
            continue
        if block:
            if line == ")":
                block = None
                continue
            entry = line
        else:
            m = re.match(r"^(exclude|replace)\s*(\()?\s*(.*)$", line)
            if not m:
                continue
            if m.group(2):
                block = m.group(1)
                continue
            block_kw, entry = m.group(1), m.group(3)
            out.extend(_keep(block_kw, entry))
            continue
        out.extend(_keep(block, entry))
    return out


def _keep(kind: str, entry: str) -> list[str]:
    if kind == "replace" and re.search(r"=>\s*[./]", entry):
        return []
    return [f"{kind} {entry}"]


if __name__ == "__main__":
    print("\n".join(directives(open(sys.argv[1]).read())))
