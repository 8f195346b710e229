"""The rating page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against a real server:
rate a few questions, reload, change a rating, survive a server restart, and check the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sure_vqa.rater import selection
from sure_vqa.rater.app import rater_order
from sure_vqa.rater.study import load_study
from tests.helpers.rater_helpers import JUDGE, free_port, make_eval_folder, start_server, stop_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
TIMEOUT_MS = 20_000


def db_scores(db_path: Path, study_id: str) -> dict[str, tuple[float, int]]:
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute("SELECT rater, qid, score, revision FROM ratings WHERE study_id = ?", (study_id,)).fetchall()
    finally:
        conn.close()
    assert {row[0] for row in rows} <= {"dr_alice"}
    return {qid: (score, revision) for _, qid, score, revision in rows}


@pytest.mark.slow
def test_rate_reload_change_and_restart_in_a_browser(tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    eval_dir, image_root = make_eval_folder(tmp_path)
    settings = selection.SelectionSettings(answer_kind="open", num_questions=8, seed=0, judge=JUDGE)
    study = load_study(selection.create_study(eval_dir, settings, selection.image_folder_resolver(image_root)))
    order = rater_order(study, "dr_alice")
    db_path = tmp_path / "ratings.sqlite"
    port = free_port()
    server = start_server(study.folder, db_path, port, tmp_path / "run")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"http://127.0.0.1:{port}/")

            # log in: the rubric, the first question of this rater's order and its image are shown
            page.fill("#login-name", "Dr Alice")
            page.click("#login-submit")
            expect(page.locator("#rate-view")).to_be_visible()
            expect(page.locator("#code-notice")).to_be_visible()
            expect(page.locator("#rubric li")).to_have_count(5)
            expect(page.locator("#rubric")).to_contain_text("correct with minor deviations")
            expect(page.locator("#item-question")).to_have_text(order[0].question)
            expect(page.locator("#item-gt")).to_have_text(order[0].gt)
            expect(page.locator("#item-pred")).to_have_text(order[0].pred)
            page.wait_for_function("document.getElementById('item-image').naturalWidth > 0")
            expect(page.locator("#rated-count")).to_have_text("0")

            # rate three questions: two by clicking, one with the keyboard
            page.click("#scale-buttons button[data-score='3']")
            expect(page.locator("#save-status")).to_have_text("Saved: ★★★")
            page.click("#next")
            expect(page.locator("#item-question")).to_have_text(order[1].question)
            page.click("#scale-buttons button[data-score='5']")
            expect(page.locator("#save-status")).to_have_class("save-status ok")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("2")
            expect(page.locator("#save-status")).to_have_text("Saved: ★★")
            expect(page.locator("#rated-count")).to_have_text("3")
            assert db_scores(db_path, study.study_id) == {order[0].qid: (3.0, 1), order[1].qid: (5.0, 1),
                                                          order[2].qid: (2.0, 1)}

            # reload: still logged in, same position, the stored scores are shown
            page.reload()
            expect(page.locator("#rate-view")).to_be_visible()
            expect(page.locator("#item-question")).to_have_text(order[2].question)
            expect(page.locator("#rated-count")).to_have_text("3")
            expect(page.locator("#scale-buttons button[data-score='2']")).to_have_attribute("aria-checked", "true")

            # go back to the first question and change its rating
            page.click("#navigator button >> text='1'")
            expect(page.locator("#scale-buttons button[data-score='3']")).to_have_attribute("aria-checked", "true")
            page.click("#scale-buttons button[data-score='4']")
            expect(page.locator("#save-status")).to_have_text("Saved: ★★★★")
            assert db_scores(db_path, study.study_id)[order[0].qid] == (4.0, 2)
            page.screenshot(path=str(tmp_path / "rating_page.png"), full_page=True)

            # the server goes away: the page says the rating is not saved and keeps it until the server is back
            stop_server(server)
            page.click("#navigator button >> text='4'")
            page.click("#scale-buttons button[data-score='1']")
            expect(page.locator("#save-status")).to_contain_text("Not saved yet")
            expect(page.locator("#rated-count")).to_have_text("3")
            server = start_server(study.folder, db_path, port, tmp_path / "run")
            expect(page.locator("#save-status")).to_have_text("Saved: ★", timeout=30_000)
            expect(page.locator("#rated-count")).to_have_text("4")
            browser.close()
    finally:
        stop_server(server)

    assert db_scores(db_path, study.study_id) == {order[0].qid: (4.0, 2), order[1].qid: (5.0, 1),
                                                  order[2].qid: (2.0, 1), order[3].qid: (1.0, 1)}
