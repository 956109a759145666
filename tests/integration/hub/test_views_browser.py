"""The operator's views in headless Chromium against a real hub: at 10 clusters reported over HTTP
and at 10,000 generated clusters. Each view renders, filters and drill-downs work by click and by
keyboard, hostile strings stay text; screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.contract import ResourceStatus
from tests.integration.hub.conftest import HubUnderTest
from tests.integration.hub.genfleet import seed
from tests.integration.hub.hubserver import InProcessHub, ManualClock, create_viewer
from tests.integration.hub.test_browser import ARTIFACTS
from tests.integration.hub.test_browser import browser as browser  # the fixture
from tests.unit.hub.factory import make_bundle, make_report

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__pwned=1">'


def _seed_ten(hub: HubUnderTest) -> None:
    """10 clusters: 3 fail alike (messages differ in name and number), 1 degraded, 1 offline,
    one still on the old commit; a label value, a bundle message and a resource name are hostile."""
    old = make_report("shop-9", 1, [make_bundle("web", "Ready", "9f1e0d0")], labels={"region": "us"})
    hub.post(old, hub.token("shop-9"))
    hub.clock.advance(3 * 3600)
    for i in range(9):
        name = f"shop-{i}"
        state = "Failed" if i < 3 else "Degraded" if i == 3 else "Ready"
        message = f"pull image web:2.{i}: timeout after {10 + i}s on {name}" if state == "Failed" else ""
        non_ready = [ResourceStatus("Pod", "apps", HOSTILE, "CrashLoopBackOff", HOSTILE)] if i == 3 else None
        bundles = [make_bundle("web", state, "a1b2c3d", message=message, non_ready=non_ready)]
        region = HOSTILE if i == 8 else ("eu" if i % 2 == 0 else "us")
        hub.post(make_report(name, 1, bundles, labels={"region": region, "arch": "arm64"}), hub.token(name))


def _page(browser: Any, url: str, token: str) -> Any:
    context = browser.new_context(
        http_credentials={"username": "ops", "password": token}, viewport={"width": 1400, "height": 1000}
    )
    page = context.new_page()
    page.goto(url)
    return page


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-top.png"))  # what a wall screen shows


def _not_pwned(page: Any) -> None:
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0


def test_views_at_ten_clusters(hub: HubUnderTest, browser: Any) -> None:
    from playwright.sync_api import expect

    _seed_ten(hub)
    page = _page(browser, hub.server.url + "/", hub.viewer_token)

    # glance: the fleet sentence, one group per region, trouble first, hostile value as text
    expect(page.locator("#glance h2")).to_contain_text("5 of 10 Ready, 1 Offline, 3 Failed, 1 Degraded")
    expect(page.locator("#groups tbody tr")).to_have_count(3)
    us = page.locator('#groups tr[data-group="us"]')
    expect(us).to_contain_text("2 of 5 Ready, 1 Offline, 1 Failed, 1 Degraded")
    expect(page.locator("#groups")).to_contain_text(HOSTILE)
    _not_pwned(page)
    _shot(page, "views-10-glance")

    # a state in the fleet bar's legend is a filter, by click
    page.click('#states a.key:has-text("Failed")')
    expect(page.locator("#clusters tbody tr")).to_have_count(3)
    assert "health=Failed" in page.url

    # group by another label, by keyboard: the select, then Enter on the button
    page.goto(hub.server.url + "/")
    page.select_option("select[name=group]", "arch")
    page.focus("#grouping button")
    page.keyboard.press("Enter")
    expect(page.locator('#groups tr[data-group="arm64"]')).to_contain_text("5 of 9 Ready")
    assert "group=arch" in page.url

    # drill down group -> clusters -> cluster, by keyboard
    page.goto(hub.server.url + "/")
    page.focus('#groups tr[data-group="eu"] th a')
    page.keyboard.press("Enter")
    expect(page.locator("#matching")).to_have_text("4 matching clusters")
    page.focus('#clusters a[href="/clusters/shop-0"]')
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Cluster shop-0")

    # the first Tab reaches the skip link
    page.goto(hub.server.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"

    # errors: three failures with one cause are one line; its link lists the three
    page.click("nav >> text=Errors")
    row = page.locator("#errors tbody tr").filter(has_text="timeout after #s on <cluster>")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("3 clusters")
    expect(page.locator("#errors")).to_contain_text(HOSTILE)
    _not_pwned(page)
    _shot(page, "views-10-errors")
    row.locator("a").first.click()
    expect(page.locator("h2")).to_have_text("3 affected clusters")
    expect(page.locator("#clusters tbody tr")).to_have_count(3)

    # versions: web on two commits, one cluster behind, listed by its link
    page.click("nav >> text=Versions")
    web = page.locator('section[data-bundle="web"]')
    expect(web).to_contain_text("1 not on the newest commit")
    expect(web.locator(".legend").first).to_contain_text("a1b2c3d (newest) 9")
    _shot(page, "views-10-versions")
    web.locator("text=1 not on the newest commit").click()
    expect(page.locator("#clusters tbody tr")).to_have_count(1)
    expect(page.locator("#clusters")).to_contain_text("shop-9")

    # history: fleet timeline and events; one cluster's timeline shows its silence
    page.click("nav >> text=History")
    expect(page.locator("#events")).to_contain_text("first report")
    expect(page.locator("#fleet-timeline svg rect").first).to_be_attached()
    _not_pwned(page)
    _shot(page, "views-10-history")
    page.goto(hub.server.url + "/clusters/shop-9/history")
    expect(page.locator("#cluster-timeline .legend")).to_contain_text("Offline")
    expect(page.locator("#events")).to_contain_text("went Offline")
    page.click("text=7d")
    assert page.url.endswith("window=7d")
    _shot(page, "views-10-cluster-history")
    page.context.close()


@pytest.fixture(scope="module")
def big_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessHub, str, int, int]]:
    data_dir = tmp_path_factory.mktemp("big") / "hub"
    clock = ManualClock()
    seeded = seed(data_dir, 10_000, now=clock.now)
    viewer = create_viewer(data_dir)
    server = InProcessHub(data_dir, clock=clock).start()
    yield server, viewer, seeded.failed, seeded.offline
    server.stop()


def test_views_at_ten_thousand_clusters(big_hub: tuple[InProcessHub, str, int, int], browser: Any) -> None:
    from playwright.sync_api import expect

    server, viewer, failed, offline = big_hub
    page = _page(browser, server.url + "/", viewer)
    expect(page.locator("#glance h2")).to_contain_text(f"of 10000 Ready, {offline} Offline")
    expect(page.locator("#groups tbody tr")).to_have_count(8)
    _shot(page, "views-10k-glance")

    # drill down by click: a region, then its Failed (online) clusters, then one cluster
    row = page.locator('#groups tr[data-group="eu-west"]')
    row.locator("a .badge.Failed").click()
    assert "selector=region%3Deu-west" in page.url
    assert "health=Failed" in page.url
    expect(page.locator("#clusters tbody tr").first).to_contain_text("Failed")
    page.locator("#clusters tbody tr a").first.click()
    expect(page.locator("h1")).to_contain_text("Cluster store-")

    # errors: ~1,429 failures with one cause are one line
    page.goto(server.url + "/errors")
    top = page.locator("#errors tbody tr").first
    expect(top).to_contain_text(f"{failed} clusters")
    expect(top).to_contain_text("pull image <host>/web:#: dial tcp <ip>: i/o timeout after #s on <cluster>")
    _shot(page, "views-10k-errors")
    top.locator("a").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("h2")).to_have_text(f"{failed} affected clusters")
    expect(page.locator("#clusters tbody tr")).to_have_count(200)  # paged
    expect(page.locator(".pages")).to_contain_text("of 8")

    # versions: a quarter of web still on the old commit and chart version
    page.goto(server.url + "/versions")
    web = page.locator('section[data-bundle="web"]')
    expect(web).to_contain_text("2500 not on the newest commit")
    expect(web).to_contain_text("2.4.1 (newest) 7500")
    expect(page.locator("#agents")).to_contain_text("0.3.1 (newest) 7000")
    # agent versions per wave of the agent's own bundle (the default when it has waves), then by label
    expect(page.locator("#agents-by")).to_contain_text("wave of the agent's own bundle")
    expect(page.locator("#agent-groups tbody tr").first).to_contain_text("canary")  # waves in order
    expect(page.locator('#agent-groups tr[data-group="canary"]')).to_contain_text("0.3.1 1000 100%")
    expect(page.locator('#agent-groups tr[data-group="stores"]')).to_contain_text("0.2.9 1000")
    _shot(page, "views-10k-versions")
    page.locator("#agents a", has_text="label region").click()
    assert "by=region" in page.url
    expect(page.locator("#agent-groups tbody tr")).to_have_count(8)

    page.goto(server.url + "/history")
    expect(page.locator("#fleet-timeline svg rect").first).to_be_attached()
    _shot(page, "views-10k-history")
    page.context.close()


def test_views_json_match_the_pages(big_hub: tuple[InProcessHub, str, int, int]) -> None:
    import httpx

    server, viewer, failed, _ = big_hub
    headers = {"Authorization": f"Bearer {viewer}"}
    glance = httpx.get(server.url + "/api/v1/glance", params={"group": "arch"}, headers=headers).json()
    assert glance["clusters"] == 10_000
    assert glance["group"] == "arch"
    assert glance["total"] == 3
    assert sum(g["clusters"] for g in glance["groups"]) == 10_000
    errors = httpx.get(server.url + "/api/v1/errors", headers=headers).json()
    assert errors["errors"][0]["clusters"] == failed
    one = httpx.get(
        server.url + f"/api/v1/errors/{errors['errors'][0]['id']}", params={"limit": "5"}, headers=headers
    )
    assert one.json()["clusters"] == failed
    assert len(one.json()["affected"]) == 5
    versions = httpx.get(server.url + "/api/v1/versions", headers=headers).json()
    web = next(b for b in versions["bundles"] if b["name"] == "web")
    assert web["not_on_target"] == 2500
    assert web["chart_versions"] == {"2.4.1": 7500, "2.3.0": 2500}
    waves = versions["agents_by"]
    assert waves["by"] == "wave"
    assert {g["value"]: g["agent_versions"] for g in waves["groups"]} == {
        "stores": {"0.3.1": 6000, "0.3.0": 2000, "0.2.9": 1000},
        "canary": {"0.3.1": 1000},
    }
    by_arch = httpx.get(server.url + "/api/v1/versions", params={"by": "arch"}, headers=headers).json()
    assert sum(g["clusters"] for g in by_arch["agents_by"]["groups"]) == 10_000
    assert "region" in by_arch["agents_by"]["dimensions"]
    assert (
        httpx.get(server.url + "/api/v1/history", params={"window": "1y"}, headers=headers).status_code == 400
    )
    first = httpx.get(server.url + "/api/v1/glance", headers=headers)
    again = httpx.get(
        server.url + "/api/v1/glance", headers={**headers, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""


def test_hostile_strings_escaped_in_every_view(hub: HubUnderTest) -> None:
    _seed_ten(hub)
    errors = hub.read("/api/v1/errors").json()["errors"]
    paths = [
        "/",
        "/?group=region",
        "/errors",
        "/versions",
        "/versions/web",
        "/history",
        "/clusters/shop-3/history",
    ]
    paths += [f"/errors/{g['id']}" for g in errors]
    for path in paths:
        body = hub.read(path).text
        assert "<img" not in body, path
    assert any(HOSTILE in g["example"] for g in errors)


def test_bad_view_parameters_are_named_and_unknown_ids_are_404(hub: HubUnderTest) -> None:
    _seed_ten(hub)
    for path, params, name in (("/", {"gpage": "x"}, "gpage"), ("/history", {"window": "1y"}, "window")):
        answer = hub.read(path, **params)
        assert answer.status_code == 400
        assert name in answer.text
    assert hub.read("/api/v1/history", window="2d").json()["field"] == "window"
    assert hub.read("/errors/0000000000000000").status_code == 404
    assert hub.read("/api/v1/versions/nope").status_code == 404
    assert hub.read("/clusters/nope/history").status_code == 404
