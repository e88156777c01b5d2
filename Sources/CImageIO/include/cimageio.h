#ifndef CIMAGEIO_H
#define CIMAGEIO_H
/*
 * cimageio: JPEG and PNG decoding to 8-bit RGB, and 8-bit RGB PNG encoding,
 * over libjpeg-turbo and libpng.
 *
 * The decoded pixels are the ones Pillow gives for
 *     ImageOps.exif_transpose(Image.open(f)).convert("RGB")
 * (see the comments in jpeg.c and png.c for each colour type). All library errors are
 * caught inside these functions (setjmp/longjmp never crosses the caller's
 * frames), library warnings are silenced, nothing is printed and nothing exits.
 * Every function is reentrant: no global state.
 *
 * Decoding is two calls so that the caller owns the pixel memory:
 *     cimageio_info info;
 *     if (cimageio_probe(data, size, max_pixels, &info) != CIMAGEIO_OK) ...info.message...
 *     uint8_t *rgb = malloc((size_t)info.width * info.height * 3);
 *     if (cimageio_decode(data, size, max_pixels, rgb, size_of_rgb, &info) != CIMAGEIO_OK) ...
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Container format, detected from the first bytes (never from a file name). */
typedef enum cimageio_format {
    CIMAGEIO_FORMAT_UNKNOWN = 0,
    CIMAGEIO_FORMAT_JPEG = 1, /* starts FF D8 FF */
    CIMAGEIO_FORMAT_PNG = 2,  /* starts 89 'P' 'N' 'G' 0D 0A 1A 0A */
} cimageio_format;

/** Outcome of a call; anything but CIMAGEIO_OK comes with a message in the info. */
typedef enum cimageio_status {
    CIMAGEIO_OK = 0,
    CIMAGEIO_UNKNOWN_FORMAT = 1, /* neither JPEG nor PNG magic bytes */
    CIMAGEIO_TRUNCATED = 2,      /* the data ends before the image does */
    CIMAGEIO_CORRUPT = 3,        /* the library rejected the data; message is its reason */
    CIMAGEIO_TOO_LARGE = 4,      /* width × height (from the header) exceeds max_pixels */
    CIMAGEIO_UNSUPPORTED = 5,    /* valid but not handled (e.g. a 2-component JPEG) */
    CIMAGEIO_OUT_OF_MEMORY = 6,
    CIMAGEIO_BAD_ARGUMENT = 7,   /* caller error: NULL pointer, output buffer too small */
} cimageio_status;

#define CIMAGEIO_MESSAGE_SIZE 200

/** What a probe or decode learned about the image. */
typedef struct cimageio_info {
    cimageio_format format;
    /** Size of the decoded image, after the EXIF orientation has been applied. */
    uint32_t width, height;
    /** Size as stored in the file (swapped relative to width/height for orientations 5..8). */
    uint32_t stored_width, stored_height;
    /** EXIF (or XMP) orientation 1..8 that is applied; 1 when absent or invalid. */
    uint32_t orientation;
    /** Channels in the file: 1 gray, 2 gray+alpha, 3 RGB/YCbCr, 4 RGBA or CMYK/YCCK (JPEG). */
    uint32_t components;
    /** Bits per sample in the file (1, 2, 4, 8 or 16). */
    uint32_t bit_depth;
    /** NUL-terminated reason when the status is not CIMAGEIO_OK. */
    char message[CIMAGEIO_MESSAGE_SIZE];
} cimageio_info;

/** The format announced by the magic bytes of `data` (any size, even 0). */
cimageio_format cimageio_sniff(const uint8_t *data, size_t size);

/**
 * Reads only the header: fills `info` (format, sizes, orientation) and checks
 * width × height against `max_pixels` (0 means no limit) before anything large
 * is allocated.
 */
cimageio_status cimageio_probe(const uint8_t *data, size_t size, uint64_t max_pixels,
                               cimageio_info *info);

/**
 * Decodes `data` (a whole JPEG or PNG file in memory) into `rgb`, row-major
 * height × width × 3 after orientation; `rgb_size` must be at least
 * width × height × 3 as reported by cimageio_probe. The limit is checked again.
 */
cimageio_status cimageio_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                                uint8_t *rgb, size_t rgb_size, cimageio_info *info);

/**
 * Encodes an 8-bit RGB image (row-major, height × width × 3) as a non-interlaced
 * PNG in memory. `level` is the zlib level 0..9 (-1: zlib's default, 6). On
 * success `*png` is a buffer from malloc of `*png_size` bytes that the caller
 * releases with cimageio_free. `message` (CIMAGEIO_MESSAGE_SIZE bytes) gets the
 * reason on failure.
 */
cimageio_status cimageio_encode_png(const uint8_t *rgb, uint32_t width, uint32_t height, int level,
                                    uint8_t **png, size_t *png_size, char *message);

/** Releases a buffer returned by this library. */
void cimageio_free(void *pointer);

#ifdef __cplusplus
}
#endif
#endif /* CIMAGEIO_H */
