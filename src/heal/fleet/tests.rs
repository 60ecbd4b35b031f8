//! The tallies, as Pods come and go and the list starts over.

use tokio::time::Instant;

use super::Fleet;
use crate::audit::{Class, Workload};

fn deployment(name: &str) -> Workload {
    Workload { namespace: "shop".into(), kind: "Deployment".into(), name: name.into() }
}

#[tokio::test(start_paused = true)]
async fn a_pod_changing_class_moves_between_counts() {
    let mut fleet = Fleet::default();
    let now = Instant::now();
    fleet.seen("1".into(), deployment("web"), Class::Missed, Some("aaa"), now);
    fleet.seen("2".into(), deployment("web"), Class::Current, Some("bbb"), now);
    let tally = fleet.tally(&deployment("web"));
    assert_eq!((tally.pods, tally.missed, tally.stale), (2, 1, 0));
    assert_eq!(tally.revisions().iter().map(|r| r.as_ref()).collect::<Vec<_>>(), ["aaa"]);
    fleet.seen("1".into(), deployment("web"), Class::Current, Some("aaa"), now);
    assert!(!fleet.tally(&deployment("web")).needs_restart());
    assert!(fleet.behind().is_empty());
}

#[tokio::test(start_paused = true)]
async fn behind_lists_the_longest_behind_first_and_deletes_count() {
    let mut fleet = Fleet::default();
    let start = Instant::now();
    fleet.seen(
        "1".into(),
        deployment("late"),
        Class::Stale,
        Some("x"),
        start + std::time::Duration::from_secs(5),
    );
    fleet.seen("2".into(), deployment("early"), Class::Missed, Some("y"), start);
    let names: Vec<String> = fleet.behind().iter().map(|(w, _)| w.name.clone()).collect();
    assert_eq!(names, ["early", "late"]);
    fleet.gone("2");
    assert_eq!(fleet.behind().len(), 1);
    assert_eq!(fleet.pods(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_fresh_list_forgets_what_is_not_seen_again_but_keeps_when_it_fell_behind() {
    let mut fleet = Fleet::default();
    let start = Instant::now();
    fleet.seen("1".into(), deployment("web"), Class::Missed, Some("a"), start);
    fleet.seen("2".into(), deployment("db"), Class::Missed, Some("b"), start);
    fleet.start_over();
    assert!(!fleet.is_listed());
    let later = start + std::time::Duration::from_secs(30);
    fleet.seen("1".into(), deployment("web"), Class::Missed, Some("a"), later);
    fleet.listed();
    assert_eq!(fleet.behind().len(), 1, "db's Pod was not listed again");
    assert_eq!(fleet.behind_since(&deployment("web")), Some(start));
    assert_eq!(fleet.behind_since(&deployment("db")), None);
}
