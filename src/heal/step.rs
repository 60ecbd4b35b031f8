//! One wave step, on the leader: follow each restarted workload to the end of its rollout, then
//! start what the waves have room for, the workloads behind the longest first.

use std::sync::Arc;

use kube::runtime::events::EventType;
use tokio::time::Instant;

use super::fleet::Tally;
use super::lease::Held;
use super::notes::{LeftAlone, name, reason};
use super::reconcile::{Loaded, Reconciler};
use super::waves::{Ended, Outcome, Seen};
use super::webhook;
use super::workloads::{self, Key};
use crate::audit::Workload;
use crate::audit::workload::Observed;
use crate::watched::Watched;

/// What to do with one workload behind.
enum Verdict {
    LeaveAlone(LeftAlone),
    /// Restarted for this change already, still rolling out (by an earlier process or replica).
    Adopt(Instant),
    /// Nothing to do now: restarted for this change already and rolled out (its old Pods are
    /// going), or gone.
    Wait,
    Restart(Box<Observed>, Key),
}

impl Reconciler {
    /// Once a second: the metrics, and on the leader a wave step.
    pub(super) async fn tick(&mut self) {
        self.metrics.ticked();
        self.metrics.pods(&self.fleet.by_namespace());
        self.metrics.halted(self.waves.is_halted());
        if self.leading && self.fleet.is_listed() && (self.adopted || self.adopt().await) {
            self.follow().await;
            self.start().await;
            self.metrics.stepped();
        }
        self.metrics.in_progress(self.waves.in_progress(Instant::now()).len());
    }

    /// The configuration file, read again when its content changed: whether it did (and was
    /// valid), in which case every Pod must be classified again.
    pub(super) async fn reload(&mut self, watched: &mut Watched) -> bool {
        let Some(path) = self.options.config.as_deref() else { return false };
        let bytes = match watched.read_if_changed() {
            Ok(Some(mut contents)) => contents.remove(0),
            Ok(None) => return false,
            Err(error) => {
                tracing::warn!(%error, "heal: the configuration file cannot be read");
                return false;
            }
        };
        let loaded = match Loaded::parse(path, &bytes) {
            Ok(loaded) if loaded.id == self.loaded.id => return false,
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::warn!(%error, "heal: the new configuration is invalid; the previous one stays");
                return false;
            }
        };
        tracing::info!(config = %loaded.id, previous = %self.loaded.id, "heal: a new configuration");
        self.loaded = loaded;
        self.reported.clear();
        if self.waves.is_halted()
            && let Err(error) = self.lease.set_halted(None).await
        {
            tracing::warn!(%error, "heal: could not clear the halt in the Lease");
        }
        self.waves.resume();
        true
    }

    /// What the Lease holder task found.
    pub(super) async fn on_lease(&mut self, held: Option<Held>) {
        let Some(held) = held else { return };
        if held.leading && !self.leading {
            tracing::info!("heal: leading");
            self.adopted = false;
            if held.halted_under.as_deref() == Some(self.loaded.id.as_str()) {
                self.waves.halt();
                tracing::warn!(config = %self.loaded.id, "heal: the waves stopped under this configuration before; they wait for a new one");
            }
        }
        if !held.leading && self.leading {
            tracing::info!("heal: no longer leading");
            self.waves.forget_in_progress();
        }
        self.leading = held.leading;
        self.metrics.leader(held.leading);
    }

    /// Each restarted workload: succeeded once rolled out with every Pod current; failed when its
    /// new Pods are behind too, or past the progress deadline.
    async fn follow(&mut self) {
        let now = Instant::now();
        for (workload, overdue) in self.waves.in_progress(now) {
            let observed = match workloads::observe(&self.client, &workload).await {
                Ok(Some(observed)) => observed,
                Ok(None) => {
                    self.waves.abandon(&workload);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, workload = %name(&workload), "heal: cannot read a workload being restarted");
                    continue;
                }
            };
            let tally = self.fleet.tally(&workload);
            let restarted_for = workloads::healed(&observed);
            let seen = Seen {
                rolled_out: observed.rolled_out,
                pods_behind: tally.needs_restart(),
                restart_covers: restarted_for.as_ref().is_some_and(|k| k.covers(&self.key(&tally))),
                restarted_under_other: restarted_for.is_some_and(|k| k.config != self.loaded.id),
                overdue,
            };
            match Outcome::of(seen) {
                Outcome::Rolling => {}
                Outcome::Succeeded => self.succeeded(&workload, now),
                Outcome::PodsBehind => {
                    self.failed(&workload, &observed, "its new Pods are missed or stale too").await;
                }
                Outcome::Overdue => {
                    let deadline = self.waves.limits().progress_deadline.as_secs();
                    let why = format!("its rollout did not finish within {deadline} s");
                    self.failed(&workload, &observed, &why).await;
                }
                Outcome::Superseded => {
                    self.waves.abandon(&workload);
                    tracing::info!(workload = %name(&workload), "heal: a restart under an earlier configuration ended");
                }
            }
        }
    }

    fn succeeded(&mut self, workload: &Arc<Workload>, now: Instant) {
        self.waves.ended(workload, Ended::Succeeded);
        self.metrics.restart("succeeded");
        if let Some(since) = self.behind_since.remove(workload) {
            self.metrics.current_after(now.duration_since(since));
        }
        tracing::info!(workload = %name(workload), "heal: current");
    }

    async fn failed(&mut self, workload: &Arc<Workload>, observed: &Observed, why: &str) {
        let halts = self.waves.ended(workload, Ended::Failed);
        self.behind_since.remove(workload);
        self.metrics.restart("failed");
        tracing::warn!(workload = %name(workload), why, "heal: restart failed");
        if let Err(error) =
            workloads::mark_failed(&self.client, workload, &self.loaded.id, observed.generation).await
        {
            tracing::warn!(%error, workload = %name(workload), "heal: could not mark the workload failed");
        }
        self.note(
            observed,
            EventType::Warning,
            "HealFailed",
            format!("restarted by sidecar-injector heal: {why}"),
        )
        .await;
        if halts {
            self.metrics.halted(true);
            let count = self.waves.failures_in_a_row();
            let message = format!(
                "{count} workloads in a row failed under configuration {}: the waves stop until the configuration changes",
                self.loaded.id
            );
            tracing::error!(config = %self.loaded.id, failures = count, "heal: {message}");
            self.note(observed, EventType::Warning, "HealHalted", message).await;
            if let Err(error) = self.lease.set_halted(Some(&self.loaded.id)).await {
                tracing::warn!(%error, "heal: could not record the halt in the Lease");
            }
        }
    }

    /// Start what the waves have room for: the workloads behind the longest first.
    async fn start(&mut self) {
        let now = Instant::now();
        for (workload, tally) in self.fleet.behind() {
            // Read again after each start or adoption: both take room.
            if self.waves.room(now) == 0 {
                break;
            }
            if self.waves.is_in_progress(&workload) || self.examined_lately(&workload, now) {
                continue;
            }
            let key = self.key(&tally);
            match self.verdict(&workload, &key).await {
                Some(Verdict::LeaveAlone(why)) => self.leave_alone(&workload, &key, why).await,
                Some(Verdict::Adopt(at)) => self.waves.adopt(workload.clone(), at),
                Some(Verdict::Wait) | None => {}
                Some(Verdict::Restart(observed, key)) => {
                    if !self.webhook_agrees(&workload, &observed).await {
                        // Not this workload's fault: it is tried again on the next step.
                        self.examined.remove(&workload);
                        return;
                    }
                    let reason = reason(tally.missed, tally.stale);
                    self.restart(&workload, &observed, &key, reason, now).await;
                }
            }
        }
    }

    /// On becoming the leader, before starting anything: adopt what an earlier leader or process
    /// restarted and is still rolling out, so that `max_concurrent` holds across a handover.
    /// Whether every workload behind could be read (if not, it is tried again next tick).
    async fn adopt(&mut self) -> bool {
        for (workload, tally) in self.fleet.behind() {
            let key = self.key(&tally);
            match self.verdict(&workload, &key).await {
                Some(Verdict::Adopt(at)) => self.waves.adopt(workload, at),
                Some(_) => {}
                None => return false,
            }
        }
        self.adopted = true;
        true
    }

    /// What a restart for `tally`'s Pods behind, under this configuration, is for.
    fn key(&self, tally: &Tally) -> Key {
        Key {
            config: self.loaded.id.clone(),
            revisions: tally.revisions().iter().map(|r| r.to_string()).collect(),
        }
    }

    /// Read a workload behind at most every 10 s while nothing can be done for it.
    fn examined_lately(&mut self, workload: &Arc<Workload>, now: Instant) -> bool {
        const AGAIN: std::time::Duration = std::time::Duration::from_secs(10);
        match self.examined.get(workload) {
            Some(at) if now.duration_since(*at) < AGAIN => true,
            _ => {
                self.examined.insert(workload.clone(), now);
                self.examined.retain(|_, at| now.duration_since(*at) < AGAIN);
                false
            }
        }
    }

    async fn verdict(&self, workload: &Arc<Workload>, key: &Key) -> Option<Verdict> {
        if workload.namespace == self.options.namespace {
            return Some(Verdict::LeaveAlone(LeftAlone::OwnNamespace));
        }
        if !workload.restartable() {
            return Some(Verdict::LeaveAlone(LeftAlone::ByHand));
        }
        let observed = match workloads::observe(&self.client, workload).await {
            Ok(Some(observed)) => observed,
            Ok(None) => return Some(Verdict::Wait),
            Err(error) => {
                tracing::warn!(%error, workload = %name(workload), "heal: cannot read a workload behind");
                return None;
            }
        };
        Some(if observed.opted_out() {
            Verdict::LeaveAlone(LeftAlone::OptedOut)
        } else if observed.template_injected() {
            Verdict::LeaveAlone(LeftAlone::TemplateInjected)
        } else if observed.failed_under(&self.loaded.id) {
            Verdict::LeaveAlone(LeftAlone::Failed)
        } else if workloads::healed(&observed).is_some_and(|healed| healed.covers(key)) {
            if observed.rolled_out { Verdict::Wait } else { Verdict::Adopt(restarted_at(&observed)) }
        } else {
            Verdict::Restart(Box::new(observed), key.clone())
        })
    }

    async fn restart(
        &mut self,
        workload: &Arc<Workload>,
        observed: &Observed,
        key: &Key,
        reason: String,
        now: Instant,
    ) {
        let stamp = k8s_openapi::jiff::Timestamp::now().to_string();
        match workloads::restart(&self.client, workload, observed, key, &stamp).await {
            Ok(true) => {
                self.waves.started(workload.clone(), now);
                let since = self.fleet.behind_since(workload).unwrap_or(now);
                self.behind_since.insert(workload.clone(), since);
                self.metrics.restart("started");
                tracing::info!(workload = %name(workload), reason, key = %key.annotation(), "heal: restarted");
                self.note(
                    observed,
                    EventType::Normal,
                    "Restarted",
                    format!("restarted by sidecar-injector heal: {reason}"),
                )
                .await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, workload = %name(workload), "heal: the restart was refused");
            }
        }
    }

    /// Whether the webhook answers the Pod `observed`'s template makes as this configuration
    /// would: so that the restart brings back current Pods, not missed or stale ones.
    async fn webhook_agrees(&self, workload: &Workload, observed: &Observed) -> bool {
        let Some(hook) = &self.hook else { return false };
        let review = crate::engine::pod_review(&observed.pod(), &workload.namespace, "sidecar-injector-heal");
        let ours = crate::review(&review, &self.loaded.config).map(|r| webhook::Answer::of(&r.body));
        let why = match (ours, webhook::ask(&self.client, hook, review).await) {
            (_, Ok(None)) => None,
            (Ok(Ok(ours)), Ok(Some(theirs))) if ours == theirs => None,
            (Ok(Ok(_)), Ok(Some(_))) => Some("it answers otherwise: it has another configuration".to_owned()),
            (_, Err(error)) => Some(format!("it cannot be reached: {error}")),
            (Err(error), _) => Some(format!("this configuration refuses the Pod: {error}")),
            (Ok(Err(error)), _) => Some(error),
        };
        self.metrics.webhook_ready(why.is_none());
        if let Some(why) = &why {
            tracing::warn!(workload = %name(workload), why, "heal: the webhook would not inject the restarted Pods as this configuration does; nothing is restarted until it would");
        }
        why.is_none()
    }
}

/// When an earlier restart was made, as an instant of this process (now, when unknown).
fn restarted_at(observed: &Observed) -> Instant {
    let now = Instant::now();
    let Some(at) = observed.restarted_at() else { return now };
    let ago = k8s_openapi::jiff::Timestamp::now().duration_since(at);
    std::time::Duration::try_from(ago).ok().and_then(|ago| now.checked_sub(ago)).unwrap_or(now)
}
