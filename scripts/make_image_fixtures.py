#!/usr/bin/env python3
"""Writes Tests/Fixtures/images/: small JPEG/PNG files of every supported kind, the pixels
Pillow decodes from them, Pillow's bilinear resizes, torchvision preprocessing outputs, and bad
inputs. The Swift ImagingTests compare against these; CI never needs Python.

    /tmp/venv/bin/python scripts/make_image_fixtures.py

Deterministic: fixed seeds, and Pillow / imagecodecs produce the same bytes run to run.
Needs pillow, numpy, torch, torchvision and imagecodecs (only for the YCCK and RGB-coded JPEGs,
which Pillow cannot write).

The oracle for a file's pixels is   ImageOps.exif_transpose(Image.open(f)).convert("RGB")
and for a resize                     Image.resize((w, h), Image.BILINEAR)  on an RGB image.
One deliberate exception: 16-bit gray PNGs. Pillow opens them as mode "I;16" and its RGB
conversion clips every value above 255 (a 16-bit gray photo turns white); the decoder keeps the
high byte of every 16-bit sample instead, v >> 8, as it does for 16-bit gray+alpha, RGB and
RGBA (where Pillow agrees), so those expected pixels are computed here (`high_byte_rgb`).

Everything pixel-like is stored raw: `.rgb` = height × width × 3 bytes, `.f32` = little-endian
float32 in C order. manifest.json lists every case with its shape.

PNGs are written by the small encoder below rather than by Pillow, because Pillow cannot write
2/4-bit gray, 16-bit RGB/RGBA/gray+alpha or interlaced PNGs; every row filter type is used.
"""
import io
import json
import re
import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image, ImageOps

OUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "images"
MANIFEST = {"decode": [], "resize": [], "preprocess": [], "bad": []}


# --------------------------------------------------------------------------- sources

def scene(width, height, seed):
    """An RGB test picture: gradients, a disc, hard edges and noise (so rounding matters)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = x * 255 / max(width - 1, 1)
    g = y * 255 / max(height - 1, 1)
    b = np.where((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.3) ** 2, 230.0, 25.0)
    b = np.where(((x // 5) + (y // 5)) % 2 == 0, b, 255 - b)
    img = np.stack([r, g, b], axis=-1) + rng.integers(-24, 25, size=(height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def samples(height, width, channels, depth, seed):
    """Random-ish samples of a bit depth, with smooth structure plus noise."""
    rng = np.random.default_rng(seed)
    top = (1 << depth) - 1
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 7 + y * 13)[..., None] + np.arange(channels) * 40
    noise = rng.integers(0, top + 1, size=(height, width, channels))
    values = (base * top // (7 * width + 13 * height + 120) + noise) % (top + 1)
    return values.astype(np.uint16 if depth == 16 else np.uint8)


# --------------------------------------------------------------------------- PNG encoder

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(row, depth):
    """One row of samples (1-D array) → bytes at `depth` bits, MSB first, 16-bit big-endian."""
    if depth == 16:
        return row.astype(">u2").tobytes()
    if depth == 8:
        return row.astype(np.uint8).tobytes()
    per_byte = 8 // depth
    padded = np.zeros(-(-len(row) // per_byte) * per_byte, dtype=np.uint8)
    padded[: len(row)] = row
    out = np.zeros(len(padded) // per_byte, dtype=np.uint8)
    for i in range(per_byte):
        out |= padded[i::per_byte] << (8 - depth * (i + 1))
    return out.tobytes()


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filter_row(kind, raw, prev, bpp):
    out = bytearray([kind])
    for i, value in enumerate(raw):
        a = raw[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((value - predictor) & 0xFF)
    return bytes(out)


def encode_png(pixels, color_type, depth, palette=None, trns=None, interlace=False, exif=None, text=None):
    """pixels: H×W×C sample array. Returns PNG bytes. Filters cycle None/Sub/Up/Average/Paeth."""
    height, width, channels = pixels.shape
    bpp = max(1, channels * depth // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    stream = bytearray()
    row_number = 0
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = bytes(len(pack_row(sub[0].reshape(-1), depth)))
        for row in sub:
            raw = pack_row(row.reshape(-1), depth)
            stream += filter_row(row_number % 5, raw, prev, bpp)
            prev = raw
            row_number += 1
    compressed = zlib.compress(bytes(stream), 9)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlace else 0))
    if exif is not None:
        png += chunk(b"eXIf", exif)
    if text is not None:
        key, value = text
        png += chunk(b"iTXt", key.encode() + b"\x00\x00\x00\x00\x00" + value.encode())
    if palette is not None:
        png += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    half = len(compressed) // 2  # two IDAT chunks, so chunk boundaries inside the stream are exercised
    png += chunk(b"IDAT", compressed[:half]) + chunk(b"IDAT", compressed[half:])
    png += chunk(b"IEND", b"")
    return png


def tiff_orientation(value, big_endian=False):
    """A minimal EXIF TIFF block: header + IFD0 with one Orientation SHORT."""
    e = ">" if big_endian else "<"
    head = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    ifd = struct.pack(e + "H", 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, value, 0) + struct.pack(e + "I", 0)
    return head + ifd


# --------------------------------------------------------------------------- recording

def pillow_rgb(path):
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def record_decode(name, data, exact=True, note=""):
    path = OUT / name
    path.write_bytes(data)
    rgb = pillow_rgb(path)
    stem = path.stem
    (OUT / f"{stem}.rgb").write_bytes(rgb.tobytes())
    MANIFEST["decode"].append({"file": name, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                               "rgb": f"{stem}.rgb", "exact": exact, "note": note})


def high_byte_rgb(pixels):
    """The decoder's rule for 16-bit PNG samples (H×W×C, C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA):
    the high byte of each sample, v >> 8 (libpng's png_set_strip_16: no rounding), gray replicated
    to RGB and alpha dropped, not composited, as for every other PNG (Pillow's convert("RGB"))."""
    assert pixels.dtype == np.uint16
    colour = pixels[..., :1].repeat(3, axis=-1) if pixels.shape[-1] <= 2 else pixels[..., :3]
    return (colour >> 8).astype(np.uint8)


def record_decode_high_byte(name, pixels, color_type, **options):
    """A 16-bit PNG whose expected pixels are `high_byte_rgb` rather than Pillow's. Where Pillow
    does take the high byte (every colour type but gray), this checks that it agrees."""
    path = OUT / name
    path.write_bytes(encode_png(pixels, color_type, 16, **options))
    rgb = high_byte_rgb(pixels)
    # The samples must tell v >> 8 apart from rounding (v / 257), the low byte and I;16's clip.
    colour = pixels[..., :1] if pixels.shape[-1] <= 2 else pixels[..., :3]
    for other in (np.round(colour / 257), colour & 0xFF, np.minimum(colour, 255)):
        assert ((colour >> 8) != other).any(), name
    if color_type != 0:
        assert np.array_equal(pillow_rgb(path), rgb), f"{name}: Pillow does not take the high byte"
    (OUT / f"{path.stem}.rgb").write_bytes(rgb.tobytes())
    MANIFEST["decode"].append({"file": name, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                               "rgb": f"{path.stem}.rgb", "exact": True,
                               "note": "16-bit: expected pixels are the high bytes (v >> 8), alpha dropped"})


def pillow_outcome(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            ImageOps.exif_transpose(im).convert("RGB")
        return "decodes"
    except Exception as error:  # noqa: BLE001 - any failure is the recorded outcome
        # Drop object addresses ("<_io.BytesIO object at 0x7f…>") so reruns write identical files.
        return re.sub(r" at 0x[0-9a-f]+", "", f"{type(error).__name__}: {error}")


def record_bad(name, data, error):
    (OUT / name).write_bytes(data)
    MANIFEST["bad"].append({"file": name, "error": error, "pillow": pillow_outcome(data)})


def jpeg_bytes(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def png_bytes_pillow(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


# --------------------------------------------------------------------------- cases

def make_jpegs():
    rgb = Image.fromarray(scene(37, 29, 1))
    record_decode("jpeg_baseline.jpg", jpeg_bytes(rgb, quality=90), note="4:2:0")
    record_decode("jpeg_422.jpg", jpeg_bytes(rgb, quality=90, subsampling=1))
    record_decode("jpeg_444.jpg", jpeg_bytes(rgb, quality=95, subsampling=0))
    record_decode("jpeg_progressive.jpg", jpeg_bytes(rgb, quality=90, progressive=True))
    record_decode("jpeg_restart.jpg", jpeg_bytes(rgb, quality=90, restart_marker_blocks=2))
    record_decode("jpeg_odd_61x45.jpg", jpeg_bytes(Image.fromarray(scene(61, 45, 2)), quality=85))
    record_decode("jpeg_1x1.jpg", jpeg_bytes(Image.fromarray(scene(1, 1, 3)), quality=90))
    gray = rgb.convert("L")
    record_decode("jpeg_gray.jpg", jpeg_bytes(gray, quality=90))
    record_decode("jpeg_gray_progressive.jpg", jpeg_bytes(gray, quality=90, progressive=True))

    rng = np.random.default_rng(4)
    cmyk = np.concatenate([255 - scene(37, 29, 5), rng.integers(0, 160, size=(29, 37, 1), dtype=np.uint8)], axis=-1)
    record_decode("jpeg_cmyk.jpg", jpeg_bytes(Image.frombytes("CMYK", (37, 29), cmyk.tobytes()), quality=90),
                  note="Pillow-written CMYK with an Adobe marker (transform 0)")
    record_decode("jpeg_ycck.jpg",
                  bytes(imagecodecs.jpeg8_encode(cmyk, level=90, colorspace="CMYK", outcolorspace="YCCK")),
                  note="Adobe transform 2")
    record_decode("jpeg_rgb_coded.jpg",
                  bytes(imagecodecs.jpeg8_encode(np.asarray(rgb), level=90, colorspace="RGB", outcolorspace="RGB")),
                  note="RGB components, no YCbCr transform (Adobe transform 0)")

    for orientation in range(1, 10):  # 9 is invalid: Pillow leaves the image alone
        exif = Image.Exif()
        exif[0x0112] = orientation
        record_decode(f"jpeg_orient{orientation}.jpg", jpeg_bytes(rgb, quality=90, exif=exif.tobytes()))
    record_decode("jpeg_orient6_bigendian.jpg",
                  jpeg_bytes(rgb, quality=90, exif=b"Exif\x00\x00" + tiff_orientation(6, big_endian=True)))
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="8"/></rdf:RDF></x:xmpmeta>')
    record_decode("jpeg_orient8_xmp.jpg", jpeg_bytes(rgb, quality=90, xmp=xmp), note="XMP only, no EXIF")
    record_decode("png_named.jpg", png_bytes_pillow(rgb), note="a PNG with a .jpg name: sniffed by content")


def make_pngs():
    h, w = 29, 37

    def case(name, pixels, color_type, depth, **options):
        record_decode(name, encode_png(pixels, color_type, depth, **options))

    for depth in (1, 2, 4, 8):
        case(f"png_gray{depth}.png", samples(h, w, 1, depth, 10 + depth), 0, depth)
    record_decode_high_byte("png_gray16.png", samples(h, w, 1, 16, 26), 0)
    # 16-bit gray mostly below 256: high bytes 0..2, so keeping the low byte or clipping shows.
    small16 = (samples(h, w, 1, 16, 30) % 600).astype(np.uint16)
    record_decode_high_byte("png_gray16_small.png", small16, 0)
    # The four 16-bit colour types, full 16-bit range, random alpha (dropped, so compositing shows).
    for channels, color_type, kind in ((1, 0, "gray"), (2, 4, "ga"), (3, 2, "rgb"), (4, 6, "rgba")):
        record_decode_high_byte(f"png16_{kind}.png", samples(19, 23, channels, 16, 90 + channels), color_type)
    case("png_gray8_trns.png", samples(h, w, 1, 8, 31), 0, 8, trns=struct.pack(">H", 77))
    case("png_ga8.png", samples(h, w, 2, 8, 32), 4, 8)
    case("png_ga16.png", samples(h, w, 2, 16, 33), 4, 16)
    case("png_rgb8.png", samples(h, w, 3, 8, 34), 2, 8)
    case("png_rgb16.png", samples(h, w, 3, 16, 35), 2, 16)
    case("png_rgb8_trns.png", samples(h, w, 3, 8, 36), 2, 8, trns=struct.pack(">HHH", 10, 20, 30))
    case("png_rgba8.png", samples(h, w, 4, 8, 37), 6, 8)
    case("png_rgba16.png", samples(h, w, 4, 16, 38), 6, 16)
    rng = np.random.default_rng(39)
    for depth in (1, 2, 4, 8):
        entries = 1 << depth
        palette = rng.integers(0, 256, size=(entries, 3))
        case(f"png_pal{depth}.png", samples(h, w, 1, depth, 40 + depth), 3, depth, palette=palette)
    palette = rng.integers(0, 256, size=(256, 3))
    case("png_pal8_trns.png", samples(h, w, 1, 8, 50), 3, 8, palette=palette,
         trns=bytes(rng.integers(0, 256, size=100, dtype=np.uint8)))
    # Indices past the end of a short palette.
    case("png_pal8_short_palette.png", samples(h, w, 1, 8, 62) % 12, 3, 8, palette=palette[:9])
    case("png_pal4_trns.png", samples(h, w, 1, 4, 51), 3, 4, palette=palette[:16], trns=b"\x00\x80")
    case("png_rgb8_interlaced.png", samples(h, w, 3, 8, 52), 2, 8, interlace=True)
    case("png_rgba16_interlaced.png", samples(h, w, 4, 16, 53), 6, 16, interlace=True)
    record_decode_high_byte("png_gray16_interlaced.png", (samples(h, w, 1, 16, 54) % 400).astype(np.uint16), 0,
                            interlace=True)
    case("png_gray1_interlaced.png", samples(h, w, 1, 1, 55), 0, 1, interlace=True)
    case("png_pal2_interlaced.png", samples(h, w, 1, 2, 56), 3, 2, interlace=True,
         palette=rng.integers(0, 256, size=(4, 3)))
    case("png_rgb8_3x2_interlaced.png", samples(2, 3, 3, 8, 57), 2, 8, interlace=True)
    case("png_1x1.png", samples(1, 1, 3, 8, 58), 2, 8)
    case("png_orient6_exif.png", samples(h, w, 3, 8, 59), 2, 8, exif=tiff_orientation(6))
    case("png_orient3_xmp.png", samples(h, w, 3, 8, 60), 2, 8,
         text=("XML:com.adobe.xmp", '<rdf:Description><tiff:Orientation>3</tiff:Orientation></rdf:Description>'))
    record_decode("png_pillow_rgba.png", png_bytes_pillow(Image.fromarray(samples(h, w, 4, 8, 61), "RGBA")),
                  note="written by Pillow")


def make_resizes():
    sources = {
        "resize_src_a": scene(97, 73, 70),
        "resize_src_b": scene(37, 29, 71),
        "resize_src_c": (np.indices((23, 31)).sum(axis=0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, axis=-1),
    }
    targets = {
        # (200, 7), (90, 20) and (36, 10) take Pillow 13's vertical-first order.
        "resize_src_a": [(16, 16), (64, 64), (33, 90), (97, 40), (40, 73), (1, 1), (200, 7), (90, 20), (13, 150)],
        "resize_src_b": [(80, 60), (74, 58), (37, 100), (36, 28), (36, 10)],
        "resize_src_c": [(10, 7), (45, 50), (30, 23)],
    }
    for stem, pixels in sources.items():
        (OUT / f"{stem}.rgb").write_bytes(pixels.tobytes())
        image = Image.fromarray(pixels)
        for width, height in targets[stem]:
            out = np.asarray(image.resize((width, height), Image.BILINEAR))
            name = f"{stem}_to_{width}x{height}.rgb"
            (OUT / name).write_bytes(out.tobytes())
            MANIFEST["resize"].append({"source": f"{stem}.rgb", "source_width": pixels.shape[1],
                                       "source_height": pixels.shape[0], "width": width, "height": height,
                                       "rgb": name})


def make_preprocess():
    source = scene(97, 73, 70)  # same as resize_src_a
    image = Image.fromarray(source)
    imagenet = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    cases = [
        ("pre_resize24x20", (24, 20), None, imagenet),
        ("pre_crop17x20", (30, 26), (17, 20), imagenet),
        ("pre_pad20x15", (16, 12), (20, 15), imagenet),
        ("pre_pad_one_side", (16, 24), (21, 11), ([0.5, 0.5, 0.5], [0.5, 0.25, 0.125])),
    ]
    for stem, (rw, rh), crop, (mean, std) in cases:
        steps = [T.Resize((rh, rw))]
        if crop:
            steps.append(T.CenterCrop((crop[1], crop[0])))
        steps += [T.ToTensor(), T.Normalize(mean, std)]
        tensor = T.Compose(steps)(image)
        assert tensor.dtype == torch.float32
        (OUT / f"{stem}.f32").write_bytes(tensor.numpy().astype("<f4").tobytes())
        MANIFEST["preprocess"].append({"source": "resize_src_a.rgb", "source_width": 97, "source_height": 73,
                                       "resize": [rw, rh], "crop": list(crop) if crop else None,
                                       "mean": mean, "std": std, "shape": list(tensor.shape),
                                       "tensor": f"{stem}.f32"})


def make_bad():
    record_bad("bad_empty.jpg", b"", "emptyFile")
    rng = np.random.default_rng(80)
    random_bytes = bytes(rng.integers(0, 256, size=300, dtype=np.uint8))
    assert random_bytes[:2] != b"\xff\xd8" and random_bytes[:4] != b"\x89PNG"
    record_bad("bad_random.bin", random_bytes, "unknownFormat")
    record_bad("bad_text.jpg", b"This is a text file with a .jpg name, not an image.\n", "unknownFormat")

    big = Image.fromarray(scene(61, 45, 81))
    baseline = jpeg_bytes(big, quality=90)
    progressive = jpeg_bytes(big, quality=90, progressive=True)
    record_bad("bad_truncated.jpg", baseline[: len(baseline) * 6 // 10], "truncated")
    record_bad("bad_truncated_progressive.jpg", progressive[: len(progressive) * 6 // 10], "truncated")
    record_bad("bad_no_eoi.jpg", baseline[:-2], "truncated")
    record_bad("bad_header_only.jpg", baseline[:20], "truncated")
    # A DQT segment whose length claims 2 bytes: its table bytes then read as garbage and no
    # quantisation table is ever defined.
    dqt = baseline.index(b"\xff\xdb")
    record_bad("bad_corrupt.jpg", baseline[: dqt + 2] + b"\x00\x02" + baseline[dqt + 4:], "corrupt")
    sof = baseline.index(b"\xff\xc0")
    twelve_bit = bytearray(baseline)
    twelve_bit[sof + 4] = 12
    record_bad("bad_precision12.jpg", bytes(twelve_bit), "unsupported")
    huge = bytearray(baseline)
    huge[sof + 5: sof + 9] = struct.pack(">HH", 60000, 60000)  # SOF: precision, height, width
    record_bad("bad_huge.jpg", bytes(huge), "tooLarge")

    png = png_bytes_pillow(big)
    record_bad("bad_truncated.png", png[: len(png) * 6 // 10], "truncated")
    record_bad("bad_signature_only.png", png[:8], "truncated")
    bad_ihdr = bytearray(png)
    bad_ihdr[29] ^= 0xFF  # IHDR CRC: bytes 29..32 (8 signature + 4 length + 4 type + 13 data)
    record_bad("bad_crc_ihdr.png", bytes(bad_ihdr), "corrupt")
    idat = png.index(b"IDAT")
    length = struct.unpack(">I", png[idat - 4: idat])[0]
    bad_idat = bytearray(png)
    bad_idat[idat + 4 + length] ^= 0xFF
    record_bad("bad_crc_idat.png", bytes(bad_idat), "corrupt")
    ihdr = png[12:29]
    patched = ihdr[:4] + struct.pack(">II", 60000, 60000) + ihdr[12:]
    huge_png = png[:12] + patched + struct.pack(">I", zlib.crc32(patched) & 0xFFFFFFFF) + png[33:]
    record_bad("bad_huge.png", huge_png, "tooLarge")


def main():
    # regressions/ holds inputs found by fuzzing (scripts/fuzz.sh), committed by hand: kept.
    OUT.mkdir(parents=True, exist_ok=True)
    for path in OUT.iterdir():
        if path.is_file():
            path.unlink()
    make_jpegs()
    make_pngs()
    make_resizes()
    make_preprocess()
    make_bad()
    (OUT / "manifest.json").write_text(json.dumps(MANIFEST, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1024:.0f} KiB, to {OUT}")


if __name__ == "__main__":
    main()
