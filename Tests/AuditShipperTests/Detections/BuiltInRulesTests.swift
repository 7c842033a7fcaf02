import Foundation
import Testing

@testable import AuditShipper

/// The rules the package ships (`packaging/rules/`, installed in /usr/share/openai-auditd/rules):
/// their ids and levels pinned, each met by an event of its own, and near misses left alone.
@Suite struct BuiltInRulesTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("packaging/rules").path

    static func detector() throws -> Detector { Detector(try SigmaRuleReader().read(paths: [folder])) }

    static let pinned: [String: SigmaLevel] = [
        "openai-owner-role-granted": .high, "openai-admin-api-key-created": .high,
        "openai-api-key-broad-scope": .medium, "openai-credential-stuffing": .medium,
        "openai-login-failure-burst": .low, "openai-ip-allowlist-removed": .critical,
        "openai-ip-allowlist-changed": .high, "openai-ip-allowlist-added": .medium, "openai-scim-disabled": .high,
        "openai-scim-changed": .medium, "openai-sso-removed": .high, "openai-sso-changed": .medium,
        "openai-session-policy-changed": .medium, "openai-role-assignment-changed": .medium,
        "openai-mtls-certificate-removed": .medium, "openai-project-deleted": .low,
    ]

    @Test func theShippedRulesAreTheseWithTheseLevels() throws {
        let rules = try SigmaRuleReader().read(paths: [Self.folder])
        var levels: [String: SigmaLevel] = [:]
        for rule in rules.rules where rule.id != "openai-login-failed" { levels[rule.id] = rule.level }
        for correlation in rules.correlations { levels[correlation.id] = correlation.level }
        #expect(levels == Self.pinned)
        #expect(rules.otherSources.isEmpty)
    }

    @Test(arguments: [
        ("user.updated", #""user.updated":{"changes_requested":{"role":"owner"}}"#, "openai-owner-role-granted"),
        ("invite.sent", #""invite.sent":{"data":{"email":"a@b","role":"owner"}}"#, "openai-owner-role-granted"),
        (
            "service_account.created", #""service_account.created":{"data":{"role":"owner"}}"#,
            "openai-owner-role-granted"
        ),
        ("tenant.admin_api_key.created", "", "openai-admin-api-key-created"),
        ("api_key.created", #""api_key.created":{"data":{"scopes":["all"]}}"#, "openai-api-key-broad-scope"),
        (
            "api_key.created", #""api_key.created":{"data":{"scopes":["api.files.write"]}}"#,
            "openai-api-key-broad-scope"
        ),
        (
            "api_key.updated", #""api_key.updated":{"changes_requested":{"scopes":["api.model:write"]}}"#,
            "openai-api-key-broad-scope"
        ),
        ("ip_allowlist.deleted", "", "openai-ip-allowlist-removed"),
        ("ip_allowlist.config.deactivated", "", "openai-ip-allowlist-removed"),
        ("ip_allowlist.updated", "", "openai-ip-allowlist-changed"),
        ("ip_allowlist.created", "", "openai-ip-allowlist-added"),
        ("ip_allowlist.config.activated", "", "openai-ip-allowlist-added"),
        ("scim.disabled", "", "openai-scim-disabled"),
        ("scim.enabled", "", "openai-scim-changed"),
        ("tenant.scim.directory.created", "", "openai-scim-changed"),
        ("tenant.sso_connection.deleted", "", "openai-sso-removed"),
        ("tenant.sso_connection.updated", "", "openai-sso-changed"),
        ("tenant.sso.migrated", "", "openai-sso-changed"),
        ("tenant.session_policy.updated", "", "openai-session-policy-changed"),
        ("role.assignment.created", "", "openai-role-assignment-changed"),
        ("tenant.role_assignment.deleted", "", "openai-role-assignment-changed"),
        ("role.unbound_from_resource", "", "openai-role-assignment-changed"),
        ("certificate.deleted", "", "openai-mtls-certificate-removed"),
        ("certificates.deactivated", "", "openai-mtls-certificate-removed"),
        ("project.archived", "", "openai-project-deleted"),
    ])
    func eachRuleMeetsItsEvent(type: String, body: String, rule: String) throws {
        let detection = try Self.detector().evaluate(SigmaRuleTests.event(type, body))
        #expect(detection == Detection(rules: [rule], level: Self.pinned[rule]!))
    }

    @Test(arguments: [
        ("invite.sent", #""invite.sent":{"data":{"email":"a@b","role":"reader"}}"#),
        ("user.updated", #""user.updated":{"changes_requested":{"role":"reader"}}"#),
        ("api_key.created", #""api_key.created":{"data":{"scopes":["api.model.read"]}}"#),
        ("tenant.admin_api_key.deleted", ""),
        ("login.succeeded", ""),
        ("ip_allowlist.config.deactivatedx", ""),
    ])
    func nearMissesAreLeftAlone(type: String, body: String) throws {
        #expect(try Self.detector().evaluate(SigmaRuleTests.event(type, body)) == nil)
    }

    @Test func fourFailedLoginsFromFourAddressesAreNoStuffingAndTheFifthIs() throws {
        let detector = try Self.detector()
        func failed(_ ip: String, _ at: Int64) -> Detection? {
            detector.evaluate(
                SigmaRuleTests.event(
                    "login.failed", at: at,
                    #""actor":{"type":"session","session":{"user":{"email":"victim@example.com"},"ip_address":"\#(ip)"}}"#
                ))
        }
        for index in 0..<4 { #expect(failed("203.0.113.\(index)", 1_800_000_000 + Int64(index) * 60) == nil) }
        #expect(
            failed("203.0.113.9", 1_800_000_000 + 1700)
                == Detection(rules: ["openai-credential-stuffing"], level: .medium))
    }
}
