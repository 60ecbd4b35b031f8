//! A TLS client that trusts only the CA a test made, as the API server trusts only the caBundle.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A client configuration trusting only the certificates in `ca_pem`, speaking only `versions`.
pub fn client_config(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A connector with [`client_config`].
pub fn connector(ca_pem: &str, versions: &[&'static rustls::SupportedProtocolVersion]) -> TlsConnector {
    TlsConnector::from(Arc::new(client_config(ca_pem, versions)))
}

/// A TLS 1.2 or 1.3 connection to `addr` for the DNS name `name`, trusting only `ca_pem`.
pub async fn connect(addr: SocketAddr, ca_pem: &str, name: &str) -> std::io::Result<TlsStream<TcpStream>> {
    let tls = connector(ca_pem, &[&rustls::version::TLS13, &rustls::version::TLS12]);
    let tcp = TcpStream::connect(addr).await?;
    tls.connect(ServerName::try_from(name.to_owned()).unwrap(), tcp).await
}

/// The handshake for `name` succeeds trusting only `ca_pem`, and `/healthz` answers 200.
pub async fn verifies(addr: SocketAddr, ca_pem: &str, name: &str) -> bool {
    let Ok(mut tls) = connect(addr, ca_pem, name).await else {
        return false;
    };
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    let _ = tls.read_to_string(&mut reply).await;
    reply.starts_with("HTTP/1.1 200")
}
