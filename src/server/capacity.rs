//! The server's capacity for connections: at most `max` open at once, and at most `per_client`
//! from one address.
//!
//! Past `per_client`, a new connection is closed at once. At `max`, it takes the place of an idle
//! one instead: of the client holding the most connections, the one idle the longest. So a few
//! clients holding idle connections cannot lock the API server out, and a client that holds few,
//! as the API server does, is never the one closed while a heavier client holds idle ones. A
//! connection mid-request is never chosen; only when every one is does a new one get refused.
//! Refusals and evictions are counted.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;
use tokio::time::Instant;

use super::state::AppState;

/// The connection limits and the connections open now.
pub struct Capacity {
    max: usize,
    per_client: usize,
    open: Mutex<Open>,
    state: Arc<AppState>,
    /// What idle times are counted from.
    epoch: Instant,
}

#[derive(Default)]
struct Open {
    total: usize,
    clients: HashMap<IpAddr, Vec<Arc<Activity>>>,
}

/// What one connection is doing, as its requests tell it and eviction reads it.
pub struct Activity {
    requests: AtomicU32,
    /// When the last request was answered (of the connection's start, before one), in
    /// nanoseconds since the capacity's epoch.
    idle_since: AtomicU64,
    epoch: Instant,
    /// Why the connection is to close, as a [`Closing`]; `OPEN` until then.
    closing: AtomicU8,
    /// Woken when `closing` is set.
    waker: AtomicWaker,
    state: Arc<AppState>,
}

/// Why a connection is told to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Closing {
    /// The server is shutting down.
    Shutdown = 1,
    /// Its place was given to a new connection.
    Evicted = 2,
}

const OPEN: u8 = 0;

/// A place taken by one connection, given back when it is dropped.
pub struct Place {
    capacity: Arc<Capacity>,
    client: IpAddr,
    activity: Arc<Activity>,
}

/// One request being answered on a connection; the connection is idle again once every one is
/// dropped, answered or not (an HTTP/2 stream the client resets drops its request unanswered).
pub struct InFlight(Arc<Activity>);

impl Capacity {
    pub fn new(max: usize, per_client: usize, state: Arc<AppState>) -> Arc<Self> {
        Arc::new(Capacity { max, per_client, open: Mutex::default(), state, epoch: Instant::now() })
    }

    /// A place for a connection from `client`, made by evicting an idle connection at `max`; or
    /// `None` (counted) past `per_client`, or when every connection is mid-request.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Place> {
        let mut open = self.lock();
        let from_client = open.clients.get(&client).map_or(0, Vec::len);
        if from_client >= self.per_client {
            return self.refuse(open);
        }
        if open.total >= self.max {
            let Some(evicted) = open.evict_idle() else { return self.refuse(open) };
            evicted.close(Closing::Evicted);
            self.state.metrics.evicted_connection();
            self.state.metrics.open_connections(-1);
        }
        let activity = Arc::new(Activity {
            requests: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            epoch: self.epoch,
            closing: AtomicU8::new(OPEN),
            waker: AtomicWaker::new(),
            state: self.state.clone(),
        });
        activity.idle_now();
        open.total += 1;
        open.clients.entry(client).or_default().push(activity.clone());
        self.state.metrics.open_connections(1);
        Some(Place { capacity: self.clone(), client, activity })
    }

    /// Tell every open connection to close, for a shutdown.
    pub fn close_all(&self) {
        for activity in self.lock().clients.values().flatten() {
            activity.close(Closing::Shutdown);
        }
    }

    fn refuse(&self, open: MutexGuard<'_, Open>) -> Option<Place> {
        drop(open);
        self.state.metrics.refused_connection();
        None
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Open {
    /// Take out the connection to close: of the clients with an idle connection, the one holding
    /// the most connections (of two alike, the one idle longer), and its connection idle the
    /// longest. `None` when every connection is mid-request.
    fn evict_idle(&mut self) -> Option<Arc<Activity>> {
        let longest_idle = |held: &[Arc<Activity>]| {
            let idle = held.iter().enumerate().filter(|(_, activity)| activity.is_idle());
            idle.min_by_key(|(_, activity)| activity.idle_since())
                .map(|(i, activity)| (i, activity.idle_since()))
        };
        let (client, index) = self
            .clients
            .iter()
            .filter_map(|(client, held)| Some((held.len(), longest_idle(held)?, *client)))
            .max_by_key(|&(count, (_, since), _)| (count, std::cmp::Reverse(since)))
            .map(|(_, (index, _), client)| (client, index))?;
        Some(self.remove(client, index))
    }

    fn remove(&mut self, client: IpAddr, index: usize) -> Arc<Activity> {
        let held = self.clients.get_mut(&client).expect("the index was found in this client's list");
        let activity = held.swap_remove(index);
        if held.is_empty() {
            self.clients.remove(&client);
        }
        self.total -= 1;
        activity
    }
}

impl Activity {
    fn is_idle(&self) -> bool {
        self.requests.load(Ordering::Acquire) == 0
    }

    fn idle_since(&self) -> u64 {
        self.idle_since.load(Ordering::Relaxed)
    }

    fn idle_now(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.idle_since.store(nanos, Ordering::Relaxed);
    }

    fn close(&self, why: Closing) {
        // The first reason stands: an evicted connection the shutdown also reaches stays evicted.
        let _ = self.closing.compare_exchange(OPEN, why as u8, Ordering::AcqRel, Ordering::Acquire);
        self.waker.wake();
    }

    fn closing(&self) -> Option<Closing> {
        match self.closing.load(Ordering::Acquire) {
            OPEN => None,
            1 => Some(Closing::Shutdown),
            _ => Some(Closing::Evicted),
        }
    }

    /// A request on this connection is being answered until the guard is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::AcqRel);
        self.state.metrics.requests_in_flight(1);
        InFlight(self.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_now();
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
        self.0.state.metrics.requests_in_flight(-1);
    }
}

impl Place {
    /// The connection is through its TLS handshake, which agreed on `alpn`: counted.
    pub fn handshaken(&self, alpn: Option<&[u8]>) {
        self.capacity.state.metrics.connection(alpn);
    }

    /// What the connection's requests report to.
    pub fn activity(&self) -> Arc<Activity> {
        self.activity.clone()
    }

    /// Completes when the connection is told to close, with why.
    pub fn closing(&self) -> ToClose<'_> {
        ToClose(&self.activity)
    }
}

/// The future of [`Place::closing`].
pub struct ToClose<'a>(&'a Activity);

impl Future for ToClose<'_> {
    type Output = Closing;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Closing> {
        if let Some(why) = self.0.closing() {
            return Poll::Ready(why);
        }
        self.0.waker.register(cx.waker());
        // Set between the load and the registration: its wake found no waker.
        self.0.closing().map_or(Poll::Pending, Poll::Ready)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.capacity.lock();
        let held = open.clients.get(&self.client);
        // An evicted connection has given its place back already.
        let index = held.and_then(|held| held.iter().position(|a| Arc::ptr_eq(a, &self.activity)));
        if let Some(index) = index {
            open.remove(self.client, index);
            drop(open);
            self.capacity.state.metrics.open_connections(-1);
        }
    }
}

#[cfg(test)]
mod tests;
