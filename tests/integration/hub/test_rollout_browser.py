"""The rollout picture in headless Chromium: a halted rollout first, its waves and bars; screenshots kept."""

from __future__ import annotations

import pytest

from tests.integration.hub.conftest import HubUnderTest
from tests.integration.hub.test_browser import ARTIFACTS, browser  # noqa: F401 - the fixture
from tests.integration.hub.test_rollout_gates import ask, report

pytestmark = pytest.mark.browser


def test_the_rollout_picture_in_a_browser(hub: HubUnderTest, browser: object) -> None:  # noqa: F811
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    canary, store = hub.token("canary-1"), hub.token("store-1")
    assert ask(hub, canary, "canary-1", 1).json()["gates"]["web"]["decision"] == "go"
    report(hub, canary, "canary-1", 1, "Failed", 1)
    ask(hub, store, "store-1", 2)
    context = browser.new_context(
        http_credentials={"username": "ops", "password": hub.viewer_token},
        viewport={"width": 1400, "height": 900},
    )
    page = context.new_page()
    page.goto(hub.server.url + "/")
    rollout = page.locator('#rollouts .rollout[data-bundle="web"]')
    expect(rollout).to_have_attribute("data-state", "halted")
    expect(rollout.locator('tr[data-wave="canary"] .badge')).to_have_text("halted")
    expect(rollout.locator(".failing")).to_contain_text("canary-1")
    rest = rollout.locator('tr[data-wave="rest"] .stack')
    expect(rest).to_have_attribute("aria-label", "wave rest: 1 not yet")
    # The bar is drawn (SVG, allowed by the page's CSP), in the failed state's colour.
    failed = rollout.locator('tr[data-wave="canary"] svg.bar rect.Failed')
    expect(failed).to_have_count(1)
    assert float(failed.get_attribute("width") or 0) > 900
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hub-rollout-halted.png"), full_page=True)
    page.goto(hub.server.url + "/bundles/web")
    expect(page.locator('.rollout[data-bundle="web"]')).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "hub-rollout-bundle.png"), full_page=True)
    context.close()
