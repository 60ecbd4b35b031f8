//! When the reconciler may restart the next workload, so that a configuration change reaches the
//! fleet in health-gated waves: at most `max_concurrent` workloads mid-rollout at once, at most
//! `per_minute` restarts started in any minute, and none at all once `max_failures` workloads in a
//! row have failed, until the configuration changes. A sidecar that does not start is then seen
//! on a few workloads, not rolled across all of them.
//!
//! Pure: the caller passes the time, and keeps in the cluster what must outlive the process (the
//! annotations of `workloads.rs`, the halt in the Lease of `lease.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// The bounds on the waves, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_concurrent: usize,
    pub per_minute: usize,
    /// Failed workloads in a row that stop the waves.
    pub max_failures: usize,
    /// How long a restarted workload has to finish its rollout.
    pub progress_deadline: Duration,
}

/// The waves' state: what is mid-rollout, what was started lately, the failures in a row.
#[derive(Debug)]
pub struct Waves<W> {
    limits: Limits,
    in_progress: BTreeMap<W, Instant>,
    started: VecDeque<Instant>,
    failures_in_a_row: usize,
    halted: bool,
}

/// How a restarted workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Succeeded,
    Failed,
}

/// What a restarted workload's rollout has come to, from what `follow` reads of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Rolling,
    Succeeded,
    /// Rolled out, and its new Pods are missed or stale under the configuration it was restarted for.
    PodsBehind,
    /// Past the progress deadline.
    Overdue,
    /// Restarted under an earlier configuration and now done or overdue: its health says nothing
    /// about this configuration, so it frees its room as neither a success nor a failure.
    Superseded,
}

/// What `follow` reads of a restarted workload.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub rolled_out: bool,
    /// Some of its Pods are missed or stale under this configuration.
    pub pods_behind: bool,
    /// The restart recorded on it was for these very Pods under this configuration.
    pub restart_covers: bool,
    /// The restart recorded on it was made under another configuration.
    pub restarted_under_other: bool,
    pub overdue: bool,
}

impl Outcome {
    pub fn of(seen: Seen) -> Outcome {
        let done = seen.rolled_out || seen.overdue;
        if seen.restarted_under_other {
            return if done { Outcome::Superseded } else { Outcome::Rolling };
        }
        match (seen.rolled_out, seen.pods_behind) {
            (true, false) => Outcome::Succeeded,
            (true, true) if !seen.restart_covers => Outcome::PodsBehind,
            _ if seen.overdue => Outcome::Overdue,
            _ => Outcome::Rolling,
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);

impl<W: Ord + Clone> Waves<W> {
    pub fn new(limits: Limits) -> Self {
        Waves {
            limits,
            in_progress: BTreeMap::new(),
            started: VecDeque::new(),
            failures_in_a_row: 0,
            halted: false,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// How many restarts may start at `now`: none when halted.
    pub fn room(&mut self, now: Instant) -> usize {
        while self.started.front().is_some_and(|&at| now.saturating_duration_since(at) >= MINUTE) {
            self.started.pop_front();
        }
        if self.halted {
            return 0;
        }
        let concurrent = self.limits.max_concurrent.saturating_sub(self.in_progress.len());
        concurrent.min(self.limits.per_minute.saturating_sub(self.started.len()))
    }

    /// `workload` was restarted at `now`.
    pub fn started(&mut self, workload: W, now: Instant) {
        self.in_progress.insert(workload, now);
        self.started.push_back(now);
    }

    /// `workload` was restarted at `at` by an earlier process or replica, and is still rolling
    /// out: watched to its end like the others, without counting against this minute.
    pub fn adopt(&mut self, workload: W, at: Instant) {
        self.in_progress.entry(workload).or_insert(at);
    }

    pub fn is_in_progress(&self, workload: &W) -> bool {
        self.in_progress.contains_key(workload)
    }

    /// The workloads mid-rollout, with whether each is past its progress deadline at `now`.
    pub fn in_progress(&self, now: Instant) -> Vec<(W, bool)> {
        let overdue = |at: &Instant| now.saturating_duration_since(*at) > self.limits.progress_deadline;
        self.in_progress.iter().map(|(w, at)| (w.clone(), overdue(at))).collect()
    }

    /// `workload`'s rollout ended. Returns true when this failure stops the waves.
    pub fn ended(&mut self, workload: &W, how: Ended) -> bool {
        if self.in_progress.remove(workload).is_none() {
            return false;
        }
        match how {
            Ended::Succeeded => self.failures_in_a_row = 0,
            Ended::Failed => self.failures_in_a_row += 1,
        }
        let halts = !self.halted && self.failures_in_a_row >= self.limits.max_failures;
        self.halted |= halts;
        halts
    }

    /// `workload` is gone: no longer followed, and neither a success nor a failure.
    pub fn abandon(&mut self, workload: &W) {
        self.in_progress.remove(workload);
    }

    /// Stopped by an earlier process under the same configuration (kept in the Lease).
    pub fn halt(&mut self) {
        self.halted = true;
    }

    pub fn is_halted(&self) -> bool {
        self.halted
    }

    pub fn failures_in_a_row(&self) -> usize {
        self.failures_in_a_row
    }

    /// A new configuration: the waves go on, counting failures afresh.
    pub fn resume(&mut self) {
        self.halted = false;
        self.failures_in_a_row = 0;
    }

    /// Forget what is mid-rollout, as when leadership is lost: the next leader adopts it.
    pub fn forget_in_progress(&mut self) {
        self.in_progress.clear();
    }
}

#[cfg(test)]
mod tests;
