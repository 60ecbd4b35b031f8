//! The tallies, as Pods come and go and the list starts over.

use tokio::time::Instant;

use super::Fleet;
use crate::audit::{Class, Workload};

fn deployment(name: &str) -> Workload {
    Workload { namespace: "shop".into(), kind: "Deployment".into(), name: name.into() }
}

/// A fleet that has seen these Pods: (uid, Deployment, class, revision, seconds after the start).
/// The fleet, and the start.
fn fleet_with(pods: &[(&str, &str, Class, &str, u64)]) -> (Fleet, Instant) {
    let mut fleet = Fleet::default();
    let start = Instant::now();
    for &(uid, name, class, revision, after) in pods {
        let at = start + std::time::Duration::from_secs(after);
        fleet.seen(uid.into(), deployment(name), class, Some(revision), at);
    }
    (fleet, start)
}

#[test]
fn a_pod_changing_class_moves_between_counts() {
    let (mut fleet, start) =
        fleet_with(&[("1", "web", Class::Missed, "aaa", 0), ("2", "web", Class::Current, "bbb", 0)]);
    let tally = fleet.tally(&deployment("web"));
    assert_eq!((tally.pods, tally.missed, tally.stale), (2, 1, 0));
    assert_eq!(tally.revisions().iter().map(|r| r.as_ref()).collect::<Vec<_>>(), ["aaa"]);
    fleet.seen("1".into(), deployment("web"), Class::Current, Some("aaa"), start);
    assert!(!fleet.tally(&deployment("web")).needs_restart());
    assert!(fleet.behind().is_empty());
}

#[test]
fn behind_lists_the_longest_behind_first_and_deletes_count() {
    let (mut fleet, _) =
        fleet_with(&[("1", "late", Class::Stale, "x", 5), ("2", "early", Class::Missed, "y", 0)]);
    let names: Vec<String> = fleet.behind().iter().map(|(w, _)| w.name.clone()).collect();
    assert_eq!(names, ["early", "late"]);
    fleet.gone("2");
    assert_eq!(fleet.behind().len(), 1);
    assert_eq!(fleet.pods(), 1);
}

#[test]
fn a_fresh_list_forgets_what_is_not_seen_again_but_keeps_when_it_fell_behind() {
    let (mut fleet, start) =
        fleet_with(&[("1", "web", Class::Missed, "a", 0), ("2", "db", Class::Missed, "b", 0)]);
    fleet.start_over();
    assert!(!fleet.is_listed());
    let later = start + std::time::Duration::from_secs(30);
    fleet.seen("1".into(), deployment("web"), Class::Missed, Some("a"), later);
    fleet.listed();
    assert_eq!(fleet.behind().len(), 1, "db's Pod was not listed again");
    assert_eq!(fleet.behind_since(&deployment("web")), Some(start));
    assert_eq!(fleet.behind_since(&deployment("db")), None);
}
