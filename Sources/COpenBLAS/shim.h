// Debian's libopenblas-dev installs OpenBLAS's cblas.h (with openblas_set_num_threads)
// through the alternatives system at <x86_64-linux-gnu/cblas.h>, on the default include path.
#include <cblas.h>
