import Foundation

/// The HTTP proxy the API is reached through, if any: `api.proxy`, else the conventional
/// environment (`HTTPS_PROXY`/`https_proxy` for an https base URL, `HTTP_PROXY`/`http_proxy`
/// for http), unless `NO_PROXY`/`no_proxy` names the API's host (curl's rules: a comma list
/// of names, which match the host and its subdomains, IP addresses or `*`). Loopback is not
/// special: like curl, it goes through the proxy unless `NO_PROXY` names it. HTTPS goes
/// through the proxy with CONNECT, so the proxy never sees the admin key.
public struct ProxySettings: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    /// Where it was set: `api.proxy`, `HTTPS_PROXY`, ...
    public var origin: String

    /// `http://***:***@host:port (from HTTPS_PROXY)`: never the credentials.
    public var description: String { "\(url) (from \(origin))" }

    /// The proxy's URL with the user name and password each replaced by `***`: some proxies
    /// take a token as the user name, so it is as secret as the password.
    public var url: String {
        let credentials = username == nil ? "" : "***:***@"
        let shown = host.contains(":") ? "[\(host)]" : host
        return "http://\(credentials)\(shown):\(port)"
    }

    /// `http://[user:password@]host[:port]` (port 1080 by curl's default when absent); the
    /// reason it is not one otherwise, without the password.
    public static func parse(_ text: String, origin: String) -> Result<ProxySettings, ProxyError> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        // curl takes a bare host:port as http.
        let full = trimmed.contains("://") ? trimmed : "http://" + trimmed
        guard let url = URLComponents(string: full), let scheme = url.scheme?.lowercased() else {
            return .failure(ProxyError(origin: origin, reason: "is not a URL such as http://proxy.example.com:3128"))
        }
        guard scheme == "http" else {
            return .failure(
                ProxyError(
                    origin: origin,
                    reason: "uses \(scheme)://, which is not supported (an HTTP proxy: http://host:port)"))
        }
        guard var host = url.host, !host.isEmpty else {
            return .failure(ProxyError(origin: origin, reason: "has no host (expected http://host:port)"))
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = url.port ?? 1080
        guard (1...65535).contains(port), url.path.isEmpty || url.path == "/", url.query == nil else {
            return .failure(ProxyError(origin: origin, reason: "is not http://host:port"))
        }
        return .success(
            ProxySettings(
                host: host, port: port, username: url.user?.removingPercentEncoding,
                password: url.password?.removingPercentEncoding, origin: origin))
    }

    /// The proxy for `baseURL`: `configured` (`api.proxy`), else the environment's, unless
    /// `NO_PROXY` names the host; nil for a direct connection.
    public static func resolve(
        baseURL: String, configured: String?, environment: [String: String]
    ) -> Result<ProxySettings?, ProxyError> {
        guard let url = URLComponents(string: baseURL), let host = url.host else { return .success(nil) }
        let names = url.scheme?.lowercased() == "http" ? ["http_proxy", "HTTP_PROXY"] : ["https_proxy", "HTTPS_PROXY"]
        let chosen: (text: String, origin: String)? =
            configured.map { ($0, "api.proxy") }
            ?? names.lazy.compactMap { name in
                environment[name].flatMap { $0.isEmpty ? nil : ($0, name) }
            }.first
        guard let chosen else { return .success(nil) }
        let noProxy = environment["no_proxy"] ?? environment["NO_PROXY"] ?? ""
        if bypasses(host: host, noProxy: noProxy) { return .success(nil) }
        return parse(chosen.text, origin: chosen.origin).map { $0 }
    }

    /// curl's `NO_PROXY`: `*` matches every host; a name matches itself and its subdomains
    /// (a leading dot is ignored); an IP address matches itself; an optional `:port` and
    /// brackets around IPv6 are ignored; case does not matter.
    public static func bypasses(host: String, noProxy: String) -> Bool {
        let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        for raw in noProxy.split(separator: ",") {
            var entry = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if entry == "*" { return true }
            if entry.hasPrefix("[") {
                entry = String(entry.dropFirst().prefix { $0 != "]" })
            } else if entry.filter({ $0 == ":" }).count == 1 {
                entry = String(entry.prefix { $0 != ":" })
            }
            while entry.hasPrefix(".") { entry.removeFirst() }
            guard !entry.isEmpty else { continue }
            if host == entry || host.hasSuffix("." + entry) { return true }
        }
        return false
    }
}
