/// `api.include_tenant_events`: whether every slice is read in a second pass with
/// `tenant_only=true`, which OpenAI's reference says tenant-scoped events (`tenant.*`: SSO,
/// SCIM, admin keys, roles; `role.bound_to_resource`, ...) require.
public enum TenantEvents: String, Sendable, Equatable, CaseIterable {
    /// Read it; if the API rejects `tenant_only`, say so once and stop until a restart or reload.
    case auto
    /// Read it; a rejection is an error like any other.
    case on = "true"
    case off = "false"
}
