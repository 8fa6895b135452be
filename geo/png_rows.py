"""PNG images compressed in independent blocks of rows, so a change to a few rows (a map's
caption written over its kept drawing) re-compresses those rows only.

A PNG's pixels are one zlib stream. Here each block of :data:`ROWS_PER_BLOCK` rows is deflated
by a fresh compressor and ended by a sync flush (a byte-aligned empty stored block), so the
blocks are independent pieces of one valid deflate stream (pigz's parallel method); the
stream's Adler-32 is combined from the blocks' own (:func:`adler32_combine`, zlib's
``adler32_combine``). Rows are not filtered (PNG filter type 0: no row depends on another)
and opaque images are written as RGB: on the maps that is smaller than Pillow's adaptive
filtering over RGBA at the same level (about 120 KB against 155 KB) and as fast to encode.

The bytes depend on the pixels alone (and the zlib version): a block is compressed from its
own rows only, so re-encoding the changed blocks of a kept image gives exactly the bytes of
encoding the new image whole (tests/geo/test_png_rows.py). Pillow or any PNG reader decodes
them to the same pixels.

Why not Pillow: it encodes a whole image at once; 20 maps of a new scenario, re-encoded whole
for a changed caption, were ~0.75 s of zlib (docs/decisions/speed.md).
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np

#: rows per independently compressed block (16 map rows: ~44 KB of RGB, more than deflate's
#: 32 KB window, so the blocks compress nearly as well as one stream)
ROWS_PER_BLOCK = 16
#: zlib's default level: the maps' files ~120 KB; level 1 encodes ~2.5x faster but ~15 % larger
LEVEL = 6
_ADLER_BASE = 65521
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: a final, empty deflate block (fixed Huffman codes, end-of-block only): closes the stream
_FINAL_BLOCK = b"\x03\x00"


@dataclasses.dataclass(frozen=True)
class RowBlocks:
    """An image as deflated blocks of rows: ``pieces[i]`` holds rows ``i * ROWS_PER_BLOCK``
    onwards (each row a filter byte 0 and its pixels), ``adlers[i]`` their Adler-32."""

    height: int
    width: int
    channels: int  # 3 (RGB, every pixel opaque) or 4 (RGBA)
    pieces: tuple[bytes, ...]
    adlers: tuple[int, ...]


def encode_rows(pixels: np.ndarray, level: int = LEVEL) -> RowBlocks:
    """``pixels`` (height x width x 4 RGBA, uint8) compressed block by block."""
    height, width, channels, rows = _rows(pixels)
    blocks = [_deflate_block(rows, start, level)
              for start in range(0, height, ROWS_PER_BLOCK)]
    return RowBlocks(height, width, channels, tuple(p for p, _ in blocks),
                     tuple(a for _, a in blocks))


def reencode_rows(kept: RowBlocks, old: np.ndarray, new: np.ndarray,
                  level: int = LEVEL) -> RowBlocks:
    """``new`` encoded by re-compressing only the blocks of ``kept`` (the encoding of ``old``)
    whose rows differ: the same bytes as :func:`encode_rows` of ``new``."""
    if old.shape != new.shape or new.shape[:2] != (kept.height, kept.width):
        return encode_rows(new, level)
    changed = np.unique(np.flatnonzero((old != new).any(axis=(1, 2))) // ROWS_PER_BLOCK)
    if not len(changed):
        return kept
    first, last = int(changed[0]), int(changed[-1])
    band = new[first * ROWS_PER_BLOCK:(last + 1) * ROWS_PER_BLOCK]
    return replace_rows(kept, first, band, level) or encode_rows(new, level)


def replace_rows(kept: RowBlocks, first_block: int, pixels: np.ndarray,
                 level: int = LEVEL) -> RowBlocks | None:
    """``kept`` with the rows from block ``first_block`` on replaced by ``pixels`` (RGBA, whole
    blocks, or up to the last row), those blocks re-compressed: the bytes of
    :func:`encode_rows` of the whole new image. None when the new rows need another colour
    type (an RGB image whose new rows are not opaque): encode the whole image then."""
    start = first_block * ROWS_PER_BLOCK
    if (pixels.shape[1] != kept.width or start + pixels.shape[0] > kept.height
            or (pixels.shape[0] % ROWS_PER_BLOCK and start + pixels.shape[0] != kept.height)):
        raise ValueError(f"rows {start}+{pixels.shape[0]} do not fit blocks of "
                         f"{kept.height} x {kept.width}")
    _, _, channels, rows = _rows(pixels)
    if channels != kept.channels and not (channels == 3 and kept.channels == 4):
        return None
    if channels != kept.channels:  # opaque new rows in an RGBA image stay RGBA
        rows = np.zeros((len(pixels), 1 + kept.width * 4), dtype=np.uint8)
        rows[:, 1:] = pixels.reshape(len(pixels), -1)
    pieces, adlers = list(kept.pieces), list(kept.adlers)
    for offset in range(0, len(rows), ROWS_PER_BLOCK):
        block = first_block + offset // ROWS_PER_BLOCK
        pieces[block], adlers[block] = _deflate_block(rows, offset, level)
    return RowBlocks(kept.height, kept.width, kept.channels, tuple(pieces), tuple(adlers))


def png_bytes(blocks: RowBlocks, dpi: float | None = None) -> bytes:
    """The PNG file: IHDR, pHYs (when ``dpi``, as Pillow writes it), one IDAT, IEND."""
    colour_type = 2 if blocks.channels == 3 else 6
    header = struct.pack(">IIBBBBB", blocks.width, blocks.height, 8, colour_type, 0, 0, 0)
    checksum = 1
    for piece_adler, length in zip(blocks.adlers, _block_lengths(blocks), strict=True):
        checksum = adler32_combine(checksum, piece_adler, length)
    # zlib header 78 9c: deflate, 32 KB window, default level (the level does not change it
    # for a decoder)
    stream = b"".join((b"\x78\x9c", *blocks.pieces, _FINAL_BLOCK, struct.pack(">I", checksum)))
    chunks = [_chunk(b"IHDR", header)]
    if dpi is not None:
        per_metre = int(dpi / 0.0254 + 0.5)
        chunks.append(_chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)))
    chunks += [_chunk(b"IDAT", stream), _chunk(b"IEND", b"")]
    return _SIGNATURE + b"".join(chunks)


def decode_rows(blocks: RowBlocks, first_block: int = 0,
                last_block: int | None = None) -> np.ndarray:
    """The RGBA pixels (rows x width x 4, uint8) of blocks ``first_block`` to ``last_block``
    (default: all); ValueError when they are damaged (a piece that does not inflate, the
    wrong length, another Adler-32)."""
    last_block = len(blocks.pieces) - 1 if last_block is None else last_block
    row = 1 + blocks.width * blocks.channels
    lengths = _block_lengths(blocks)
    parts = []
    for block in range(first_block, last_block + 1):
        try:
            data = zlib.decompressobj(-15).decompress(blocks.pieces[block])
        except zlib.error as error:
            raise ValueError(f"damaged block {block}: {error}") from None
        if len(data) != lengths[block] or zlib.adler32(data) != blocks.adlers[block]:
            raise ValueError(f"damaged block {block}")
        parts.append(data)
    raw = b"".join(parts)
    count = len(raw) // row
    pixels = np.frombuffer(raw, dtype=np.uint8).reshape(count, row)[:, 1:].reshape(
        count, blocks.width, blocks.channels)
    if blocks.channels == 4:
        return pixels.copy()
    opaque = np.full((count, blocks.width, 4), 255, dtype=np.uint8)
    opaque[..., :3] = pixels
    return opaque


def pack(blocks: RowBlocks) -> bytes:
    """``blocks`` as bytes (a header line, the pieces' lengths and Adler-32s, the pieces)."""
    head = " ".join(str(n) for n in (blocks.height, blocks.width, blocks.channels,
                                     len(blocks.pieces))).encode() + b"\n"
    table = struct.pack(f">{2 * len(blocks.pieces)}I",
                        *(n for piece, adler in zip(blocks.pieces, blocks.adlers, strict=True)
                          for n in (len(piece), adler)))
    return head + table + b"".join(blocks.pieces)


def unpack(payload: bytes | None) -> RowBlocks | None:
    """The blocks of :func:`pack`, or None for anything else (damaged, another format)."""
    if payload is None:
        return None
    try:
        head, rest = payload.split(b"\n", 1)
        height, width, channels, count = (int(n) for n in head.split())
        table = struct.unpack(f">{2 * count}I", rest[:8 * count])
    except (ValueError, struct.error):
        return None
    if channels not in (3, 4) or count != -(-height // ROWS_PER_BLOCK) or height <= 0:
        return None
    pieces, offset = [], 8 * count
    for length in table[0::2]:
        pieces.append(rest[offset:offset + length])
        offset += length
    if offset != len(rest):
        return None
    return RowBlocks(height, width, channels, tuple(pieces), tuple(table[1::2]))


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings one after the other, from each one's Adler-32 and the
    second's length (zlib's ``adler32_combine``, which Python's zlib does not expose)."""
    remainder = second_length % _ADLER_BASE
    low = first & 0xFFFF
    high = (remainder * low) % _ADLER_BASE
    low = (low + (second & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    high = (high + (first >> 16) + (second >> 16) + _ADLER_BASE - remainder) % _ADLER_BASE
    return low | (high << 16)


def _rows(pixels: np.ndarray) -> tuple[int, int, int, np.ndarray]:
    """Height, width, channels and the PNG rows (filter byte 0, then the pixels)."""
    if pixels.ndim != 3 or pixels.shape[2] != 4 or pixels.dtype != np.uint8:
        raise ValueError(f"RGBA uint8 pixels expected, not {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    channels = 3 if bool((pixels[..., 3] == 255).all()) else 4
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)
    rows[:, 1:] = pixels[..., :channels].reshape(height, width * channels)
    return height, width, channels, rows


def _deflate_block(rows: np.ndarray, start: int, level: int) -> tuple[bytes, int]:
    data = rows[start:start + ROWS_PER_BLOCK].tobytes()
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH), zlib.adler32(data)


def _block_lengths(blocks: RowBlocks) -> list[int]:
    row = 1 + blocks.width * blocks.channels
    return [row * min(ROWS_PER_BLOCK, blocks.height - start)
            for start in range(0, blocks.height, ROWS_PER_BLOCK)]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
