#if canImport(Glibc)
import Glibc
#endif

/// Hands memory the process has freed back to the operating system.
///
/// A full read of a long history allocates and frees hundreds of megabytes of pages and records
/// in many small blocks. glibc keeps freed blocks inside its heaps and only shrinks a heap from
/// its top, so without this the resident size after the first read stays near its peak for a
/// long time. `malloc_trim` also releases whole free pages in the middle of every arena. It
/// walks the heaps (milliseconds at a million batches), so it runs once per completed full
/// read or resync, not per poll. A no-op where the C library is not glibc.
public enum FreedMemory {
    #if canImport(Glibc)
    private typealias MallocTrim = @convention(c) (Int) -> Int32
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    /// Looked up at run time: `malloc_trim` and `mallopt` are declared in `<malloc.h>`, which the
    /// Glibc module does not export, and a C shim target for two functions would be a target
    /// with no other job.
    private static let mallocTrim: MallocTrim? = dlsym(nil, "malloc_trim").map { unsafeBitCast($0, to: MallocTrim.self) }
    private static let mallopt: Mallopt? = dlsym(nil, "mallopt").map { unsafeBitCast($0, to: Mallopt.self) }
    /// `M_MMAP_THRESHOLD` from `<malloc.h>`.
    private static let mmapThresholdOption: Int32 = -3
    #endif

    static func returnToSystem() {
        #if canImport(Glibc)
        _ = mallocTrim?(0)
        #endif
    }

    /// Keeps large blocks (a page of the listing, a rendered body: 128 KiB and more) in
    /// mappings of their own, which go back to the system the moment they are freed.
    ///
    /// glibc starts with that threshold but raises it (up to 32 MiB) each time such a block is
    /// freed, after which every page and body of a poll is carved from the heap and leaves holes
    /// there that the next full read's small records fill: about 6 MiB more resident at 100,000
    /// batches, measured. Fixing the threshold turns that dynamic raising off. Call once at
    /// start, before the first poll. Left alone when `MALLOC_MMAP_THRESHOLD_` is set: the
    /// operator's setting stands.
    public static func keepLargeBlocksSeparate() {
        #if canImport(Glibc)
        guard getenv("MALLOC_MMAP_THRESHOLD_") == nil else { return }
        _ = mallopt?(mmapThresholdOption, 128 * 1024)
        #endif
    }
}
