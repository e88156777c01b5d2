import CKernels

/// How the C heap treats freed memory, for long loops that allocate the same large temporaries every iteration.
public enum HeapPolicy {
    /// Keeps freed memory in the process for reuse instead of handing it back to the kernel: blocks of up to
    /// 32 MB come from the heap rather than from fresh `mmap`s, and the heap is never trimmed. By default glibc
    /// maps every large block afresh and unmaps it on free, so each training step touches tens of megabytes of
    /// new pages, and the kernel faults in and zeroes every one of them (with the video autoencoder that was
    /// about 15 % of a step). The price is that the resident size stays at its peak. Training commands call
    /// this once at start; inference keeps the default.
    public static func retainFreedMemory() { ck_heap_retain_freed_memory() }
}
