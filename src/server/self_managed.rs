//! Self-managed certificates: the default in `deploy-incluster/`, so that `kubectl create -f` is
//! all a user does.
//!
//! At start a replica:
//! 1. reads the CA Secret, or creates it. Two replicas starting together both try to create it;
//!    the API server lets one win and answers the other 409, which then reads the winner's CA;
//! 2. issues itself a serving certificate for `<service>.<namespace>.svc`, kept in memory only;
//! 3. writes the CA bundle into its MutatingWebhookConfiguration by server-side apply, under its
//!    own field manager, so that a GitOps tool owning the rest of the object does not fight it,
//!    and with it the `matchConditions` its configuration generates (engine/registration.rs);
//!    these are written again whenever a reloaded configuration changes them.
//!
//! Then, on every tick, it renews its serving certificate when a third of its life is left, and
//! rotates the CA when a third of the CA's life is left: the new CA goes into the
//! Secret with the old one kept as `previous.crt`, and the bundle carries both until the old one
//! expires, so that certificates signed by either verify while replicas catch up. Every replica
//! re-reads the Secret now and then, to follow a rotation another replica made.

use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use time::OffsetDateTime;

use super::certs::{self, Ca, CertError, Loaded, PemPair};
use crate::Config;
use crate::engine::registration::{MatchCondition, match_conditions};

/// The field manager of our server-side apply.
pub const FIELD_MANAGER: &str = "sidecar-injector";

/// What self-managed certificates need to know.
#[derive(Clone)]
pub struct SelfManaged {
    /// How to reach the API server: in-cluster configuration in production, a stub in tests.
    pub kube: kube::Config,
    pub namespace: String,
    pub service: String,
    /// The Secret holding the CA, in `namespace`.
    pub ca_secret: String,
    /// The MutatingWebhookConfiguration, and the names of its webhooks, to write the bundle into.
    pub webhook_configuration: String,
    pub webhooks: Vec<String>,
    pub serving_validity: Duration,
    pub ca_validity: Duration,
    /// How often the Secret is read again, to follow a CA rotation made by another replica.
    pub resync: Duration,
}

impl std::fmt::Debug for SelfManaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfManaged")
            .field("cluster", &self.kube.cluster_url)
            .field("namespace", &self.namespace)
            .field("service", &self.service)
            .field("ca_secret", &self.ca_secret)
            .field("webhook_configuration", &self.webhook_configuration)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("certificate: {0}")]
    Cert(#[from] CertError),
    #[error("Secret {0} holds no usable CA: {1}")]
    BadSecret(String, String),
}

/// The CA as stored in the Secret.
struct StoredCa {
    ca: Ca,
    previous: Option<String>,
    resource_version: Option<String>,
}

/// A replica's certificates and what it needs to keep them fresh. The time is always passed in, so
/// that renewal and rotation can be tested with a fake clock.
pub struct Managed {
    settings: SelfManaged,
    secrets: Api<Secret>,
    configurations: Api<MutatingWebhookConfiguration>,
    stored: StoredCa,
    /// What the configuration in force generates, applied with the bundle.
    conditions: Vec<MatchCondition>,
    serving_not_after: OffsetDateTime,
    last_resync: OffsetDateTime,
}

impl Managed {
    /// Steps 1 to 3 above, at `now`, with `config` in force; the serving certificate to start with.
    pub async fn bootstrap(
        settings: SelfManaged,
        config: &Config,
        now: OffsetDateTime,
    ) -> Result<(Managed, Loaded), ManagedError> {
        let client = Client::try_from(settings.kube.clone())?;
        let secrets = Api::namespaced(client.clone(), &settings.namespace);
        let configurations = Api::all(client);
        let stored = get_or_create_ca(&secrets, &settings, now).await?;
        let conditions = generated(config);
        let mut managed = Managed {
            settings,
            secrets,
            configurations,
            stored,
            conditions,
            serving_not_after: now,
            last_resync: now,
        };
        managed.apply_bundle(now).await?;
        let serving = managed.issue(now)?;
        Ok((managed, serving))
    }

    /// Follow a reloaded configuration: its `matchConditions` written when they changed, so that
    /// a Pod it newly selects is sent within a reload interval.
    pub async fn follow_config(&mut self, config: &Config, now: OffsetDateTime) -> Result<(), ManagedError> {
        let conditions = generated(config);
        if conditions == self.conditions {
            return Ok(());
        }
        let previous = std::mem::replace(&mut self.conditions, conditions);
        let applied = self.apply_bundle(now).await;
        if applied.is_err() {
            // Tried again on the next reload that changes them.
            self.conditions = previous;
        }
        applied
    }

    /// Renew, rotate or follow, as needed at `now`. Returns a new serving certificate when there
    /// is one.
    pub async fn tick(&mut self, now: OffsetDateTime) -> Result<Option<Loaded>, ManagedError> {
        if now - self.last_resync >= self.settings.resync {
            self.last_resync = now;
            if let Some(secret) = self.secrets.get_opt(&self.settings.ca_secret).await? {
                let stored = read_ca(&secret, &self.settings.ca_secret)?;
                if stored.ca.pem().cert_pem != self.stored.ca.pem().cert_pem {
                    tracing::info!("the CA in the Secret changed; following it");
                    self.stored = stored;
                    self.apply_bundle(now).await?;
                    return Ok(Some(self.issue(now)?));
                }
                self.stored.resource_version = stored.resource_version;
            }
        }
        // Renewal is due when a third of the configured lifetime is left. (Certificates are
        // backdated an hour for clock skew, so their own notBefore would make that too early.)
        if self.stored.ca.not_after() - now < self.ca_validity() / 3 {
            self.rotate_ca(now).await?;
            return Ok(Some(self.issue(now)?));
        }
        if self.serving_not_after - now < self.serving_validity() / 3 {
            return Ok(Some(self.issue(now)?));
        }
        Ok(None)
    }

    fn issue(&mut self, now: OffsetDateTime) -> Result<Loaded, ManagedError> {
        let names = certs::service_names(&self.settings.service, &self.settings.namespace);
        let pair = self.stored.ca.issue(&names, now, self.serving_validity())?;
        self.serving_not_after = now + self.serving_validity();
        Ok(certs::load(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes())?)
    }

    /// Replace the CA in the Secret, keeping the old one as `previous.crt`. If another replica
    /// rotated first (409), take its CA instead.
    async fn rotate_ca(&mut self, now: OffsetDateTime) -> Result<(), ManagedError> {
        let next = Ca::for_service(&self.settings.service, now, self.ca_validity())?;
        let previous = Some(self.stored.ca.pem().cert_pem.clone());
        let mut secret = ca_secret(&self.settings, next.pem(), previous.as_deref());
        secret.metadata.resource_version = self.stored.resource_version.clone();
        match self.secrets.replace(&self.settings.ca_secret, &PostParams::default(), &secret).await {
            Ok(written) => {
                tracing::info!("CA rotated; the old CA stays in the bundle until it expires");
                self.stored =
                    StoredCa { ca: next, previous, resource_version: written.metadata.resource_version };
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let secret = self.secrets.get(&self.settings.ca_secret).await?;
                self.stored = read_ca(&secret, &self.settings.ca_secret)?;
            }
            Err(e) => return Err(e.into()),
        }
        self.apply_bundle(now).await
    }

    fn ca_validity(&self) -> time::Duration {
        validity(self.settings.ca_validity)
    }

    fn serving_validity(&self) -> time::Duration {
        validity(self.settings.serving_validity)
    }

    /// The bundle at `now`: the current CA, and the previous one while it is still valid.
    pub fn bundle(&self, now: OffsetDateTime) -> String {
        let mut bundle = self.stored.ca.pem().cert_pem.clone();
        if let Some(previous) = &self.stored.previous
            && certs::not_after_of(previous).is_some_and(|end| end > now.unix_timestamp())
        {
            bundle.push_str(previous);
        }
        bundle
    }

    async fn apply_bundle(&self, now: OffsetDateTime) -> Result<(), ManagedError> {
        let ca_bundle = base64::engine::general_purpose::STANDARD.encode(self.bundle(now));
        let webhooks: Vec<_> = self
            .settings
            .webhooks
            .iter()
            .map(|name| {
                json!({"name": name, "clientConfig": {"caBundle": ca_bundle}, "matchConditions": self.conditions})
            })
            .collect();
        let patch = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": self.settings.webhook_configuration},
            "webhooks": webhooks,
        });
        // force: these fields are ours even if a user's `kubectl apply` once set them.
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.configurations
            .patch(&self.settings.webhook_configuration, &params, &Patch::Apply(&patch))
            .await?;
        let conditions = self.conditions.len();
        tracing::info!(configuration = %self.settings.webhook_configuration, conditions, "caBundle and matchConditions applied");
        Ok(())
    }
}

/// The conditions `config` generates, saying in the log when they had to be broadened.
fn generated(config: &Config) -> Vec<MatchCondition> {
    let generated = match_conditions(config);
    if let Some(why) = &generated.broadened {
        tracing::warn!(%why, "matchConditions broadened");
    }
    generated.conditions
}

/// A configured validity as `time` counts it; one beyond `time`'s range is a day.
fn validity(duration: Duration) -> time::Duration {
    duration.try_into().unwrap_or(time::Duration::DAY)
}

async fn get_or_create_ca(
    secrets: &Api<Secret>,
    settings: &SelfManaged,
    now: OffsetDateTime,
) -> Result<StoredCa, ManagedError> {
    let name = &settings.ca_secret;
    if let Some(secret) = secrets.get_opt(name).await? {
        return read_ca(&secret, name);
    }
    let ca = Ca::for_service(&settings.service, now, validity(settings.ca_validity))?;
    match secrets.create(&PostParams::default(), &ca_secret(settings, ca.pem(), None)).await {
        Ok(created) => {
            tracing::info!(secret = %name, "CA created");
            Ok(StoredCa { ca, previous: None, resource_version: created.metadata.resource_version })
        }
        // Another replica created it between our read and our create: use the winner's.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            tracing::info!(secret = %name, "another replica created the CA first; using it");
            read_ca(&secrets.get(name).await?, name)
        }
        Err(e) => Err(e.into()),
    }
}

fn ca_secret(settings: &SelfManaged, ca: &PemPair, previous: Option<&str>) -> Secret {
    let mut data = std::collections::BTreeMap::from([
        ("ca.crt".to_owned(), ByteString(ca.cert_pem.clone().into_bytes())),
        ("ca.key".to_owned(), ByteString(ca.key_pem.clone().into_bytes())),
    ]);
    if let Some(previous) = previous {
        data.insert("previous.crt".to_owned(), ByteString(previous.as_bytes().to_vec()));
    }
    let mut secret = Secret { data: Some(data), type_: Some("Opaque".into()), ..Secret::default() };
    secret.metadata.name = Some(settings.ca_secret.clone());
    secret.metadata.namespace = Some(settings.namespace.clone());
    secret.metadata.labels =
        Some([("app.kubernetes.io/name".to_owned(), "sidecar-injector".to_owned())].into());
    secret
}

fn read_ca(secret: &Secret, name: &str) -> Result<StoredCa, ManagedError> {
    let field = |key: &str| -> Option<String> {
        let bytes = secret.data.as_ref()?.get(key)?;
        String::from_utf8(bytes.0.clone()).ok()
    };
    let bad = |why: &str| ManagedError::BadSecret(name.to_owned(), why.to_owned());
    let (Some(cert_pem), Some(key_pem)) = (field("ca.crt"), field("ca.key")) else {
        return Err(bad("ca.crt or ca.key is missing"));
    };
    let ca = Ca::from_pem(PemPair { cert_pem, key_pem }).map_err(|e| bad(&e.to_string()))?;
    Ok(StoredCa {
        ca,
        previous: field("previous.crt"),
        resource_version: secret.metadata.resource_version.clone(),
    })
}
