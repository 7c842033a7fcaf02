// page-reader-bench [--passes N] PAGE_FILE...: how fast PageScanner reads recorded pages, in
// MB of page bytes per second. With --passes, exactly N passes over the pages in one round (a
// fixed amount of work, for timing two builds against each other from outside). `make bench` records the pages (scripts/bench.sh); docs/benchmark.md
// explains the method. Not installed: a measuring tool for the release build.

import AuditShipper

#if canImport(Glibc)
    import Glibc
#endif

func fail(_ message: String, code: Int32) -> Never {
    let line = Array("page-reader-bench: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(code)
}

func readFile(_ path: String) -> [UInt8] {
    guard let file = fopen(path, "rb") else {
        fail("cannot open \(path): \(String(cString: strerror(errno)))", code: 66)
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return bytes
}

func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

var paths = Array(CommandLine.arguments.dropFirst())
var fixedPasses: Int?
if paths.first == "--passes" {
    guard paths.count > 1, let n = Int(paths[1]), n > 0 else { fail("--passes needs a positive number", code: 64) }
    fixedPasses = n
    paths.removeFirst(2)
}
guard !paths.isEmpty else {
    fail("usage: page-reader-bench [--passes N] PAGE_FILE...", code: 64)
}
let pages = paths.map(readFile)
let totalBytes = pages.reduce(0) { $0 + $1.count }
var events = 0
for (path, page) in zip(paths, pages) {
    do {
        events += try PageScanner.scan(page).events.count
    } catch {
        fail("\(path): \(error)", code: 65)
    }
}

// Rounds of at least half a second each; the best and the median are printed, so a noisy
// neighbour shows as a gap between them rather than as a wrong figure.
var rates: [Double] = []
var checksum = 0
for _ in 0..<(fixedPasses == nil ? 7 : 1) {
    let start = now()
    var passes = 0
    repeat {
        for page in pages {
            // The page is valid (checked above): a throw here would be a bug, counted as zero.
            checksum &+= (try? PageScanner.scan(page).events.count) ?? 0
        }
        passes += 1
    } while fixedPasses.map { passes < $0 } ?? (now() - start < 0.5)
    rates.append(Double(totalBytes * passes) / (now() - start) / 1e6)
}
rates.sort()
let median = rates[rates.count / 2]
let best = rates.last!
print(
    "page reader: \(pages.count) pages, \(totalBytes) bytes, \(events) events: "
        + "median \(Int(median.rounded())) MB/s, best \(Int(best.rounded())) MB/s"
        + (checksum == 0 ? " (no events read)" : "")
)
