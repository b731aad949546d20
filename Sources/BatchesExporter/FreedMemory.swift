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
enum FreedMemory {
    #if canImport(Glibc)
    private typealias MallocTrim = @convention(c) (Int) -> Int32
    /// Looked up at run time: `malloc_trim` is declared in `<malloc.h>`, which the Glibc module
    /// does not export, and a C shim target for one function would be a target with no other job.
    private static let mallocTrim: MallocTrim? = dlsym(nil, "malloc_trim").map { unsafeBitCast($0, to: MallocTrim.self) }
    #endif

    static func returnToSystem() {
        #if canImport(Glibc)
        _ = mallocTrim?(0)
        #endif
    }
}
