"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by selenium) on a
Snakemake report: open a category and subcategory, list its items, show one as the eye
button shows it, read what is on screen."""

from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# the machine's network is closed: nothing that phones home
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1100",
]


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists():
            return f"{path} not found: apt-get install {package} (tools/setup.sh installs it)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pinned in requirements.txt; tools/setup.sh)"
    return None


@contextmanager
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="mtnet-chromium-")
    opts = webdriver.ChromeOptions()
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield Report(driver)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Report:
    def __init__(self, driver):
        self.d = driver

    def _wait(self, find, timeout=20.0):
        end = time.monotonic() + timeout
        while True:
            found = find()
            if found:
                return found
            if time.monotonic() > end:
                raise TimeoutError("nothing appeared")
            time.sleep(0.1)

    def open(self, path):
        from selenium.webdriver.common.by import By

        self.d.get(Path(path).resolve().as_uri())
        self._wait(lambda: self.d.find_elements(By.LINK_TEXT, "Workflow"))

    def landing_text(self) -> str:
        from selenium.webdriver.common.by import By

        return self.d.find_element(By.TAG_NAME, "body").text

    def menu(self, *names):
        """Click through the menu: a category, then a subcategory."""
        from selenium.webdriver.common.by import By

        for name in names:
            link = self._wait(lambda n=name: self.d.find_elements(By.LINK_TEXT, n))
            link[0].click()

    def subcategories(self) -> list[str]:
        from selenium.webdriver.common.by import By

        return [a.text for a in self.d.find_elements(By.TAG_NAME, "a") if a.text]

    # one WebDriver round trip for a whole listing (an element-by-element walk of a report's
    # rows costs thousands of HTTP requests: minutes per test)
    _ROWS = """
        return Array.from(document.querySelectorAll('table tbody tr')).map(function (r) {
            var cells = Array.from(r.querySelectorAll('td')).map(function (td) {
                return td.innerText.trim();
            });
            var eye = r.querySelector('a[iconname=eye]');
            return {labels: cells.slice(0, -1), eye: eye,
                    download: eye ? eye.getAttribute('download') : null};
        });"""
    _SOURCES = """
        return Array.from(document.querySelectorAll('img, iframe')).filter(function (e) {
            if (e.tagName === 'IFRAME') return true;
            var src = e.getAttribute('src') || '';
            return src.startsWith('data:image/') && e.getBoundingClientRect().width > 32;
        }).map(function (e) {
            var src = e.getAttribute('src') || '';
            return [e, src.length, src.slice(0, 256) + src.slice(-256)];
        });"""

    def items(self) -> list[dict]:
        """The results listed: their label cells, eye button and its download name."""
        return self._wait(lambda: self.d.execute_script(self._ROWS))

    def show(self, label: str) -> dict:
        """Press the eye of the item whose first label is ``label``; what the page shows:
        ``{"kind": "img", "src", "width"}`` or ``{"kind": "html", "src", "text", "tables"}``
        (the framed page's text and its tables' classes), or ``{"kind": "download"}``."""
        from selenium.webdriver.common.by import By

        item = next(i for i in self.items() if i["labels"] and i["labels"][0] == label)
        if item["download"]:
            return {"kind": "download", "name": item["download"]}
        # a source is told apart by its length, head and tail (a data URI is megabytes)
        before = {(n, ends) for _, n, ends in self._content()}
        item["eye"].click()
        shown = self._wait(
            lambda: [e for e, n, ends in self._content() if (n, ends) not in before]
            or [e for e, n, _ in self._content() if n]
        )[0]
        if shown.tag_name == "img":
            width = self._wait(lambda: shown.get_property("naturalWidth"))
            return {"kind": "img", "src": self.d.execute_script(
                "return arguments[0].getAttribute('src').slice(0, 256);", shown), "width": width}
        src = shown.get_attribute("src")
        self.d.switch_to.frame(shown)
        try:
            body = self._wait(lambda: self.d.find_elements(By.TAG_NAME, "table"))
            text = self.d.find_element(By.TAG_NAME, "body").text
            classes = [t.get_attribute("class") for t in body]
        finally:
            self.d.switch_to.default_content()
        return {"kind": "html", "src": src, "text": text, "tables": classes}

    def _content(self):
        """The images (data URIs wider than an icon) and frames on the page, as
        (element, source length, its head and tail)."""
        return self.d.execute_script(self._SOURCES)

    def screenshot(self, path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(path))
