/// One request of `GET /organization/audit_logs`, in the API's terms.
public struct AuditLogQuery: Sendable, Hashable {
    public var filters = AuditLogFilters()
    public var effectiveAtGreaterThan: Int64?
    public var effectiveAtGreaterOrEqual: Int64?
    public var effectiveAtLessThan: Int64?
    public var effectiveAtLessOrEqual: Int64?
    public var limit: Int?
    public var after: String?
    public var before: String?
    public var tenantOnly = false

    public init(filters: AuditLogFilters = AuditLogFilters()) { self.filters = filters }

    /// The parameters whose value comes from the configuration (`api.filters`, `api.page_size`
    /// as `limit`, `api.include_tenant_events` as `tenant_only`): a 400 naming one of them is
    /// the operator's to fix (`UpstreamError.refusesConfiguration`).
    public static let parameterNames = AuditLogFilters.fields.map(\.name) + ["limit", "tenant_only"]

    /// The wire form the SDKs use: `effective_at[gte]=…`, repeated `event_types[]=…`, brackets
    /// percent-encoded, every filter on every page. Built as bytes, once per request.
    public var queryString: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        func add(_ name: String, _ value: String) {
            if !bytes.isEmpty { bytes.append(UInt8(ascii: "&")) }
            Self.percentEncode(name, into: &bytes)
            bytes.append(UInt8(ascii: "="))
            Self.percentEncode(value, into: &bytes)
        }
        if let v = effectiveAtGreaterThan { add("effective_at[gt]", String(v)) }
        if let v = effectiveAtGreaterOrEqual { add("effective_at[gte]", String(v)) }
        if let v = effectiveAtLessThan { add("effective_at[lt]", String(v)) }
        if let v = effectiveAtLessOrEqual { add("effective_at[lte]", String(v)) }
        for field in AuditLogFilters.fields {
            for value in filters[keyPath: field.values] { add(field.name + "[]", value) }
        }
        if tenantOnly { add("tenant_only", "true") }
        if let limit { add("limit", String(limit)) }
        if let after { add("after", after) }
        if let before { add("before", before) }
        return String(decoding: bytes, as: UTF8.self)
    }

    static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// RFC 3986: everything but the unreserved characters is percent-encoded.
    static func percentEncode(_ text: String, into out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
    }
}
