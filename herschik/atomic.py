"""The one atomic writer: every file and result folder herschik writes is complete or absent.

* :func:`atomic_path` yields a hidden temporary name beside the target for writers that take a
  path (matplotlib, pyogrio, pyarrow, numpy); on success the file is fsynced, given the
  permissions of an ordinary new file (``0666 & ~umask``, i.e. 0644 under the usual umask) and
  renamed over the target, and the folder entry is fsynced. :func:`write_bytes`,
  :func:`write_text`, :func:`write_json` and :func:`write_csv` are built on it.
* Targets that are not regular files (``/dev/full``, a FIFO, a folder) are refused with
  :class:`~herschik.errors.OutputError`, never replaced.
* :func:`staged_dir` is the guarded folder writer of every command that writes a folder as a
  whole (``solve``, ``data export``, ``data import-volumes``, ``compare --out``, ``simulate``,
  the app's export): it writes beside the final place and swaps the folder in whole. It
  replaces only folders that herschik wrote for the same purpose (they hold the marker file
  :data:`MARKER` with that ``kind``) or empty ones, refuses a symbolic link, and holds
  :func:`output_lock` so that a second process writing the same folder fails at once instead
  of deleting the first one's staging folder.
* :func:`open_output_dir` is the same guard for a folder that grows file by file (a resumable
  ``sweep``): marker check, lock (the caller's), symlink refused; each file in it is written
  with :func:`atomic_path`.
* Files named by ``--out FILE`` (``matrix``, ``network build``) go through
  :func:`check_output_file` (regular file or new, never a symbolic link), :func:`output_lock`
  and :func:`atomic_path`.

Imports nothing of the project (beyond :mod:`herschik.errors`), so geo/ and scenarios/ share it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from herschik import __version__
from herschik.errors import EnvironmentProblem, HerschikError, OutputError

__all__ = [
    "MARKER",
    "atomic_path",
    "check_output_dir",
    "check_output_file",
    "folder_is_complete",
    "open_output_dir",
    "output_lock",
    "staged_dir",
    "write_binary",
    "write_bytes",
    "write_csv",
    "write_json",
    "write_text",
]

#: File inside every result folder herschik writes: who wrote it and which files it holds.
MARKER = ".herschik-run.json"
_STAGING = ".staging-"
_OLD = ".old-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems cannot open or fsync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _refuse_symlink(path: Path, flag: str) -> None:
    # Replacing a link would put a real file or folder where the user keeps a link (and
    # following it would write somewhere the command line does not name): refuse both.
    if path.is_symlink():
        raise OutputError(
            f"{flag} {path}: is a symbolic link; name the real folder or file instead"
        )


def check_output_file(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a Path if it is a new path or a regular file (not a symbolic link); else
    raise OutputError."""
    path = Path(path)
    _refuse_symlink(path, flag)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if path.parent.exists() and not path.parent.is_dir():
            raise OutputError(f"{flag} {path}: {path.parent} is not a folder") from None
        return path
    if stat.S_ISDIR(mode):
        raise OutputError(f"{flag} {path}: is a folder, expected a file name")
    if not stat.S_ISREG(mode):
        raise OutputError(f"{flag} {path}: exists and is not a regular file (device or FIFO)")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, flag: str = "--out") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success it replaces ``path``.

    The temporary name keeps the target's suffix, so writers that pick a format by extension
    (GeoPackage, PNG, Parquet) work. On an exception the temporary file is removed.
    """
    path = check_output_file(path, flag)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(tmp)
        problem = _environment_failure(error, path.parent)
        if problem is not None:
            raise EnvironmentProblem(f"{path}: {problem}") from error
        raise
    _fsync_dir(path.parent)


#: What writer libraries say when the disk is full or read-only without raising an OSError
#: (GDAL via pyogrio raises DataSourceError / FeatureError, SQLite "database or disk is full").
_DISK_WORDS = ("no space left", "disk is full", "disk full", "read-only file system",
               "quota exceeded", "input/output error")


def _environment_failure(error: BaseException, folder: Path) -> str | None:
    """Why a writer failed, when it is the disk's fault and the writer said so in words (an
    OSError is the environment's anyway, see errors.exit_code_for); else None."""
    if isinstance(error, (OSError, KeyboardInterrupt, SystemExit)) or isinstance(
        error, HerschikError
    ):
        return None
    text = " ".join(str(error).split()).lower()
    if any(word in text for word in _DISK_WORDS):
        return f"cannot write: {' '.join(str(error).split())[:200]}"
    with contextlib.suppress(OSError):
        if os.statvfs(folder).f_bavail == 0:
            return f"cannot write: the disk is full ({type(error).__name__})"
    return None


def write_bytes(path: str | Path, data: bytes, flag: str = "--out") -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, flag) as tmp, open(tmp, "xb") as handle:
        handle.write(data)


def write_binary(path: str | Path, write: Callable[[BinaryIO], None], flag: str = "--out") -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it into place.

    For binary outputs written by a library function (e.g. ``geo.network.save_network``).
    """
    with atomic_path(path, flag) as tmp, open(tmp, "xb") as handle:
        write(handle)


def write_text(path: str | Path, text: str, flag: str = "--out") -> None:
    """Write ``text`` (UTF-8, line ends as given) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"), flag)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: str | Path, data: Any, flag: str = "--out") -> None:
    """Valid JSON written atomically: NaN and infinities (not JSON) become ``null``."""
    text = json.dumps(_finite(data), indent=2, ensure_ascii=False, allow_nan=False)
    write_text(path, text + "\n", flag)


def write_csv(path: str | Path, frame: Any, flag: str = "--out") -> None:
    """CSV with a fixed float format and ``\\n`` line ends, so equal tables give equal bytes."""
    write_text(path, frame.to_csv(index=False, lineterminator="\n", float_format="%.6f"), flag)


# --- locks ------------------------------------------------------------------------------------

_HELD: dict[str, int] = {}


def _lock_file(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def output_lock(target: str | Path, flag: str = "--out") -> Iterator[None]:
    """Hold an exclusive lock on ``target`` (a result folder or file) while writing it.

    The lock is ``fcntl.flock`` on a file beside the target (``.<name>.lock``), so it works
    before the target exists and survives the folder being swapped; the kernel drops it when
    the process dies, and the file is removed on release. A second process fails at once with
    :class:`OutputError` (exit 2). Re-entrant within one process.
    """

    target = Path(target).absolute()
    key = str(target)
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = _lock_file(target)
    fd: int | None = None
    locked = False
    try:  # one try from the open on: a signal at any point still releases and removes the file
        while not locked:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputError(
                    f"{flag} {target}: another herschik process is writing it "
                    f"(lock {lock_path.name}); wait for it or choose another folder"
                ) from None
            # The holder before us may have removed the file after we opened it: lock the
            # file that is at the path now, not an unlinked one.
            try:
                locked = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except FileNotFoundError:
                locked = False
            if not locked:
                os.close(fd)
                fd = None
        assert fd is not None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[key] = 1
        yield
    finally:
        _HELD.pop(key, None)
        if locked:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
        if fd is not None:
            os.close(fd)
        if not locked:
            # a signal between creating the file and taking the lock left it behind
            _remove_unheld_lock(lock_path)


def _remove_unheld_lock(lock_path: Path) -> None:
    """Remove ``lock_path`` if no process holds it (a holder keeps its file)."""

    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # still the file at the path (a waiting process re-checks this after its own flock)
        if os.path.samestat(os.fstat(fd), os.stat(lock_path)):
            os.unlink(lock_path)
    except (BlockingIOError, FileNotFoundError):
        pass
    finally:
        os.close(fd)


# --- result folders -----------------------------------------------------------------------------


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("written_by") == "herschik" else None


def folder_is_complete(folder: str | Path) -> bool:
    """True if ``folder`` is a result folder herschik finished: its marker lists every file
    with its size, and all are there with those sizes."""
    folder = Path(folder)
    marker = _read_marker(folder)
    if marker is None or not isinstance(marker.get("files"), dict):
        return False
    for name, size in marker["files"].items():
        try:
            if (folder / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


#: What a marked folder holds; a folder is replaced only by a writer of the same kind.
FOLDER_KINDS = ("run", "sweep", "dataset", "comparison", "app-export", "simulation")


def _marker_kind(marker: dict[str, Any]) -> str:
    return str(marker.get("kind", "run"))  # markers written before kinds existed: run folders


def check_output_dir(final: str | Path, flag: str = "--out", *, kind: str = "run") -> Path:
    """Raise OutputError unless ``final`` is new, an empty folder, or a folder herschik wrote
    as a ``kind`` folder; a symbolic link is refused too."""
    final = Path(final)
    _refuse_symlink(final, flag)
    if not final.exists():
        if final.parent.exists() and not final.parent.is_dir():
            raise OutputError(f"{flag} {final}: {final.parent} is not a folder")
        return final
    if not final.is_dir():
        raise OutputError(f"{flag} {final}: exists and is not a folder")
    if not any(final.iterdir()):
        return final
    marker = _read_marker(final)
    if marker is None:
        # Never swap away a folder that is not ours (--out . or a folder of the user's files).
        raise OutputError(
            f"{flag} {final}: the folder exists and was not written by herschik (no {MARKER}); "
            "choose a new or empty folder"
        )
    if _marker_kind(marker) != kind:
        # e.g. `compare A B --out A` must not replace run A by a comparison
        raise OutputError(
            f"{flag} {final}: the folder holds a herschik {_marker_kind(marker)} folder, not a "
            f"{kind} folder; choose a new or empty folder"
        )
    return final


def _marker_data(kind: str, files: dict[str, int] | None) -> dict[str, Any]:
    if kind not in FOLDER_KINDS:
        raise ValueError(f"unknown folder kind {kind!r}")
    data: dict[str, Any] = {"written_by": "herschik", "version": __version__, "kind": kind}
    if files is not None:
        data["files"] = files
    return data


def _write_marker(staging: Path, kind: str) -> None:
    files = {}
    for path in sorted(staging.rglob("*")):
        if path.is_file() and path.name != MARKER:
            files[path.relative_to(staging).as_posix()] = path.stat().st_size
    write_json(staging / MARKER, _marker_data(kind, files))


def open_output_dir(
    final: str | Path, flag: str = "--out", *, kind: str,
    adopt: Callable[[Path], bool] | None = None,
) -> Path:
    """Create (or reopen) a folder that is written file by file, e.g. a resumable sweep.

    Call it while holding :func:`output_lock` on ``final``. ``final`` must be new, empty, or a
    ``kind`` folder herschik wrote (:func:`check_output_dir`); ``adopt(final)`` may accept an
    unmarked folder that herschik recognisably wrote before markers existed. The marker (without
    a file list: the folder is never "complete") is written first, so an interrupted first
    run is still recognised as ours.
    """
    final = Path(final)
    _refuse_symlink(final, flag)
    if not (final.is_dir() and _read_marker(final) is None and adopt is not None
            and adopt(final)):
        check_output_dir(final, flag, kind=kind)
    final.mkdir(parents=True, exist_ok=True)
    if _read_marker(final) is None:
        write_json(final / MARKER, _marker_data(kind, None))
    return final


@contextlib.contextmanager
def staged_dir(
    final: str | Path, flag: str = "--out", *, lock: bool = True, kind: str = "run"
) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it replaces ``final`` as a whole.

    ``final`` must be new, empty, or a ``kind`` folder herschik wrote (:func:`check_output_dir`;
    a symbolic link is refused). While
    the folder is written, :func:`output_lock` is held, so a second writer fails at once. On an
    exception (or a kill) only the hidden temporary folder is left, which the next run removes;
    ``final`` keeps its previous complete content until the rename. The marker file, listing
    every file written, is added last. ``lock=False`` when the caller holds a lock that covers
    ``final`` in another process (the runs of a sweep, under the sweep's lock).
    """
    final = Path(final)
    with output_lock(final, flag) if lock else contextlib.nullcontext():
        check_output_dir(final, flag, kind=kind)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Safe under the lock: no other process is writing beside this folder.
        for stale in final.parent.glob(f".{final.name}{_STAGING}*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in final.parent.glob(f".{final.name}{_OLD}*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}{_STAGING}", dir=final.parent))
        os.chmod(staging, 0o777 & ~_umask())
        try:
            yield staging
            _write_marker(staging, kind)
            _fsync_dir(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old = None
        if final.exists():
            old = final.parent / f".{final.name}{_OLD}{os.getpid()}"
            os.replace(final, old)
        os.replace(staging, final)
        _fsync_dir(final.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
