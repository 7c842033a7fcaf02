import AuditShipper
import Testing

/// Which proxy the API is reached through: `api.proxy`, else the environment, curl's rules.
@Suite struct ProxySettingsTests {
    func resolve(_ base: String, _ configured: String? = nil, _ environment: [String: String]) -> String? {
        switch ProxySettings.resolve(baseURL: base, configured: configured, environment: environment) {
        case .success(let proxy): proxy?.description
        case .failure(let error): "error: \(error)"
        }
    }

    @Test func theSchemePicksTheVariableAndTheConfigurationWins() {
        let environment = ["HTTPS_PROXY": "http://s:3128", "HTTP_PROXY": "http://p:3128"]
        #expect(resolve("https://api.openai.com/v1", nil, environment) == "http://s:3128 (from HTTPS_PROXY)")
        #expect(resolve("http://127.0.0.1:8080/v1", nil, environment) == "http://p:3128 (from HTTP_PROXY)")
        #expect(
            resolve("https://api.openai.com/v1", nil, ["https_proxy": "http://l:1", "HTTPS_PROXY": "http://u:2"])
                == "http://l:1 (from https_proxy)")
        #expect(resolve("https://api.openai.com/v1", "http://c:8080", environment) == "http://c:8080 (from api.proxy)")
        #expect(resolve("https://api.openai.com/v1", nil, [:]) == nil)
        #expect(resolve("https://api.openai.com/v1", nil, ["HTTPS_PROXY": ""]) == nil)
        // Loopback is not special: like curl, it goes through the proxy unless NO_PROXY says.
        #expect(resolve("https://127.0.0.1:8443/v1", nil, environment) == "http://s:3128 (from HTTPS_PROXY)")
    }

    @Test func credentialsAreKeptButNeverShown() throws {
        let proxy = try ProxySettings.parse("http://us%40er:p%3Ass@proxy.corp:3128", origin: "api.proxy").get()
        #expect(proxy.username == "us@er" && proxy.password == "p:ss")
        #expect(proxy.description == "http://***:***@proxy.corp:3128 (from api.proxy)")
        // A token given as the user name is as secret as a password.
        let token = try ProxySettings.parse("http://tok_0123456789abcdef:x@proxy.corp:3128", origin: "api.proxy").get()
        #expect(!token.description.contains("tok_") && !token.url.contains("tok_"))
        #expect(try ProxySettings.parse("proxy.corp:8080", origin: "x").get().port == 8080, "bare host:port is http")
        #expect(try ProxySettings.parse("http://proxy.corp", origin: "x").get().port == 1080, "curl's default port")
        #expect(try ProxySettings.parse("http://[::1]:3128", origin: "x").get().url == "http://[::1]:3128")
    }

    @Test(arguments: [
        ("socks5://proxy:1080", "uses socks5://, which is not supported"),
        ("https://proxy:443", "uses https://, which is not supported"),
        ("http://:3128", "has no host"),
        ("http://proxy:99999", "is not http://host:port"),
        ("http://proxy:3128/path", "is not http://host:port"),
    ])
    func whatIsNotAnHTTPProxyIsRefused(_ text: String, _ reason: String) {
        #expect(
            resolve("https://api.openai.com/v1", nil, ["HTTPS_PROXY": text])?.hasPrefix("error: HTTPS_PROXY \(reason)")
                == true)
    }

    /// curl's NO_PROXY: `*`, names matching themselves and their subdomains (leading dot
    /// ignored), IP addresses, ports and brackets ignored, any case.
    @Test(arguments: [
        ("api.openai.com", "*", true), ("api.openai.com", "openai.com", true), ("api.openai.com", ".openai.com", true),
        ("api.openai.com", "OPENAI.COM", true), ("api.openai.com", "example.com, api.openai.com:443", true),
        ("api.openai.com", "penai.com", false), ("api.openai.com", "api.openai.com.evil", false),
        ("127.0.0.1", "127.0.0.1", true), ("127.0.0.1", "127.0.0.2,localhost", false), ("::1", "[::1]:8080", true),
        ("::1", "::1", true), ("api.openai.com", "", false),
    ])
    func noProxyFollowsCurl(_ host: String, _ list: String, _ bypassed: Bool) {
        #expect(ProxySettings.bypasses(host: host, noProxy: list) == bypassed)
        #expect(
            (resolve("https://\(host.contains(":") ? "[\(host)]" : host)/v1", "http://p:1", ["NO_PROXY": list]) == nil)
                == bypassed, "NO_PROXY applies to api.proxy too, as curl's does to -x")
    }
}
