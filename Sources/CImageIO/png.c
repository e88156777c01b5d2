/*
 * cimageio: PNG → 8-bit RGB decoding and 8-bit RGB → PNG encoding over libpng
 * (see cimageio.h).
 *
 * Decoded pixels match Pillow's ImageOps.exif_transpose(Image.open(f)).convert("RGB"):
 *   gray 1/2/4/8        replicated, low depths scaled to 0..255 (0x55·v, 0x11·v).
 *   16-bit, every type  high byte of each sample, v >> 8 (libpng's png_set_strip_16). For
 *                       RGB, RGBA and gray+alpha that is Pillow's "RGB;16B" / "LA;16B". For
 *                       gray it is not: Pillow opens it as mode "I;16", whose RGB conversion
 *                       clips every value above 255 to white, so a 16-bit gray photo would
 *                       decode almost all white; we take the high byte like the other types.
 *   alpha, tRNS         dropped, not composited (convert("RGB") ignores it).
 *   palette             looked up; tRNS ignored.
 *
 * Error handling: libpng's error callback longjmps back to the setjmp in the
 * function that made the library call (reading or writing), never into the
 * (Swift) caller, and never exits. Mutable state that must survive the longjmp
 * lives in a heap-allocated state struct whose pointer is never reassigned.
 */
#include "imageio_internal.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

/* First member of both PNG states, so one error callback serves reading and writing. */
typedef struct png_error_sink {
    char message[CIMAGEIO_MESSAGE_SIZE];
    int truncated;
    int out_of_memory;
} png_error_sink;

static void png_on_error(png_structp png, png_const_charp message) {
    png_error_sink *sink = (png_error_sink *)png_get_error_ptr(png);
    cimageio_set_message(sink->message, "%s", message);
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
    uint8_t *rgba_pixels;     /* palette + tRNS rows (RGBA) before alpha is dropped */
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
        exif = cimageio_exif_orientation(exif_data, exif_length);
    png_textp texts = NULL;
    int text_count = 0;
    png_get_text(s->png, s->info, &texts, &text_count);
    for (int i = 0; i < text_count; i++) {
        if (texts[i].key == NULL || strcmp(texts[i].key, "XML:com.adobe.xmp") != 0) continue;
        size_t length = texts[i].compression >= PNG_ITXT_COMPRESSION_NONE ? texts[i].itxt_length
                                                                          : texts[i].text_length;
        if (texts[i].text != NULL) xmp = cimageio_xmp_orientation((const uint8_t *)texts[i].text, length);
    }
    info->orientation = cimageio_resolve_orientation(exif, xmp);
}

cimageio_status cimageio_decode_png(const uint8_t *data, size_t size, uint64_t max_pixels,
                                    uint8_t *rgb, size_t rgb_size, cimageio_info *info) {
    png_read_state *const s = calloc(1, sizeof *s);
    if (s == NULL) {
        cimageio_set_message(info->message, "out of memory");
        return CIMAGEIO_OUT_OF_MEMORY;
    }
    volatile cimageio_status status = CIMAGEIO_OK;
    s->data = data;
    s->size = size;
    s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s->sink, png_on_error, png_on_warning);
    if (s->png != NULL) s->info = png_create_info_struct(s->png);
    if (s->png == NULL || s->info == NULL) {
        status = CIMAGEIO_OUT_OF_MEMORY;
        cimageio_set_message(info->message, "out of memory");
        goto done;
    }
    if (setjmp(png_jmpbuf(s->png))) {
        status = s->sink.truncated ? CIMAGEIO_TRUNCATED : CIMAGEIO_CORRUPT;
        cimageio_set_message(info->message, "%s", s->sink.message);
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
    cimageio_set_oriented_size(info);
    if (cimageio_over_limit(w32, h32, max_pixels)) {
        status = CIMAGEIO_TOO_LARGE;
        cimageio_too_large_message(info, max_pixels);
        goto done;
    }
    if (rgb == NULL) goto done; /* probe only */

    const size_t w = w32, h = h32;
    if (rgb_size < w * h * 3) {
        status = CIMAGEIO_BAD_ARGUMENT;
        cimageio_set_message(info->message, "output buffer holds %zu bytes, the image needs %zu", rgb_size,
                             w * h * 3);
        goto done;
    }

    /* Everything becomes 8-bit RGB inside libpng. */
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
    if (depth == 16) png_set_strip_16(s->png); /* keeps the high byte: v >> 8, no rounding */
    if (color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(s->png);
    if ((color_type & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(s->png);
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);

    /* 8-bit RGB, except palette + tRNS, which libpng expands to RGBA despite
     * png_set_strip_alpha (alpha dropped below). */
    const size_t row_bytes = png_get_rowbytes(s->png, s->info);
    const int rgba = row_bytes == w * 4;
    if (row_bytes != w * 3 && !rgba) {
        status = CIMAGEIO_UNSUPPORTED;
        cimageio_set_message(info->message, "unexpected PNG decoder output layout (%zu bytes per row)",
                             row_bytes);
        goto done;
    }

    uint8_t *rgb_target = rgb;
    if (info->orientation != 1) {
        s->oriented_source = malloc(w * h * 3);
        if (s->oriented_source == NULL) goto out_of_memory;
        rgb_target = s->oriented_source;
    }
    uint8_t *decode_target = rgb_target;
    if (rgba) {
        s->rgba_pixels = malloc(row_bytes * h);
        if (s->rgba_pixels == NULL) goto out_of_memory;
        decode_target = s->rgba_pixels;
    }
    s->rows = malloc(h * sizeof *s->rows);
    if (s->rows == NULL) goto out_of_memory;
    for (size_t y = 0; y < h; y++) s->rows[y] = decode_target + y * row_bytes;
    png_read_image(s->png, s->rows); /* all interlace passes */
    /* No png_read_end: like Pillow, chunks after the image data (even a missing IEND) are ignored. */

    if (rgba) {
        const uint8_t *p = s->rgba_pixels;
        uint8_t *o = rgb_target;
        for (size_t i = 0; i < w * h; i++, p += 4, o += 3) {
            o[0] = p[0];
            o[1] = p[1];
            o[2] = p[2];
        }
    }
    if (info->orientation != 1)
        cimageio_apply_orientation(s->oriented_source, w, h, info->orientation, rgb);
    goto done;

out_of_memory:
    status = CIMAGEIO_OUT_OF_MEMORY;
    cimageio_set_message(info->message, "out of memory for a %u×%u image", info->stored_width,
                         info->stored_height);
done:
    if (s->png != NULL) png_destroy_read_struct(&s->png, s->info != NULL ? &s->info : NULL, NULL);
    free(s->rgba_pixels);
    free(s->oriented_source);
    free(s->rows);
    free(s);
    return status;
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
        cimageio_set_message(message, "missing argument");
        return CIMAGEIO_BAD_ARGUMENT;
    }
    *png = NULL;
    *png_size = 0;
    if (width == 0 || height == 0 || width > 0x7fffffff || height > 0x7fffffff) {
        cimageio_set_message(message, "cannot write a %u×%u image as PNG", width, height);
        return CIMAGEIO_BAD_ARGUMENT;
    }
    png_write_state *const s = calloc(1, sizeof *s);
    if (s == NULL) {
        cimageio_set_message(message, "out of memory");
        return CIMAGEIO_OUT_OF_MEMORY;
    }
    volatile cimageio_status status = CIMAGEIO_OK;
    s->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s->sink, png_on_error, png_on_warning);
    if (s->png != NULL) s->info = png_create_info_struct(s->png);
    if (s->png == NULL || s->info == NULL) {
        status = CIMAGEIO_OUT_OF_MEMORY;
        cimageio_set_message(message, "out of memory");
        goto done;
    }
    if (setjmp(png_jmpbuf(s->png))) {
        status = s->sink.out_of_memory ? CIMAGEIO_OUT_OF_MEMORY : CIMAGEIO_BAD_ARGUMENT;
        cimageio_set_message(message, "%s", s->sink.message);
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

