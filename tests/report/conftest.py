"""Reports opened the way a person opens them: in a real browser (the `browser` fixture of
tests/conftest.py, headless Chromium)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image


class ReportPage:
    """A report loaded in the browser, with what the browser's console said while loading it."""

    def __init__(self, driver, path: Path):
        self.driver = driver
        driver.get_log("browser")  # forget what earlier pages logged
        driver.get(path.resolve().as_uri())
        self.console_errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def elements(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script: str):
        return self.driver.execute_script(script)

    def image_of(self, css: str) -> Image.Image:
        """A screenshot of the element as the browser drew it."""
        element = self.elements(css)[0]
        self.js(f"document.querySelector({css!r}).scrollIntoView()")
        return Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")

    def screenshot(self, path: Path) -> Image.Image:
        """The whole page, top to bottom, saved to `path`."""
        height = self.js("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, min(height + 40, 8000))
        self.driver.save_screenshot(str(path))
        return Image.open(path).convert("RGB")


@pytest.fixture
def open_report(browser):
    """`open_report(path)`: load a report file in the browser; returns a ReportPage."""
    return lambda path: ReportPage(browser, path)
