"""Every citation in the repository points inside it: the sources cite docs/derivation.md and
docs/design.md (which must exist), never the team's shared folder beside a checkout, which a
clone does not have."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[3]
SOURCES = ("*.cs", "*.py", "*.h", "*.c", "*.cpp", "*.md", "*.sh", "*.txt", "*.csproj", "*.props")
OUTSIDE = re.compile(r"\.\./shared|shared/seed|shared/DESIGN|(?<![\w/])DESIGN\.md|seed derivation|the seed's")
SKIP = {"build", "bin", "obj", ".git", "__pycache__", ".pytest_cache"}


def _files():
    for pattern in SOURCES:
        for path in ROOT.rglob(pattern):
            if not SKIP.intersection(path.relative_to(ROOT).parts):
                yield path


def test_no_citation_points_outside_the_repository():
    this = pathlib.Path(__file__).resolve()
    found = []
    for path in _files():
        if path.resolve() == this:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append("%s:%d: %s" % (path.relative_to(ROOT), number, line.strip()))
    assert not found, "citations outside the repository:\n" + "\n".join(found)


def test_cited_documents_exist():
    cited = set()
    for path in _files():
        cited.update(re.findall(r"docs/[\w.-]+\.md", path.read_text(errors="replace")))
    assert "docs/derivation.md" in cited and "docs/design.md" in cited
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, "cited but missing: %s" % missing
