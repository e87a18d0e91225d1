#if canImport(Glibc)
    import Glibc
#endif

/// Process-wide allocator settings for numeric workloads.
public enum MemoryTuning {
    /// Keeps large freed blocks in the heap instead of returning them to the kernel.
    ///
    /// Training allocates activations of several megabytes per batch. By default glibc serves such
    /// blocks with `mmap` and unmaps them on free, so every batch pays for page faults and for the
    /// kernel zeroing fresh pages. Raising the mmap and trim thresholds lets freed blocks be reused.
    /// Call once at start-up of a process that trains or runs float models on batches.
    /// Does nothing where glibc's `mallopt` is not available.
    public static func reuseLargeAllocations() {
        #if canImport(Glibc)
            // <malloc.h> is not part of the Glibc module; its constants are fixed by glibc's ABI.
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
            let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
            let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
            _ = mallopt(mmapThreshold, 512 << 20)
            _ = mallopt(trimThreshold, 1 << 30)
        #endif
    }
}
