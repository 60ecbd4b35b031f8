//! The reconcile loop: the watches (the webhook configuration, the namespaces it selects, their
//! Pods) feed the fleet; the configuration file is read again when it changes; a tick a second
//! updates the metrics and, on the leader, takes a wave step (`step.rs`).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::Options;
use super::fleet::Fleet;
use super::lease::{Held, Lease};
use super::metrics::HealMetrics;
use super::owners::Owners;
use super::waves::Waves;
use super::webhook::{Hook, hook_of};
use crate::Config;
use crate::audit::{Workload, classify};
use crate::config_file::{self, ConfigFileError};
use crate::engine::config::BUILTIN_YAML;

type Watch<K> = Pin<Box<dyn Stream<Item = Result<Event<K>, watcher::Error>> + Send>>;

/// The configuration in force, and an id that changes with its content.
pub struct Loaded {
    pub config: Arc<Config>,
    pub id: String,
}

impl Loaded {
    pub fn read(path: Option<&Path>) -> Result<Loaded, ConfigFileError> {
        let Some(path) = path else {
            return Ok(Loaded::of(Config::builtin(), BUILTIN_YAML.as_bytes()));
        };
        let bytes =
            std::fs::read(path).map_err(|source| ConfigFileError::Read { path: path.to_owned(), source })?;
        Loaded::parse(path, &bytes)
    }

    /// The configuration file `path`, as `bytes` hold it.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Loaded, ConfigFileError> {
        Ok(Loaded::of(config_file::parse(path, bytes)?, bytes))
    }

    fn of(config: Config, bytes: &[u8]) -> Loaded {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let id = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Loaded { config: Arc::new(config), id }
    }
}

/// Everything the loop holds.
pub struct Reconciler {
    pub(super) client: Client,
    pub(super) options: Options,
    pub(super) loaded: Loaded,
    pub(super) metrics: Arc<HealMetrics>,
    pub(super) lease: Arc<Lease>,
    pub(super) recorder: Recorder,
    pub(super) fleet: Fleet,
    owners: Owners,
    pub(super) waves: Waves<Arc<Workload>>,
    pub(super) hook: Option<Hook>,
    /// The namespaces the webhook selects, once listed.
    namespaces: Option<BTreeSet<String>>,
    /// The namespaces of a list in progress.
    listing: Option<BTreeSet<String>>,
    pub(super) leading: bool,
    /// Whether, since it last became the leader, it adopted the rollouts already under way.
    pub(super) adopted: bool,
    /// Workloads reported as left alone, with what they were behind for, so each is said once.
    pub(super) reported: HashSet<(Arc<Workload>, String)>,
    /// When each restarted workload was first seen behind, for the time to current.
    pub(super) behind_since: std::collections::HashMap<Arc<Workload>, Instant>,
    /// When each workload behind was last read, so that one not ready to act on is not read
    /// again every tick.
    pub(super) examined: std::collections::HashMap<Arc<Workload>, Instant>,
    listings: u64,
}

impl Reconciler {
    pub fn new(
        client: Client,
        options: Options,
        loaded: Loaded,
        metrics: Arc<HealMetrics>,
        lease: Arc<Lease>,
    ) -> Self {
        let reporter =
            Reporter { controller: "sidecar-injector-heal".into(), instance: Some(options.identity.clone()) };
        Reconciler {
            recorder: Recorder::new(client.clone(), reporter),
            waves: Waves::new(options.limits),
            client,
            options,
            loaded,
            metrics,
            lease,
            fleet: Fleet::default(),
            owners: Owners::default(),
            hook: None,
            namespaces: None,
            listing: None,
            leading: false,
            adopted: false,
            reported: HashSet::new(),
            behind_since: std::collections::HashMap::new(),
            examined: std::collections::HashMap::new(),
            listings: 0,
        }
    }

    /// Reconcile until `shutdown` completes, acting while `held` says this replica leads.
    pub async fn run(
        mut self,
        mut held: tokio::sync::watch::Receiver<Option<Held>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let fields = format!("metadata.name={}", self.options.webhook_configuration);
        let configurations = Api::<MutatingWebhookConfiguration>::all(self.client.clone());
        let mut hooks: Watch<MutatingWebhookConfiguration> =
            watcher(configurations, watcher::Config::default().fields(&fields)).default_backoff().boxed();
        let mut namespaces: Option<Watch<Namespace>> = None;
        let mut pods: Option<Watch<Pod>> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut reload = tokio::time::interval(self.options.reload_interval);
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Its first read finds what was loaded at start, unless the file changed since: either way
        // `reload` compares the content's id.
        let mut watched = crate::watched::Watched::new(self.options.config.as_deref());
        loop {
            tokio::select! {
                Some(event) = hooks.next() => {
                    if self.on_hook(event) {
                        namespaces = Some(self.watch_namespaces());
                        pods = None;
                    }
                }
                Some(event) = next(&mut namespaces) => {
                    if self.on_namespace(event) {
                        pods = Some(self.watch_pods());
                    }
                }
                Some(event) = next(&mut pods) => self.on_pod(event).await,
                _ = held.changed() => self.on_lease(held.borrow_and_update().clone()).await,
                _ = reload.tick() => {
                    if self.reload(&mut watched).await {
                        pods = self.namespaces.is_some().then(|| self.watch_pods());
                    }
                }
                _ = tick.tick() => self.tick().await,
                () = &mut shutdown => return,
            }
        }
    }

    /// The webhook configuration changed: whether its selectors did (the watches then start over).
    fn on_hook(&mut self, event: Result<Event<MutatingWebhookConfiguration>, watcher::Error>) -> bool {
        let configuration = match event {
            Ok(Event::Apply(c) | Event::InitApply(c)) => c,
            Ok(Event::Delete(_)) => {
                tracing::warn!(configuration = %self.options.webhook_configuration, "heal: the webhook configuration was deleted");
                return false;
            }
            Ok(_) => return false,
            Err(error) => {
                tracing::warn!(%error, "heal: watching the webhook configuration");
                return false;
            }
        };
        match hook_of(&configuration, &self.options.webhook) {
            Ok(hook) => {
                let selectors_changed = self.hook.as_ref().is_none_or(|old| {
                    (&old.namespace_selector, &old.object_selector)
                        != (&hook.namespace_selector, &hook.object_selector)
                });
                self.hook = Some(hook);
                if selectors_changed {
                    self.namespaces = None;
                    self.fleet.start_over();
                }
                selectors_changed
            }
            Err(error) => {
                tracing::warn!(%error, "heal: the webhook configuration cannot be read");
                false
            }
        }
    }

    fn watch_namespaces(&self) -> Watch<Namespace> {
        let selector = self.hook.as_ref().map(|h| h.namespace_selector.clone()).unwrap_or_default();
        let api = Api::<Namespace>::all(self.client.clone());
        watcher(api, watcher::Config::default().labels(&selector)).default_backoff().boxed()
    }

    fn watch_pods(&mut self) -> Watch<Pod> {
        self.fleet.start_over();
        self.metrics.set_listed(false);
        let selector = self.hook.as_ref().map(|h| h.object_selector.clone()).unwrap_or_default();
        let config = watcher::Config::default().labels(&selector).page_size(self.options.page_size);
        watcher(Api::<Pod>::all(self.client.clone()), config).default_backoff().boxed()
    }

    /// A namespace event: whether the set the webhook selects is now known, or changed after.
    fn on_namespace(&mut self, event: Result<Event<Namespace>, watcher::Error>) -> bool {
        let name = |ns: &Namespace| ns.metadata.name.clone().unwrap_or_default();
        match event {
            Ok(Event::Init) => self.listing = Some(BTreeSet::new()),
            Ok(Event::InitApply(ns)) => {
                self.listing.get_or_insert_with(BTreeSet::new).insert(name(&ns));
            }
            Ok(Event::InitDone) => {
                let listed = self.listing.take().unwrap_or_default();
                let changed = self.namespaces.as_ref() != Some(&listed);
                self.namespaces = Some(listed);
                return changed;
            }
            Ok(Event::Apply(ns)) => {
                let set = self.namespaces.get_or_insert_with(BTreeSet::new);
                return set.insert(name(&ns));
            }
            Ok(Event::Delete(ns)) => {
                return self.namespaces.as_mut().is_some_and(|set| set.remove(&name(&ns)));
            }
            Err(error) => tracing::warn!(%error, "heal: watching namespaces"),
        }
        false
    }

    /// A Pod event: the fleet updated.
    async fn on_pod(&mut self, event: Result<Event<Pod>, watcher::Error>) {
        match event {
            Ok(Event::Init) => {
                self.listings += 1;
                if self.listings > 1 {
                    self.metrics.relisted();
                    tracing::info!("heal: the Pod watch starts over with a full list");
                }
                self.fleet.start_over();
                self.owners.forget();
            }
            Ok(Event::InitApply(pod) | Event::Apply(pod)) => self.seen(pod).await,
            Ok(Event::Delete(pod)) => self.fleet.gone(pod.metadata.uid.as_deref().unwrap_or_default()),
            Ok(Event::InitDone) => {
                self.fleet.listed();
                self.metrics.set_listed(true);
                tracing::info!(
                    pods = self.fleet.pods(),
                    behind = self.fleet.behind().len(),
                    "heal: Pods listed"
                );
            }
            Err(error) => tracing::warn!(%error, "heal: watching Pods"),
        }
    }

    async fn seen(&mut self, pod: Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        if !self.namespaces.as_ref().is_some_and(|set| set.contains(&namespace)) {
            self.fleet.gone(&uid);
            return;
        }
        let workload = match self.owners.workload_of(&self.client, &pod.metadata, &namespace).await {
            Ok(workload) => workload,
            Err(error) => {
                tracing::warn!(%error, %namespace, "heal: the owner of a Pod could not be read");
                return;
            }
        };
        let labels = pod.metadata.labels.as_ref();
        let revision =
            labels.and_then(|l| l.get("pod-template-hash").or_else(|| l.get("controller-revision-hash")));
        let revision = revision.cloned();
        let Ok(value) = serde_json::to_value(&pod) else { return };
        let (class, _) =
            classify(&value, &namespace, &kube::core::Selector::default(), &[], &self.loaded.config);
        self.fleet.seen(uid, workload, class, revision.as_deref(), Instant::now());
    }
}

/// The next event of a watch that may not have started.
async fn next<K>(watch: &mut Option<Watch<K>>) -> Option<Result<Event<K>, watcher::Error>> {
    match watch {
        Some(watch) => watch.next().await,
        None => std::future::pending().await,
    }
}
