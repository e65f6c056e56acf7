"""The course site: the student build shows real results and leaks no solution or hidden test;
the instructor build shows the solutions; pages render in a real browser."""
import html.parser
import json
import pathlib
import re
import shutil
import sys

import nbformat
import pytest

from conftest import REPO
from wmlib.grading import cells

sys.path.insert(0, str(REPO / "book"))
import build as book  # noqa: E402
import screenshots  # noqa: E402

SOLUTIONS = REPO / "solutions"
COURSE = REPO / "course"


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("book")
    return {audience: book.build(audience, root / audience) for audience in book.AUDIENCES}


class TextOf(html.parser.HTMLParser):
    """The visible text of an HTML page (scripts and styles dropped)."""

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style") and self.skip > 0

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def site_text(html_dir: pathlib.Path) -> str:
    """Everything a reader of the site can get at: page text, raw files, downloadable notebooks."""
    parts = []
    for path in html_dir.rglob("*"):
        if not path.is_file() or path.suffix in (".png", ".jpg", ".svg", ".woff", ".woff2", ".ttf", ".eot", ".ico"):
            continue
        raw = path.read_text(errors="replace")
        if path.suffix == ".html":
            parser = TextOf()
            parser.feed(raw)
            parts.append("".join(parser.parts))
        elif path.suffix == ".ipynb":
            nb = nbformat.reads(raw, as_version=4)
            parts.extend(cell.source for cell in nb.cells)
            parts.extend(json.dumps(cell.get("outputs", [])) for cell in nb.cells)
        parts.append(raw)
    return squash("\n".join(parts))


def secret_lines(chapter: str) -> list[str]:
    """Lines of the solutions and hidden tests that the student notebook does not contain."""
    source = nbformat.read(SOLUTIONS / chapter / f"{chapter}.ipynb", as_version=4)
    student = "\n".join(c.source for c in nbformat.read(COURSE / chapter / f"{chapter}.ipynb", as_version=4).cells)
    return [squash(line) for cell in source.cells for line in cells.secret_lines(cell)
            if len(line.strip()) > 12 and line.strip() not in student]


def result_snippets(chapter: str) -> list[str]:
    """A line of text output from each demo or result cell of the executed solution notebook."""
    source = nbformat.read(SOLUTIONS / chapter / f"{chapter}.ipynb", as_version=4)
    snippets = []
    for cell in source.cells:
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or grading.get("solution") or grading.get("grade"):
            continue
        for output in cell.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
                continue                                   # a live control: drawn by a kernel, not text
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            lines = [squash(line) for line in "".join(text).splitlines() if len(line.strip()) > 8]
            if lines and "<Figure" not in lines[0] and "object at 0x" not in lines[0]:
                snippets.append(lines[0])
                break
    return snippets


CHAPTERS = [p.parent.name for p in book.chapters()]


def test_every_chapter_is_in_the_site(sites):
    for audience, html_dir in sites.items():
        for chapter in CHAPTERS:
            assert (html_dir / chapter / f"{chapter}.html").exists(), f"{audience} site lacks {chapter}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_site_has_no_solution_and_no_hidden_test(sites, chapter):
    text = site_text(sites["student"])
    for marker in cells.MARKERS:
        assert marker not in text
    secrets = secret_lines(chapter)
    assert len(secrets) >= 5, "too few solution lines to make this check meaningful"
    leaked = [line for line in secrets if line in text]
    assert leaked == [], f"solution or hidden-test lines in the student site: {leaked[:3]}"
    assert "raise NotImplementedError()" in text     # the stubs are shown instead


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_instructor_site_shows_the_solutions(sites, chapter):
    text = site_text(sites["instructor"])
    secrets = secret_lines(chapter)
    shown = [line for line in secrets if line in text]
    assert len(shown) >= 0.9 * len(secrets), f"only {len(shown)} of {len(secrets)} solution lines are shown"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_site_shows_the_measured_results_and_figures(sites, chapter):
    page = sites["student"] / chapter / f"{chapter}.html"
    parser = TextOf()
    parser.feed(page.read_text())
    text = squash("".join(parser.parts))
    snippets = result_snippets(chapter)
    assert len(snippets) >= 3, f"{chapter}: the executed notebook has too few outputs (was it run?)"
    missing = [s for s in snippets if s not in text]
    assert missing == [], f"{chapter}: outputs of the solution run missing from the student page: {missing[:3]}"
    source = nbformat.read(SOLUTIONS / chapter / f"{chapter}.ipynb", as_version=4)
    figures = sum("image/png" in o.get("data", {}) for c in source.cells if c.cell_type == "code"
                  and not c.metadata.get("nbgrader", {}).get("grade") for o in c.get("outputs", []))
    assert figures > 0 and page.read_text().count("<img") >= figures


def test_the_leak_check_catches_a_leaky_build(tmp_path, monkeypatch):
    """Built with the student view switched off, the student site must fail the leak check."""
    monkeypatch.setattr(book, "student_view", lambda nb: nb)
    html_dir = book.build("student", tmp_path / "leaky")
    text = site_text(html_dir)
    assert any(line in text for line in secret_lines(CHAPTERS[0]))


needs_chromium = pytest.mark.skipif(not any(shutil.which(n) for n in ("chromium", "chromium-browser")),
                                    reason="Chromium is not installed (make test installs it: make browser)")


@needs_chromium
@pytest.mark.parametrize("audience", book.AUDIENCES)
def test_pages_render_in_a_headless_browser(sites, audience, tmp_path):
    import numpy as np
    from PIL import Image
    pages = screenshots.pages(sites[audience])
    assert pages[0].name == "index.html" and len(pages) == 1 + len(CHAPTERS)
    for page in pages[:2]:                                    # the home page and chapter 1
        dom = screenshots.rendered_text(page)
        assert "World Models for Robots" in dom and "Chapter 1" in dom
        assert "404" not in squash(dom)[:2000] and "Traceback" not in dom
        image = Image.open(screenshots.screenshot(page, tmp_path / f"{page.stem}.png")).convert("L")
        inked = float((np.asarray(image) < 200).mean())
        assert 0.02 < inked < 0.6, f"{page.name}: {inked:.0%} of the screenshot is ink: blank or an error page?"
