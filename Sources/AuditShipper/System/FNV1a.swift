/// FNV-1a, the one checksum: stable across runs and builds (unlike `Hasher`), cheap, and
/// enough to tell a whole line from a torn or stale one, or two sink names apart in a file
/// name. Not a defence against tampering: nothing here is.
enum FNV1a {
    static func hash64(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }

    static func hash32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }
}
