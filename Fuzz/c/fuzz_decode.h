#ifndef FUZZ_DECODE_H
#define FUZZ_DECODE_H
/*
 * What every C decoder target does with one input: the same calls, in the same
 * order and with the same pixel limit, as Imaging's ImageDecoder.decode(bytes:name:)
 * (Sources/Imaging/ImageDecoder.swift), then checks the library's promises and
 * aborts (a crash to libFuzzer) when one is broken:
 *   - every failure comes with a non-empty, NUL-terminated message;
 *   - a decode agrees with its probe on format, size and orientation (1..8);
 *   - a small decoded image survives cimageio_encode_png → cimageio_decode unchanged,
 *     which runs the encoder under the sanitizers too.
 * Crashes inside the libraries, sanitizer reports and leaks are libFuzzer's to catch.
 */
#include "cimageio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ImageDecoder.defaultMaxPixels: what `caption` decodes with. */
#define FUZZ_MAX_PIXELS 100000000ULL

/* Images up to this many pixels are also round-tripped through the PNG encoder. */
#define FUZZ_ROUND_TRIP_PIXELS 65536ULL

#define FUZZ_CHECK(condition, ...)                                                        \
    do {                                                                                  \
        if (!(condition)) {                                                               \
            fprintf(stderr, "fuzz check failed: %s: ", #condition);                       \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static void fuzz_check_message(cimageio_status status, const cimageio_info *info) {
    const size_t length = strnlen(info->message, CIMAGEIO_MESSAGE_SIZE);
    FUZZ_CHECK(length < CIMAGEIO_MESSAGE_SIZE, "status %d: message not NUL-terminated", status);
    FUZZ_CHECK(length > 0, "status %d without a message", status);
}

/* The decoded pixels written as PNG and read back must be the same pixels. */
static void fuzz_round_trip(const uint8_t *rgb, uint32_t width, uint32_t height) {
    uint8_t *png = NULL;
    size_t png_size = 0;
    char message[CIMAGEIO_MESSAGE_SIZE];
    cimageio_status status = cimageio_encode_png(rgb, width, height, 1, &png, &png_size, message);
    FUZZ_CHECK(status == CIMAGEIO_OK, "encoding %u×%u failed: %s", width, height, message);
    const size_t bytes = (size_t)width * height * 3;
    uint8_t *again = malloc(bytes);
    FUZZ_CHECK(again != NULL, "out of memory");
    cimageio_info info;
    status = cimageio_decode(png, png_size, FUZZ_MAX_PIXELS, again, bytes, &info);
    FUZZ_CHECK(status == CIMAGEIO_OK, "re-decoding our own PNG failed: %s", info.message);
    FUZZ_CHECK(info.width == width && info.height == height, "round trip changed the size");
    FUZZ_CHECK(memcmp(rgb, again, bytes) == 0, "round trip changed the pixels");
    free(again);
    cimageio_free(png);
}

/*
 * Decodes `data` as ImageDecoder does; returns -1 (keep out of the corpus) when the
 * input is not of the wanted format, so each target spends its time on its decoder.
 */
static int fuzz_decode(const uint8_t *data, size_t size, cimageio_format wanted) {
    if (size == 0) return -1; /* ImageDecoder throws "file is empty" before calling C */
    if (cimageio_sniff(data, size) != wanted) return -1;
    cimageio_info probe;
    cimageio_status status = cimageio_probe(data, size, FUZZ_MAX_PIXELS, &probe);
    if (status != CIMAGEIO_OK) {
        fuzz_check_message(status, &probe);
        return 0;
    }
    FUZZ_CHECK(probe.format == wanted, "probe says format %d", probe.format);
    FUZZ_CHECK(probe.orientation >= 1 && probe.orientation <= 8, "orientation %u", probe.orientation);
    FUZZ_CHECK((uint64_t)probe.width * probe.height <= FUZZ_MAX_PIXELS, "%u×%u passed the limit",
               probe.width, probe.height);
    if (probe.width == 0 || probe.height == 0) return 0; /* ImageDecoder: "image has no pixels" */
    const size_t bytes = (size_t)probe.width * probe.height * 3;
    uint8_t *rgb = malloc(bytes);
    FUZZ_CHECK(rgb != NULL, "out of memory for %zu bytes", bytes);
    cimageio_info info;
    status = cimageio_decode(data, size, FUZZ_MAX_PIXELS, rgb, bytes, &info);
    if (status != CIMAGEIO_OK) {
        fuzz_check_message(status, &info);
    } else {
        FUZZ_CHECK(info.format == probe.format && info.width == probe.width &&
                       info.height == probe.height && info.orientation == probe.orientation,
                   "decode (%u×%u, orientation %u) disagrees with probe (%u×%u, orientation %u)",
                   info.width, info.height, info.orientation, probe.width, probe.height,
                   probe.orientation);
        if ((uint64_t)info.width * info.height <= FUZZ_ROUND_TRIP_PIXELS)
            fuzz_round_trip(rgb, info.width, info.height);
    }
    free(rgb);
    return 0;
}

#endif /* FUZZ_DECODE_H */
