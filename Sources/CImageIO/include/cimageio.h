#ifndef CIMAGEIO_H
#define CIMAGEIO_H
/* Placeholder; the decoder API is defined in imageio.c's header (being written). */
#endif
