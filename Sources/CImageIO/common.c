/*
 * cimageio: the parts JPEG and PNG share (see cimageio.h): format sniffing, the
 * pixel limit, messages, EXIF/XMP orientation and its 8 transposes, and the
 * public decode entry points that dispatch to jpeg.c and png.c.
 *
 * The reference for every pixel is Pillow:
 *     ImageOps.exif_transpose(Image.open(f)).convert("RGB")
 * (jpeg.c and png.c say what that means per colour type). EXIF orientation
 * (JPEG APP1 "Exif", PNG eXIf chunk before IDAT) is applied as
 * ImageOps.exif_transpose does; when there is no Orientation tag, an XMP
 * tiff:Orientation is used, as Pillow's getexif() falls back to it.
 */
#include "imageio_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                           */
/* ------------------------------------------------------------------------ */

void cimageio_set_message(char *message, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(message, CIMAGEIO_MESSAGE_SIZE, format, args);
    va_end(args);
}

cimageio_format cimageio_sniff(const uint8_t *data, size_t size) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (data == NULL) return CIMAGEIO_FORMAT_UNKNOWN;
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return CIMAGEIO_FORMAT_JPEG;
    if (size >= 8 && memcmp(data, png_magic, 8) == 0) return CIMAGEIO_FORMAT_PNG;
    return CIMAGEIO_FORMAT_UNKNOWN;
}

void cimageio_free(void *pointer) { free(pointer); }

/* Checks the header size against the caller's limit before any pixel buffer exists. */
int cimageio_over_limit(uint32_t width, uint32_t height, uint64_t max_pixels) {
    return max_pixels != 0 && (uint64_t)width * (uint64_t)height > max_pixels;
}

void cimageio_too_large_message(cimageio_info *info, uint64_t max_pixels) {
    cimageio_set_message(info->message, "image is %u×%u, over the limit of %llu pixels", info->stored_width,
                         info->stored_height, (unsigned long long)max_pixels);
}

/* ------------------------------------------------------------------------ */
/* Orientation: EXIF IFD0 tag 0x0112, XMP fallback, and the 8 transposes     */
/* ------------------------------------------------------------------------ */

static uint32_t read16(const uint8_t *p, int big_endian) {
    return big_endian ? ((uint32_t)p[0] << 8 | p[1]) : ((uint32_t)p[1] << 8 | p[0]);
}

static uint32_t read32(const uint8_t *p, int big_endian) {
    return big_endian ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
                      : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

/*
 * The Orientation value in an EXIF block (a TIFF header + IFD0, optionally
 * behind one or two "Exif\0\0" prefixes, which Pillow strips).
 * Returns -1 when there is no Orientation tag (so XMP may be consulted), 0 when
 * the tag is present but not a single integer (Pillow then does nothing), else
 * the value. A malformed block counts as absent: Pillow would raise there; we
 * prefer decoding the pixels unrotated to failing the whole image.
 */
long cimageio_exif_orientation(const uint8_t *p, size_t n) {
    for (int i = 0; i < 2 && n >= 6 && memcmp(p, "Exif\0\0", 6) == 0; i++) {
        p += 6;
        n -= 6;
    }
    if (n < 8) return -1;
    int big_endian;
    if (p[0] == 'M' && p[1] == 'M') big_endian = 1;
    else if (p[0] == 'I' && p[1] == 'I') big_endian = 0;
    else return -1;
    /* Pillow also accepts the magic 42 in the wrong byte order; BigTIFF (43) is not EXIF. */
    if (!((p[2] == 0 && p[3] == 42) || (p[2] == 42 && p[3] == 0))) return -1;
    uint32_t ifd = read32(p + 4, big_endian);
    if (ifd > n || n - ifd < 2) return -1;
    uint32_t entries = read16(p + ifd, big_endian);
    long orientation = -1;
    for (uint32_t i = 0; i < entries; i++) {
        size_t entry = (size_t)ifd + 2 + (size_t)i * 12;
        if (entry + 12 > n) break; /* Pillow keeps the tags read before a truncated IFD */
        if (read16(p + entry, big_endian) != 0x0112) continue;
        uint32_t type = read16(p + entry + 2, big_endian);
        uint32_t count = read32(p + entry + 4, big_endian);
        const uint8_t *value = p + entry + 8;
        if (type == 0 || (type > 13 && type != 16)) continue; /* unknown type: Pillow skips it */
        if (count != 1) { orientation = 0; continue; }
        switch (type) {
            case 3: orientation = (long)read16(value, big_endian); break;            /* SHORT */
            case 8: orientation = (long)(int16_t)read16(value, big_endian); break;   /* SSHORT */
            case 4: orientation = (long)read32(value, big_endian); break;            /* LONG */
            case 9: orientation = (long)(int32_t)read32(value, big_endian); break;   /* SLONG */
            default: orientation = 0; break;
        }
    }
    return orientation;
}

/* Pillow's fallback regex  tiff:Orientation(="|>)([0-9])  over the XMP packet. */
long cimageio_xmp_orientation(const uint8_t *p, size_t n) {
    static const char key[] = "tiff:Orientation";
    const size_t key_length = sizeof key - 1;
    for (size_t i = 0; i + key_length < n; i++) {
        if (p[i] != 't' || memcmp(p + i, key, key_length) != 0) continue;
        size_t j = i + key_length;
        if (j + 2 < n && p[j] == '=' && p[j + 1] == '"' && p[j + 2] >= '0' && p[j + 2] <= '9')
            return p[j + 2] - '0';
        if (j + 1 < n && p[j] == '>' && p[j + 1] >= '0' && p[j + 1] <= '9') return p[j + 1] - '0';
    }
    return -1;
}

/* exif_transpose only acts on 2..8; anything else leaves the image as stored. */
uint32_t cimageio_resolve_orientation(long exif, long xmp) {
    long value = exif >= 0 ? exif : xmp;
    return (value >= 2 && value <= 8) ? (uint32_t)value : 1;
}

void cimageio_set_oriented_size(cimageio_info *info) {
    int swaps = info->orientation >= 5;
    info->width = swaps ? info->stored_height : info->stored_width;
    info->height = swaps ? info->stored_width : info->stored_height;
}

/*
 * Copies a stored w×h RGB image into dst with the EXIF transform applied, matching
 * Pillow's Transpose: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE,
 * 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90. Source pixel (x, y) of row y lands at
 * base(y) + x·step in dst, so each source row is one strided walk.
 */
void cimageio_apply_orientation(const uint8_t *src, size_t w, size_t h, uint32_t orientation,
                                uint8_t *dst) {
    const ptrdiff_t dw = orientation >= 5 ? (ptrdiff_t)h : (ptrdiff_t)w; /* dst row length */
    const ptrdiff_t W = (ptrdiff_t)w, H = (ptrdiff_t)h;
    for (ptrdiff_t y = 0; y < H; y++) {
        ptrdiff_t base, step;
        switch (orientation) {
            case 2: base = y * dw + W - 1; step = -1; break;
            case 3: base = (H - 1 - y) * dw + W - 1; step = -1; break;
            case 4: base = (H - 1 - y) * dw; step = 1; break;
            case 5: base = y; step = dw; break;
            case 6: base = H - 1 - y; step = dw; break;
            case 7: base = (W - 1) * dw + H - 1 - y; step = -dw; break;
            case 8: base = (W - 1) * dw + y; step = -dw; break;
            default: base = y * dw; step = 1; break;
        }
        const uint8_t *s = src + (size_t)y * w * 3;
        uint8_t *d = dst + base * 3;
        const ptrdiff_t d_step = step * 3;
        for (ptrdiff_t x = 0; x < W; x++, s += 3, d += d_step) {
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Public decode entry points                                               */
/* ------------------------------------------------------------------------ */

static cimageio_status decode_any(const uint8_t *data, size_t size, uint64_t max_pixels,
                                  uint8_t *rgb, size_t rgb_size, cimageio_info *info) {
    if (info == NULL) return CIMAGEIO_BAD_ARGUMENT;
    memset(info, 0, sizeof *info);
    info->orientation = 1;
    info->format = cimageio_sniff(data, size);
    switch (info->format) {
        case CIMAGEIO_FORMAT_JPEG: return cimageio_decode_jpeg(data, size, max_pixels, rgb, rgb_size, info);
        case CIMAGEIO_FORMAT_PNG: return cimageio_decode_png(data, size, max_pixels, rgb, rgb_size, info);
        default:
            cimageio_set_message(info->message, "not a JPEG or PNG file");
            return CIMAGEIO_UNKNOWN_FORMAT;
    }
}

cimageio_status cimageio_probe(const uint8_t *data, size_t size, uint64_t max_pixels,
                               cimageio_info *info) {
    return decode_any(data, size, max_pixels, NULL, 0, info);
}

cimageio_status cimageio_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                                uint8_t *rgb, size_t rgb_size, cimageio_info *info) {
    if (rgb == NULL) {
        if (info != NULL) cimageio_set_message(info->message, "no output buffer");
        return CIMAGEIO_BAD_ARGUMENT;
    }
    return decode_any(data, size, max_pixels, rgb, rgb_size, info);
}

