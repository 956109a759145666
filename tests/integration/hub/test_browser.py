"""The status page in headless Chromium (Debian's package, driven by Playwright) against a real hub."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.hub.conftest import HubUnderTest
from tests.unit.hub.factory import make_bundle, make_report

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


@pytest.fixture
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def _seed(hub: HubUnderTest) -> None:
    """12 clusters: 3 go offline (last report long ago), then 9 report: 2 Failed, 1 Degraded, 6 Ready."""
    for i in range(3):
        name = f"store-{i}"
        hub.post(
            make_report(
                name, 1, [make_bundle("web", "Ready", "9f1e0d0")], labels={"region": "us"}, commit="9f1e0d0"
            ),
            hub.token(name),
        )
    hub.clock.advance(3 * 3600)
    for i in range(9):
        name = f"edge-{i}"
        state = "Failed" if i < 2 else "Degraded" if i == 2 else "Ready"
        bundles = [
            make_bundle(
                "web",
                state,
                "a1b2c3d",
                message=f"helm upgrade failed on {name}: <timeout>" if state == "Failed" else "",
            ),
            make_bundle("metrics", "Ready", "a1b2c3d"),
        ]
        labels = {"region": "eu" if i % 2 == 0 else "us", "tier": "edge"}
        hub.post(make_report(name, 1, bundles, labels=labels), hub.token(name))


def test_status_page_summary_filter_and_drill_down(hub: HubUnderTest, browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    _seed(hub)
    context = browser.new_context(
        http_credentials={"username": "ops", "password": hub.viewer_token},
        viewport={"width": 1400, "height": 1000},
    )
    page = context.new_page()
    page.goto(hub.server.url + "/")

    # each cluster counted once, connectivity first: the 3 offline (Ready when last heard) are Offline
    expect(page.locator("[data-count=total]")).to_have_text("12")
    expect(page.locator("[data-count=state-Offline]")).to_have_text("3")
    expect(page.locator("[data-count=state-Stale]")).to_have_text("0")
    expect(page.locator("[data-count=state-Failed]")).to_have_text("2")
    expect(page.locator("[data-count=state-Degraded]")).to_have_text("1")
    expect(page.locator("[data-count=state-Ready]")).to_have_text("6")
    expect(page.locator("#glance h2")).to_contain_text("6 of 12 Ready, 3 Offline, 2 Failed, 1 Degraded")
    offline_row = page.locator('tr[data-cluster="store-0"]')
    expect(offline_row).to_contain_text("Offline · last report 3h ago")
    expect(offline_row).to_contain_text("was Ready")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hub-status-page.png"), full_page=True)

    # filter: EU clusters that failed
    page.fill("input[name=selector]", "region=eu")
    page.select_option("select[name=health]", "Failed")
    page.click("#filters button[type=submit]")
    expect(page.locator("#clusters tbody tr")).to_have_count(1)
    expect(page.locator("#clusters tbody tr")).to_contain_text("edge-0")
    assert "selector=region%3Deu" in page.url

    # drill down to the cluster, then to the bundle's rollout
    page.click("text=edge-0")
    expect(page.locator("h1")).to_contain_text("Cluster edge-0")
    expect(page.locator("#bundles pre")).to_have_text("helm upgrade failed on edge-0: <timeout>")
    page.screenshot(path=str(ARTIFACTS / "hub-cluster-page.png"), full_page=True)
    page.click('#bundles a[href="/bundles/web"]')
    expect(page.locator("#rollout")).to_have_text(
        "a1b2c3d Ready on 6 of 12, 2 Failed, 1 Degraded, 3 still on 9f1e0d0, 3 offline"
    )
    context.close()


def test_status_page_refreshes_in_place(hub: HubUnderTest, browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    token = hub.token("edge-1")
    hub.post(make_report("edge-1", 1, [make_bundle("web", "Ready")]), token)
    context = browser.new_context(http_credentials={"username": "ops", "password": hub.viewer_token})
    page = context.new_page()
    page.goto(hub.server.url + "/")
    expect(page.locator("[data-count=state-Failed]")).to_have_text("0")
    page.evaluate("window.__notReloaded = true")
    hub.post(make_report("edge-1", 2, [make_bundle("web", "Failed")]), token)
    expect(page.locator("[data-count=state-Failed]")).to_have_text("1", timeout=15_000)
    assert page.evaluate("window.__notReloaded") is True  # swapped in place, not a page reload
    context.close()
