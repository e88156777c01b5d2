#ifndef CIMAGEIO_INTERNAL_H
#define CIMAGEIO_INTERNAL_H
/*
 * Private to CImageIO: the helpers common.c shares with jpeg.c and png.c, and the
 * per-format decoders that cimageio_probe/cimageio_decode dispatch to. Hidden
 * visibility keeps them out of any shared object built from this target.
 */
#include "cimageio.h"

#define CIMAGEIO_INTERNAL __attribute__((visibility("hidden")))

/** snprintf into a CIMAGEIO_MESSAGE_SIZE buffer. */
CIMAGEIO_INTERNAL void cimageio_set_message(char *message, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/** Whether width × height exceeds the caller's limit (0: no limit); checked before any pixel buffer exists. */
CIMAGEIO_INTERNAL int cimageio_over_limit(uint32_t width, uint32_t height, uint64_t max_pixels);

/** The CIMAGEIO_TOO_LARGE message, from the stored size in `info`. */
CIMAGEIO_INTERNAL void cimageio_too_large_message(cimageio_info *info, uint64_t max_pixels);

/**
 * The Orientation value in an EXIF block: -1 when there is no Orientation tag,
 * 0 when it is present but not a single integer, else its value.
 */
CIMAGEIO_INTERNAL long cimageio_exif_orientation(const uint8_t *p, size_t n);

/** Pillow's XMP fallback (tiff:Orientation="N" or >N), -1 when absent. */
CIMAGEIO_INTERNAL long cimageio_xmp_orientation(const uint8_t *p, size_t n);

/** The orientation that is applied: EXIF if present, else XMP; 1 unless 2..8. */
CIMAGEIO_INTERNAL uint32_t cimageio_resolve_orientation(long exif, long xmp);

/** Sets info->width/height from the stored size and info->orientation. */
CIMAGEIO_INTERNAL void cimageio_set_oriented_size(cimageio_info *info);

/** Copies a stored w×h RGB image (w·h·3 bytes) into dst with the EXIF transform applied. */
CIMAGEIO_INTERNAL void cimageio_apply_orientation(const uint8_t *src, size_t w, size_t h,
                                                  uint32_t orientation, uint8_t *dst);

/*
 * Per-format decoders. `info` is zeroed with format and orientation 1 set; `rgb`
 * NULL means probe only (header, limit). Same contract as cimageio_decode otherwise.
 */
CIMAGEIO_INTERNAL cimageio_status cimageio_decode_jpeg(const uint8_t *data, size_t size,
                                                       uint64_t max_pixels, uint8_t *rgb,
                                                       size_t rgb_size, cimageio_info *info);
CIMAGEIO_INTERNAL cimageio_status cimageio_decode_png(const uint8_t *data, size_t size,
                                                      uint64_t max_pixels, uint8_t *rgb,
                                                      size_t rgb_size, cimageio_info *info);

#endif /* CIMAGEIO_INTERNAL_H */
