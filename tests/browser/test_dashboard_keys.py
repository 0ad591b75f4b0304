"""The dashboard with API keys configured, in a real browser: without a key the pages say one is needed; the
admin key typed into the nav makes them live and their actions work; a key without admin rights is refused
with a clear message and changes nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import httpx
import pytest
from browser_kit import WatchedPage, serving, wait_for

from conftest import DEFAULT_MODEL, LlmhostServer

pytestmark = pytest.mark.integration
pytest_plugins = ["browser_fixtures"]

OpenPage = Callable[[LlmhostServer], WatchedPage]
ADMIN_KEY = "llmh-ui-admin-0123456789"
USER_KEY = "llmh-ui-user-0123456789"
# expected while no key or a weak one is set; Chromium reports a refused EventSource as aborted
REFUSED = ("status of 401", "HTTP 401", "status of 403", "HTTP 403", "/api/events: net::ERR_ABORTED")


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlmhostServer]:
    keys = [
        {"name": "admin", "key_sha256": digest(ADMIN_KEY), "admin": True},
        {"name": "user", "key_sha256": digest(USER_KEY)},
    ]
    with serving(tmp_path_factory.mktemp("ui-keys"), auth={"keys": keys}) as running:
        yield running


def pinned(server: LlmhostServer) -> bool | None:
    """Pinning works on a model that is not loaded too, so ask the snapshot (every model slot), not /admin/engines."""
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    snapshot = httpx.get(f"{server.base_url}/api/metrics/dashboard", headers=headers, timeout=10).json()
    return next((engine["pinned"] for engine in snapshot["engines"] if engine["model"] == DEFAULT_MODEL), None)


def test_without_a_key_the_pages_say_one_is_needed(guarded: LlmhostServer, open_page: OpenPage) -> None:
    watched = open_page(guarded)
    page = watched.page
    page.goto(f"{guarded.base_url}/ui/")
    notice = page.locator("#notice")
    notice.wait_for(state="visible")
    assert "API key is required" in notice.inner_text() and "admin key" in notice.inner_text()
    wait_for(lambda: page.locator("#live").inner_text() == "no access", timeout=5, message="the feed refused")
    endpoints = page.request.get(f"{guarded.base_url}/ui/api/endpoints")
    assert endpoints.status == 401  # the pages are open, their data is not
    watched.assert_clean(*REFUSED)


def test_the_admin_key_makes_pages_live_and_actions_work(guarded: LlmhostServer, open_page: OpenPage) -> None:
    watched = open_page(guarded)
    page = watched.page
    page.goto(f"{guarded.base_url}/ui/models")
    watched.enter_key(ADMIN_KEY)
    assert page.locator("#notice").is_hidden()
    row = page.locator(f'#catalog tr[data-model="{DEFAULT_MODEL}"]')
    row.locator("button[data-action=pin]").click()
    wait_for(lambda: pinned(guarded) is True, timeout=10, message="pinned with the admin key")
    wait_for(lambda: row.locator("button[data-action=pin]").inner_text() == "Unpin", timeout=5, message="Unpin")
    row.locator("button[data-action=pin]").click()
    wait_for(lambda: pinned(guarded) is False, timeout=10, message="unpinned")

    apis = watched.open("apis")  # the key stays for every page
    apis.check("#show-internal")  # no model traffic here: llmhost's own routes fill the table
    apis.locator('#endpoint-table tbody tr[data-route="/admin/models/{model:path}/pin"]').wait_for(timeout=10_000)
    watched.assert_clean(*REFUSED)


def test_a_key_without_admin_rights_is_refused_clearly(guarded: LlmhostServer, open_page: OpenPage) -> None:
    watched = open_page(guarded)
    page = watched.page
    page.goto(f"{guarded.base_url}/ui/models")
    watched.enter_key(USER_KEY)  # reading is allowed: the feed goes live
    row = page.locator(f'#catalog tr[data-model="{DEFAULT_MODEL}"]')
    row.locator("button[data-action=pin]").click()
    notice = page.locator("#notice")
    notice.wait_for(state="visible")
    assert "not an admin key" in notice.inner_text()
    assert not pinned(guarded)
    watched.assert_clean(*REFUSED)
