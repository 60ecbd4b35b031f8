//! Which connection makes room at the cap, on tokio's paused clock so that idle times are exact.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use super::{Capacity, Closing, Place};
use crate::Config;
use crate::server::state::AppState;

fn client(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

fn capacity(max: usize, per_client: usize) -> Arc<Capacity> {
    Capacity::new(max, per_client, Arc::new(AppState::new(Config::builtin(), Duration::from_secs(5))))
}

/// Whether `place` has been told to close to make room (without waiting for it).
fn is_evicted(place: &Place) -> bool {
    use std::future::Future;
    let future = std::pin::pin!(place.closing());
    let polled = future.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    polled == std::task::Poll::Ready(Closing::Evicted)
}

fn counted(capacity: &Capacity) -> (u64, u64) {
    let text = capacity.state.metrics.encode();
    let value = |name: &str| {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {text}"));
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64
    };
    (value("sidecar_injector_evicted_connections_total"), value("sidecar_injector_refused_connections_total"))
}

async fn tick() {
    tokio::time::advance(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_the_heaviest_clients_longest_idle_connection_makes_room() {
    let capacity = capacity(6, 4);
    let mut places = Vec::new();
    // Client 2 holds three connections, client 3 two, client 1 (the API server) one.
    for n in [2, 3, 2, 1, 3, 2] {
        places.push(capacity.admit(client(n)).expect("under the cap"));
        tick().await;
    }
    let newcomer = capacity.admit(client(9)).expect("room is made");
    assert!(is_evicted(&places[0]), "client 2's first connection, idle the longest");
    assert!(places[1..].iter().all(|p| !is_evicted(p)));
    assert_eq!(counted(&capacity), (1, 0));
    drop(places.remove(0));
    drop(newcomer);
    assert_eq!(capacity.lock().total, 5, "the evicted place was given back once");
}

#[tokio::test(start_paused = true)]
async fn the_longest_idle_is_counted_from_the_last_answer() {
    let capacity = capacity(4, 4);
    let places: Vec<Place> = (0..4).map(|_| capacity.admit(client(2)).unwrap()).collect();
    tick().await;
    // The first-opened connection answers a request: it has been idle the shortest now.
    drop(places[0].activity().request());
    tick().await;
    capacity.admit(client(1)).expect("room is made");
    assert!(!is_evicted(&places[0]));
    assert!(is_evicted(&places[1]));
}

#[tokio::test(start_paused = true)]
async fn a_connection_mid_request_is_never_evicted() {
    let capacity = capacity(3, 3);
    let places: Vec<Place> = (0..3).map(|_| capacity.admit(client(2)).unwrap()).collect();
    let requests: Vec<_> = places.iter().map(|p| p.activity().request()).collect();
    tick().await;
    assert!(capacity.admit(client(1)).is_none(), "every connection is mid-request: refused");
    assert!(places.iter().all(|p| !is_evicted(p)));
    assert_eq!(counted(&capacity), (0, 1));
    drop(requests);
    capacity.admit(client(1)).expect("once one is idle, it makes room");
    assert_eq!(counted(&capacity), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_light_client_is_evicted_only_when_heavier_ones_are_all_busy() {
    let capacity = capacity(4, 4);
    let api_server = capacity.admit(client(1)).unwrap();
    tick().await;
    let heavy: Vec<Place> = (0..3).map(|_| capacity.admit(client(2)).unwrap()).collect();
    let _busy: Vec<_> = heavy.iter().map(|p| p.activity().request()).collect();
    capacity.admit(client(3)).expect("the idle API server connection makes room");
    assert!(is_evicted(&api_server), "the only idle connection");
    assert!(heavy.iter().all(|p| !is_evicted(p)));
}

#[tokio::test(start_paused = true)]
async fn the_per_client_limit_still_refuses_at_once() {
    let capacity = capacity(10, 2);
    let _held: Vec<Place> = (0..2).map(|_| capacity.admit(client(2)).unwrap()).collect();
    assert!(capacity.admit(client(2)).is_none());
    assert_eq!(counted(&capacity), (0, 1));
    assert!(capacity.admit(client(3)).is_some(), "another client is not held back");
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_closes_every_connection_and_an_evicted_one_stays_evicted() {
    let capacity = capacity(2, 2);
    let first = capacity.admit(client(2)).unwrap();
    tick().await;
    let second = capacity.admit(client(2)).unwrap();
    let _third = capacity.admit(client(1)).expect("room is made");
    capacity.close_all();
    assert_eq!(first.closing().await, Closing::Evicted);
    assert_eq!(second.closing().await, Closing::Shutdown);
}
