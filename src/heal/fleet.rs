//! The Pods the reconciler watches, kept small: for each Pod, its workload, its class and the
//! revision it was made from; for each workload, the counts the waves read. A Pod's own object is
//! read once, when its event comes, and not kept: no object cache grows with the fleet.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tokio::time::Instant;

use crate::audit::{Class, Workload};

/// One Pod, as the reconciler remembers it.
#[derive(Debug, Clone)]
struct Seen {
    workload: Arc<Workload>,
    class: Class,
    /// `pod-template-hash` or `controller-revision-hash`: which template the Pod was made from.
    revision: Option<Arc<str>>,
}

/// One workload's Pods.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub pods: usize,
    pub missed: usize,
    pub stale: usize,
    /// The revisions of the missed and stale Pods, with how many of each.
    pub offending: BTreeMap<Arc<str>, usize>,
}

impl Tally {
    pub fn needs_restart(&self) -> bool {
        self.missed + self.stale > 0
    }

    /// The revisions of the Pods that are not current, in order.
    pub fn revisions(&self) -> BTreeSet<Arc<str>> {
        self.offending.keys().cloned().collect()
    }

    fn count(&mut self, seen: &Seen, by: isize) {
        let step = |n: &mut usize| *n = n.saturating_add_signed(by);
        step(&mut self.pods);
        match seen.class {
            Class::Missed => step(&mut self.missed),
            Class::Stale => step(&mut self.stale),
            _ => return,
        }
        let revision = seen.revision.clone().unwrap_or_else(|| Arc::from(""));
        let entry = self.offending.entry(revision.clone()).or_default();
        step(entry);
        if *entry == 0 {
            self.offending.remove(&revision);
        }
    }
}

/// Every watched Pod, and each workload's tally.
#[derive(Debug, Default)]
pub struct Fleet {
    pods: HashMap<String, Seen>,
    workloads: BTreeMap<Arc<Workload>, Tally>,
    /// When each workload was first seen with a missed or stale Pod, until it has none.
    since: HashMap<Arc<Workload>, Instant>,
    /// Revision strings, shared by the Pods of one template.
    revisions: BTreeSet<Arc<str>>,
    /// Whether a full list has been read since the last start over.
    listed: bool,
}

impl Fleet {
    /// A Pod was seen (created, changed, or listed).
    pub fn seen(
        &mut self,
        uid: String,
        workload: Workload,
        class: Class,
        revision: Option<&str>,
        now: Instant,
    ) {
        self.gone(&uid);
        let workload = match self.workloads.get_key_value(&workload) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(workload),
        };
        let revision = revision.map(|r| self.intern(r));
        let seen = Seen { workload: workload.clone(), class, revision };
        let tally = self.workloads.entry(workload.clone()).or_default();
        tally.count(&seen, 1);
        if tally.needs_restart() {
            self.since.entry(workload).or_insert(now);
        }
        self.pods.insert(uid, seen);
    }

    /// A Pod was deleted.
    pub fn gone(&mut self, uid: &str) {
        let Some(seen) = self.pods.remove(uid) else { return };
        if let Some(tally) = self.workloads.get_mut(&seen.workload) {
            tally.count(&seen, -1);
            if tally.pods == 0 {
                self.workloads.remove(&seen.workload);
            }
        }
    }

    /// The watch starts over with a full list: everything is read again. When a workload was
    /// first seen behind is kept across it.
    pub fn start_over(&mut self) {
        self.pods.clear();
        self.workloads.clear();
        self.revisions.clear();
        self.listed = false;
    }

    /// The full list has been read: what was not seen again is gone.
    pub fn listed(&mut self) {
        self.listed = true;
        let behind: BTreeSet<_> =
            self.workloads.iter().filter(|(_, t)| t.needs_restart()).map(|(w, _)| w).collect();
        self.since.retain(|w, _| behind.contains(w));
    }

    pub fn is_listed(&self) -> bool {
        self.listed
    }

    /// The workloads with missed or stale Pods, those behind the longest first.
    pub fn behind(&self) -> Vec<(Arc<Workload>, Tally)> {
        let mut behind: Vec<_> = self
            .workloads
            .iter()
            .filter(|(_, tally)| tally.needs_restart())
            .map(|(w, tally)| (w.clone(), tally.clone()))
            .collect();
        behind.sort_by_key(|(w, _)| self.since.get(w).copied());
        behind
    }

    pub fn tally(&self, workload: &Workload) -> Tally {
        self.workloads.get(workload).cloned().unwrap_or_default()
    }

    /// When `workload` was first seen behind, if it is.
    pub fn behind_since(&self, workload: &Workload) -> Option<Instant> {
        self.since.get(workload).copied()
    }

    /// Missed and stale Pods by namespace.
    pub fn by_namespace(&self) -> BTreeMap<&str, (usize, usize)> {
        let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (workload, tally) in &self.workloads {
            let entry = counts.entry(workload.namespace.as_str()).or_default();
            entry.0 += tally.missed;
            entry.1 += tally.stale;
        }
        counts
    }

    pub fn pods(&self) -> usize {
        self.pods.len()
    }

    fn intern(&mut self, revision: &str) -> Arc<str> {
        if let Some(shared) = self.revisions.get(revision) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(revision);
        self.revisions.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests;
