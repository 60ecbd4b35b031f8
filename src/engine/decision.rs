//! What was decided for one review, and why: the words logs, metrics, audit annotations and
//! `review --explain` all use.

/// What was decided for one review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The Pod gets a patch adding these profiles.
    Injected { profiles: Vec<String> },
    /// The Pod is admitted unchanged.
    Skipped(SkipReason),
    /// The Pod is refused.
    Denied { message: String },
}

impl Decision {
    /// A short word for logs and metrics: `injected`, `skipped` or `denied`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Injected { .. } => "injected",
            Decision::Skipped(_) => "skipped",
            Decision::Denied { .. } => "denied",
        }
    }

    /// Why it was skipped, as [`SkipReason::as_str`] gives it; empty when it was not. The one
    /// mapping logs, metrics and audit annotations use.
    pub fn reason(&self) -> &'static str {
        match self {
            Decision::Skipped(reason) => reason.as_str(),
            _ => "",
        }
    }
}

/// Why a review was admitted unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    NotAPod,
    Subresource,
    NotCreate,
    OptedOut,
    Namespace,
    HostNetwork,
    NotRequested,
    AlreadyInjected,
    /// The Pod carries the status of another configuration or profile set, for instance a Pod
    /// re-created from a dump taken before the configuration changed. Injecting again would add
    /// every sidecar twice.
    InjectedByOtherConfig,
    /// A profile could not be applied and its `onError` is `allow`.
    ErrorAllowed,
}

impl SkipReason {
    /// A stable name for logs, metrics and audit annotations.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotAPod => "not-a-pod",
            SkipReason::Subresource => "subresource",
            SkipReason::NotCreate => "not-create",
            SkipReason::OptedOut => "opted-out",
            SkipReason::Namespace => "namespace-skipped",
            SkipReason::HostNetwork => "host-network",
            SkipReason::NotRequested => "not-requested",
            SkipReason::AlreadyInjected => "already-injected",
            SkipReason::InjectedByOtherConfig => "injected-by-other-config",
            SkipReason::ErrorAllowed => "error-allowed",
        }
    }
}

/// For people: `injected: a, b`, `not injected (opted-out)`, `denied: <message>`.
impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Injected { profiles } => write!(f, "injected: {}", profiles.join(", ")),
            Decision::Skipped(reason) => write!(f, "not injected ({})", reason.as_str()),
            Decision::Denied { message } => write!(f, "denied: {message}"),
        }
    }
}
