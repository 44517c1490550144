"""HTTP routes of the pre-signed object storage (state in ``storage``) and of ``GET /uploads``, which hands
out its URLs. The storage routes take no bearer token: like S3, they refuse one (the client would be
sending its ODC token off the ODC host)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_odc.emulator.state import EmulatorState
from airflow_provider_odc.emulator.storage import SIGNATURE, STORAGE_PREFIX, StorageError, artifact, storage_origin
from airflow_provider_odc.emulator.web import Guard, make_endpoint

UPLOADS_ROUTE = "/api/external-libraries/v1/uploads"
NATIVE_ARTIFACT_FIELD = "appBinaryDownloadUrl"


def presign_native_links(state: EmulatorState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """A native build body whose binary link is a fresh grant on the storage (ODC signs each answer anew)."""
    if body.get(NATIVE_ARTIFACT_FIELD):
        extension = "aab" if body.get("mobilePlatform") == "Android" else "ipa"
        name = f"native/{body['key']}.{extension}"
        state.storage.store(name, artifact(name))
        body[NATIVE_ARTIFACT_FIELD] = state.storage.grant(storage_origin(str(request.base_url)), name, "GET")
    return body


def _xml(error: StorageError) -> Response:
    return Response(error.xml(), status_code=error.status, media_type="application/xml")


def register_storage_routes(app: FastAPI, state: EmulatorState, guard: Guard) -> None:
    """``GET /uploads`` (guarded, before the app's catch-all ``/api`` route) and the storage itself."""

    endpoint = make_endpoint(app, guard)

    @endpoint("GET", UPLOADS_ROUTE, "OS-ELG-40001")
    async def request_upload(request: Request) -> Response:
        origin = storage_origin(str(request.base_url))
        name = f"uploads/{secrets.token_hex(16)}.zip"
        return JSONResponse(
            {
                "uploadUrl": state.storage.grant(origin, name, "PUT"),
                "downloadUrl": state.storage.grant(origin, name, "GET"),
            }
        )

    def fault(request: Request) -> Response | None:
        """An injected fault (``add_fault(target="any", path_prefix="/_storage/...")``): a storage outage."""
        injected = state.take_fault("storage", request.url.path, request.method)
        if injected is None or injected.status is None:
            return None
        return _xml(StorageError(injected.status, "InternalError", "Fault injected by the ODC emulator."))

    @app.put(STORAGE_PREFIX + "/{name:path}")
    async def put_object(request: Request, name: str) -> Response:
        failed = fault(request)
        if failed is not None:
            await request.body()
            return failed
        try:
            state.storage.put(
                name,
                request.query_params.get(SIGNATURE),
                "authorization" in request.headers,
                request.headers.get("content-length"),
                await request.body(),
            )
        except StorageError as error:
            return _xml(error)
        return Response(status_code=200)

    @app.get(STORAGE_PREFIX + "/{name:path}")
    async def get_object(request: Request, name: str) -> Response:
        failed = fault(request)
        if failed is not None:
            return failed
        try:
            body = state.storage.get(name, request.query_params.get(SIGNATURE), "authorization" in request.headers)
        except StorageError as error:
            return _xml(error)
        return Response(body, media_type="application/octet-stream")
