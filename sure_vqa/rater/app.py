"""The rating web app: FastAPI serving a plain HTML/JS page (no CDN, no external assets) and a small JSON API.

What a rater can do and see is decided here, not in the page:
- a rater logs in with a name; the first login issues a secret rater code, kept in an HttpOnly cookie and
  shown once so the rater can continue from another browser; a taken name needs its code;
- every read and write names the rater from the verified cookie, never from the request, so nobody can
  write under another name, and the items endpoint returns only the caller's own scores;
- scores must be on the item's rubric scale; images are looked up by name in the study's own image list
  (no path is ever built from the request);
- the study order is shuffled per rater, seeded by study and rater name, and no model identity is sent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from sure_vqa.config import ConfigError
from sure_vqa.rater.db import (
    RATER_NAME_RULE,
    REQUEST_ID_RULE,
    RaterNameError,
    RaterTaken,
    RatingStore,
    RequestConflict,
    canonical_rater_name,
)
from sure_vqa.rater.rubric import SCALES
from sure_vqa.rater.study import Study, StudyItem

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
COOKIE_NAME = "sure_vqa_rater"
COOKIE_MAX_AGE_S = 60 * 60 * 24 * 60  # a study can take weeks; the rater code restores a lost cookie
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
IMAGE_MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}


# A login or a rating is a few hundred bytes; a larger body is refused before it is read or parsed.
MAX_BODY_BYTES = 16 * 1024


class BodySizeLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413, whether it announces its length
    (Content-Length, refused before reading) or streams it in chunks (refused as soon as the limit is passed).
    Written here because Starlette and uvicorn have no body-size setting."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = HTTPException(413, f"request body too large (at most {self.max_bytes} bytes)")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            response = JSONResponse({"detail": too_large.detail}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large  # raised where the route reads its body: answered as a 413
            return message

        await self.app(scope, limited_receive, send)


def _validation_errors(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with where and why a request is invalid, never the input itself (FastAPI's default echoes it)."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    code: str | None = Field(default=None, max_length=200)


class RatingRequest(BaseModel):
    """The body of a rating: no rater field on purpose (extra fields are refused)."""

    model_config = ConfigDict(extra="forbid")
    qid: str = Field(max_length=500)
    score: StrictInt | StrictFloat
    request_id: str = Field(max_length=64)


def rater_order(study: Study, rater: str) -> list[StudyItem]:
    """The study's items in this rater's order: a shuffle seeded by study id and rater name.

    `random.Random` seeds a string through SHA-512, so the order is the same on every run and machine
    (unlike `hash()`, which changes with PYTHONHASHSEED).
    """
    items = list(study.items)
    random.Random(f"{study.study_id}/{rater}").shuffle(items)
    return items


def _cookie_value(rater: str, token: str) -> str:
    return f"{rater}.{token}"  # '.' is in neither a rater name nor a url-safe token


# --- dependencies: module level so that FastAPI resolves them (the app's state holds store and studies) ---


def _store(request: Request) -> RatingStore:
    return request.app.state.store


def current_rater(request: Request) -> str:
    """The rater named by a cookie whose token verifies; 401 otherwise."""
    rater, _, token = request.cookies.get(COOKIE_NAME, "").partition(".")
    if not rater or not token or not _store(request).verify_rater(rater, token):
        raise HTTPException(401, "not logged in: enter your name on the start page")
    return rater


def json_body(request: Request) -> None:
    """Writes must be JSON: a cross-site HTML form cannot send that without the browser asking first."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "send the request body as application/json")


def get_study(study_id: str, request: Request) -> Study:
    study = request.app.state.studies.get(study_id)
    if study is None:
        raise HTTPException(404, f"no study {study_id!r}")
    return study


RaterName = Annotated[str, Depends(current_rater)]
StudyDep = Annotated[Study, Depends(get_study)]


def create_app(studies: Sequence[Study], store: RatingStore) -> FastAPI:
    """The app for the given studies, storing ratings in `store`."""
    by_id: dict[str, Study] = {}
    for study in studies:
        if study.study_id in by_id:
            raise ConfigError(f"two study folders share study_id={study.study_id!r}: {by_id[study.study_id].folder}, "
                              f"{study.folder}")
        by_id[study.study_id] = study
    images = {study_id: study.image_files() for study_id, study in by_id.items()}

    app = FastAPI(title="SURE-VQA rater study", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(RequestValidationError, _validation_errors)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.state.store = store
    app.state.studies = by_id
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/studies")
    def list_studies() -> list[dict[str, Any]]:
        return [
            {"study_id": s.study_id, "answer_kind": s.answer_kind, "n_items": len(s.items)} for s in by_id.values()
        ]

    @app.post("/api/login", dependencies=[Depends(json_body)])
    def login(body: LoginRequest, request: Request, response: Response) -> dict[str, Any]:
        try:
            rater = canonical_rater_name(body.name)
        except RaterNameError:  # the reply names the rule, never the input (docs/rater_study.md)
            raise HTTPException(422, f"the rater name is not valid; {RATER_NAME_RULE}") from None
        if store.rater_exists(rater):
            cookie_rater, _, cookie_token = request.cookies.get(COOKIE_NAME, "").partition(".")
            if body.code and store.verify_rater(rater, body.code.strip()):
                token = body.code.strip()
            elif cookie_rater == rater and store.verify_rater(rater, cookie_token):
                token = cookie_token
            else:
                raise HTTPException(
                    403, f"the name {rater!r} is taken; to continue as {rater}, enter the rater code shown at the "
                    "first login"
                )
            new = False
        else:
            try:
                token = store.register_rater(rater)
            except RaterTaken:
                raise HTTPException(403, f"the name {rater!r} was just taken; choose another") from None
            new = True
        response.set_cookie(
            COOKIE_NAME, _cookie_value(rater, token), max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="strict"
        )
        return {"rater": rater, "new": new, "code": token if new else None}

    @app.post("/api/logout")
    def logout(response: Response) -> dict[str, bool]:
        response.delete_cookie(COOKIE_NAME, httponly=True, samesite="strict")
        return {"ok": True}

    @app.get("/api/session")
    def session(rater: RaterName) -> dict[str, str]:
        return {"rater": rater}

    @app.get("/api/studies/{study_id}/items")
    def items(study: StudyDep, rater: RaterName) -> dict[str, Any]:
        own = store.ratings_of(study.study_id, rater)
        ordered = rater_order(study, rater)
        used_scales = sorted({item.scale for item in ordered})
        return {
            "study_id": study.study_id,
            "answer_kind": study.answer_kind,
            "rater": rater,
            "total": len(ordered),
            "rated": sum(item.qid in own for item in ordered),
            "scales": {name: SCALES[name].to_json() for name in used_scales},
            "items": [
                {
                    "position": position,
                    "qid": item.qid,
                    "question": item.question,
                    "gt": item.gt,
                    "pred": item.pred,
                    "scale": item.scale,
                    "image_url": f"/api/studies/{study.study_id}/images/{Path(item.image).name}",
                    "score": own.get(item.qid),
                }
                for position, item in enumerate(ordered)
            ],
        }

    @app.post("/api/studies/{study_id}/ratings", dependencies=[Depends(json_body)])
    def rate(study: StudyDep, body: RatingRequest, rater: RaterName) -> dict[str, Any]:
        item = study.item(body.qid)
        if item is None:
            raise HTTPException(404, f"the question is not part of study {study.study_id}")
        scale = study.scale_of(item)
        try:
            score = scale.check(body.score)
        except ValueError:
            raise HTTPException(422, f"the score is not on the {scale.name} scale; valid scores: "
                                     f"{scale.valid_text()}") from None
        try:
            saved = store.save_rating(study.study_id, rater, item.qid, score, body.request_id)
        except ValueError:
            raise HTTPException(422, f"request_id is not valid; {REQUEST_ID_RULE}") from None
        except RequestConflict:
            raise HTTPException(409, f"request_id {body.request_id!r} was already used for another rating") from None
        rated = len(store.ratings_of(study.study_id, rater))
        return {
            "qid": saved.qid,
            "score": saved.score,
            "revision": saved.revision,
            "duplicate": saved.duplicate,
            "rated": rated,
            "total": len(study.items),
        }

    @app.get("/api/studies/{study_id}/images/{image_name}")
    def image(study: StudyDep, image_name: str, rater: RaterName) -> FileResponse:
        path = images[study.study_id].get(image_name)  # a lookup, never a path built from the request
        if path is None:
            raise HTTPException(404, "no such image in this study")
        headers = {"Cache-Control": "private, max-age=3600"}
        return FileResponse(path, media_type=IMAGE_MEDIA_TYPES[path.suffix.lower()], headers=headers)

    return app


def serve(studies: Sequence[Study], db_path: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Runs the app with uvicorn until interrupted; every acknowledged rating is already on disk."""
    import uvicorn

    app = create_app(studies, RatingStore(db_path))
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    print(f"rater study: open http://{shown}:{port}/ in a browser (ratings: {db_path})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
