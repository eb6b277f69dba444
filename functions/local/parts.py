"""The local server's stand-in for S3's presigned part URLs: ``PUT`` a part of a presigned upload.

Not an API route (no API key, not in the route registry nor the OpenAPI document): the URL itself, signed
and expiring, is the credential, as a presigned S3 URL is. It answers like S3 does: 200 with the part's
``ETag``, or an HTTP error status with a short reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from functions.api.deps import ContainerDep
from shared.adapters.local.part_store import PART_ROUTE, LocalUploadStore, PartRefused


def build_router() -> APIRouter:
    router = APIRouter()

    @router.put(f"/{PART_ROUTE}/{{upload_id}}/{{part_number}}", include_in_schema=False)
    async def put_part(
        upload_id: str, part_number: int, expires: int, signature: str, request: Request, services: ContainerDep
    ) -> Response:
        store = services.upload_store
        if not isinstance(store, LocalUploadStore):
            return Response("Not served here", status_code=404)
        try:
            writer = store.part_writer(upload_id, part_number, expires, signature)
            try:
                async for chunk in request.stream():
                    writer.write(chunk)
                etag = writer.commit()
            finally:
                writer.discard()
        except PartRefused as refused:
            return Response(refused.message, status_code=refused.status, media_type="text/plain")
        return Response(status_code=200, headers={"ETag": f'"{etag}"'})

    return router
