/* libFuzzer target: cimageio's PNG decoder and encoder (png.c) as `caption` calls them. See fuzz_decode.h. */
#include "fuzz_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_decode(data, size, CIMAGEIO_FORMAT_PNG);
}
