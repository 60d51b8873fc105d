"""The HTTP API in the shape of the OpenAI Videos API (DESIGN.md §6), and the web page at ``/``.

    POST   /v1/videos                    create (JSON or multipart; input_reference image -> image-to-video)
    GET    /v1/videos                    list, cursor pages (after, limit, order)
    GET    /v1/videos/{id}               status queued | in_progress | completed | failed, progress 0-100, error
    GET    /v1/videos/{id}/content       ?variant=video | thumbnail | spritesheet
    DELETE /v1/videos/{id}
    POST   /v1/videos/{id}/remix         our edit mode: what the new prompt changes from the video's own
    POST   /v1/videos/extensions         continue a finished video ({"video": {"id": ...}} or an uploaded MP4)

Our extras are optional fields of the same bodies: seed, steps, guidance, aspect, fps, loop, strength (remix),
negative (what the video should not show).
Every error is the OpenAI error shape ``{"error": {"message", "type", "param", "code"}}`` with a 4xx status. The web
process only reads and writes the job store and files; generation runs in the workers. Handlers are ``async`` so
the store's one connection is used from the event loop's thread only.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import shutil
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from kinetoscope.errors import KinetoscopeError
from kinetoscope.media import atomic_file, probe
from kinetoscope.serve.jobs import ID, ApiError, Files, Limits, aspect_size, check_image, create_job
from kinetoscope.serve.store import Job, JobStore

POLL_AFTER_MS = 500  # the openai client's poll helper reads this header instead of waiting a full second
PAGE = Path(__file__).with_name("page.html")
MEDIA = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    """The OpenAI ``Video`` object."""

    id: str
    object: Literal["video"] = "video"
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    error: VideoError | None = None
    model: str
    progress: int
    prompt: str | None = None
    remixed_from_video_id: str | None = None
    seconds: str
    size: str
    status: Literal["queued", "in_progress", "completed", "failed"]


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def _body_schema(fields: dict[str, Any], required: list[str]) -> dict:
    """An OpenAPI requestBody accepting the same fields as JSON or multipart (the openai client sends multipart)."""
    schema = {"type": "object", "properties": fields, "required": required}
    form = {"type": "object", "required": required,
            "properties": {k: ({"type": "string", "format": "binary"} if v.get("format") == "binary" else
                               {"type": "string"}) for k, v in fields.items()}}  # fmt: skip
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema},
                                                          "multipart/form-data": {"schema": form}}}}  # fmt: skip


_EXTRAS = {"seed": {"type": "integer"}, "steps": {"type": "integer"}, "guidance": {"type": "number"},
           "fps": {"type": "number"}, "loop": {"type": "boolean"}, "negative": {"type": "string"}}  # fmt: skip
CREATE_BODY = _body_schema({"prompt": {"type": "string"}, "model": {"type": "string"}, "seconds": {"type": "string"},
                            "size": {"type": "string"}, "aspect": {"type": "string"},
                            "input_reference": {"type": "string", "format": "binary"}, **_EXTRAS}, ["prompt"])
REMIX_BODY = _body_schema({"prompt": {"type": "string"}, "strength": {"type": "number"}, **_EXTRAS}, ["prompt"])
EXTEND_BODY = _body_schema({"prompt": {"type": "string"}, "seconds": {"type": "string"},
                            "video": {"type": "string", "format": "binary"}, **_EXTRAS}, ["prompt", "video"])
ERRORS = {s: {"model": ErrorBody} for s in (400, 401, 404, 413, 429)}


def video_object(job: Job) -> Video:
    return Video(id=job.id, created_at=job.created_at, completed_at=job.completed_at,
                 error=VideoError(**job.error) if job.error else None, model=job.model, progress=job.progress,
                 prompt=job.prompt, remixed_from_video_id=job.remixed_from, seconds=job.seconds, size=job.size,
                 status=job.status)  # fmt: skip


def _error(e: ApiError) -> JSONResponse:
    body = {"error": {"message": e.message, "type": e.kind, "param": e.param, "code": e.code}}
    return JSONResponse(body, status_code=e.status, headers=e.headers)


def create_app(store: JobStore, files: Files, limits: Limits = Limits(), api_key: str | None = None,
               health: dict | None = None) -> FastAPI:  # fmt: skip
    """The FastAPI app over a job store and a files folder; ``api_key`` (if set) is required as a Bearer token."""
    app = FastAPI(title="Kinetoscope", version="1", summary="Text-to-video in the shape of the OpenAI Videos API")
    page = PAGE.read_text(encoding="utf-8")
    for folder in ("videos", "inputs"):
        (files.root / folder).mkdir(parents=True, exist_ok=True)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError) -> JSONResponse:
        return _error(e)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return _error(ApiError(400, f"{param or 'request'}: {first.get('msg', 'invalid')}", param))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        return _error(ApiError(e.status_code, str(e.detail), None, code, headers=getattr(e, "headers", None)))

    @app.middleware("http")
    async def authorize(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return _error(ApiError(401, "Incorrect API key provided: send it as 'Authorization: Bearer KEY'",
                                       None, "invalid_api_key"))  # fmt: skip
        return await call_next(request)

    async def fields_of(request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The body's fields (JSON or multipart) and its uploads, refused past the size limits."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_upload_bytes + 2**20:
            raise ApiError(413, f"the request is {int(declared):,} bytes; the limit is "
                                f"{limits.max_upload_bytes + 2**20:,}")  # fmt: skip
        kind = request.headers.get("content-type", "")
        if kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form(max_files=4, max_fields=64, max_part_size=limits.max_upload_bytes)
            fields: dict[str, Any] = {}
            uploads: dict[str, bytes] = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    uploads[key] = await value.read(limits.max_upload_bytes + 1)
                else:
                    fields[key] = value
            return fields, uploads
        raw = await request.body()
        if len(raw) > limits.max_upload_bytes + 2**20:
            raise ApiError(413, f"the request is {len(raw):,} bytes; the limit is {limits.max_upload_bytes + 2**20:,}")
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the body is not JSON (send application/json or multipart/form-data)") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body, {}

    def admit(job: Job, request: Request) -> Video:
        """Store the job (its inputs are already on disk), or return the earlier job of a repeated request."""
        key = request.headers.get("idempotency-key")
        if store.pending() >= limits.max_queue:
            files.remove(job.id)
            raise ApiError(429, f"the queue is full ({limits.max_queue} unfinished jobs); retry later", None,
                           "queue_full", "rate_limit_error", {"Retry-After": "10"})  # fmt: skip
        stored, new = store.add(job, key[:200] if key else None)
        if not new:
            files.remove(job.id)
        return video_object(stored)

    def finished(video_id: str, param: str = "video_id") -> Job:
        job = _get(video_id)
        if job.status != "completed":
            raise ApiError(400, f"video {video_id} is {job.status}, not completed", param, "video_not_ready")
        return job

    def _get(video_id: str) -> Job:
        job = store.get(video_id) if ID.fullmatch(video_id) else None
        if job is None:
            raise ApiError(404, f"no video {video_id!r}", "video_id", "not_found")
        return job

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok", "pending": store.pending(), **(health or {})}

    @app.post("/v1/videos", response_model=Video, responses=ERRORS, openapi_extra=CREATE_BODY)
    async def create_video(request: Request) -> Video:
        fields, uploads = await fields_of(request)
        image = _reference(fields, uploads, limits)
        if image is not None and not fields.get("size") and not fields.get("aspect"):  # the image's aspect
            fields = {**fields, "size": "{}x{}".format(*aspect_size(image.width, image.height, limits))}
        job = create_job(fields, limits, "text" if image is None else "image")
        if image is not None:
            image.save(files.path(job.id, "image"), "PNG")
        return admit(job, request)

    @app.get("/v1/videos", response_model=VideoList, responses=ERRORS)
    async def list_videos(after: str | None = Query(None, max_length=64), limit: int = Query(20, ge=1, le=100),
                          order: Literal["asc", "desc"] = Query("desc")) -> VideoList:  # fmt: skip
        if after is not None:
            _get(after)
        jobs, more = store.page(after, limit, order)
        data = [video_object(j) for j in jobs]
        return VideoList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                         has_more=more)  # fmt: skip

    @app.get("/v1/videos/{video_id}", response_model=Video, responses=ERRORS)
    async def retrieve_video(video_id: str, response: Response) -> Video:
        job = _get(video_id)
        if job.status in ("queued", "in_progress"):
            response.headers["openai-poll-after-ms"] = str(POLL_AFTER_MS)
        return video_object(job)

    @app.delete("/v1/videos/{video_id}", response_model=VideoDeleted, responses=ERRORS)
    async def delete_video(video_id: str) -> VideoDeleted:
        _get(video_id)
        store.delete(video_id)
        files.remove(video_id)
        return VideoDeleted(id=video_id, deleted=True)

    @app.get("/v1/videos/{video_id}/content", responses={200: {"content": {t: {} for t in MEDIA.values()}}, **ERRORS})
    async def video_content(video_id: str, variant: Literal["video", "thumbnail", "spritesheet"] = "video"):
        finished(video_id)
        path = files.path(video_id, variant)
        if not path.exists():
            raise ApiError(404, f"video {video_id} has no {variant}", "variant", "not_found")
        return FileResponse(path, media_type=MEDIA[variant], filename=f"{video_id}{path.suffix}")

    @app.post("/v1/videos/{video_id}/remix", response_model=Video, responses=ERRORS, openapi_extra=REMIX_BODY)
    async def remix_video(video_id: str, request: Request) -> Video:
        fields, _ = await fields_of(request)
        source = finished(video_id)
        job = create_job(fields, limits, "remix", source)
        _copy(files.path(source.id, "video"), files.path(job.id, "clip"))
        return admit(job, request)

    @app.post("/v1/videos/extensions", response_model=Video, responses=ERRORS, openapi_extra=EXTEND_BODY)
    async def extend_video(request: Request) -> Video:
        fields, uploads = await fields_of(request)
        ref = fields.get("video") if isinstance(fields.get("video"), dict) else {"id": fields.get("video[id]")}
        if "video" in uploads:
            return admit(_uploaded_clip(uploads["video"], fields), request)
        if not isinstance(ref.get("id"), str):
            raise ApiError(400, 'video is required: {"id": "video_..."} of a completed video, or an MP4 upload',
                           "video")  # fmt: skip
        source = finished(ref["id"], "video")
        job = create_job(fields, limits, "extend", source)
        _copy(files.path(source.id, "video"), files.path(job.id, "clip"))
        return admit(job, request)

    def _uploaded_clip(data: bytes, fields: dict) -> Job:
        """An extension of an uploaded MP4: checked by probing it, drawn at its aspect."""
        if len(data) > limits.max_upload_bytes:
            raise ApiError(413, f"video is {len(data):,} bytes; the limit is {limits.max_upload_bytes:,}", "video")
        tmp = files.root / "inputs" / f".upload.tmp-{secrets.token_hex(8)}.mp4"
        tmp.write_bytes(data)
        try:
            info = probe(tmp)
        except KinetoscopeError as e:
            tmp.unlink(missing_ok=True)
            raise ApiError(400, f"video is not a readable video ({getattr(e, 'problem', e)})", "video") from None
        width, height = aspect_size(info.width, info.height, limits)
        fps = info.fps or 16.0
        source = Job(id="upload", created_at=0, status="completed", progress=100, model="", prompt="",
                     seconds=f"{info.frames / fps:g}", size=f"{width}x{height}",
                     params={"fps": fps, "frames": info.frames})  # fmt: skip
        job = create_job(fields, limits, "extend", source)
        tmp.replace(files.path(job.id, "clip"))
        return job

    return app


def _reference(fields: dict, uploads: dict[str, bytes], limits: Limits):
    """The input_reference image of a create request: an upload, or a base64 data URL ({"image_url": ...})."""
    if "input_reference" in uploads:
        return check_image(uploads["input_reference"], limits)
    ref = fields.get("input_reference")
    url = ref.get("image_url") if isinstance(ref, dict) else fields.get("input_reference[image_url]")
    if isinstance(ref, dict) and "file_id" in ref or fields.get("input_reference[file_id]"):
        raise ApiError(400, "input_reference file_id is not supported here; upload the image or send a data URL",
                       "input_reference")  # fmt: skip
    if url is None:
        if ref not in (None, ""):
            raise ApiError(400, "input_reference must be an image upload or {\"image_url\": \"data:...\"}",
                           "input_reference")  # fmt: skip
        return None
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise ApiError(400, "input_reference image_url must be a base64 data URL (this server fetches nothing)",
                       "input_reference")  # fmt: skip
    try:
        data = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "input_reference image_url is not valid base64", "input_reference") from None
    return check_image(data, limits)


def _copy(src: Path, dst: Path) -> None:
    """Copy a finished video as a job's input, atomically (the source may be deleted before the job runs)."""
    with atomic_file(dst) as tmp:
        shutil.copyfile(src, tmp)
