//! Deciding what a Pod gets, and turning that into a patch we have checked.
//!
//! The steps, in order: is the Pod opted out or skipped; which profiles does it ask for; was it
//! injected already; can every profile be applied without a clash; then `plan::Plan` lists the
//! additions, and `patch` renders them twice, once as JSON Patch operations and once applied
//! directly, so that the one can be checked against the other before anything is answered.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::config::{Config, OnError, Profile, keys, status};
use super::decision::{Decision, SkipReason};
use super::error::ReviewError;
use super::patch;
use super::plan::{Plan, add_metadata, add_profile, unmounted, volume_names};
use super::pod_security::{self, Context, Level};
use super::pod_view::{Malformed, PodView};
use super::resolve::{Resolved, resolve};
use super::selection::{Chosen, Rule};
use super::skeleton::{self, PodSkeleton};

/// The decision, the patch that carries it out, and what to tell the user.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub decision: Decision,
    /// The JSON Patch, as JSON.
    pub patch: Option<Vec<u8>>,
    pub warnings: Vec<String>,
    /// The profiles injected, with the rule that chose each.
    pub chosen: Vec<Chosen>,
    /// The Pod's Pod Security level, when profiles were resolved for it.
    pub security: Option<Security>,
}

/// A Pod's Pod Security level as it came in, and as injected (or as it would have been, when
/// injection is refused for lowering it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Security {
    pub before: Level,
    pub injected: Level,
}

impl Outcome {
    pub fn skipped(reason: SkipReason) -> Self {
        Outcome {
            decision: Decision::Skipped(reason),
            patch: None,
            warnings: Vec::new(),
            chosen: Vec::new(),
            security: None,
        }
    }

    fn skipped_because(reason: SkipReason, why: impl std::fmt::Display) -> Self {
        Outcome {
            warnings: vec![format!("sidecar-injector: not injected: {why}")],
            ..Outcome::skipped(reason)
        }
    }
}

/// Decide for a Pod CREATE and build the checked patch.
pub(crate) fn decide(
    pod: &PodSkeleton,
    body: &[u8],
    namespace: &str,
    config: &Config,
) -> Result<Outcome, ReviewError> {
    let view = match PodView::read(pod, config.adds_to_app_containers) {
        Ok(view) => view,
        Err(Malformed(what)) => {
            return Ok(failed(config.on_error, vec![format!("the Pod cannot be read: {what}")]));
        }
    };
    // Every Pod read gets its level, for `review --explain`: a few comparisons per container.
    let before = view.security_level();
    let unchanged = |outcome: Outcome| Outcome {
        security: outcome.security.or(Some(Security { before, injected: before })),
        ..outcome
    };
    if let Some(outcome) = skipped(&view, namespace, config) {
        return Ok(unchanged(outcome));
    }
    // Each step either hands on what the next needs or is the answer.
    let chosen = selected(&view, namespace, config);
    let planned = chosen.and_then(|chosen| {
        let (profiles, rules): (Vec<&Profile>, Vec<Rule>) = chosen.into_iter().unzip();
        Ok((planned(&view, body, namespace, config, profiles, before)?, rules))
    });
    let (Planned { plan, profiles, warnings, security }, rules) = match planned {
        Ok(planned) => planned,
        Err(outcome) => return Ok(unchanged(outcome)),
    };
    let operations = patch::operations(&plan, &view);
    patch::verify(&view, &plan, &operations).map_err(ReviewError::PatchMismatch)?;
    let patch = patch::to_json(&operations);
    let chosen = profiles.iter().zip(rules).map(|(p, rule)| Chosen { profile: p.name.clone(), rule });
    Ok(Outcome {
        decision: Decision::Injected { profiles: profiles.iter().map(|p| p.name.clone()).collect() },
        patch: Some(patch),
        warnings,
        chosen: chosen.collect(),
        security: Some(security),
    })
}

/// Step 1: the Pod says no, or the configuration skips it.
fn skipped(view: &PodView, namespace: &str, config: &Config) -> Option<Outcome> {
    // Either opts out: the label is what a webhook objectSelector can see, the annotation is what
    // users write; a Pod that says "false" in one place is never injected.
    let says_false = |v: Option<&str>| v.is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
    if says_false(view.annotation(keys::INJECT)) || says_false(view.label(keys::INJECT)) {
        let why = format_args!("the Pod has {}=false", keys::INJECT);
        return Some(Outcome::skipped_because(SkipReason::OptedOut, why));
    }
    if config.skip_namespaces.iter().any(|ns| ns == namespace) {
        let why = format_args!("namespace {namespace} is skipped");
        return Some(Outcome::skipped_because(SkipReason::Namespace, why));
    }
    if config.skip_host_network && view.host_network {
        return Some(Outcome::skipped_because(SkipReason::HostNetwork, "the Pod uses hostNetwork"));
    }
    None
}

/// Step 2: the profiles for the Pod, each once, with the rule that chose it: those its annotation
/// names if it names any; otherwise the default profiles (with `injectByDefault` or an annotation
/// `"true"`) and every profile whose own selection matches.
fn selected<'c>(
    view: &PodView,
    namespace: &str,
    config: &'c Config,
) -> Result<Vec<(&'c Profile, Rule)>, Outcome> {
    let annotation = view.annotation(keys::INJECT).map(str::trim).filter(|v| !v.is_empty());
    let asked = annotation.is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if let Some(list) = annotation.filter(|_| !asked) {
        let named = named(list.split(',').map(str::trim).filter(|s| !s.is_empty()), config);
        // An injected Pod is left as it is, whatever it names: the status annotation alone says
        // whether a Pod was injected (and the webhook's matchConditions never send such a Pod).
        return match (named, view.annotation(keys::STATUS)) {
            (Err(_), Some(existing)) => Err(injected_before(existing)),
            (named, _) => named,
        };
    }
    let mut chosen: Vec<(&Profile, Rule)> = Vec::new();
    if asked || config.inject_by_default {
        for name in &config.default_profiles {
            chosen.push((&config.profiles[name], Rule::Default));
        }
    }
    let mut labels = None;
    for profile in config.profiles.values().filter(|p| !p.selection.is_empty()) {
        let labels = labels.get_or_insert_with(|| view.label_map());
        if profile.selection.matches(labels, namespace) && !chosen.iter().any(|(p, _)| p.name == profile.name)
        {
            chosen.push((profile, Rule::Selected));
        }
    }
    if chosen.is_empty() && !asked && !config.inject_by_default {
        let why = format_args!("injection is off by default; annotate the Pod {}=true", keys::INJECT);
        return Err(Outcome::skipped_because(SkipReason::NotRequested, why));
    }
    Ok(chosen)
}

/// A Pod injected with another configuration than this one (`existing` is its status).
fn injected_before(existing: &str) -> Outcome {
    let why = format_args!(
        "the Pod was injected before, with another configuration ({existing}); re-create it from its template to inject the current one"
    );
    Outcome::skipped_because(SkipReason::InjectedByOtherConfig, why)
}

/// The profiles an annotation names, each once; a name that is no profile is an error.
fn named<'c, 'n>(
    names: impl Iterator<Item = &'n str>,
    config: &'c Config,
) -> Result<Vec<(&'c Profile, Rule)>, Outcome> {
    let mut profiles: Vec<(&Profile, Rule)> = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match config.profiles.get(name) {
            Some(profile) if !profiles.iter().any(|(p, _)| p.name == name) => {
                profiles.push((profile, Rule::Named))
            }
            Some(_) => {}
            None => unknown.push(format!("no profile named {name:?}")),
        }
    }
    if unknown.is_empty() { Ok(profiles) } else { Err(failed(config.on_error, unknown)) }
}

/// What step 3 hands on: the plan, the profiles it carries out, and the warnings on the way.
struct Planned<'c> {
    plan: Plan<'c>,
    profiles: Vec<&'c Profile>,
    warnings: Vec<String>,
    security: Security,
}

/// Step 3: each profile resolved for this Pod; not injected before (the status annotation is the
/// only record of that); every profile applies without a clash. Then the plan, the status
/// annotation last. Each problem is handled by the `onError` of the profile it is found in.
fn planned<'c>(
    view: &PodView,
    body: &[u8],
    namespace: &str,
    config: &'c Config,
    profiles: Vec<&'c Profile>,
    before: Level,
) -> Result<Planned<'c>, Outcome> {
    let (mut resolved, mut problems, mut warnings) =
        (Vec::with_capacity(profiles.len()), Vec::new(), Vec::new());
    // The second, richer pass over the body, only when a profile reads the app's values.
    let reads_app = profiles.iter().any(|p| p.copy_env.is_some() || p.share_volume_mounts.is_some());
    let app = if reads_app { skeleton::app_values(body) } else { Vec::new() };
    let (context, mut security) = (Context::of(view.spec), Security { before, injected: before });
    for profile in &profiles {
        match resolve(profile, view, &app, namespace, &mut warnings) {
            Ok(mut resolved_profile) => {
                let secured = pod_security::secure(&mut resolved_profile, &context, before);
                let lowered = secured.lowered.map(|lowered| {
                    security.injected = security.injected.min(lowered.to);
                    lowered.messages()
                });
                let found = secured.refused.into_iter().chain(lowered.into_iter().flatten());
                problems.extend(found.map(|problem| (profile.on_error, problem)));
                resolved.push(resolved_profile);
            }
            Err(found) => problems.extend(found.into_iter().map(|problem| (profile.on_error, problem))),
        }
    }
    if let Some(existing) = view.annotation(keys::STATUS) {
        // Values this configuration cannot resolve were not resolved by it.
        let status = problems.is_empty().then(|| status_annotation(config, &resolved));
        return Err(if status.as_deref() == Some(existing) {
            Outcome::skipped(SkipReason::AlreadyInjected)
        } else {
            injected_before(existing)
        });
    }
    // Only when every profile resolved: a mount may name a volume another selected profile adds.
    if problems.is_empty() {
        let added = volume_names(&resolved);
        for profile in &resolved {
            let missing = unmounted(&added, view, profile);
            problems.extend(missing.into_iter().map(|problem| (profile.profile.on_error, problem)));
        }
    }
    // Clashes are reported beside any other problem, so that one message names them all.
    let mut plan = Plan::default();
    for profile in &mut resolved {
        let mut found = Vec::new();
        add_profile(&mut plan, profile, view, &mut found, &mut warnings);
        problems.extend(found.into_iter().map(|problem| (profile.profile.on_error, problem)));
    }
    if !problems.is_empty() {
        let any_deny = problems.iter().any(|(on_error, _)| *on_error == OnError::Deny);
        let worst = if any_deny { OnError::Deny } else { OnError::Allow };
        let outcome = failed(worst, problems.into_iter().map(|(_, problem)| problem).collect());
        return Err(Outcome { security: Some(security), ..outcome });
    }
    let status = status_annotation(config, &resolved);
    let borrowed =
        |map: &'c BTreeMap<String, String>| map.iter().map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str())));
    add_metadata(&mut plan, borrowed(&config.labels), borrowed(&config.annotations), view, &mut warnings);
    for profile in resolved {
        add_metadata(&mut plan, profile.labels, profile.annotations, view, &mut warnings);
    }
    plan.annotations.push((keys::STATUS, status));
    Ok(Planned { plan, profiles, warnings, security })
}

/// The status annotation for these profiles, resolved for this Pod.
fn status_annotation<'c>(config: &Config, profiles: &[Resolved<'c>]) -> Cow<'c, str> {
    if let [one] = profiles
        && let Some(alone) = &one.profile.status_alone
        && one.values.is_empty()
    {
        return Cow::Borrowed(alone);
    }
    Cow::Owned(status(&config.digest, profiles.iter().map(|p| (p.profile, p.values.as_slice()))))
}

fn failed(on_error: OnError, problems: Vec<String>) -> Outcome {
    let message = format!("sidecar-injector: cannot inject: {}", problems.join("; "));
    match on_error {
        OnError::Deny => Outcome {
            decision: Decision::Denied { message },
            patch: None,
            warnings: Vec::new(),
            chosen: Vec::new(),
            security: None,
        },
        OnError::Allow => Outcome {
            warnings: vec![format!("{message}; the Pod is admitted unchanged")],
            ..Outcome::skipped(SkipReason::ErrorAllowed)
        },
    }
}
