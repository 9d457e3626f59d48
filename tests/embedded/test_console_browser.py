"""The web console and the API docs in a real headless Chromium, against one `imgrec serve` (embedded default)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.api_helpers import photo_bytes
from tests.browser import chromium, screenshot_path
from tests.served import ServedApi
from transforms.handlers.base import Label
from transforms.thresholds import apply_threshold

# Waits, not speed checks: a first inference loads its model, and the machine may be shared and loaded.
UI_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, served_api: ServedApi) -> Iterator[Page]:
    """A fresh browser profile on the console, with the dev key entered once."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=served_api.url)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto("/")
    page.fill("#api-key", served_api.key)
    page.click("#key-form button")
    expect(page.locator("#key-state")).to_have_text("key accepted")
    yield page
    context.close()


def _photo(tmp_path: Path, name: str, size: int | None = None) -> Path:
    path = tmp_path / f"{name}.jpg"
    path.write_bytes(photo_bytes(name, size=size))
    return path


def _recognize(page: Page, model_id: str, photo: Path) -> None:
    page.select_option("#model", model_id)
    page.set_input_files("#file", str(photo))
    expect(page.locator("#answer")).to_be_visible()


def test_upload_draws_boxes_and_the_slider_refilters_without_a_request(page: Page, tmp_path: Path) -> None:
    with page.expect_response(re.compile(r"/v1/recognize$")) as answered:
        _recognize(page, "object-detection", _photo(tmp_path, "astronaut"))
    answer = answered.value.json()
    assert answer["threshold_applied"] == 0.0  # one answer, fetched at threshold 0
    boxes = page.locator("#boxes g.box")
    expect(boxes.first).to_be_visible()
    # The page opens at the model's default threshold (0.35), as the API would answer by default.
    labels = [Label(lbl["label"], lbl["score"], tuple(lbl["bounding_box"])) for lbl in answer["labels"]]
    at_default, _ = apply_threshold(labels, 0.35, 0)
    assert at_default and len(at_default) < len(labels)
    assert boxes.count() == len(at_default)
    assert set(boxes.evaluate_all("gs => gs.map(g => g.dataset.label)")) == {lbl.label for lbl in at_default}
    expect(page.locator("#fact-model")).to_have_text(f"object-detection version {answer['model_version']}")
    expect(page.locator("#fact-cache")).to_have_text("hit" if answer["cache_hit"] else "miss")
    page.screenshot(path=screenshot_path("console-detection"), full_page=True)

    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    best = max(lbl.score for lbl in labels)
    page.fill("#threshold", f"{min(best + 0.01, 1.0):.2f}")
    expect(boxes).to_have_count(0)
    page.fill("#threshold", "0")
    expect(boxes).to_have_count(len(labels))
    page.fill("#threshold", "0.35")
    expect(boxes).to_have_count(len(at_default))
    assert requests == []


def test_classifier_answer_is_a_ranked_list_and_keeps_its_minimum_label(page: Page, tmp_path: Path) -> None:
    with page.expect_response(re.compile(r"/v1/recognize$")) as answered:
        _recognize(page, "scene-classification", _photo(tmp_path, "coffee"))
    scores = [lbl["score"] for lbl in answered.value.json()["labels"]]
    items = page.locator("#labels li.label")
    expect(items.first).to_be_visible()
    assert page.locator("#boxes g.box").count() == 0
    shown = [float(s) for s in items.locator(".score").all_inner_texts()]
    assert shown == sorted(shown, reverse=True)
    page.fill("#threshold", "1")
    # min_label_count 1: the best label stays, with the lowered threshold said beside the slider.
    expect(items).to_have_count(1)
    assert float(items.locator(".score").inner_text()) == pytest.approx(max(scores), abs=1e-3)
    expect(page.locator("#threshold-note")).to_contain_text("lowered to")


def test_batch_reaches_done_with_progress_and_a_gallery(page: Page, tmp_path: Path) -> None:
    photos = [_photo(tmp_path, name, size=160) for name in ("coffee", "chelsea", "astronaut")]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo_bytes("rocket")[:600])  # truncated: rejected when the batch is submitted
    page.select_option("#batch-model", "scene-classification")
    page.set_input_files("#batch-files", [*map(str, photos), str(broken)])
    # A loopback URL passes the syntax check at submission and fails in the worker (SSRF guard).
    page.fill("#batch-urls", "http://127.0.0.1:9/cat.jpg")
    page.click("#batch-form button[type=submit]")
    expect(page.locator("#batch-rejected li")).to_contain_text("item 3: image_truncated")
    expect(page.locator("#batch-status")).to_have_text("partially_failed", timeout=60_000)
    assert page.locator("#batch-progress").evaluate("p => p.value === p.max && p.max === 4")
    expect(page.locator("#gallery figure.tile")).to_have_count(4)
    expect(page.locator("#gallery figure.tile.done .chip").first).to_be_visible()
    expect(page.locator("#gallery figure.tile.done")).to_have_count(3)
    expect(page.locator("#gallery figure.tile.failed .error-code")).to_have_text(["url_forbidden"])
    page.screenshot(path=screenshot_path("console-batch"), full_page=True)


def test_api_errors_are_shown_as_the_apis_message(page: Page, tmp_path: Path) -> None:
    page.fill("#api-key", "irk_wrong")
    page.click("#key-form button")
    expect(page.locator("#error")).to_contain_text("The API key is unknown or revoked.")
    expect(page.locator("#error code")).to_have_text("unauthorized")


def test_docs_and_redoc_render_with_the_network_cut_off(browser: Browser, served_api: ServedApi) -> None:
    context = browser.new_context(base_url=served_api.url)
    elsewhere: list[tuple[str, str]] = []

    def only_the_api(route, request) -> None:  # every address but the API's own fails, as offline
        if request.url.startswith(served_api.url):
            route.continue_()
        else:
            elsewhere.append((request.resource_type, request.url))
            route.abort("internetdisconnected")

    context.route("**/*", only_the_api)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto("/docs")
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible()
    paths = set(operations.all_inner_texts())
    assert {"/v1/recognize", "/v1/recognize/batch", "/v1/recognize/batch/{batch_id}"} <= paths
    page.goto("/redoc")
    expect(page.locator("h2", has_text="Recognise one image synchronously")).to_be_visible()
    # Nothing the pages need comes from elsewhere (ReDoc's "by Redocly" badge image is a link to its site).
    assert [(kind, url) for kind, url in elsewhere if kind != "image"] == []
    assert httpx.get(f"{served_api.url}/docs").text.count("/static-offline-docs/") >= 2
    context.close()
