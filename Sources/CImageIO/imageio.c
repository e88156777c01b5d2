/*
 * cimageio: JPEG/PNG → 8-bit RGB decoding and RGB → PNG encoding (see cimageio.h).
 *
 * The reference for every pixel is Pillow:
 *     ImageOps.exif_transpose(Image.open(f)).convert("RGB")
 * Per colour type that means:
 *   JPEG  gray / YCbCr / RGB  libjpeg's own conversion to RGB (JDCT_ISLOW, fancy upsampling:
 *                             libjpeg's defaults, which Pillow keeps unless draft() is used).
 *   JPEG  CMYK / YCCK         libjpeg output CMYK, inverted (Pillow's rawmode "CMYK;I": it
 *                             assumes Adobe polarity for every CMYK JPEG), then Pillow's
 *                             cmyk2rgb: R = (255-K') - round(C'·(255-K')/255) with C' = 255-C.
 *   PNG   gray 1/2/4/8        replicated, low depths scaled to 0..255 (0x55·v, 0x11·v).
 *   PNG   gray 16             Pillow mode "I;16", whose RGB conversion clips: v > 255 → 255.
 *   PNG   RGB/RGBA/GA 16      high byte of each sample (Pillow's "RGB;16B", "LA;16B").
 *   PNG   alpha, tRNS         dropped, not composited (convert("RGB") ignores it).
 *   PNG   palette             looked up; tRNS ignored.
 * EXIF orientation (JPEG APP1 "Exif", PNG eXIf chunk before IDAT) is applied as
 * ImageOps.exif_transpose does; when there is no Orientation tag, an XMP
 * tiff:Orientation is used, as Pillow's getexif() falls back to it.
 *
 * Error handling: each library call runs under a setjmp in the C function that
 * made it; libjpeg's error_exit and libpng's error callback longjmp back there,
 * never into the (Swift) caller. Mutable state that must survive the longjmp
 * lives in a heap-allocated state struct whose pointer is never reassigned.
 */
#include "cimageio.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                           */
/* ------------------------------------------------------------------------ */

static void set_message(char *message, const char *format, ...) {
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
static int over_limit(uint32_t width, uint32_t height, uint64_t max_pixels) {
    return max_pixels != 0 && (uint64_t)width * (uint64_t)height > max_pixels;
}

static void too_large_message(cimageio_info *info, uint64_t max_pixels) {
    set_message(info->message, "image is %u×%u, over the limit of %llu pixels", info->stored_width,
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
static long exif_orientation(const uint8_t *p, size_t n) {
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
static long xmp_orientation(const uint8_t *p, size_t n) {
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
static uint32_t resolve_orientation(long exif, long xmp) {
    long value = exif >= 0 ? exif : xmp;
    return (value >= 2 && value <= 8) ? (uint32_t)value : 1;
}

static void set_oriented_size(cimageio_info *info) {
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
static void apply_orientation(const uint8_t *src, size_t w, size_t h, uint32_t orientation,
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
/* JPEG                                                                     */
/* ------------------------------------------------------------------------ */

enum { JPEG_ROWS_PER_CALL = 16 };

typedef struct jpeg_state {
    struct jpeg_decompress_struct cinfo; /* first member: error handlers cast back from it */
    struct jpeg_error_mgr errors;
    jmp_buf jump;
    int created;
    int truncated;
    uint8_t *oriented_source; /* stored-orientation pixels when a transpose follows */
    uint8_t *cmyk_rows;       /* CMYK scanlines before conversion */
    char message[JMSG_LENGTH_MAX];
} jpeg_state;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_state *s = (jpeg_state *)cinfo;
    (*cinfo->err->format_message)(cinfo, s->message);
    longjmp(s->jump, 1);
}

/*
 * libjpeg only warns when the data runs out (JWRN_JPEG_EOF) and pads the rest
 * of the image with grey; Pillow reports "image file is truncated", so that
 * warning is an error here. Other warnings (extraneous bytes, ...) are ignored
 * as Pillow ignores them.
 */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_state *s = (jpeg_state *)cinfo;
        s->truncated = 1;
        (*cinfo->err->format_message)(cinfo, s->message);
        longjmp(s->jump, 1);
    }
}

static void jpeg_on_output(j_common_ptr cinfo) { (void)cinfo; }

static int jpeg_unsupported_code(int code) {
    return code == JERR_BAD_PRECISION || code == JERR_SOF_UNSUPPORTED || code == JERR_NOT_COMPILED;
}

static void jpeg_read_orientation(jpeg_state *s, cimageio_info *info) {
    long exif = -1, xmp = -1;
    int have_exif = 0;
    static const char xmp_id[] = "http://ns.adobe.com/xap/1.0/";
    for (jpeg_saved_marker_ptr m = s->cinfo.marker_list; m != NULL; m = m->next) {
        if (m->marker != JPEG_APP0 + 1) continue;
        if (!have_exif && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            /* Pillow parses the first Exif APP1 (later ones are appended after it). */
            have_exif = 1;
            exif = exif_orientation(m->data, m->data_length);
        } else if (m->data_length >= sizeof xmp_id && memcmp(m->data, xmp_id, sizeof xmp_id) == 0) {
            /* Pillow keeps the last XMP packet: the bytes after the identifier's NUL. */
            xmp = xmp_orientation(m->data + sizeof xmp_id, m->data_length - sizeof xmp_id);
        }
    }
    info->orientation = resolve_orientation(exif, xmp);
}

/* CMYK scanlines as libjpeg returns them → RGB, the way Pillow's "CMYK;I" + cmyk2rgb does. */
static void cmyk_rows_to_rgb(const uint8_t *cmyk, size_t pixels, uint8_t *rgb) {
    for (size_t i = 0; i < pixels; i++, cmyk += 4, rgb += 3) {
        const int nk = cmyk[3]; /* 255 - K' where K' = 255 - k (inverted) */
        for (int c = 0; c < 3; c++) {
            const int inverted = 255 - cmyk[c];
            const int t = inverted * nk + 128; /* MULDIV255: round(inverted·nk/255) */
            rgb[c] = (uint8_t)(nk - (((t >> 8) + t) >> 8));
        }
    }
}

static cimageio_status decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels,
                                   uint8_t *rgb, size_t rgb_size, cimageio_info *info) {
    jpeg_state *const s = calloc(1, sizeof *s);
    if (s == NULL) {
        set_message(info->message, "out of memory");
        return CIMAGEIO_OUT_OF_MEMORY;
    }
    volatile cimageio_status status = CIMAGEIO_OK;
    s->cinfo.err = jpeg_std_error(&s->errors);
    s->errors.error_exit = jpeg_on_error;
    s->errors.emit_message = jpeg_on_message;
    s->errors.output_message = jpeg_on_output;

    if (setjmp(s->jump)) {
        if (s->truncated) {
            status = CIMAGEIO_TRUNCATED;
            set_message(info->message, "%s", s->message);
        } else if (jpeg_unsupported_code(s->errors.msg_code)) {
            status = CIMAGEIO_UNSUPPORTED;
            set_message(info->message, "%s", s->message);
        } else if (s->errors.msg_code == JERR_OUT_OF_MEMORY) {
            status = CIMAGEIO_OUT_OF_MEMORY;
            set_message(info->message, "%s", s->message);
        } else {
            status = CIMAGEIO_CORRUPT;
            set_message(info->message, "%s", s->message);
        }
        goto done;
    }

    jpeg_create_decompress(&s->cinfo);
    s->created = 1;
    jpeg_mem_src(&s->cinfo, data, (unsigned long)size);
    jpeg_save_markers(&s->cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&s->cinfo, TRUE);

    info->stored_width = s->cinfo.image_width;
    info->stored_height = s->cinfo.image_height;
    info->components = (uint32_t)s->cinfo.num_components;
    info->bit_depth = (uint32_t)s->cinfo.data_precision;
    jpeg_read_orientation(s, info);
    set_oriented_size(info);

    const int cmyk = s->cinfo.num_components == 4;
    if (s->cinfo.num_components != 1 && s->cinfo.num_components != 3 && !cmyk) {
        status = CIMAGEIO_UNSUPPORTED;
        set_message(info->message, "JPEG with %d colour components is not supported",
                    s->cinfo.num_components);
        goto done;
    }
    if (over_limit(info->stored_width, info->stored_height, max_pixels)) {
        status = CIMAGEIO_TOO_LARGE;
        too_large_message(info, max_pixels);
        goto done;
    }
    if (rgb == NULL) goto done; /* probe only */

    const size_t w = info->stored_width, h = info->stored_height;
    if (rgb_size < w * h * 3) {
        status = CIMAGEIO_BAD_ARGUMENT;
        set_message(info->message, "output buffer holds %zu bytes, the image needs %zu", rgb_size,
                    w * h * 3);
        goto done;
    }

    /* CMYK and YCCK both come out as CMYK (libjpeg converts YCCK itself), as in Pillow. */
    s->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    s->cinfo.dct_method = JDCT_ISLOW;
    s->cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&s->cinfo);
    if (s->cinfo.output_width != w || s->cinfo.output_height != h ||
        s->cinfo.output_components != (cmyk ? 4 : 3)) {
        status = CIMAGEIO_UNSUPPORTED;
        set_message(info->message, "unexpected JPEG decoder output layout");
        goto done;
    }

    uint8_t *target = rgb;
    if (info->orientation != 1) {
        s->oriented_source = malloc(w * h * 3);
        if (s->oriented_source == NULL) {
            status = CIMAGEIO_OUT_OF_MEMORY;
            set_message(info->message, "out of memory for a %zu×%zu image", w, h);
            goto done;
        }
        target = s->oriented_source;
    }
    if (cmyk) {
        s->cmyk_rows = malloc(w * 4 * JPEG_ROWS_PER_CALL);
        if (s->cmyk_rows == NULL) {
            status = CIMAGEIO_OUT_OF_MEMORY;
            set_message(info->message, "out of memory");
            goto done;
        }
    }

    JSAMPROW rows[JPEG_ROWS_PER_CALL];
    while (s->cinfo.output_scanline < h) {
        const size_t first = s->cinfo.output_scanline;
        const size_t wanted = h - first < JPEG_ROWS_PER_CALL ? h - first : JPEG_ROWS_PER_CALL;
        for (size_t i = 0; i < wanted; i++)
            rows[i] = cmyk ? s->cmyk_rows + i * w * 4 : target + (first + i) * w * 3;
        const size_t got = jpeg_read_scanlines(&s->cinfo, rows, (JDIMENSION)wanted);
        if (got == 0) { /* a suspending source never happens with jpeg_mem_src; be safe */
            status = CIMAGEIO_TRUNCATED;
            set_message(info->message, "JPEG data ended early");
            goto done;
        }
        if (cmyk) cmyk_rows_to_rgb(s->cmyk_rows, got * w, target + first * w * 3);
    }
    /* Reads up to EOI, so a file cut just after the last scan is reported as Pillow does. */
    jpeg_finish_decompress(&s->cinfo);

    if (info->orientation != 1) apply_orientation(s->oriented_source, w, h, info->orientation, rgb);

done:
    if (s->created) jpeg_destroy_decompress(&s->cinfo);
    free(s->oriented_source);
    free(s->cmyk_rows);
    free(s);
    return status;
}

/* ------------------------------------------------------------------------ */
/* PNG                                                                      */
/* ------------------------------------------------------------------------ */

/* First member of both PNG states, so one error callback serves reading and writing. */
typedef struct png_error_sink {
    char message[CIMAGEIO_MESSAGE_SIZE];
    int truncated;
    int out_of_memory;
} png_error_sink;

static void png_on_error(png_structp png, png_const_charp message) {
    png_error_sink *sink = (png_error_sink *)png_get_error_ptr(png);
    set_message(sink->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

typedef struct png_read_state {
    png_error_sink sink;
    const uint8_t *data;
    size_t size, position;
    png_structp png;
    png_infop info;
    uint8_t *wide_pixels;     /* 16-bit gray or RGBA rows before conversion to RGB */
    uint8_t *oriented_source; /* stored-orientation RGB when a transpose follows */
    png_bytep *rows;
} png_read_state;

static void png_read_from_memory(png_structp png, png_bytep out, size_t count) {
    png_read_state *s = (png_read_state *)png_get_io_ptr(png);
    if (count > s->size - s->position) {
        s->sink.truncated = 1;
        png_error(png, "file ends before the image data does");
    }
    memcpy(out, s->data + s->position, count);
    s->position += count;
}

static void png_read_orientation(png_read_state *s, cimageio_info *info) {
    long exif = -1, xmp = -1;
    png_uint_32 exif_length = 0;
    png_bytep exif_data = NULL;
    if (png_get_eXIf_1(s->png, s->info, &exif_length, &exif_data) != 0 && exif_data != NULL)
        exif = exif_orientation(exif_data, exif_length);
    png_textp texts = NULL;
    int text_count = 0;
    png_get_text(s->png, s->info, &texts, &text_count);
    for (int i = 0; i < text_count; i++) {
        if (texts[i].key == NULL || strcmp(texts[i].key, "XML:com.adobe.xmp") != 0) continue;
        size_t length = texts[i].compression >= PNG_ITXT_COMPRESSION_NONE ? texts[i].itxt_length
                                                                          : texts[i].text_length;
        if (texts[i].text != NULL) xmp = xmp_orientation((const uint8_t *)texts[i].text, length);
    }
    info->orientation = resolve_orientation(exif, xmp);
}

static cimageio_status decode_png(const uint8_t *data, size_t size, uint64_t max_pixels,
                                  uint8_t *rgb, size_t rgb_size, cimageio_info *info) {
    png_read_state *const s = calloc(1, sizeof *s);
    if (s == NULL) {
        set_message(info->message, "out of memory");
        return CIMAGEIO_OUT_OF_MEMORY;
    }
    volatile cimageio_status status = CIMAGEIO_OK;
    s->data = data;
    s->size = size;
    s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s->sink, png_on_error, png_on_warning);
    if (s->png != NULL) s->info = png_create_info_struct(s->png);
    if (s->png == NULL || s->info == NULL) {
        status = CIMAGEIO_OUT_OF_MEMORY;
        set_message(info->message, "out of memory");
        goto done;
    }
    if (setjmp(png_jmpbuf(s->png))) {
        status = s->sink.truncated ? CIMAGEIO_TRUNCATED : CIMAGEIO_CORRUPT;
        set_message(info->message, "%s", s->sink.message);
        goto done;
    }
    png_set_read_fn(s->png, s, png_read_from_memory);
    /* Our own pixel limit decides; libpng's default 1e6 per side would reject 2e6×1. */
    png_set_user_limits(s->png, 0x7fffffff, 0x7fffffff);
    png_read_info(s->png, s->info);

    png_uint_32 w32, h32;
    int depth, color_type, interlace;
    png_get_IHDR(s->png, s->info, &w32, &h32, &depth, &color_type, &interlace, NULL, NULL);
    info->stored_width = w32;
    info->stored_height = h32;
    info->components = png_get_channels(s->png, s->info);
    info->bit_depth = (uint32_t)depth;
    png_read_orientation(s, info);
    set_oriented_size(info);
    if (over_limit(w32, h32, max_pixels)) {
        status = CIMAGEIO_TOO_LARGE;
        too_large_message(info, max_pixels);
        goto done;
    }
    if (rgb == NULL) goto done; /* probe only */

    const size_t w = w32, h = h32;
    if (rgb_size < w * h * 3) {
        status = CIMAGEIO_BAD_ARGUMENT;
        set_message(info->message, "output buffer holds %zu bytes, the image needs %zu", rgb_size,
                    w * h * 3);
        goto done;
    }

    /* Everything becomes 8-bit RGB inside libpng except 16-bit gray, which Pillow clips. */
    const int gray16 = color_type == PNG_COLOR_TYPE_GRAY && depth == 16;
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
    if (depth == 16 && !gray16) png_set_strip_16(s->png); /* keeps the high byte */
    if (color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(s->png);
    if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && !gray16) png_set_gray_to_rgb(s->png);
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);

    /* 8-bit RGB, except: 16-bit gray (2 bytes, converted below), and palette + tRNS, which
     * libpng expands to RGBA despite png_set_strip_alpha (alpha dropped below). */
    const size_t row_bytes = png_get_rowbytes(s->png, s->info);
    const int rgba = !gray16 && row_bytes == w * 4;
    if (row_bytes != (gray16 ? w * 2 : w * 3) && !rgba) {
        status = CIMAGEIO_UNSUPPORTED;
        set_message(info->message, "unexpected PNG decoder output layout (%zu bytes per row)", row_bytes);
        goto done;
    }

    uint8_t *rgb_target = rgb;
    if (info->orientation != 1) {
        s->oriented_source = malloc(w * h * 3);
        if (s->oriented_source == NULL) goto out_of_memory;
        rgb_target = s->oriented_source;
    }
    uint8_t *decode_target = rgb_target;
    if (gray16 || rgba) {
        s->wide_pixels = malloc(row_bytes * h);
        if (s->wide_pixels == NULL) goto out_of_memory;
        decode_target = s->wide_pixels;
    }
    s->rows = malloc(h * sizeof *s->rows);
    if (s->rows == NULL) goto out_of_memory;
    for (size_t y = 0; y < h; y++) s->rows[y] = decode_target + y * row_bytes;
    png_read_image(s->png, s->rows); /* all interlace passes */
    /* No png_read_end: like Pillow, chunks after the image data (even a missing IEND) are ignored. */

    if (gray16) {
        const uint8_t *g = s->wide_pixels;
        uint8_t *o = rgb_target;
        for (size_t i = 0; i < w * h; i++, g += 2, o += 3) {
            const uint8_t v = g[0] == 0 ? g[1] : 255; /* Pillow I;16 → RGB clips at 255 */
            o[0] = o[1] = o[2] = v;
        }
    } else if (rgba) {
        const uint8_t *p = s->wide_pixels;
        uint8_t *o = rgb_target;
        for (size_t i = 0; i < w * h; i++, p += 4, o += 3) {
            o[0] = p[0];
            o[1] = p[1];
            o[2] = p[2];
        }
    }
    if (info->orientation != 1) apply_orientation(s->oriented_source, w, h, info->orientation, rgb);
    goto done;

out_of_memory:
    status = CIMAGEIO_OUT_OF_MEMORY;
    set_message(info->message, "out of memory for a %u×%u image", info->stored_width,
                info->stored_height);
done:
    if (s->png != NULL) png_destroy_read_struct(&s->png, s->info != NULL ? &s->info : NULL, NULL);
    free(s->wide_pixels);
    free(s->oriented_source);
    free(s->rows);
    free(s);
    return status;
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
        case CIMAGEIO_FORMAT_JPEG: return decode_jpeg(data, size, max_pixels, rgb, rgb_size, info);
        case CIMAGEIO_FORMAT_PNG: return decode_png(data, size, max_pixels, rgb, rgb_size, info);
        default:
            set_message(info->message, "not a JPEG or PNG file");
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
        if (info != NULL) set_message(info->message, "no output buffer");
        return CIMAGEIO_BAD_ARGUMENT;
    }
    return decode_any(data, size, max_pixels, rgb, rgb_size, info);
}

/* ------------------------------------------------------------------------ */
/* PNG encoding                                                             */
/* ------------------------------------------------------------------------ */

typedef struct png_write_state {
    png_error_sink sink;
    png_structp png;
    png_infop info;
    uint8_t *buffer;
    size_t size, capacity;
} png_write_state;

static void png_write_to_memory(png_structp png, png_bytep bytes, size_t count) {
    png_write_state *s = (png_write_state *)png_get_io_ptr(png);
    if (count > s->capacity - s->size) {
        size_t capacity = s->capacity ? s->capacity : 4096;
        while (count > capacity - s->size) {
            if (capacity > SIZE_MAX / 2) {
                s->sink.out_of_memory = 1;
                png_error(png, "PNG too large");
            }
            capacity *= 2;
        }
        uint8_t *grown = realloc(s->buffer, capacity);
        if (grown == NULL) {
            s->sink.out_of_memory = 1;
            png_error(png, "out of memory");
        }
        s->buffer = grown;
        s->capacity = capacity;
    }
    memcpy(s->buffer + s->size, bytes, count);
    s->size += count;
}

static void png_flush_nothing(png_structp png) { (void)png; }

cimageio_status cimageio_encode_png(const uint8_t *rgb, uint32_t width, uint32_t height, int level,
                                    uint8_t **png, size_t *png_size, char *message) {
    char scratch[CIMAGEIO_MESSAGE_SIZE];
    if (message == NULL) message = scratch;
    if (rgb == NULL || png == NULL || png_size == NULL) {
        set_message(message, "missing argument");
        return CIMAGEIO_BAD_ARGUMENT;
    }
    *png = NULL;
    *png_size = 0;
    if (width == 0 || height == 0 || width > 0x7fffffff || height > 0x7fffffff) {
        set_message(message, "cannot write a %u×%u image as PNG", width, height);
        return CIMAGEIO_BAD_ARGUMENT;
    }
    png_write_state *const s = calloc(1, sizeof *s);
    if (s == NULL) {
        set_message(message, "out of memory");
        return CIMAGEIO_OUT_OF_MEMORY;
    }
    volatile cimageio_status status = CIMAGEIO_OK;
    s->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s->sink, png_on_error, png_on_warning);
    if (s->png != NULL) s->info = png_create_info_struct(s->png);
    if (s->png == NULL || s->info == NULL) {
        status = CIMAGEIO_OUT_OF_MEMORY;
        set_message(message, "out of memory");
        goto done;
    }
    if (setjmp(png_jmpbuf(s->png))) {
        status = s->sink.out_of_memory ? CIMAGEIO_OUT_OF_MEMORY : CIMAGEIO_BAD_ARGUMENT;
        set_message(message, "%s", s->sink.message);
        goto done;
    }
    png_set_write_fn(s->png, s, png_write_to_memory, png_flush_nothing);
    png_set_user_limits(s->png, 0x7fffffff, 0x7fffffff);
    if (level >= 0 && level <= 9) png_set_compression_level(s->png, level);
    png_set_IHDR(s->png, s->info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(s->png, s->info);
    const size_t stride = (size_t)width * 3;
    for (size_t y = 0; y < height; y++) png_write_row(s->png, rgb + y * stride);
    png_write_end(s->png, NULL);
    *png = s->buffer;
    *png_size = s->size;
    s->buffer = NULL; /* ownership moves to the caller */

done:
    if (s->png != NULL) png_destroy_write_struct(&s->png, s->info != NULL ? &s->info : NULL);
    free(s->buffer);
    free(s);
    return status;
}
