"""Open a report page in a real headless browser (Debian's Chromium, driven by Playwright) and say what a reader
would see broken: images that did not load, script errors, console errors, empty tables; and take a screenshot.

Playwright drives the system browser (`executable_path`), so nothing is downloaded and it works offline; unlike
`chromium --headless --dump-dom`, it reports page errors and console messages as events, and measures images
after the page has loaded. Requests that leave the machine are blocked, so a page that needs the network shows up.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
VIEWPORT = {"width": 1400, "height": 1000}
LOAD_TIMEOUT_MS = 60_000
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "javascript:")


@dataclass
class PageCheck:
    screenshot: Path
    images: int = 0
    tables: int = 0
    broken_images: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Uncaught script errors and console errors."""
    empty_tables: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)
    text: str = ""
    """What the page shows (its body's text), after the clicks."""

    @property
    def problems(self) -> list[str]:
        return (
            [f"image did not load: {src}" for src in self.broken_images]
            + self.errors
            + [f"empty table: {table}" for table in self.empty_tables]
            + [f"request to the network: {url}" for url in self.network_requests]
        )


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


# Runs in the page: every <img> (also inside same-origin iframes, as in Snakemake's report), and every table
# without a data cell.
_INSPECT = """() => {
  const docs = [document];
  for (const frame of document.querySelectorAll('iframe')) {
    try { if (frame.contentDocument) docs.push(frame.contentDocument); } catch (e) {}
  }
  const images = [], tables = [];
  for (const doc of docs) {
    for (const img of doc.images) images.push({src: img.src.slice(0, 80), ok: img.complete && img.naturalWidth > 0});
    for (const table of doc.querySelectorAll('table')) {
      const caption = table.caption ? table.caption.textContent : (table.id || table.className || 'table');
      tables.push({name: caption.trim().slice(0, 80), cells: table.querySelectorAll('tbody td').length});
    }
  }
  return {images, tables};
}"""


def check_page(
    page_file: str | Path, screenshot: str | Path, click_links: Sequence[str] = (), chromium: str | None = None
) -> PageCheck:
    """Load `page_file` (file://), wait for it to settle, click the links named `click_links` in turn (as a reader
    navigates an app such as Snakemake's report), inspect it and save a full-page PNG screenshot."""
    from playwright.sync_api import sync_playwright

    executable = chromium or find_chromium()
    if executable is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium)")
    check = PageCheck(screenshot=Path(screenshot))
    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in containers, where Chromium's sandbox cannot start
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)

            def route(request_route):
                url = request_route.request.url
                if url.startswith(LOCAL_SCHEMES):
                    return request_route.continue_()
                check.network_requests.append(url)
                return request_route.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda error: check.errors.append(f"script error: {error}"))
            page.on(
                "console",
                lambda message: (
                    check.errors.append(f"console error: {message.text}") if message.type == "error" else None
                ),
            )
            page.goto(Path(page_file).resolve().as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_MS)
            page.wait_for_load_state("networkidle", timeout=LOAD_TIMEOUT_MS)
            for name in click_links:
                page.get_by_role("link", name=name).first.click(timeout=LOAD_TIMEOUT_MS)
                page.wait_for_load_state("networkidle", timeout=LOAD_TIMEOUT_MS)
            check.text = page.inner_text("body")
            found = page.evaluate(_INSPECT)
            check.images = len(found["images"])
            check.broken_images = [image["src"] for image in found["images"] if not image["ok"]]
            check.tables = len(found["tables"])
            check.empty_tables = [table["name"] for table in found["tables"] if table["cells"] == 0]
            check.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(check.screenshot), full_page=True)
        finally:
            browser.close()
    return check
