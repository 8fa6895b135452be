"""The on-disk cache of what herschik derives from the data (validated datasets, region
instances, the regions table, rendered maps), so that a command does not redo it every run.

Every entry is keyed by the identity of what it was derived from: the bytes of the input files
(:func:`folder_digest`), the bytes of herschik's own source code and the versions of the
libraries whose objects it stores (:func:`code_digest`), plus what the caller adds (a region,
a network file's digest, ...). Change any of them and the key changes; nothing is ever
invalidated by hand. An entry whose key holds everything it is made from (a map: every value
drawn) names the modules that make it (``entry_key(..., code=...)``): its key then hashes only
the source of those modules and of every herschik module they import, directly or not
(:func:`modules_digest`), so a change elsewhere in herschik (the solver, say) keeps it.

An entry is ``MAGIC``, the SHA-256 of the payload, a newline and the payload; it is written
atomically (:mod:`herschik.atomic`) and its checksum is verified on every read. A missing,
truncated, corrupt or unreadable entry is rebuilt and rewritten, never trusted and never fatal;
a cache that cannot be written (read-only home, full disk) only costs the rebuild.

The folder is ``$HERSCHIK_CACHE_DIR``, else ``$XDG_CACHE_HOME/herschik``, else
``~/.cache/herschik``; ``HERSCHIK_CACHE=off`` turns the derived-data cache off (everything is
rebuilt, nothing written). The folder is kept under ``$HERSCHIK_CACHE_MAX_MB`` megabytes
(default 1024): after its first write a process removes the least recently used entries
(a hit refreshes an entry's time) until the rest fill at most 80% of it. Imports nothing
heavy: ``herschik regions`` reads it before pandas is loaded.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import pickle
import re
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import TypeVar

from herschik.atomic import write_bytes
from herschik.errors import OutputError

__all__ = [
    "cache_dir",
    "cache_enabled",
    "cached",
    "code_digest",
    "entry_key",
    "file_digest",
    "folder_digest",
    "library_versions",
    "module_closure",
    "modules_digest",
    "prune",
    "read_entry",
    "write_entry",
]

T = TypeVar("T")

MAGIC = b"HERSCHIK-DERIVED-CACHE 1\n"
DEFAULT_MAX_MB = 1024.0
#: Libraries whose objects are pickled into entries (a new version rebuilds them).
_PICKLED_LIBRARIES = ("numpy", "pandas", "geopandas", "shapely")
_DIGEST_HEX = 64
#: herschik's packages (pyproject's package-dir maps each to its own top-level folder)
_PACKAGES = ("herschik", "herschik.geo", "herschik.optimiser", "herschik.scenarios")
#: the data files read by a module (part of the digest of any closure that holds it)
_MODULE_DATA = {"herschik.i18n": ("locale",)}
# ``from X import a, b`` (also over parenthesised lines) and ``import X, Y as Z``, indented
# or not: the imports inside functions count too
_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(?P<source>\.*[\w.]*)[ \t]+import[ \t]+"
                     r"(?P<names>\([^)]*\)|[^\n]+)|import[ \t]+(?P<modules>[^\n]+))",
                     re.MULTILINE)


def cache_dir() -> Path:
    """The on-disk cache: ``$HERSCHIK_CACHE_DIR``, else ``$XDG_CACHE_HOME/herschik``, else
    ``~/.cache/herschik``."""
    env = os.environ.get("HERSCHIK_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "herschik"


def cache_enabled() -> bool:
    """False when ``HERSCHIK_CACHE`` is ``off`` / ``0`` / ``no`` (rebuild everything)."""
    return os.environ.get("HERSCHIK_CACHE", "").strip().lower() not in ("off", "0", "no")


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of herschik's source files and of the pickled libraries' versions.

    Derived data depend on the code that derived them; hashing the sources (about 80 files,
    a few milliseconds) is sturdier than a version number that a checkout does not bump.
    """
    digest = hashlib.sha256(b"herschik-code")
    for package in ("herschik", "herschik.geo", "herschik.optimiser", "herschik.scenarios"):
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(folder).rglob("*.py")):
                digest.update(f"{package}/{path.relative_to(folder).as_posix()}\n".encode())
                digest.update(path.read_bytes())
    for version in library_versions(*_PICKLED_LIBRARIES):
        digest.update(f"{version}\n".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _module_files() -> dict[str, Path]:
    """Every herschik module's name and source file (``__init__.py`` for a package)."""
    files: dict[str, Path] = {}
    for package in _PACKAGES:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(folder).rglob("*.py")):
                parts = path.relative_to(folder).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                files.setdefault(".".join((package, *parts)), path)
    return files


def _imported_modules(module: str, source: str, known: dict[str, Path],
                      top_level_only: bool = False) -> dict[str, bool]:
    """The herschik modules that ``module``'s source imports: name -> whether the importer
    uses the module itself (True) or only runs it as the parent package of what it imports
    (False: its ``__init__`` runs, not the functions it defines). Dynamic imports
    (``importlib``) are not followed; ``top_level_only``: the imports at the top level only
    (what running the module does; not those of its functions or TYPE_CHECKING blocks)."""
    is_package = known.get(module, Path()).name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: dict[str, bool] = {}

    def add(target: str, used: bool) -> None:
        if target in known:
            found[target] = found.get(target, False) or used
        parent = target.rpartition(".")[0]
        while parent:  # the parent packages run, their contents are not used
            if parent in known:
                found.setdefault(parent, False)
            parent = parent.rpartition(".")[0]

    for match in _IMPORT.finditer(source):
        if top_level_only and match.group(0)[:1] in (" ", "\t"):
            continue
        if match["modules"] is not None:
            # a trailing comment is not part of the last name (``import x  # why``)
            for name in match["modules"].split("#", 1)[0].split(","):
                add(name.split(" as ")[0].strip(), True)
            continue
        base = match["source"]
        if base.startswith("."):  # relative: from the module's package upwards
            dots = len(base) - len(base.lstrip("."))
            anchor = package.rsplit(".", dots - 1)[0] if dots > 1 else package
            base = anchor + ("." + base.lstrip(".") if base.lstrip(".") else "")
        names = re.sub(r"#[^\n]*", "", match["names"]).strip("() \n\t")
        for name in (n.split(" as ")[0].strip() for n in names.split(",") if n.strip()):
            if f"{base}.{name}" in known:  # a submodule: the package only runs
                add(f"{base}.{name}", True)
                add(base, False)
            else:  # a name defined in the module: the module is used
                add(base, True)
    return found


@functools.cache
def module_closure(*modules: str) -> tuple[str, ...]:
    """``modules`` and every herschik module they import, directly or through others (sorted).

    Static: every ``import`` statement of a used module counts, also inside a function (a
    lazy import), so the closure holds every module the code can run; a package's
    ``__init__`` adds its top-level imports only (what importing it runs; herschik's own holds
    the library's lazy names and convenience functions, which no derived entry calls). A name
    not in herschik is a library (its version is the caller's to key on).
    """
    known = _module_files()
    unknown = [name for name in modules if name not in known]
    if unknown:
        raise ValueError(f"not a herschik module: {', '.join(unknown)}")
    used: dict[str, bool] = {}
    todo = [(name, True) for name in modules]
    while todo:
        name, is_used = todo.pop()
        if name in used and (used[name] or not is_used):
            continue
        used[name] = is_used
        source = known[name].read_text(encoding="utf-8")
        # a package's __init__ (herschik's own: the library's lazy names, two convenience
        # functions) adds its top-level imports only: what importing it runs
        package = known[name].name == "__init__.py"
        todo.extend(_imported_modules(name, source, known,
                                      top_level_only=package or not is_used).items())
    return tuple(sorted(used))


@functools.cache
def modules_digest(*modules: str) -> str:
    """SHA-256 of the source of ``modules`` and of their :func:`module_closure` (with the data
    files such a module reads: the Dutch catalog of :mod:`herschik.i18n`) and of the pickled
    libraries' versions: the code digest of an entry that only these modules make."""
    known = _module_files()
    digest = hashlib.sha256(b"herschik-modules")
    for name in module_closure(*modules):
        digest.update(f"{name}\n".encode())
        digest.update(known[name].read_bytes())
        for folder in _MODULE_DATA.get(name, ()):
            for path in sorted((known[name].parent / folder).rglob("*")):
                if path.is_file():
                    digest.update(f"{name}:{path.name}\n".encode())
                    digest.update(path.read_bytes())
    for version in library_versions(*_PICKLED_LIBRARIES):
        digest.update(f"{version}\n".encode())
    return digest.hexdigest()


def folder_digest(folder: str | Path) -> str:
    """SHA-256 over the names and bytes of the regular files directly inside ``folder``.

    The identity of a dataset folder: any edit, added or removed file changes it.
    """
    folder = Path(folder)
    digest = hashlib.sha256(b"herschik-folder")
    for path in sorted(folder.iterdir()):
        if path.is_file():
            digest.update(f"{path.name}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def file_digest(path: str | Path) -> str:
    """SHA-256 of one file's bytes (read in blocks: a national network file is large)."""
    digest = hashlib.sha256(b"herschik-file")
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def library_versions(*libraries: str) -> tuple[str, ...]:
    """``name==version`` of each installed library (``name absent`` when it is not): part of
    the key of entries whose bytes a library decides (drawing, writing, solving)."""
    versions = []
    for library in libraries:
        try:
            versions.append(f"{library}=={metadata.version(library)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{library} absent")
    return tuple(versions)


def entry_key(kind: str, parts: Iterable[str], code: tuple[str, ...] | None = None) -> str:
    """The key of an entry: ``kind`` plus the SHA-256 of the code digest and ``parts``.

    ``code``: the modules that make the entry from ``parts`` (their :func:`modules_digest`
    stands for herschik's code); None (the default): all of herschik's code."""
    digest = hashlib.sha256((code_digest() if code is None else modules_digest(*code))
                            .encode())
    for part in parts:
        digest.update(b"\0" + str(part).encode())
    return f"{kind}/{digest.hexdigest()}"


def _path(key: str) -> Path:
    return cache_dir() / "derived" / f"{key}.bin"


def read_entry(key: str) -> bytes | None:
    """The payload stored under ``key``, or None when absent or failing its checksum."""
    if not cache_enabled():
        return None
    try:
        data = _path(key).read_bytes()
    except OSError:
        return None
    head = len(MAGIC)
    if not data.startswith(MAGIC) or len(data) < head + _DIGEST_HEX + 1:
        return None
    stored = data[head:head + _DIGEST_HEX]
    payload = data[head + _DIGEST_HEX + 1:]
    if hashlib.sha256(payload).hexdigest().encode() != stored:
        return None
    with contextlib.suppress(OSError):
        os.utime(_path(key))  # recently used: kept longest by the size limit
    return payload


def write_entry(key: str, payload: bytes) -> None:
    """Store ``payload`` under ``key`` (atomically); a cache that cannot be written is skipped."""
    if not cache_enabled():
        return
    blob = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    try:
        write_bytes(_path(key), blob, flag="cache")
    except (OSError, OutputError):
        return
    if not _PRUNED:
        _PRUNED.append(True)
        prune()


_PRUNED: list[bool] = []  # pruned once per process (a listing of the folder)


def _max_bytes() -> float:
    try:
        return float(os.environ.get("HERSCHIK_CACHE_MAX_MB", DEFAULT_MAX_MB)) * 1e6
    except ValueError:
        return DEFAULT_MAX_MB * 1e6


def prune(max_bytes: float | None = None) -> int:
    """Remove least recently used entries while the derived cache exceeds ``max_bytes``
    (default ``$HERSCHIK_CACHE_MAX_MB``), down to 80% of it; returns the entries removed."""
    limit = _max_bytes() if max_bytes is None else max_bytes
    entries = []
    for path in (cache_dir() / "derived").glob("*/*.bin"):
        with contextlib.suppress(OSError):
            info = path.stat()
            entries.append((info.st_mtime, info.st_size, path))
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return 0
    removed = 0
    for _, size, path in sorted(entries, key=lambda entry: entry[0]):
        if total <= 0.8 * limit:
            break
        with contextlib.suppress(OSError):
            path.unlink()
            total -= size
            removed += 1
    return removed


def cached(key: str, build: Callable[[], T]) -> T:
    """The object stored under ``key`` (pickled), or ``build()`` stored there and returned.

    An entry that fails its checksum or cannot be unpickled is rebuilt and overwritten. The
    cache folder is the user's own (like ``~/.cache`` for any tool), so its pickles are trusted
    once their checksum matches.
    """
    payload = read_entry(key)
    if payload is not None:
        try:
            return pickle.loads(payload)
        except Exception:  # a corrupt or incompatible entry: rebuild it, never fail on it
            pass
    value = build()
    write_entry(key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return value

