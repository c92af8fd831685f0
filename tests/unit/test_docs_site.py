"""The documentation site's sources hold together (the strict build itself runs in CI:
`mkdocs build --strict`, with the `docs` dependency group)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def _config() -> dict[str, object]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def test_every_page_in_the_nav_exists_and_every_page_is_in_the_nav() -> None:
    pages = _nav_pages(_config()["nav"])
    docs = ROOT / "docs"
    for page in pages:
        assert (docs / page).is_file(), page
    on_disk = {str(p.relative_to(docs)) for p in docs.rglob("*.md")}
    assert on_disk <= set(pages), sorted(on_disk - set(pages))


def test_a_tutorial_per_user() -> None:
    pages = _nav_pages(_config()["nav"])
    for tutorial in ("pacs-admin", "scp-engineer", "developer"):
        assert f"tutorials/{tutorial}.md" in pages


def test_snippets_point_at_marked_sections() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").rglob("*.md"):
        for name in re.findall(r'--8<-- "README\.md:([\w-]+)"', page.read_text(encoding="utf-8")):
            assert f"--8<-- [start:{name}]" in readme, (page, name)
            assert f"--8<-- [end:{name}]" in readme, (page, name)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (CI builds the site in its own step)")
    done = subprocess.run(
        [mkdocs, "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
