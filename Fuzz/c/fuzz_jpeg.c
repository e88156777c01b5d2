/* libFuzzer target: cimageio's JPEG decoder (jpeg.c) as `caption` calls it. See fuzz_decode.h. */
#include "fuzz_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_decode(data, size, CIMAGEIO_FORMAT_JPEG);
}
