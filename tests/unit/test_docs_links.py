"""Every relative link in README.md and docs/*.md resolves, and README stays a map.

A link's file must exist in the repository; a `#anchor` must name a heading of the target page as
GitHub renders it (lower case, punctuation dropped, spaces to hyphens, `-1`, `-2` ... for repeats),
so a renamed heading or a moved page fails here rather than on GitHub in front of a user.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 150  # issue #25: README is a map; the topics live in docs/

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose(text: str) -> str:
    """The Markdown without fenced code blocks: a `#` or `[x](y)` inside code is not markup."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation out, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # _emphasis_ markers, not snake_case
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(prose(page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    """The link targets of a page, outside code blocks and code spans."""
    text = CODE_SPAN.sub("", prose(page.read_text(encoding="utf-8")))
    return INLINE_LINK.findall(text) + REFERENCE.findall(text)


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Relative links of `page` whose file, or whose `#anchor` in that file, does not exist."""
    broken = []
    for target in links(page):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # a web address: not ours to check offline
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists() or not resolved.is_relative_to(root.resolve()):
            broken.append(f"{target}: no such file in the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: {resolved.name} has no heading with anchor #{anchor}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_readme_is_a_short_map_that_links_every_docs_page() -> None:
    readme = ROOT / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= README_MAX_LINES
    linked = {(readme.parent / t.partition("#")[0]).resolve() for t in links(readme) if not SCHEME.match(t)}
    orphans = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert orphans == [], "docs pages README does not link"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Choosing on val (`auto`, the default)", "choosing-on-val-auto-the-default"),
        ("Rare classes: VAE samples against the usual fixes for imbalance",
         "rare-classes-vae-samples-against-the-usual-fixes-for-imbalance"),
        ("Does it find real faults?", "does-it-find-real-faults"),
        ("The `evaluate.seeds` knob, *twice* — x_y", "the-evaluateseeds-knob-twice--x_y"),
        ("See [the report](reports/report.md)", "see-the-report"),
    ],
)
def test_slug_follows_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_checker_reports_missing_files_and_anchors(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "b.md").write_text("# Top\n\n## Same\n\n## Same\n\n```\n# not a heading\n```\n")
    (tmp_path / "elsewhere.md").write_text("# Outside the repository\n")
    page = root / "a.md"
    page.write_text(
        "[ok](docs/b.md) [ok](docs/b.md#same-1) [ok](#here) [web](https://example.org/x)\n"
        "`[code](missing.md)`\n\n```\n[fenced](missing.md)\n```\n\n# Here\n\n"
        "[gone](docs/c.md) [bad anchor](docs/b.md#same-2) [heading in code](docs/b.md#not-a-heading)\n"
        "[outside](../elsewhere.md)\n"
    )
    assert broken_links(page, root) == [
        "docs/c.md: no such file in the repository",
        "docs/b.md#same-2: b.md has no heading with anchor #same-2",
        "docs/b.md#not-a-heading: b.md has no heading with anchor #not-a-heading",
        "../elsewhere.md: no such file in the repository",
    ]
