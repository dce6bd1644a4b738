"""README.md and docs/architecture.md point only at what is in the repository.

The README once sent readers to ../shared/DESIGN.md, a file outside the
repository.  Every relative link and every repository path the two documents
name in backticks (``sentry/oci/host.py``, ``tests/programs/``) must exist, so
a renamed or removed module shows up here instead of as a dead reference.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import REPO_ROOT

DOCS = ("README.md", "docs/architecture.md", "docs/security.md", "docs/checkpoint.md",
        "docs/pods.md")
TOP = ("runsc.py", "sentry/", "syscalls/", "gofer/", "shm/", "tests/", "bench/", "docs/",
       "pyproject.toml", ".ci/")
LINK = re.compile(r"\]\(([^)#\s]+)")
CODE = re.compile(r"`([^`\s]+)`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _is_repo_path(token: str) -> bool:
    return token.startswith("../") or token in TOP or any(
        token.startswith(t) for t in TOP if t.endswith("/"))


def _references(doc: Path) -> list[Path | str]:
    """Links (relative to the document) and backticked repository paths
    (relative to the repository), outside fenced blocks."""
    text = FENCE.sub("", doc.read_text())
    refs: list[Path | str] = [doc.parent / link for link in LINK.findall(text)
                              if not link.startswith(("http://", "https://", "mailto:"))]
    for token in CODE.findall(text):
        token = token.rstrip(".,:;")
        if _is_repo_path(token):
            refs.append(token if "*" in token else REPO_ROOT / token)
    return refs


@pytest.mark.parametrize("doc", DOCS)
def test_document_references_exist_in_the_repository(doc: str) -> None:
    path = REPO_ROOT / doc
    assert path.is_file(), f"{doc} is missing"
    root = REPO_ROOT.resolve()
    missing = []
    for ref in _references(path):
        if isinstance(ref, str):  # a glob
            if not list(REPO_ROOT.glob(ref)):
                missing.append(ref)
            continue
        resolved = ref.resolve()
        if not resolved.is_relative_to(root) or not resolved.exists():
            missing.append(str(ref))
    assert not missing, f"{doc} names paths that are not in the repository: {missing}"


def test_readme_points_to_the_architecture_document() -> None:
    assert "docs/architecture.md" in (REPO_ROOT / "README.md").read_text()


def test_architecture_names_every_module() -> None:
    """The folder layout in docs/architecture.md lists each source module, so
    a new one is placed in the document when it is added."""
    text = (REPO_ROOT / "docs/architecture.md").read_text()
    missing = []
    for pkg in ("sentry", "syscalls", "gofer", "shm"):
        for src in sorted((REPO_ROOT / pkg).rglob("*.py")):
            if src.name == "__init__.py" or src.name.startswith("_"):
                continue
            if src.name not in text:
                missing.append(str(src.relative_to(REPO_ROOT)))
    assert not missing, f"docs/architecture.md does not mention: {missing}"
