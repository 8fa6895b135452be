"""Atomic file and folder writes (implemented in :mod:`herschik.atomic`, shared with geo/)."""

from __future__ import annotations

from herschik.atomic import (
    MARKER,
    atomic_path,
    check_output_dir,
    check_output_file,
    folder_is_complete,
    output_lock,
    staged_dir,
    write_binary,
    write_bytes,
    write_csv,
    write_json,
    write_text,
)

__all__ = [
    "MARKER",
    "atomic_path",
    "check_output_dir",
    "check_output_file",
    "folder_is_complete",
    "output_lock",
    "staged_dir",
    "write_binary",
    "write_bytes",
    "write_csv",
    "write_json",
    "write_text",
]
