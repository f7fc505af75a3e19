"""``/api/items`` routes: an indexed item's metadata, and its media — served by id only, from inside
the indexed folder, as the file that was indexed (:mod:`polymodal.server.media`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam
from fastapi.responses import Response, StreamingResponse

from .media import SAFE_HEADERS, MediaGone, chunks, container_type, open_item, picture_png, png_bytes, read_all, \
    sensor_picture
from .service import Served, served

MAX_PREVIEW_BYTES = 256 * 2**20  # pictures, PDFs and sensor files larger than this are not rendered
ItemPath = Annotated[int, PathParam(ge=1, lt=2**63)]

router = APIRouter()


def indexed(s: Served, item_id: int):
    with s.service.lock:
        it = s.service.store.item(item_id)
    if it is None:
        raise HTTPException(404, f"no item {item_id}")
    return it


@router.get("/items/{item_id}")
def item(item_id: ItemPath, s: Served = Depends(served)) -> dict:
    it = indexed(s, item_id)
    return {"id": it.id, "name": Path(it.path).name, "path": it.path, "modality": it.modality, "size": it.size,
            "mtime": it.mtime, "sha256": it.sha256, "error": it.error, "media": f"/api/items/{it.id}/media"}


@router.get("/items/{item_id}/media")
def media(item_id: ItemPath, s: Served = Depends(served)):
    it = indexed(s, item_id)
    root = s.service.store.root
    if it.error is not None or root is None:
        why = it.error or "the index records no folder: re-run polymodal index"
        raise HTTPException(404, f"item {item_id} was not indexed ({why})")
    try:
        fd, st = open_item(root, it)
    except MediaGone as e:
        raise HTTPException(404, f"item {item_id}: {e}; re-run polymodal index") from None
    name = Path(it.file).name
    if it.modality in ("audio", "video", "text"):  # streamed as they are, whatever their size
        kind = "text/plain; charset=utf-8" if it.modality == "text" else container_type(it.modality,
                                                                                        os.pread(fd, 16, 0))
        return StreamingResponse(chunks(fd), media_type=kind,
                                 headers={**SAFE_HEADERS, "Content-Length": str(st.st_size)})
    if st.st_size > MAX_PREVIEW_BYTES:
        os.close(fd)
        raise HTTPException(404, f"item {item_id}: {name} is too large to preview ({st.st_size} bytes)")
    data = read_all(fd, st.st_size)
    try:
        if it.modality == "image":
            body, media_type = picture_png(data, name, it.page), "image/png"
        elif it.modality == "pdf":
            from ..modalities.pdf import pdf_page

            body, media_type = png_bytes(pdf_page(data, it.page or 1, 512, name=name)), "image/png"
        else:  # depth, thermal, imu
            body, media_type = sensor_picture(data, name, it.modality), "image/png"
    except (ValueError, OSError) as e:
        raise HTTPException(404, f"item {item_id}: {e}; re-run polymodal index") from None
    return Response(body, media_type=media_type, headers=SAFE_HEADERS)
