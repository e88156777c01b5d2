/*
 * cimageio: JPEG → 8-bit RGB over libjpeg-turbo (see cimageio.h).
 *
 * Pixels match Pillow's ImageOps.exif_transpose(Image.open(f)).convert("RGB"):
 *   gray / YCbCr / RGB  libjpeg's own conversion to RGB (JDCT_ISLOW, fancy upsampling:
 *                       libjpeg's defaults, which Pillow keeps unless draft() is used).
 *   CMYK / YCCK         libjpeg output CMYK, inverted (Pillow's rawmode "CMYK;I": it
 *                       assumes Adobe polarity for every CMYK JPEG), then Pillow's
 *                       cmyk2rgb: R = (255-K') - round(C'·(255-K')/255) with C' = 255-C.
 *
 * Error handling: libjpeg's error_exit longjmps back to the setjmp in
 * cimageio_decode_jpeg, never into the (Swift) caller, and never exits. Mutable
 * state that must survive the longjmp lives in a heap-allocated state struct whose
 * pointer is never reassigned.
 */
#include "imageio_internal.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t declared first */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

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
            exif = cimageio_exif_orientation(m->data, m->data_length);
        } else if (m->data_length >= sizeof xmp_id && memcmp(m->data, xmp_id, sizeof xmp_id) == 0) {
            /* Pillow keeps the last XMP packet: the bytes after the identifier's NUL. */
            xmp = cimageio_xmp_orientation(m->data + sizeof xmp_id, m->data_length - sizeof xmp_id);
        }
    }
    info->orientation = cimageio_resolve_orientation(exif, xmp);
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

cimageio_status cimageio_decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels,
                                     uint8_t *rgb, size_t rgb_size, cimageio_info *info) {
    jpeg_state *const s = calloc(1, sizeof *s);
    if (s == NULL) {
        cimageio_set_message(info->message, "out of memory");
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
            cimageio_set_message(info->message, "%s", s->message);
        } else if (jpeg_unsupported_code(s->errors.msg_code)) {
            status = CIMAGEIO_UNSUPPORTED;
            cimageio_set_message(info->message, "%s", s->message);
        } else if (s->errors.msg_code == JERR_OUT_OF_MEMORY) {
            status = CIMAGEIO_OUT_OF_MEMORY;
            cimageio_set_message(info->message, "%s", s->message);
        } else {
            status = CIMAGEIO_CORRUPT;
            cimageio_set_message(info->message, "%s", s->message);
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
    cimageio_set_oriented_size(info);

    const int cmyk = s->cinfo.num_components == 4;
    if (s->cinfo.num_components != 1 && s->cinfo.num_components != 3 && !cmyk) {
        status = CIMAGEIO_UNSUPPORTED;
        cimageio_set_message(info->message, "JPEG with %d colour components is not supported",
                             s->cinfo.num_components);
        goto done;
    }
    if (cimageio_over_limit(info->stored_width, info->stored_height, max_pixels)) {
        status = CIMAGEIO_TOO_LARGE;
        cimageio_too_large_message(info, max_pixels);
        goto done;
    }
    if (rgb == NULL) goto done; /* probe only */

    const size_t w = info->stored_width, h = info->stored_height;
    if (rgb_size < w * h * 3) {
        status = CIMAGEIO_BAD_ARGUMENT;
        cimageio_set_message(info->message, "output buffer holds %zu bytes, the image needs %zu", rgb_size,
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
        cimageio_set_message(info->message, "unexpected JPEG decoder output layout");
        goto done;
    }

    uint8_t *target = rgb;
    if (info->orientation != 1) {
        s->oriented_source = malloc(w * h * 3);
        if (s->oriented_source == NULL) {
            status = CIMAGEIO_OUT_OF_MEMORY;
            cimageio_set_message(info->message, "out of memory for a %zu×%zu image", w, h);
            goto done;
        }
        target = s->oriented_source;
    }
    if (cmyk) {
        s->cmyk_rows = malloc(w * 4 * JPEG_ROWS_PER_CALL);
        if (s->cmyk_rows == NULL) {
            status = CIMAGEIO_OUT_OF_MEMORY;
            cimageio_set_message(info->message, "out of memory");
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
            cimageio_set_message(info->message, "JPEG data ended early");
            goto done;
        }
        if (cmyk) cmyk_rows_to_rgb(s->cmyk_rows, got * w, target + first * w * 3);
    }
    /* Reads up to EOI, so a file cut just after the last scan is reported as Pillow does. */
    jpeg_finish_decompress(&s->cinfo);

    if (info->orientation != 1)
        cimageio_apply_orientation(s->oriented_source, w, h, info->orientation, rgb);

done:
    if (s->created) jpeg_destroy_decompress(&s->cinfo);
    free(s->oriented_source);
    free(s->cmyk_rows);
    free(s);
    return status;
}

