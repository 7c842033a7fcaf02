import Foundation
import Testing

extension Trait where Self == ConditionTrait {
    /// A test that needs root (to mount a tmpfs, to change owners) is skipped with its reason
    /// when run as another user, rather than passing or recording a failure; `make test` runs
    /// as root in CI, so there it always runs.
    static func needsRoot(_ why: String) -> Self {
        .enabled(if: getuid() == 0, "needs root \(why) (make test runs as root)")
    }
}
