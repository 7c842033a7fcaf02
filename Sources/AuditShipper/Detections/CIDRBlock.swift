#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `2001:db8::/32`), for Sigma's `cidr` modifier.
struct CIDRBlock: Sendable, Equatable {
    let network: [UInt8]
    let prefix: Int

    /// Nil when `text` is no network in CIDR notation (a bare address is its own /32 or /128).
    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.address(String(parts[0])) else { return nil }
        let bits = address.count * 8
        if parts.count == 2 {
            guard let prefix = Int(parts[1]), (0...bits).contains(prefix) else { return nil }
            self.prefix = prefix
        } else {
            prefix = bits
        }
        network = address
    }

    /// Whether `text` is an address inside this network (of the same family).
    func contains(_ text: String) -> Bool {
        guard let address = Self.address(text), address.count == network.count else { return false }
        var left = prefix
        for (mine, theirs) in zip(network, address) where left > 0 {
            let mask: UInt8 = left >= 8 ? 0xFF : ~(0xFF >> UInt8(left))
            if mine & mask != theirs & mask { return false }
            left -= 8
        }
        return true
    }

    /// The address's bytes: 4 for IPv4, 16 for IPv6; nil if it is neither.
    static func address(_ text: String) -> [UInt8]? {
        var four = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, text, &four) == 1 { return four }
        var sixteen = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET6, text, &sixteen) == 1 { return sixteen }
        return nil
    }
}
