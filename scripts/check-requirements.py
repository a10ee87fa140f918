"""Fails when a package installed with ``pip install --no-deps`` lacks one of its requirements.

docling-jobkit and docling-serve are installed without their dependencies (those pull in
torch); our extras list the rest. This check turns a requirement they forgot into an error
at install time, instead of a ModuleNotFoundError deep inside a test on a fresh machine.

    python scripts/check-requirements.py docling-jobkit docling-serve
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import Requirement

#: Requirements left out on purpose, and why.
LEFT_OUT = {
    "docling-mcp": "docling-serve's MCP server; not used by the service or the tests",
}


def missing(package: str) -> list[str]:
    """The unmet requirements of ``package`` (no extras), one line each."""
    problems = []
    for text in metadata.requires(package) or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra's requirement, or another platform's
        if req.name in LEFT_OUT:
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{package} requires {req}, which is not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{package} requires {req}, but {req.name} {version} is installed")
    return problems


def main(packages: list[str]) -> int:
    problems = [line for package in packages for line in missing(package)]
    for line in problems:
        print(f"check-requirements: {line}", file=sys.stderr)
    if problems:
        print("add them to an extra in pyproject.toml", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
