"""The ``odc`` connection form in Airflow's React UI, driven in headless Chromium against a real API server.

Checks what a person sees and gets, with every expected label taken from ``get_provider_info()``:

1. Admin > Connections > Add with type "OutSystems Developer Cloud": the relabeled standard fields, schema
   and port hidden, every conn-field with its label and description (screenshots).
2. Filled for the local ODC emulator and saved: the REST API shows ``extra`` under the plain names the hook
   reads, the password and the ``cache_secret`` extra masked.
3. The Test button in the connections list. Airflow 3.3.2 sends ``port: 0`` for a connection without a
   port and gets 400 "The host or port to test differs from the stored connection" (apache/airflow
   PR 73298, not in 3.3.2), so the hook never runs. The emulator URL keeps its port inside the host field
   and the stored port is empty, so a form-made ODC connection always hits this. The test asserts the
   bug as the known 3.3.2 behaviour, so an upgrade that fixes it fails here with a clear message. With a
   port stored, Test reaches the hook, which the emulator's token-exchange count proves.
4. A wrong client secret: the UI shows the hook's failure naming the step and ``invalid_client``, and the
   secret appears nowhere on the page, in what the browser received, or in the API server's log.

Screenshots: ``test-artifacts/browser/`` at the repo root.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_odc.get_provider_info import get_provider_info

from .conftest import ARTIFACTS, DEFAULT_TIMEOUT_MS, AirflowApiServer

pytestmark = pytest.mark.browser

CONN_TYPE = "odc"
PORT_BUG_DETAIL = "The host or port to test differs from the stored connection"


def _connection_type() -> dict[str, Any]:
    (entry,) = [ct for ct in get_provider_info()["connection-types"] if ct["connection-type"] == CONN_TYPE]
    return dict(entry)


CT = _connection_type()
HOOK_NAME: str = CT["hook-name"]
BEHAVIOUR: dict[str, Any] = CT["ui-field-behaviour"]
CONN_FIELDS: dict[str, dict[str, Any]] = CT["conn-fields"]


@pytest.fixture(autouse=True)
def _expect_timeout() -> Iterator[None]:
    from playwright.sync_api import expect

    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    yield


def _shot(page: Any, name: str) -> None:
    """Full-page PNG; CSS animations finished first, so a notice that is sliding in shows whole."""
    page.screenshot(path=str(ARTIFACTS / name), full_page=True, animations="disabled")


class ResponseLog:
    """Bodies of every API/UI response the browser received, to prove a secret never reached the page."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.bodies: list[str] = []
        self._base_url = base_url
        page.on("response", self._record)

    def _record(self, response: Any) -> None:
        if response.url.startswith(self._base_url) and "/static/" not in response.url:
            with contextlib.suppress(Exception):  # redirects and aborted requests have no body
                self.bodies.append(f"{response.request.method} {response.url}\n{response.text()}")

    def containing(self, text: str) -> list[str]:
        return [body.split("\n", 1)[0] for body in self.bodies if text in body]


# UI steps ---------------------------------------------------------------------------------------------


def open_add_connection_form(page: Any) -> Any:
    """Admin > Connections > Add Connection, type "OutSystems Developer Cloud"; returns the dialog."""
    from playwright.sync_api import expect

    page.goto("/")
    page.get_by_role("button", name="Admin", exact=True).click()
    page.get_by_role("menu", name="Admin").get_by_role("menuitem", name="Connections").click()
    page.wait_for_url(re.compile(r"/connections$"))
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add Connection")).to_be_visible()
    dialog.get_by_role("combobox", name="Connection Type").click()
    page.get_by_role("option", name=HOOK_NAME, exact=True).click()
    expect(dialog.locator('input[name="host"]')).to_be_visible()  # the type's fields are rendered
    return dialog


def open_section(dialog: Any, name: str) -> None:
    """Open one accordion section (Standard Fields, Extra Fields, Extra Fields JSON) if it is closed."""
    from playwright.sync_api import expect

    button = dialog.get_by_role("button", name=name, exact=True)
    if button.get_attribute("aria-expanded") != "true":
        button.click()
    expect(button).to_have_attribute("aria-expanded", "true")


def conn_field(dialog: Any, name: str) -> Any:
    """The input of conn-field ``name`` (the form names it ``element_<name>``)."""
    return dialog.locator(f'[name="element_{name}"]')


def conn_field_group(dialog: Any, name: str) -> Any:
    """The field group (label, input, description) around conn-field ``name``."""
    return dialog.get_by_role("group").filter(has=dialog.page.locator(f'[name="element_{name}"]'))


def fill_and_save(
    page: Any, conn_id: str, host: str, login: str, password: str, extras: dict[str, str], shot: str | None = None
) -> None:
    """Fill the open Add Connection dialog and save it. ``extras``: text for inputs, option for enums.

    ``shot``: file name of a screenshot of the filled form, taken just before Save.
    """
    from playwright.sync_api import expect

    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Connection ID").fill(conn_id)
    open_section(dialog, "Standard Fields")
    dialog.locator('input[name="host"]').fill(host)
    dialog.locator('input[name="login"]').fill(login)
    dialog.locator('input[name="password"]').fill(password)
    open_section(dialog, "Extra Fields")
    for name, value in extras.items():
        if "enum" in CONN_FIELDS[name]["schema"]:
            dialog.get_by_role("combobox", name=CONN_FIELDS[name]["label"]).click()
            for choice in CONN_FIELDS[name]["schema"]["enum"]:  # every declared choice is offered
                if choice is not None:
                    expect(page.get_by_role("option", name=choice, exact=True)).to_be_visible()
            page.get_by_role("option", name=value, exact=True).click()
            expect(conn_field(dialog, name)).to_have_value(value)
        else:
            conn_field(dialog, name).fill(value)
            expect(conn_field(dialog, name)).to_have_value(value)
    save = dialog.get_by_role("button", name="Save")
    expect(save).to_be_enabled()
    if shot:
        _shot(page, shot)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections") and r.request.method == "POST") as info:
        save.click()
    assert info.value.status == 201, f"saving {conn_id}: HTTP {info.value.status} {info.value.text()}"
    expect(page.get_by_role("status").filter(has_text="Create Connection Request Submitted")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)


def press_test(page: Any, conn_id: str) -> tuple[Any, dict[str, Any]]:
    """Open the connections list, press Test in ``conn_id``'s row; returns (API response, request body)."""
    from playwright.sync_api import expect

    page.goto("/connections")
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))
    expect(row).to_have_count(1)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as info:
        row.get_by_role("button", name="Test Connection").click()
    response = info.value
    return response, json.loads(response.request.post_data or "{}")


def assert_secret_absent(page: Any, server: AirflowApiServer, responses: ResponseLog, secret: str) -> None:
    """The secret is not in the page (markup or text), in any response the browser got, nor in the server log."""
    markup = page.content()
    assert secret not in markup and html.escape(secret) not in markup, "a secret is in the page's markup"
    assert secret not in page.locator("body").inner_text(), "a secret is shown on the page"
    assert not responses.containing(secret), f"a secret reached the browser in {responses.containing(secret)}"
    assert secret not in server.log_path.read_text(errors="replace"), "a secret is in the API server's log"


def toast(page: Any, title: str) -> Any:
    """The notice the UI shows after a Test (it disappears after about 5 s, expect() waits for it)."""
    return page.get_by_role("status").filter(has_text=title)


# Tests ------------------------------------------------------------------------------------------------


def test_form_save_and_test_button(page: Any, airflow_api_server: AirflowApiServer, odc_emulator: Any) -> None:
    from playwright.sync_api import expect

    server = airflow_api_server
    responses = ResponseLog(page, server.base_url)

    # 1. The form: relabeled standard fields, hidden schema and port, labels and descriptions of conn-fields.
    dialog = open_add_connection_form(page)
    for field in ("host", "login", "password"):
        box = dialog.get_by_role("textbox", name=BEHAVIOUR["relabeling"][field], exact=True)
        expect(box).to_have_attribute("name", field)
        expect(box).to_have_attribute("placeholder", BEHAVIOUR["placeholders"][field])
    expect(dialog.locator('input[name="password"]')).to_have_attribute("type", "password")
    for hidden in BEHAVIOUR["hidden-fields"]:
        expect(dialog.locator(f'[name="{hidden}"]')).to_have_count(0)
    for default_label in ("Host", "Login", "Password", "Schema", "Port"):
        expect(dialog.get_by_text(default_label, exact=True)).to_have_count(0)
    _shot(page, "01-form-standard-fields.png")

    open_section(dialog, "Extra Fields")
    expect(dialog.locator('[name^="element_"]')).to_have_count(len(CONN_FIELDS))
    for name, spec in CONN_FIELDS.items():
        group = conn_field_group(dialog, name)
        expect(group, f"one field group for conn-field {name!r}").to_have_count(1)
        expect(group.get_by_text(spec["label"], exact=True)).to_be_visible()
        expect(group.get_by_text(spec["description"], exact=True)).to_be_visible()
    expect(conn_field(dialog, "cache_secret")).to_have_attribute("type", "password")
    _shot(page, "02-form-extra-fields.png")

    # 2. Fill for the emulator and save; the REST API shows what was stored.
    conn_id = "odc_browser"
    cache_secret = f"CacheSecret-{secrets.token_hex(8)}"
    fill_and_save(
        page,
        conn_id,
        host=odc_emulator.base_url,
        login=odc_emulator.client_id,
        password=odc_emulator.client_secret,
        extras={"timeout": "15", "cache_mode": "memory", "max_retries": "2", "cache_secret": cache_secret},
        shot="03-form-filled.png",
    )
    stored = server.connection(conn_id)
    assert stored["conn_type"] == CONN_TYPE
    assert stored["host"] == odc_emulator.base_url, "the UI changed the host (with its port) on save"
    assert stored["port"] is None, "the UI filled the hidden port field"
    assert stored["login"] == odc_emulator.client_id
    assert stored["password"] == "***"
    extra = json.loads(stored["extra"])
    assert set(extra) == set(CONN_FIELDS), f"extra keys are not the plain conn-field names: {sorted(extra)}"
    assert not [key for key in extra if key.startswith("extra__")]
    assert float(extra["timeout"]) == 15
    assert extra["cache_mode"] == "memory"
    assert int(extra["max_retries"]) == 2
    assert extra["cache_secret"] == "***", "the cache_secret extra is returned in clear by the REST API"
    untouched = {k: v for k, v in extra.items() if k not in ("timeout", "cache_mode", "max_retries", "cache_secret")}
    # Fields left alone are stored with their declared default (verify: true), or null when they have none.
    assert untouched == {k: CONN_FIELDS[k]["schema"].get("default") for k in untouched}
    assert untouched["verify"] is True

    # 3a. Test as the UI stores it (port inside host, no port): the known Airflow 3.3.2 bug.
    before = odc_emulator.stats()
    response, body = press_test(page, conn_id)
    if response.status == 200:
        pytest.fail(
            f"Airflow {server.airflow_version()}: the Test button reached the hook for a connection without a "
            f"port (request port={body.get('port')!r}, answer {response.text()}). The 3.3.2 bug (port 0, "
            "HTTP 400; apache/airflow PR 73298) looks fixed: update this test, and the provider docs' workaround."
        )
    assert response.status == 400, f"unexpected answer to the Test button: {response.status} {response.text()}"
    assert PORT_BUG_DETAIL in response.json()["detail"]
    assert body["port"] == 0, f"the 3.3.2 UI was expected to send port 0, sent {body.get('port')!r}"
    assert body["host"] == odc_emulator.base_url
    assert body["password"] == "***"
    failed = toast(page, "Test Connection Failed")
    expect(failed).to_be_visible()
    expect(failed).to_contain_text("Bad Request")  # 3.3.2 shows neither the API's detail nor the hook's message
    _shot(page, "04-test-button-port-bug-3.3.2.png")
    after = odc_emulator.stats()
    assert after["discovery_requests"] == before["discovery_requests"], "the hook ran although the API said 400"
    assert after["token_requests"] == before["token_requests"]

    # 3b. The same connection with its port stored (what `airflow connections add --conn-port` or the REST
    # API can set; the form hides the port): the Test button reaches the hook, which gets a token.
    server.set_port(conn_id, CONN_TYPE, odc_emulator.port)
    before = odc_emulator.stats()
    response, body = press_test(page, conn_id)
    assert response.status == 200, f"Test with a stored port: {response.status} {response.text()}"
    assert body["port"] == odc_emulator.port
    result = response.json()
    assert result["status"] is True, f"the hook's test_connection failed: {result['message']}"
    success = toast(page, "Test Connection Successful")
    expect(success).to_be_visible()
    expect(success).to_contain_text(f"Connected to {odc_emulator.base_url}")
    expect(success).to_contain_text("ODC issued an access token")
    _shot(page, "05-test-button-success.png")
    after = odc_emulator.stats()
    assert after["token_exchanges"] == before["token_exchanges"] + 1, "the hook did not get a token"
    assert after["discovery_requests"] == before["discovery_requests"] + 1

    for secret in (odc_emulator.client_secret, cache_secret):
        assert_secret_absent(page, server, responses, secret)


def test_test_button_with_wrong_secret(page: Any, airflow_api_server: AirflowApiServer, odc_emulator: Any) -> None:
    from playwright.sync_api import expect

    server = airflow_api_server
    responses = ResponseLog(page, server.base_url)
    wrong_secret = f"Wrong-{secrets.token_urlsafe(18)}"
    assert wrong_secret != odc_emulator.client_secret
    conn_id = "odc_browser_wrong_secret"

    open_add_connection_form(page)
    fill_and_save(
        page,
        conn_id,
        host=odc_emulator.base_url,
        login=odc_emulator.client_id,
        password=wrong_secret,
        extras={"timeout": "10", "cache_mode": "off"},
    )
    assert server.connection(conn_id)["password"] == "***"
    server.set_port(conn_id, CONN_TYPE, odc_emulator.port)  # so the 3.3.2 Test button reaches the hook

    before = odc_emulator.stats()
    response, _ = press_test(page, conn_id)
    assert response.status == 200, f"Test with a stored port: {response.status} {response.text()}"
    result = response.json()
    assert result["status"] is False
    failure = toast(page, "Test Connection Failed")
    expect(failure).to_be_visible()
    expect(failure).to_contain_text("Step 2 of 2 (token request) failed")
    expect(failure).to_contain_text("invalid_client")
    expect(failure).to_contain_text("Client secret")
    _shot(page, "06-test-button-wrong-secret.png")
    after = odc_emulator.stats()
    assert after["token_requests"] == before["token_requests"] + 1, "the hook did not ask for a token"
    assert after["token_exchanges"] == before["token_exchanges"], "the emulator issued a token for a wrong secret"

    assert_secret_absent(page, server, responses, wrong_secret)
