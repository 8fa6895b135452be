"""``herschik app``: a local what-if planner in the browser.

``session`` holds the state (dataset, cached region instances, the plans solved so far) and
does every solve through :func:`herschik.scenarios.run.solve_verified`, the same verified solve
as ``herschik solve``; ``server`` exposes it as a small JSON API (Starlette, served by uvicorn)
next to the static page in ``static/`` (Leaflet is vendored there as package data).
"""
