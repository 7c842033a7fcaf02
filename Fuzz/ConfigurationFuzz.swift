/// libFuzzer target: any bytes as `config.yaml`. Reading it either gives a configuration or
/// throws a `ConfigurationError` that names the file; it must never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfiguration(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try ConfigurationLoader.parse(yaml: text, file: "config.yaml", environment: [:])
    } catch {
        precondition(!"\(error)".isEmpty, "an error without a message")
    }
    return 0
}
