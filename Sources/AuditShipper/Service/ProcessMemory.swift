import CMalloc

/// glibc's allocator, set once at start for a process whose large allocations are pages
/// (up to `api.max_response_bytes`) and batches (up to 16 MiB), made and freed by the
/// thousand over a catch-up.
///
/// Left to itself, glibc raises its mmap threshold to the size of each large block freed (up
/// to 32 MiB): from then on pages and batches come from the heap of the thread that made
/// them, and what they leave free there stays resident. Each thread gets a heap of its own
/// (up to eight per core), so a catch-up that passes through many threads holds many such
/// remnants: a CI host once measured 1,282 MB where `poll.max_window_bytes` was 8 MiB and the
/// same run on two cores peaks at 60 MB. With the threshold fixed, a block of 1 MiB or more is
/// mapped for itself and given back when freed; two heaps are enough for a daemon that does
/// one thing at a time (the cycle runs on one event loop).
public enum ProcessMemory {
    public static let mappedFrom: Int32 = 1 << 20
    public static let heaps: Int32 = 2

    /// Call before any other thread starts. Returns false if glibc refused a setting (the
    /// defaults stay; memory is then bounded less tightly, nothing else changes).
    @discardableResult
    public static func configure() -> Bool {
        // mallopt returns 1 on success, 0 on error.
        let threshold = mallopt(M_MMAP_THRESHOLD, mappedFrom)
        let arenas = mallopt(M_ARENA_MAX, heaps)
        return threshold == 1 && arenas == 1
    }
}
