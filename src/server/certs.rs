//! Certificates: a CA and serving certificates made with rcgen, PEM files loaded for rustls, and the
//! one place rustls asks for the current certificate, so that a rotated certificate is served from
//! the next handshake on, without a restart and without dropping open connections.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

use crate::watched::{ReadError, Watched};

/// Why a certificate could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("no certificate in the PEM data")]
    NoCertificate,
    #[error("no private key in the PEM data")]
    NoKey,
    #[error("the PEM data is not valid: {0}")]
    Pem(String),
    #[error("the certificate and key do not belong together, or the key is unusable: {0}")]
    Mismatch(rustls::Error),
    #[error("could not make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct PemPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for PemPair {
    // Never print a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemPair").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

/// A certificate authority that issues serving certificates.
pub struct Ca {
    pem: PemPair,
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
}

impl Ca {
    /// A new self-signed CA, valid from an hour before `now` (clock skew) for `valid_for`.
    pub fn generate(common_name: &str, now: OffsetDateTime, valid_for: Duration) -> Result<Ca, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = now - Duration::hours(1);
        params.not_after = now + valid_for;
        let cert = params.self_signed(&key)?;
        let pem = PemPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() };
        let not_after = params.not_after;
        Ok(Ca { pem, issuer: Issuer::new(params, key), not_after })
    }

    /// A new CA for the webhook behind `service`: the one name every CA of ours carries.
    pub fn for_service(service: &str, now: OffsetDateTime, valid_for: Duration) -> Result<Ca, CertError> {
        Ca::generate(&format!("{service} webhook CA"), now, valid_for)
    }

    /// A CA stored earlier, for example in a Secret.
    pub fn from_pem(pair: PemPair) -> Result<Ca, CertError> {
        let key = KeyPair::from_pem(&pair.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&pair.cert_pem, key)?;
        let not_after = not_after_of(&pair.cert_pem).ok_or(CertError::NoCertificate)?;
        let not_after =
            OffsetDateTime::from_unix_timestamp(not_after).map_err(|e| CertError::Pem(e.to_string()))?;
        Ok(Ca { pem: pair, issuer, not_after })
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The CA's certificate and key, PEM-encoded.
    pub fn pem(&self) -> &PemPair {
        &self.pem
    }

    /// A serving certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn issue(
        &self,
        names: &[String],
        now: OffsetDateTime,
        valid_for: Duration,
    ) -> Result<PemPair, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first.as_str());
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - Duration::hours(1);
        params.not_after = now + valid_for;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(PemPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// What logs and renewal need of a certificate: its serial number in hex, and its `notAfter` as
/// Unix seconds.
fn serial_and_not_after(der: &CertificateDer) -> Result<(String, i64), CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| CertError::Pem(e.to_string()))?;
    Ok((cert.raw_serial_as_string().replace(':', ""), cert.validity().not_after.timestamp()))
}

/// `notAfter` of the first certificate in `pem`, as Unix seconds.
pub fn not_after_of(pem: &str) -> Option<i64> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    Some(serial_and_not_after(&der).ok()?.1)
}

/// The DNS names the API server may use for a Service: it calls `<service>.<namespace>.svc`.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}"),
        service.to_owned(),
    ]
}

/// The TLS configuration: TLS 1.2 and 1.3 only, HTTP/2 and HTTP/1.1, the certificate from `current`.
pub fn server_config(current: Arc<CurrentCert>) -> Arc<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("ring supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(current);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate ready to serve, with what the logs and metrics say about it.
#[derive(Clone)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// `notAfter`, as Unix seconds.
    pub not_after: i64,
    /// The serial number, in hex, to tell certificates apart in logs.
    pub serial: String,
}

/// Parse a PEM certificate chain and key, checking that they belong together.
pub fn load(cert_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, CertError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem(e.to_string()))?;
    let (serial, not_after) = serial_and_not_after(chain.first().ok_or(CertError::NoCertificate)?)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => CertError::NoKey,
        other => CertError::Pem(other.to_string()),
    })?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(CertError::Mismatch)?;
    Ok(Loaded { key: Arc::new(key), not_after, serial })
}

/// The certificate being served. rustls asks it at every handshake; swapping it is atomic, so
/// connections already open keep theirs and new ones get the new one.
pub struct CurrentCert(ArcSwap<CertifiedKey>);

impl CurrentCert {
    pub fn new(first: &Loaded) -> Arc<Self> {
        Arc::new(CurrentCert(ArcSwap::new(first.key.clone())))
    }

    pub fn replace(&self, next: &Loaded) {
        self.0.store(next.key.clone());
    }
}

impl fmt::Debug for CurrentCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentCert")
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// A certificate and key on disk, such as a mounted Secret, read again when their content changes.
pub struct CertFiles(Watched);

impl CertFiles {
    pub fn new(cert: &Path, key: &Path) -> Self {
        CertFiles(Watched::new([cert, key]))
    }

    /// The certificate, if the files changed since the last call (always on the first call).
    /// A pair that does not load (half-written, mismatched) is an error.
    pub fn load_if_changed(&mut self) -> Result<Option<Loaded>, CertError> {
        let Some(contents) = self.0.read_if_changed()? else {
            return Ok(None);
        };
        load(&contents[0], &contents[1]).map(Some)
    }
}

/// Make a fresh CA and a serving certificate for local use (`serve` with no certificate given).
pub fn generate_local(names: &[String]) -> Result<(Ca, PemPair), CertError> {
    let now = OffsetDateTime::now_utc();
    let ca = Ca::generate("sidecar-injector local CA", now, Duration::days(365))?;
    let serving = ca.issue(names, now, Duration::days(365))?;
    Ok((ca, serving))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_load_and_carry_the_service_names() {
        let now = OffsetDateTime::now_utc();
        let ca = Ca::generate("test CA", now, Duration::days(30)).unwrap();
        let pair = ca.issue(&service_names("injector", "tools"), now, Duration::days(7)).unwrap();
        let loaded = load(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).unwrap();
        assert!((loaded.not_after - (now + Duration::days(7)).unix_timestamp()).abs() <= 1);
        assert_eq!(
            dns_names(&pair.cert_pem),
            ["injector.tools.svc", "injector.tools.svc.cluster.local", "injector.tools", "injector"],
            "the names the API server may dial the Service by"
        );

        let other = ca.issue(&["other".into()], now, Duration::days(7)).unwrap();
        let err = load(pair.cert_pem.as_bytes(), other.key_pem.as_bytes()).err().unwrap();
        assert!(matches!(err, CertError::Mismatch(_)), "{err}");
        assert!(matches!(load(b"", pair.key_pem.as_bytes()), Err(CertError::NoCertificate)));
        assert!(matches!(load(pair.cert_pem.as_bytes(), b""), Err(CertError::NoKey)));

        // A CA read back from its PEM issues certificates as the original did.
        let again = Ca::from_pem(ca.pem().clone()).unwrap();
        let pair = again.issue(&["x.y.svc".into()], now, Duration::days(1)).unwrap();
        assert!(load(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).is_ok());
    }

    /// The DNS names of a PEM certificate's subjectAltName, in order.
    fn dns_names(pem: &str) -> Vec<String> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let names = cert.subject_alternative_name().unwrap().expect("a subjectAltName");
        let dns = names.value.general_names.iter().filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        });
        dns.collect()
    }

    #[test]
    fn debug_output_never_shows_a_key() {
        let pair = PemPair { cert_pem: "CERT".into(), key_pem: "SECRET KEY".into() };
        assert!(!format!("{pair:?}").contains("SECRET"));
    }
}
