"""The JSON API and static page of ``herschik app`` (Starlette), served by uvicorn.

Routes (all JSON except the page and its static files):

* ``GET  /``                          the page (``static/index.html``)
* ``GET  /api/meta``                  regions, treatments, objectives, defaults
* ``GET  /api/regions/{region}/map``  simplified area polygons and hospitals (WGS84)
* ``POST /api/solve``                 ``{"settings": {...}, "base_plan_id": n}`` -> a plan, or
                                      the diagnosis of an infeasible change with the nearest
                                      feasible settings
* ``GET  /api/plans``                 the plans kept (headline numbers)
* ``GET  /api/plans/{id}``            one plan in full
* ``GET  /api/compare?a=ID&b=ID``     two plans side by side
* ``POST /api/plans/{id}/export``     plan.toml + result/ in a folder the server chooses

No route takes a file name or path: request bodies are validated with ``extra="forbid"``
models of ids and numbers, unknown query parameters are refused, and exports go below the
app's ``--out`` folder only. POSTs must be ``application/json`` (a plain HTML form of another
web page cannot trigger them), and the Host header must name this machine when bound to
loopback (against DNS rebinding).
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import json
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .session import AppInputError, AppState, PlanSettings, UnknownPlan

STATIC_DIR = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]
#: largest request body accepted (a plan's settings are a few kB)
MAX_BODY_BYTES = 1_000_000


class SolveRequest(BaseModel):
    """Body of ``POST /api/solve``."""

    model_config = ConfigDict(extra="forbid")
    settings: PlanSettings
    base_plan_id: int | None = Field(None, ge=1)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _refuse_query(request: Request, allowed: tuple[str, ...] = ()) -> JSONResponse | None:
    extra = sorted(set(request.query_params) - set(allowed))
    if extra:
        return _error(422, f"unknown query parameter(s): {', '.join(extra)}")
    return None


async def _json_body(request: Request, *, required: bool) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise AppInputError("request body too large")
    if not body.strip():
        if required:
            raise AppInputError("a JSON body is required")
        return None
    if content_type != "application/json":
        raise AppInputError("the body must be application/json")
    try:
        return json.loads(body)
    except ValueError as error:
        raise AppInputError(f"the body is not JSON: {error}") from None


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


async def _on_internal_error(request: Request, exc: Exception) -> Response:
    print(f"herschik app: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


def _routes(state: AppState) -> list[Route | Mount]:
    """The reviewed routes (tests/test_app_api.py lists them) over ``state``."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    def meta(request: Request) -> Response:
        return JSONResponse(state.meta())

    def region_map(request: Request) -> Response:
        return JSONResponse(state.region_map(request.path_params["region_id"]))

    async def solve(request: Request) -> Response:
        body = await _json_body(request, required=True)
        solve_request = SolveRequest.model_validate(body)
        result = await run_in_threadpool(
            state.solve, solve_request.settings, solve_request.base_plan_id
        )
        return JSONResponse(result)

    def plans(request: Request) -> Response:
        return JSONResponse({"plans": state.plans()})

    def plan(request: Request) -> Response:
        return JSONResponse(state.plan_payload(state.plan(request.path_params["plan_id"])))

    def compare(request: Request) -> Response:
        try:
            a, b = int(request.query_params["a"]), int(request.query_params["b"])
        except (KeyError, ValueError):
            return _error(422, "compare needs two plan ids: ?a=ID&b=ID")
        return JSONResponse(state.compare(a, b))

    async def export(request: Request) -> Response:
        body = await _json_body(request, required=False)
        if body not in (None, {}):
            return _error(422, "export takes no parameters: the server chooses the folder")
        result = await run_in_threadpool(state.export, request.path_params["plan_id"])
        return JSONResponse(result)

    return [
        Route("/", _query_checked(index)),
        Route("/api/meta", _query_checked(meta)),
        Route("/api/regions/{region_id}/map", _query_checked(region_map)),
        Route("/api/solve", _query_checked(solve), methods=["POST"]),
        Route("/api/plans", _query_checked(plans)),
        Route("/api/plans/{plan_id:int}", _query_checked(plan)),
        Route("/api/compare", _query_checked(compare, ("a", "b"))),
        Route("/api/plans/{plan_id:int}/export", _query_checked(export), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]


def create_app(state: AppState, *, allowed_hosts: list[str] | None = None) -> Starlette:
    """The ASGI app over ``state``; ``allowed_hosts`` restricts the Host header (None: any)."""
    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(
        routes=_routes(state),
        middleware=middleware,
        exception_handlers={
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


def serve(state: AppState, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Bind ``host:port`` (0: any free port), print the address, serve until interrupted.

    Raises ``OSError`` when the address cannot be bound (e.g. the port is in use).
    """
    import uvicorn

    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    allowed = None
    if is_loopback(host):
        allowed = [*LOOPBACK_HOSTS]
    else:
        print(
            f"herschik app: warning: listening on {host}, reachable from other machines",
            file=sys.stderr,
        )
    app = create_app(state, allowed_hosts=allowed)
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
