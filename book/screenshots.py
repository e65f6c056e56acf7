"""Screenshots of a built site with headless Chromium, to see that pages render.

    python book/screenshots.py book/_build/student/_build/html     # -> .../screenshots/*.png

Takes the home page and every chapter page. Chromium comes from the system's packages
(`make book-screenshots` installs it where missing).
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1600",
                  # a reader offline: every outside request fails at once instead of hanging
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=5000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise FileNotFoundError("no Chromium found: install Debian's `chromium` package (make book-screenshots does)")


def pages(html: pathlib.Path) -> list[pathlib.Path]:
    """The home page, then one page per chapter folder."""
    return [html / "index.html"] + sorted(p for p in html.glob("[0-9]*/*.html"))


def screenshot(page: pathlib.Path, png: pathlib.Path, timeout: float = 120) -> pathlib.Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--screenshot={png}", page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=timeout)
    if not png.exists():
        raise RuntimeError(f"Chromium wrote no screenshot of {page}")
    return png


def rendered_text(page: pathlib.Path, timeout: float = 120) -> str:
    """The page's DOM after Chromium has run its scripts."""
    result = subprocess.run([chromium(), *CHROMIUM_FLAGS, "--dump-dom", page.resolve().as_uri()],
                            check=True, capture_output=True, text=True, timeout=timeout)
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=pathlib.Path, help="a built site's html folder")
    args = parser.parse_args()
    for page in pages(args.html):
        name = "home" if page.name == "index.html" else page.stem
        print(f"[book] {screenshot(page, args.html.parent / 'screenshots' / f'{name}.png')}")


if __name__ == "__main__":
    main()
