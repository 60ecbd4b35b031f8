//! The live webhook configuration, as the reconciler reads it: which namespaces and Pods the
//! webhook is sent (its selectors, as label selectors for the watches), and whether the webhook
//! now answers as this configuration would. A restart while it is unreachable brings back the same
//! missed Pods; a restart while it still serves the previous configuration (a ConfigMap reaches
//! each Pod in its own time) brings back stale ones. Either would count as a failed rollout, so
//! the reconciler asks first, with the very Pod the restart will create.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Service;
use kube::{Api, Client};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// One webhook of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Label selectors, as the API's `labelSelector` parameter takes them.
    pub namespace_selector: String,
    pub object_selector: String,
    pub service: Option<ServiceRef>,
    /// PEM.
    pub ca_bundle: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    pub port: i32,
    pub path: String,
}

/// The webhook named `webhook` of `configuration`.
pub fn hook_of(configuration: &MutatingWebhookConfiguration, webhook: &str) -> Result<Hook, String> {
    let (hook, namespaces, objects) = crate::audit::webhook_of(configuration, webhook)?;
    let client_config = &hook.client_config;
    Ok(Hook {
        namespace_selector: namespaces.to_string(),
        object_selector: objects.to_string(),
        service: client_config.service.as_ref().map(|s| ServiceRef {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            port: s.port.unwrap_or(443),
            path: s.path.clone().unwrap_or_else(|| "/".to_owned()),
        }),
        ca_bundle: client_config.ca_bundle.clone().map(|b| b.0).unwrap_or_default(),
    })
}

/// What the webhook answered for a review, as far as injection goes: allowed, and the patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub allowed: bool,
    pub patch: Option<String>,
}

impl Answer {
    /// From a response AdmissionReview.
    pub fn of(body: &[u8]) -> Result<Answer, String> {
        let review: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
        let response = review.get("response").ok_or("the answer has no response")?;
        Ok(Answer {
            allowed: response.get("allowed").and_then(serde_json::Value::as_bool).unwrap_or(false),
            patch: response.get("patch").and_then(serde_json::Value::as_str).map(str::to_owned),
        })
    }
}

/// The webhook's answer to `review`, sent as the API server sends it: to its Service's address,
/// with its DNS name, trusting its caBundle. `Ok(None)` for a webhook called by URL, which the
/// reconciler does not call (it may be outside the cluster).
pub async fn ask(client: &Client, hook: &Hook, review: Vec<u8>) -> Result<Option<Answer>, String> {
    let Some(service) = &hook.service else { return Ok(None) };
    let api = Api::<Service>::namespaced(client.clone(), &service.namespace);
    let found = api.get_opt(&service.name).await.map_err(|e| e.to_string())?;
    let found = found.ok_or_else(|| format!("no Service {}/{}", service.namespace, service.name))?;
    let address = found.spec.and_then(|spec| spec.cluster_ip).filter(|ip| ip != "None");
    let address = address.ok_or_else(|| format!("the Service {} has no ClusterIP", service.name))?;
    let post = post(&address, service, &hook.ca_bundle, review);
    let body = tokio::time::timeout(Duration::from_secs(5), post)
        .await
        .map_err(|_| "no answer within 5 s".to_owned())??;
    Answer::of(&body).map(Some)
}

async fn post(
    address: &str,
    service: &ServiceRef,
    ca_bundle: &[u8],
    review: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_bundle) {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| format!("the caBundle: {e}"))?;
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let name = format!("{}.{}.svc", service.name, service.namespace);
    let server_name = ServerName::try_from(name.clone()).map_err(|e| e.to_string())?;
    let port = u16::try_from(service.port).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect((address, port)).await.map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server_name, tcp).await;
    let tls = tls.map_err(|e| e.to_string())?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::post(&service.path)
        .header(hyper::header::HOST, name)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(review)))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the webhook answered {}", response.status()));
    }
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok(body.to_bytes().to_vec())
}
