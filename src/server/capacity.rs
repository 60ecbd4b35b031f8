//! The server's capacity for connections: at most `max` open at once, and at most `per_client` from one
//! address, so that one client holding connections open (idle, or slowly) cannot take every place
//! from the API server. Past either, a connection is closed at once and counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::state::AppState;

/// The connection limits and the connections open now.
pub struct Capacity {
    max: usize,
    per_client: usize,
    open: Mutex<Open>,
    state: Arc<AppState>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// A place taken by one connection, given back when it is dropped.
pub struct Place {
    capacity: Arc<Capacity>,
    client: IpAddr,
}

impl Capacity {
    pub fn new(max: usize, per_client: usize, state: Arc<AppState>) -> Arc<Self> {
        Arc::new(Capacity { max, per_client, open: Mutex::default(), state })
    }

    /// A place for a connection from `client`, or `None` (counted) when either limit is reached.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Place> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let from_client = open.by_client.get(&client).copied().unwrap_or(0);
        if open.total >= self.max || from_client >= self.per_client {
            drop(open);
            self.state.metrics.refused_connection();
            return None;
        }
        open.total += 1;
        *open.by_client.entry(client).or_default() += 1;
        self.state.metrics.open_connections(1);
        Some(Place { capacity: self.clone(), client })
    }
}

impl Place {
    /// The connection is through its TLS handshake, which agreed on `alpn`: counted.
    pub fn handshaken(&self, alpn: Option<&[u8]>) {
        self.capacity.state.metrics.connection(alpn);
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.capacity.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.total -= 1;
        if let Some(count) = open.by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.by_client.remove(&self.client);
            }
        }
        self.capacity.state.metrics.open_connections(-1);
    }
}
