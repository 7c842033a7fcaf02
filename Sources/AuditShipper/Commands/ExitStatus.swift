/// What an error means to the shell that started a command: a sysexits code and the line
/// on stderr. The one place errors become exit codes (the executable adds 64 for its flags).
public enum ExitStatus {
    public static func of(_ error: any Error) -> (code: Int32, message: String) {
        switch error {
        case let error as ConfigurationError: return (78, "\(error)")
        case let error as StateError: return (error.exitCode, "\(error)")
        case let error as UpstreamError:
            switch error.underlying {
            case .keyRejected: return (77, "\(error)")
            case .badRequest(_, let message) where error.refusesConfiguration && message.contains("tenant_only"):
                return (
                    78, "\(error) (this API does not take tenant_only: set api.include_tenant_events to auto or false)"
                )
            case .badRequest where error.refusesConfiguration:
                return (78, "\(error) (check api.filters and api.page_size)")
            // Any other refusal (a 404 from a gateway, a redirect) is not the configuration's:
            // 78 would keep a systemd unit down for good (RestartPreventExitStatus).
            default: return (69, "\(error)")
            }
        case let error as SinkError: return (74, "\(error)")
        case let error as CoordinationError:
            switch error {
            // Members of another source in the group: only the configuration changes that.
            case .otherSource: return (78, "\(error)")
            default: return (69, "\(error)")
            }
        default: return (70, "\(error)")
        }
    }
}
