//! One reconciler replica acts at a time: the holder of a `coordination.k8s.io` Lease, taken when
//! it is free or expired and renewed well before it expires. Every write names the resourceVersion
//! it read, so of two replicas racing for it only one wins. As client-go does, a replica judges
//! expiry by its own clock, from when it last saw the record change, never by the holder's
//! timestamps: the nodes' clocks may disagree. The Lease also keeps, in an annotation, the
//! configuration under which the waves stopped, so that a new leader does not start them again.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease as LeaseObject, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::time::Instant;

const HALTED: &str = "sidecar-injector.io/heal-halted";

pub struct Lease {
    api: Api<LeaseObject>,
    name: String,
    identity: String,
    duration: Duration,
    /// The holder and renew time last read, and when, by this replica's clock.
    seen: Mutex<Option<(Record, Instant)>>,
}

type Record = (Option<String>, Option<MicroTime>);

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub leading: bool,
    /// The configuration under which the waves stopped, if they did.
    pub halted_under: Option<String>,
}

impl Lease {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str, duration: Duration) -> Self {
        Lease {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
            seen: Mutex::new(None),
        }
    }

    /// Take the Lease if it is free or expired, renew it if held: whether this replica holds it now.
    pub async fn try_hold(&self) -> kube::Result<Held> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return self.create(now).await;
        };
        let halted_under = lease.metadata.annotations.as_ref().and_then(|a| a.get(HALTED)).cloned();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.identity.as_str());
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).try_into().unwrap_or(0));
        let unchanged_for = self.unchanged_for((holder.clone(), spec.renew_time.clone()));
        if !ours && holder.is_some() && unchanged_for <= duration {
            return Ok(Held { leading: false, halted_under });
        }
        if !ours {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.holder_identity = Some(self.identity.clone());
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.duration.as_secs().try_into().unwrap_or(i32::MAX));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Held { leading: true, halted_under }),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Held { leading: false, halted_under }),
            Err(error) => Err(error),
        }
    }

    /// How long `record` has been what this replica reads, by its own clock.
    fn unchanged_for(&self, record: Record) -> Duration {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*seen {
            Some((last, since)) if *last == record => now.duration_since(*since),
            _ => {
                *seen = Some((record, now));
                Duration::ZERO
            }
        }
    }

    async fn create(&self, now: Timestamp) -> kube::Result<Held> {
        let lease = LeaseObject {
            metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_duration_seconds: Some(self.duration.as_secs().try_into().unwrap_or(i32::MAX)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Held { leading: true, halted_under: None }),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Held { leading: false, halted_under: None })
            }
            Err(error) => Err(error),
        }
    }

    /// Let another replica take over at once (on SIGTERM), if this one holds the Lease.
    pub async fn release(&self) -> kube::Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else { return Ok(()) };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        self.api.replace(&self.name, &PostParams::default(), &lease).await.map(drop)
    }

    /// Record that the waves stopped under `config`, or (`None`) that they go on.
    pub async fn set_halted(&self, config: Option<&str>) -> kube::Result<()> {
        let patch = json!({"metadata": {"annotations": {HALTED: config}}});
        self.api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(drop)
    }
}
