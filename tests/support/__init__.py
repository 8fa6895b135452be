"""Helpers shared by the test suite (a plain package; tests/conftest.py holds only fixtures).

- ``paths``: the checkout's folders (repository root, tests/data, the example dataset).
- ``instances``: the one random-instance generator (``random_instance``) of the exact-algorithm
  tests, with its profiles.
- ``bruteforce``: an independent reference solver that enumerates every keep set of tiny
  instances (scipy linprog / milp), ``compare`` and ``assert_matches``.
- ``hand_result``: a small hand-built solved run (no solver) for the output tests.
- ``report_html``: report.html parsed into headings, tables and images.
- ``chromium``: Debian's headless Chromium, run with its own profile.
"""
