"""``herschik app``: a local what-if planner in the browser.

``session`` holds the state (dataset, cached region instances, the plans solved so far) and
does every solve as ``herschik solve`` does (one what-if session per region, then
:func:`herschik.scenarios.run.verified_result`); ``models`` are the requests it accepts
(derived from SolveParams), ``views`` the JSON it answers, ``nearest`` the diagnosis and
nearest feasible settings of a change without a (complete) plan, ``export`` the scenario file
and ``herschik solve`` run on it. ``server`` exposes it as a small JSON API (Starlette, served
by uvicorn) next to the static page in ``static/`` (Leaflet is vendored there as package data).
"""
