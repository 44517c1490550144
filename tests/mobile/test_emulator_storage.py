"""The emulator's pre-signed storage behaves like S3 with pre-signed URLs: one object and method per grant,
expiry, no chunked upload, no Authorization header, XML errors; and its generation reads what was uploaded."""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_odc.hooks.odc import OdcHook

TIMEOUT = 10


def test_a_grant_opens_one_object_for_one_method_until_it_expires(fast: Any) -> None:
    target = OdcHook().request_library_upload()
    assert requests.get(target.download_url, timeout=TIMEOUT).status_code == 404  # nothing uploaded yet
    chunked = requests.put(target.upload_url, data=iter([b"PK", b"\x03\x04"]), timeout=TIMEOUT)
    assert chunked.status_code == 411 and "<Code>MissingContentLength</Code>" in chunked.text
    assert requests.put(target.upload_url, data=b"PK\x03\x04", timeout=TIMEOUT).status_code == 200
    assert requests.get(target.download_url, timeout=TIMEOUT).content == b"PK\x03\x04"
    wrong_method = requests.get(target.upload_url, timeout=TIMEOUT)
    assert wrong_method.status_code == 403 and "SignatureDoesNotMatch" in wrong_method.text
    forged = target.download_url[:-4] + "0000"
    assert requests.get(forged, timeout=TIMEOUT).status_code == 403
    fast.advance(901)
    expired = requests.get(target.download_url, timeout=TIMEOUT)
    assert expired.status_code == 403 and "<Message>Request has expired</Message>" in expired.text


def test_the_upload_urls_are_on_another_origin_than_the_api(fast: Any) -> None:
    hook = OdcHook()
    target = hook.request_library_upload()
    api_host = hook.settings.origin.split("://")[1].split(":")[0]
    for url in (target.upload_url, target.download_url):
        host = url.split("://")[1].split(":")[0]
        assert host != api_host and host in ("localhost", "127.0.0.1")
