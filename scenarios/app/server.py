"""The JSON API and static page of ``herschik app`` (Starlette), served by uvicorn.

Routes (all JSON except the page and its static files):

* ``GET  /``                          the page (``static/index.html``)
* ``GET  /api/meta``                  regions, treatments, objectives, defaults
* ``GET  /api/regions/{region}/map``  simplified area polygons and hospitals (WGS84)
* ``POST /api/solve``                 ``{"settings": {...}, "base_plan_id": n}`` -> a plan, or
                                      the diagnosis of an infeasible change with the nearest
                                      feasible settings
* ``GET  /api/plans``                 the plans kept (headline numbers)
* ``GET  /api/plans/{id}``            one plan in full (without reasons)
* ``GET  /api/plans/{id}/hospitals/{site}/reasons``  why that hospital loses each treatment it
                                      loses in the plan (worked out on the first request,
                                      then kept with the plan)
* ``GET  /api/compare?a=ID&b=ID``     two plans side by side
* ``POST /api/plans/{id}/export``     plan.toml + result/ in a folder the server chooses

No route takes a file name or path: request bodies are validated with ``extra="forbid"``
models of ids and numbers, unknown query parameters are refused, and exports go below the
app's ``--out`` folder only.

Another web page must not drive the app (issue 27). Every state-changing request (POST)

* carries the session token in the header ``X-Herschik-Token`` (403 otherwise): a random token
  made when the app starts and written into the page it serves (``<meta
  name="herschik-token">``); a page of another origin cannot read it;
* is ``application/json``, even with an empty body (a plain HTML form cannot send that, and a
  script of another origin cannot without a CORS preflight, which is never granted);
* has a body of at most :data:`MAX_BODY_BYTES`, counted while it is read (413), JSON nested at
  most :data:`MAX_JSON_DEPTH` deep (400);
* exports at most :data:`MAX_EXPORTS_PER_MINUTE` plans a minute (429).

The Host header must name this machine (against DNS rebinding). Bound to an address other than
loopback, the app also asks every request for the ``--token`` given on the command line (HTTP
Basic authentication, any user name; the browser asks once).
"""

from __future__ import annotations

import base64
import collections
import functools
import hmac
import inspect
import ipaddress
import json
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from herschik.i18n import _, use_language

from .models import AppInputError, PlanSettings, UnknownPlan
from .session import AppState

STATIC_DIR = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]
#: largest request body accepted (a plan's settings are a few kB)
MAX_BODY_BYTES = 1_000_000
#: deepest JSON nesting accepted (a plan's settings nest 3 deep)
MAX_JSON_DEPTH = 20
#: exports (each a full `herschik solve` writing a folder) per rolling minute
MAX_EXPORTS_PER_MINUTE = 6
#: the header that carries the session token on every POST
TOKEN_HEADER = "x-herschik-token"
_TOKEN_META = '<meta name="herschik-token" content="{token}">'


class Forbidden(Exception):
    """A request without the session token (HTTP 403)."""


class TooLarge(Exception):
    """A request body over MAX_BODY_BYTES (HTTP 413)."""


class TooMany(Exception):
    """Too many exports in the last minute (HTTP 429)."""


class SolveRequest(BaseModel):
    """Body of ``POST /api/solve``."""

    model_config = ConfigDict(extra="forbid")
    settings: PlanSettings
    base_plan_id: int | None = Field(None, ge=1)


#: the page's language switch (app.js); anything else in the cookie header is ignored
LANG_COOKIE = re.compile(rb"(?:^|;)\s*herschik_lang=(en|nl)(?:;|$)")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _refuse_query(request: Request, allowed: tuple[str, ...] = ()) -> JSONResponse | None:
    extra = sorted(set(request.query_params) - set(allowed))
    if extra:
        return _error(422, f"unknown query parameter(s): {', '.join(extra)}")
    return None


def _check_token(request: Request, token: str) -> None:
    sent = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(sent.encode(), token.encode()):
        raise Forbidden(_("missing or wrong session token (reload the page)"))


async def _read_limited(request: Request) -> bytes:
    """The body, refused as soon as it passes MAX_BODY_BYTES (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TooLarge(f"request body over {MAX_BODY_BYTES:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge(f"request body over {MAX_BODY_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            todo.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                 else item))
    return deepest


async def _json_body(request: Request, *, required: bool, token: str) -> Any:
    """The JSON body of a state-changing request, after the token and content-type checks."""
    _check_token(request, token)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":  # also for an empty body: a form cannot send it
        raise AppInputError("the request must be application/json")
    body = await _read_limited(request)
    if not body.strip():
        if required:
            raise AppInputError("a JSON body is required")
        return None
    try:
        data = json.loads(body)
    except RecursionError:
        raise AppInputError(f"the body is JSON nested more than {MAX_JSON_DEPTH} deep"
                            ) from None
    except ValueError as error:
        raise AppInputError(f"the body is not JSON: {error}") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise AppInputError(f"the body is JSON nested more than {MAX_JSON_DEPTH} deep")
    return data


class _RateLimit:
    """At most ``limit`` events in any rolling ``seconds`` (thread-safe)."""

    def __init__(self, limit: int, seconds: float = 60.0) -> None:
        self.limit, self.seconds = limit, seconds
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def take(self) -> None:
        now = time.monotonic()
        with self._lock:
            while self._times and now - self._times[0] >= self.seconds:
                self._times.popleft()
            if len(self._times) >= self.limit:
                wait = self.seconds - (now - self._times[0])
                raise TooMany(_("at most {limit} exports a minute; try again in {seconds} s",
                                limit=self.limit, seconds=format(wait, ".0f")))
            self._times.append(now)


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


def _query_checked(handler: Any, allowed: tuple[str, ...] = ()) -> Any:
    """``handler`` behind the query-parameter check; sync handlers stay sync (Starlette runs
    them in its thread pool, so a region build never blocks the event loop)."""
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def checked_async(request: Request) -> Response:
            refused = _refuse_query(request, allowed)
            return refused if refused is not None else await handler(request)

        return checked_async

    @functools.wraps(handler)
    def checked(request: Request) -> Response:
        refused = _refuse_query(request, allowed)
        return refused if refused is not None else handler(request)

    return checked


async def _on_input_error(request: Request, exc: Exception) -> Response:
    return _error(400, str(exc))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return _error(422, _validation_message(exc))


async def _on_unknown_plan(request: Request, exc: Exception) -> Response:
    return _error(404, f"no plan {exc.args[0] if exc.args else ''}")


async def _on_forbidden(request: Request, exc: Exception) -> Response:
    return _error(403, str(exc))


async def _on_too_large(request: Request, exc: Exception) -> Response:
    return _error(413, str(exc))


async def _on_too_many(request: Request, exc: Exception) -> Response:
    return _error(429, str(exc))


async def _on_internal_error(request: Request, exc: Exception) -> Response:
    print(f"herschik app: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


def _routes(state: AppState, token: str) -> list[Route | Mount]:
    """The reviewed routes (tests/test_app_api.py lists them) over ``state``."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8").replace(
        "<!--herschik-token-->", _TOKEN_META.format(token=token), 1)
    exports = _RateLimit(MAX_EXPORTS_PER_MINUTE)

    async def index(request: Request) -> Response:
        # never cached: the token is of this app process only
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    def meta(request: Request) -> Response:
        return JSONResponse(state.meta())

    def region_map(request: Request) -> Response:
        return JSONResponse(state.region_map(request.path_params["region_id"]))

    async def solve(request: Request) -> Response:
        body = await _json_body(request, required=True, token=token)
        solve_request = SolveRequest.model_validate(body)
        result = await run_in_threadpool(
            state.solve, solve_request.settings, solve_request.base_plan_id
        )
        return JSONResponse(result)

    def plans(request: Request) -> Response:
        return JSONResponse({"plans": state.plans()})

    def plan(request: Request) -> Response:
        return JSONResponse(state.plan_payload(state.plan(request.path_params["plan_id"])))

    def hospital_reasons(request: Request) -> Response:
        return JSONResponse(state.hospital_reasons(request.path_params["plan_id"],
                                                   request.path_params["site_id"]))

    def compare(request: Request) -> Response:
        try:
            a, b = int(request.query_params["a"]), int(request.query_params["b"])
        except (KeyError, ValueError):
            return _error(422, "compare needs two plan ids: ?a=ID&b=ID")
        return JSONResponse(state.compare(a, b))

    async def export(request: Request) -> Response:
        body = await _json_body(request, required=False, token=token)
        if body not in (None, {}):
            return _error(422, "export takes no parameters: the server chooses the folder")
        exports.take()
        result = await run_in_threadpool(state.export, request.path_params["plan_id"])
        return JSONResponse(result)

    return [
        Route("/", _query_checked(index)),
        Route("/api/meta", _query_checked(meta)),
        Route("/api/regions/{region_id}/map", _query_checked(region_map)),
        Route("/api/solve", _query_checked(solve), methods=["POST"]),
        Route("/api/plans", _query_checked(plans)),
        Route("/api/plans/{plan_id:int}", _query_checked(plan)),
        Route("/api/plans/{plan_id:int}/hospitals/{site_id}/reasons",
              _query_checked(hospital_reasons)),
        Route("/api/compare", _query_checked(compare, ("a", "b"))),
        Route("/api/plans/{plan_id:int}/export", _query_checked(export), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


class LanguageMiddleware:
    """Every request in the page's language: the cookie ``herschik_lang`` that the page's
    switch sets (``en`` or ``nl``), else the app's (``--lang``, the locale)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        lang = None
        for name, value in scope.get("headers", ()) if scope["type"] == "http" else ():
            if name == b"cookie":
                match = LANG_COOKIE.search(value)
                lang = match.group(1).decode() if match else lang
        if lang is None:
            await self.app(scope, receive, send)
            return
        with use_language(lang):
            await self.app(scope, receive, send)


class _BasicAuth:
    """Every request must carry ``password`` by HTTP Basic authentication (any user name)."""

    def __init__(self, app: Any, password: str) -> None:
        self.app, self.password = app, password.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"error": "this herschik app needs its --token as password"},
                                status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="herschik"'})
        await response(scope, receive, send)

    def _authorised(self, scope: Any) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            _, _, password = base64.b64decode(encoded, validate=True).partition(b":")
        except ValueError:
            return False
        return hmac.compare_digest(password, self.password)


def create_app(
    state: AppState, *, allowed_hosts: list[str] | None = None, token: str | None = None,
    password: str | None = None,
) -> Starlette:
    """The ASGI app over ``state``; ``allowed_hosts`` restricts the Host header (None: any).

    ``token``: the session token POSTs must carry (default: ``state.token``); ``password``:
    required of every request by HTTP Basic authentication (the app's ``--token``).
    """
    middleware = [Middleware(LanguageMiddleware)]
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    if password is not None:
        middleware.append(Middleware(_BasicAuth, password=password))
    return Starlette(
        routes=_routes(state, token or state.token),
        middleware=middleware,
        exception_handlers={
            Forbidden: _on_forbidden,
            TooLarge: _on_too_large,
            TooMany: _on_too_many,
            AppInputError: _on_input_error,
            ValidationError: _on_validation_error,
            UnknownPlan: _on_unknown_plan,
            Exception: _on_internal_error,
        },
    )


def is_loopback(host: str) -> bool:
    """Is ``host`` a loopback address or ``localhost``?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: shortest --token accepted for an app reachable from other machines
MIN_PASSWORD_LENGTH = 16


def allowed_hosts_for(host: str) -> list[str]:
    """Host header values the app accepts when bound to ``host``: loopback names, and for
    another address that address, this machine's names and its addresses."""
    allowed = [*LOOPBACK_HOSTS]
    if is_loopback(host):
        return allowed
    names = {host.strip("[]"), socket.gethostname(), socket.getfqdn()}
    try:
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    unspecified = {"0.0.0.0", "::", ""}
    return allowed + sorted(n for n in names if n and n not in unspecified)


def serve(state: AppState, *, host: str = "127.0.0.1", port: int = 8765,
          password: str | None = None) -> None:
    """Bind ``host:port`` (0: any free port), print the address, serve until interrupted.

    An address other than loopback needs ``password`` (the ``--token``; ValueError without
    one). Raises ``OSError`` when the address cannot be bound (e.g. the port is in use).
    """
    if not is_loopback(host) and (password is None or len(password) < MIN_PASSWORD_LENGTH):
        raise ValueError(f"--host {host} makes the app reachable from other machines: give "
                         f"--token PASSWORD (at least {MIN_PASSWORD_LENGTH} characters)")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    allowed = allowed_hosts_for(host)
    if not is_loopback(host):
        print(
            f"herschik app: warning: listening on {host}, reachable from other machines; "
            "every request needs the --token as password (plain HTTP: use a trusted network)",
            file=sys.stderr,
        )
    app = create_app(state, allowed_hosts=allowed,
                     password=None if is_loopback(host) else password)
    warm = threading.Thread(target=state.warm, name="herschik-app-warm", daemon=True)
    warm.start()
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
    print(f"herschik app: open http://{shown}:{bound_port}/ in a browser (Ctrl-C stops it)",
          flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        warm.join(timeout=120)  # never exit in the middle of a solve (HiGHS would abort)
