//! The gate on tokio's paused clock.

use std::time::Duration;

use tokio::time::Instant;

use super::{Ended, Limits, Outcome, Seen, Waves};

fn limits(max_concurrent: usize, per_minute: usize, max_failures: usize) -> Limits {
    Limits { max_concurrent, per_minute, max_failures, progress_deadline: Duration::from_secs(300) }
}

#[tokio::test(start_paused = true)]
async fn no_more_than_max_concurrent_mid_rollout() {
    let mut waves = Waves::new(limits(3, 100, 5));
    let now = Instant::now();
    assert_eq!(waves.room(now), 3);
    for w in ["a", "b", "c"] {
        waves.started(w, now);
    }
    assert_eq!(waves.room(now), 0);
    assert!(!waves.ended(&"b", Ended::Succeeded));
    assert_eq!(waves.room(now), 1, "one ended, one may start");
}

#[tokio::test(start_paused = true)]
async fn no_more_than_per_minute_started_in_any_minute() {
    let mut waves = Waves::new(limits(10, 2, 5));
    let start = Instant::now();
    waves.started("a", start);
    waves.ended(&"a", Ended::Succeeded);
    waves.started("b", start + Duration::from_secs(30));
    waves.ended(&"b", Ended::Succeeded);
    assert_eq!(waves.room(start + Duration::from_secs(59)), 0, "two in the last minute");
    assert_eq!(waves.room(start + Duration::from_secs(60)), 1, "the first is a minute old");
    assert_eq!(waves.room(start + Duration::from_secs(90)), 2);
}

#[tokio::test(start_paused = true)]
async fn failures_in_a_row_halt_and_a_success_between_resets_the_count() {
    let mut waves = Waves::new(limits(10, 100, 2));
    let now = Instant::now();
    for w in ["a", "b", "c", "d"] {
        waves.started(w, now);
    }
    assert!(!waves.ended(&"a", Ended::Failed));
    assert!(!waves.ended(&"b", Ended::Succeeded), "a success resets the count");
    assert!(!waves.ended(&"c", Ended::Failed));
    assert!(waves.ended(&"d", Ended::Failed), "the second failure in a row halts");
    assert!(waves.is_halted());
    assert_eq!(waves.room(now), 0);
    waves.resume();
    assert_eq!(waves.room(now), 10, "a new configuration lets the waves go on");
}

#[tokio::test(start_paused = true)]
async fn progress_deadline_marks_overdue_and_adoption_keeps_the_start() {
    let mut waves = Waves::new(limits(10, 1, 5));
    let earlier = Instant::now();
    tokio::time::advance(Duration::from_secs(400)).await;
    let now = Instant::now();
    waves.adopt("old", earlier);
    waves.started("new", now);
    let mut seen = waves.in_progress(now);
    seen.sort();
    assert_eq!(seen, [("new", false), ("old", true)]);
    assert_eq!(waves.room(now), 0, "the adopted one does not count against the minute, the new one does");
    assert!(!waves.ended(&"gone", Ended::Failed), "an unknown workload changes nothing");
}

/// A restarted workload rolled out under this configuration, as `follow` reads it.
fn rolled_out() -> Seen {
    Seen {
        rolled_out: true,
        pods_behind: false,
        restart_covers: true,
        restarted_under_other: false,
        overdue: false,
    }
}

#[test]
fn rolled_out_with_every_pod_current_succeeds() {
    assert_eq!(Outcome::of(rolled_out()), Outcome::Succeeded);
}

#[test]
fn rolled_out_with_its_new_pods_behind_fails() {
    let seen = Seen { pods_behind: true, restart_covers: false, ..rolled_out() };
    assert_eq!(Outcome::of(seen), Outcome::PodsBehind);
}

#[test]
fn rolled_out_with_only_the_pods_it_was_restarted_for_left_waits_for_them_to_go() {
    let seen = Seen { pods_behind: true, ..rolled_out() };
    assert_eq!(Outcome::of(seen), Outcome::Rolling);
    assert_eq!(Outcome::of(Seen { overdue: true, ..seen }), Outcome::Overdue);
}

#[test]
fn still_rolling_within_its_deadline_waits_and_past_it_fails() {
    let seen = Seen { rolled_out: false, pods_behind: true, ..rolled_out() };
    assert_eq!(Outcome::of(seen), Outcome::Rolling);
    assert_eq!(Outcome::of(Seen { overdue: true, ..seen }), Outcome::Overdue);
}

#[test]
fn a_restart_under_an_earlier_configuration_is_neither_a_success_nor_a_failure_of_this_one() {
    // The configuration changed while it rolled out: its Pods are stale under the new one, which
    // is no fault of the new configuration's sidecar.
    let earlier =
        Seen { pods_behind: true, restart_covers: false, restarted_under_other: true, ..rolled_out() };
    assert_eq!(Outcome::of(earlier), Outcome::Superseded);
    assert_eq!(Outcome::of(Seen { rolled_out: false, overdue: true, ..earlier }), Outcome::Superseded);
    assert_eq!(
        Outcome::of(Seen { rolled_out: false, ..earlier }),
        Outcome::Rolling,
        "it still holds its room"
    );
}
