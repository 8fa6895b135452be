"""PNGs compressed in blocks of rows (geo/png_rows.py): valid files that Pillow and zlib decode
to the pixels given, the same bytes whether a kept image's changed rows are re-compressed or
the whole image is encoded, damaged entries refused; and a map's caption written over its
kept drawing with the pixels of savefig's map, also when the caption's rows are misjudged."""

from __future__ import annotations

import io
import random
import struct
import zlib

import numpy as np
import pytest
from herschik.geo import png_rows
from herschik.geo.png_rows import (
    ROWS_PER_BLOCK,
    adler32_combine,
    decode_rows,
    encode_rows,
    pack,
    png_bytes,
    reencode_rows,
    replace_rows,
    unpack,
)
from PIL import Image


def _decoded(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return np.asarray(image.convert("RGBA"))


def _idat(png: bytes) -> tuple[bytes, bytes]:
    """The IHDR data and the IDAT data of a PNG, each chunk's CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset:offset + 4])
        kind, data = png[offset + 4:offset + 8], png[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        chunks[kind] = data
        offset += 12 + length
    assert offset == len(png) and chunks[b"IEND"] == b""
    return chunks[b"IHDR"], chunks[b"IDAT"]


def _image(rng: np.random.Generator, height: int, width: int, opaque: bool) -> np.ndarray:
    # flat patches and noise, like a map: some compresses, some does not
    pixels = np.repeat(rng.integers(0, 256, (height, 1, 4), dtype=np.uint8), width, axis=1)
    noisy = rng.random((height, width)) < 0.2
    pixels[noisy] = rng.integers(0, 256, (int(noisy.sum()), 4), dtype=np.uint8)
    if opaque:
        pixels[..., 3] = 255
    return pixels


def test_adler32_combine_is_zlibs_over_the_concatenation() -> None:
    rng = random.Random(23)
    cases = [(b"", b""), (b"a", b""), (b"", b"b"), (b"\xff" * 100_000, b"\xfe" * 70_000),
             (b"\x00" * 65_521, b"\xff" * 65_521)]
    for _ in range(500):
        cases.append((rng.randbytes(rng.randrange(0, 300)),
                      rng.randbytes(rng.choice([0, 1, 5000, 65_520, 65_521, 65_522, 140_000]))))
    for first, second in cases:
        assert adler32_combine(zlib.adler32(first), zlib.adler32(second),
                               len(second)) == zlib.adler32(first + second)


@pytest.mark.parametrize("height,width,opaque", [
    (1, 1, True), (15, 3, True), (16, 7, False), (17, 5, True), (100, 33, False),
    (770, 924, True)])
def test_a_png_of_blocks_decodes_to_its_pixels(height: int, width: int, opaque: bool) -> None:
    pixels = _image(np.random.default_rng(height * width), height, width, opaque)
    blocks = encode_rows(pixels)
    assert blocks.channels == (3 if opaque else 4)
    assert len(blocks.pieces) == -(-height // ROWS_PER_BLOCK)
    png = png_bytes(blocks, dpi=110)
    assert np.array_equal(_decoded(png), pixels)
    header, stream = _idat(png)
    assert struct.unpack(">IIBBBBB", header) == (width, height, 8, 2 if opaque else 6, 0, 0, 0)
    raw = zlib.decompress(stream)  # checks the combined Adler-32 too
    assert len(raw) == height * (1 + width * blocks.channels)
    assert np.array_equal(decode_rows(blocks), pixels)
    with Image.open(io.BytesIO(png)) as image:
        assert round(image.info["dpi"][0]) == 110


def test_recompressing_the_changed_rows_gives_the_bytes_of_a_whole_encoding() -> None:
    rng = np.random.default_rng(7)
    for trial in range(40):
        height, width = int(rng.integers(1, 90)), int(rng.integers(1, 40))
        old = _image(rng, height, width, opaque=bool(trial % 3))
        kept = encode_rows(old)
        new = old.copy()
        for _ in range(int(rng.integers(0, 4))):
            row = int(rng.integers(0, height))
            new[row, int(rng.integers(0, width)), :3] ^= 0x5A
        if trial % 7 == 0:  # a transparent pixel in an opaque image: the colour type changes
            new[int(rng.integers(0, height)), 0, 3] = 10
        redone = reencode_rows(kept, old, new)
        assert png_bytes(redone) == png_bytes(encode_rows(new))
        assert np.array_equal(_decoded(png_bytes(redone)), new)
        first = int(rng.integers(0, len(kept.pieces)))
        band = new[first * ROWS_PER_BLOCK:(first + 2) * ROWS_PER_BLOCK]
        replaced = replace_rows(kept, first, band)
        expected = old.copy()
        expected[first * ROWS_PER_BLOCK:(first + 2) * ROWS_PER_BLOCK] = band
        if replaced is None:  # only when opaque rows would have to turn transparent
            assert kept.channels == 3 and (band[..., 3] != 255).any()
        else:
            assert np.array_equal(_decoded(png_bytes(replaced)), expected)
            if encode_rows(expected).channels == kept.channels:
                assert png_bytes(replaced) == png_bytes(encode_rows(expected))


def test_rows_that_do_not_fill_whole_blocks_are_refused() -> None:
    kept = encode_rows(_image(np.random.default_rng(1), 40, 8, opaque=True))
    with pytest.raises(ValueError):
        replace_rows(kept, 0, np.zeros((5, 8, 4), np.uint8))
    with pytest.raises(ValueError):
        replace_rows(kept, 2, np.zeros((16, 8, 4), np.uint8))  # past the last row
    assert replace_rows(kept, 2, np.full((8, 8, 4), 255, np.uint8)) is not None  # the last 8


def test_packed_blocks_round_trip_and_damage_is_refused() -> None:
    pixels = _image(np.random.default_rng(3), 50, 20, opaque=True)
    blocks = encode_rows(pixels)
    payload = pack(blocks)
    assert unpack(payload) == blocks
    for garbage in (None, b"", b"not a header\n", payload[:-1], payload + b"x",
                    b"50 20 5 4\n" + payload.split(b"\n", 1)[1]):
        assert unpack(garbage) is None
    # a flipped byte inside a piece: it does not inflate or its Adler-32 differs
    head, rest = payload.split(b"\n", 1)
    damaged = bytearray(rest)
    damaged[8 * len(blocks.pieces) + 3] ^= 0xFF
    broken = unpack(head + b"\n" + bytes(damaged))
    assert broken is not None
    with pytest.raises(ValueError):
        decode_rows(broken)


def test_a_caption_outside_the_rows_it_was_given_is_drawn_over_the_whole_map(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The caption's extent misjudged (said to be at the bottom): the check finds pixels
    drawn outside the rows taken and draws it again over the whole map; the pixels are those
    of savefig's map still."""
    from herschik.geo import map_drawing
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    body_pixels = np.full((770, 924, 4), 255, dtype=np.uint8)
    body_pixels[300:500, 100:800, :3] = (200, 30, 30)
    body = encode_rows(body_pixels)
    subtitle = "margin 20% · max travel 60 min · norm 20/yr · providers 5 → 3"
    right = map_drawing.map_png_with_caption(body, subtitle, dpi=110)
    monkeypatch.setattr(Text, "get_window_extent",
                        lambda self, renderer=None, dpi=None: Bbox([[0, 0], [10, 5]]))
    decoded = []
    real_decode = png_rows.decode_rows

    def counting(blocks: png_rows.RowBlocks, *args: int) -> np.ndarray:
        decoded.append(args)
        return real_decode(blocks, *args)

    monkeypatch.setattr(map_drawing, "decode_rows", counting)
    wrong_place = map_drawing.map_png_with_caption(body, subtitle, dpi=110)
    assert () in decoded  # the whole drawing was decoded: the fallback ran
    assert wrong_place == right
    caption_rows = np.flatnonzero((_decoded(right) != body_pixels).any(axis=(1, 2)))
    assert 0 < len(caption_rows) < 30 and caption_rows.max() < 100  # at the top, 8.5 pt
