//! What the audit found, by workload: a table for people, JSON for pipelines (its shape is
//! documented in docs/day-two.md and kept stable).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::{Action, Class, Counts, Target, Workload};

/// The audit of one webhook configuration.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub webhook_configuration: String,
    pub webhook: String,
    /// The namespaces the webhook selects, among those audited.
    pub namespaces: Vec<String>,
    #[serde(serialize_with = "workload_rows")]
    workloads: BTreeMap<Workload, Counts>,
    pub totals: Counts,
    /// With `--restart`: what was (or, with `--dry-run`, would be) done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarted: Option<Vec<Restarted>>,
}

/// What `--restart` did for one workload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restarted {
    #[serde(flatten)]
    pub workload: Workload,
    /// `restarted`, `would restart` (dry run), `re-create by hand` (a bare Pod, a Job),
    /// `inject the manifest again` (its template carries an injection: never restarted), or
    /// `restart failed: …` with the API server's reason.
    pub result: String,
}

impl Restarted {
    /// What `--restart` does for a workload behind, before it is tried.
    pub fn planned(workload: &Workload, counts: &Counts, dry_run: bool) -> Self {
        let result = match (Action::of(workload, counts), dry_run) {
            (Action::Restart, true) => "would restart",
            (Action::Restart, false) => "restarted",
            (action, _) => action.as_str(),
        };
        Restarted { workload: workload.clone(), result: result.to_owned() }
    }

    /// Whether the restart was refused.
    pub fn failed(&self) -> bool {
        self.result.starts_with("restart failed")
    }
}

/// What the audit advises for a workload.
fn action(workload: &Workload, counts: &Counts) -> &'static str {
    Action::of(workload, counts).as_str()
}

fn workload_rows<S: serde::Serializer>(
    workloads: &BTreeMap<Workload, Counts>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Row<'a> {
        #[serde(flatten)]
        workload: &'a Workload,
        #[serde(flatten)]
        counts: &'a Counts,
        action: &'static str,
    }
    serializer.collect_seq(workloads.iter().map(|(workload, counts)| Row {
        workload,
        counts,
        action: action(workload, counts),
    }))
}

impl Report {
    pub fn new(target: &Target, namespaces: impl IntoIterator<Item = String>) -> Self {
        Report {
            webhook_configuration: target.configuration.clone(),
            webhook: target.webhook.clone(),
            namespaces: namespaces.into_iter().collect(),
            workloads: BTreeMap::new(),
            totals: Counts::default(),
            restarted: None,
        }
    }

    pub fn add(&mut self, workload: Workload, class: Class, reason: String) {
        self.totals.add(class, reason.clone());
        self.workloads.entry(workload).or_default().add(class, reason);
    }

    pub fn workloads(&self) -> impl Iterator<Item = (&Workload, &Counts)> {
        self.workloads.iter()
    }

    /// `workload`'s pod template carries an injection.
    pub fn template_injected(&mut self, workload: &Workload) {
        if let Some(counts) = self.workloads.get_mut(workload) {
            counts.template_injected = true;
        }
    }

    /// Whether any Pod is stale or missed: what makes the command exit non-zero.
    pub fn needs_restart(&self) -> bool {
        self.totals.needs_restart()
    }

    /// The table, for a terminal.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ["NAMESPACE", "WORKLOAD", "PODS", "CURRENT", "STALE", "MISSED", "OTHER", "ACTION"]
                .map(String::from),
        ];
        for (workload, counts) in &self.workloads {
            let main =
                counts.count(Class::Current) + counts.count(Class::Stale) + counts.count(Class::Missed);
            rows.push([
                workload.namespace.clone(),
                format!("{}/{}", workload.kind, workload.name),
                counts.pods.to_string(),
                counts.count(Class::Current).to_string(),
                counts.count(Class::Stale).to_string(),
                counts.count(Class::Missed).to_string(),
                (counts.pods - main).to_string(),
                action(workload, counts).to_owned(),
            ]);
        }
        let widths: Vec<usize> = (0..8).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for row in &rows {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        self.summary(&mut out);
        out
    }

    fn summary(&self, out: &mut String) {
        let t = &self.totals;
        let _ = writeln!(
            out,
            "\n{} Pods in {} workloads: {} current, {} stale, {} missed, {} other",
            t.pods,
            self.workloads.len(),
            t.count(Class::Current),
            t.count(Class::Stale),
            t.count(Class::Missed),
            t.pods - t.count(Class::Current) - t.count(Class::Stale) - t.count(Class::Missed),
        );
        for (reason, pods) in &t.reasons {
            let _ = writeln!(out, "  {pods} × {reason}");
        }
        for done in self.restarted.iter().flatten() {
            let w = &done.workload;
            let _ = writeln!(out, "{}: {}/{} in {}", done.result, w.kind, w.name, w.namespace);
        }
    }
}
