"""The HTML report opened in headless Chromium (Debian's chromium driven by Playwright): tables and plots visible."""

from pathlib import Path

import pytest

from sure_vqa.study.report import ReportSettings, build_report
from tests.helpers.report_fixtures import SWAP, D, F, V, build_tree

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.mark.slow  # needs Debian's chromium, like the rating app's browser test: `make test` provides it
def test_report_page_shows_tables_and_plots(tmp_path):
    assert Path(CHROMIUM).is_file(), "Debian's chromium is needed (make system-deps)"
    from playwright.sync_api import sync_playwright

    build_tree(tmp_path / "exp")
    settings = ReportSettings(n_resamples=300, swaps=[{"dataset": D, "data_shift": F, "ood_value": V, "swap": SWAP}])
    files = build_report(tmp_path / "exp", settings=settings, progress=False)
    screenshot = tmp_path / "report.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(files.html.as_uri())
            page.wait_for_load_state("load")
            images = page.evaluate("Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight, i.alt])")
            xray = page.locator("section", has=page.locator("h2", has_text="SLAKE modality=X-Ray"))
            xray.scroll_into_view_if_needed()
            page.screenshot(path=str(screenshot))
            first_table_rows = xray.locator("table").first.locator("tbody tr").count()
            first_table = xray.locator("table").first.inner_text()
            visible_tables = xray.locator("table:visible").count()
            missing_rows = page.locator("#missing table tbody tr").count()
            shown_in_browser = page.locator("h1").inner_text()
        finally:
            browser.close()
    # Every plot decoded (two bar charts and a corruption chart per shift with corrupted runs).
    assert len(images) >= 5 and all(width > 0 and height > 0 for width, height, _ in images), images
    assert any("corruption strength" in alt for _, _, alt in images)
    # The X-Ray section's first table (gemma judge, open questions) lists the 8 models and baselines.
    assert first_table_rows == 8
    assert "lora_rank16_lr3e-4" in first_table and "most frequent answer" in first_table
    assert visible_tables >= 4  # headline metric tables are open, the others folded
    assert missing_rows >= 10
    assert shown_in_browser == "SURE-VQA robustness report"
    assert all(url.startswith(("file:", "data:")) for url in requests)  # self-contained: nothing fetched
    assert screenshot.stat().st_size > 10_000  # the saved screenshot, under the test's tmp_path
