//! The HTTPS server, in process on ephemeral ports, driven by a real rustls client that trusts only
//! the CA the test made.
#![cfg(feature = "server")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::tls::{self, connector};
use common::{TempDir, rows, runtime};

use hyper::body::Bytes;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use sidecar_injector::engine::wire::ReviewResponse;
use sidecar_injector::server::certs::{self, Ca, PemPair};
use sidecar_injector::server::{Limits, MAX_BODY, Options, Server, TlsSource};
use sidecar_injector::{Config, review};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const SERVICE: &str = "sidecar-injector";
const NAMESPACE: &str = "sidecar-injector";
const REVIEW: &[u8] = include_bytes!("fixtures/pod-create-review.json");

fn new_ca() -> Ca {
    Ca::generate("test CA", time::OffsetDateTime::now_utc(), time::Duration::days(1)).unwrap()
}

fn serving(ca: &Ca) -> PemPair {
    ca.issue(
        &certs::service_names(SERVICE, NAMESPACE),
        time::OffsetDateTime::now_utc(),
        time::Duration::days(1),
    )
    .unwrap()
}

/// Writes the pair the way the kubelet mounts a Secret: `tls.crt` and `tls.key` are links into
/// `..data`, itself a link to a folder; an update makes a new folder and swaps `..data` at once.
fn mount_secret(dir: &Path, pair: &PemPair, generation: u32) {
    let data = dir.join(format!("..{generation}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(data.join("tls.key"), &pair.key_pem).unwrap();
    let link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&data, &link).unwrap();
    std::fs::rename(&link, dir.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(file)).is_err() {
            std::os::unix::fs::symlink(dir.join("..data").join(file), dir.join(file)).unwrap();
        }
    }
}

fn options(dir: &Path, config: Option<PathBuf>, limits: Limits) -> Options {
    Options {
        listen: ([127, 0, 0, 1], 0).into(),
        metrics_listen: ([127, 0, 0, 1], 0).into(),
        tls: TlsSource::Files { cert: dir.join("tls.crt"), key: dir.join("tls.key") },
        config,
        reload_interval: Duration::from_millis(50),
        limits,
        header_read_timeout: Duration::from_secs(2),
        drain_delay: Duration::ZERO,
        shutdown_timeout: Duration::from_secs(10),
        ..Options::local()
    }
}

const LIMITS: Limits = Limits { max_in_flight: 64, request_timeout: Duration::from_secs(10) };

/// A running server and the means to stop it.
struct Running {
    addr: SocketAddr,
    metrics: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(options: Options) -> Running {
        let server = Server::bind(options).await.expect("the server starts");
        let (addr, metrics) = (server.local_addr(), server.metrics_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            server.run(async { stopped.await.unwrap_or(()) }).await.unwrap();
        });
        Running { addr, metrics, stop: Some(stop), done }
    }

    async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.done).await.expect("the server stops").unwrap();
    }
}

async fn connect(addr: SocketAddr, ca_pem: &str) -> std::io::Result<TlsStream<TcpStream>> {
    // The name the API server uses for a Service reference.
    tls::connect(addr, ca_pem, &format!("{SERVICE}.{NAMESPACE}.svc")).await
}

fn serial_of(stream: &TlsStream<TcpStream>) -> String {
    let der: &CertificateDer = &stream.get_ref().1.peer_certificates().unwrap()[0];
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.raw_serial_as_string().replace(':', "")
}

fn serial_of_pem(pem: &str) -> String {
    let der: CertificateDer = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.raw_serial_as_string().replace(':', "")
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

/// One HTTP/1.1 request on a fresh TLS connection.
async fn request(
    addr: SocketAddr,
    ca_pem: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(Reply, String)> {
    let mut stream = connect(addr, ca_pem).await?;
    let serial = serial_of(&stream);
    let host = format!("{SERVICE}.{NAMESPACE}.svc");
    Ok((exchange(&mut stream, &host, method, path, content_type, body).await?, serial))
}

/// One HTTP/1.1 request for `host` on `stream`, which the server then closes.
async fn exchange(
    stream: &mut TlsStream<TcpStream>,
    host: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<Reply> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    read_reply(stream).await
}

async fn read_reply(stream: &mut TlsStream<TcpStream>) -> std::io::Result<Reply> {
    let mut raw = Vec::new();
    // The server closes a `Connection: close` exchange; a TLS close_notify may be missing.
    let _ = stream.read_to_end(&mut raw).await;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete HTTP response");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Ok(Reply { status, body: raw[split + 4..].to_vec() })
}

async fn post_review(running: &Running, ca_pem: &str, body: &[u8]) -> Reply {
    request(running.addr, ca_pem, "POST", "/mutate", "application/json", body).await.unwrap().0
}

/// A server on files from a fresh CA, the usual start of a test here.
struct Fixture {
    /// Bind it (`dir: _dir`), or the files are removed under the running server.
    dir: TempDir,
    ca: Ca,
    running: Running,
}

impl Fixture {
    async fn start(name: &str, limits: Limits) -> Fixture {
        let dir = TempDir::new(name);
        let ca = new_ca();
        mount_secret(&dir.0, &serving(&ca), 1);
        let running = Running::start(options(&dir.0, None, limits)).await;
        Fixture { dir, ca, running }
    }
}

/// Send the headers and the first `sent` bytes of a review, and leave the rest for later.
async fn send_part(stream: &mut TlsStream<TcpStream>, sent: usize) {
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        REVIEW.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&REVIEW[..sent]).await.unwrap();
    stream.flush().await.unwrap();
}

#[test]
fn answers_with_exactly_the_pure_functions_bytes_over_tls() {
    runtime().block_on(async {
        let Fixture { dir: _dir, ca, running } = Fixture::start("bytes", LIMITS).await;
        let ca_pem = &ca.pem().cert_pem;

        let reply = post_review(&running, ca_pem, REVIEW).await;
        assert_eq!(reply.status, 200);
        let expected = review(REVIEW, &Config::builtin()).unwrap().body;
        assert_eq!(reply.body, expected, "the server adds nothing and changes nothing");

        // The same over TLS 1.2 only.
        let tls12 = connector(ca_pem, &[&rustls::version::TLS12]);
        let tcp = TcpStream::connect(running.addr).await.unwrap();
        let mut stream = tls12
            .connect(ServerName::try_from(format!("{SERVICE}.{NAMESPACE}.svc")).unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        assert_eq!(read_reply(&mut stream).await.unwrap().status, 200);

        // A client that trusts another CA refuses the server.
        let stranger = new_ca();
        assert!(connect(running.addr, &stranger.pem().cert_pem).await.is_err());
        // And the certificate is not valid for another name.
        let tcp = TcpStream::connect(running.addr).await.unwrap();
        let wrong = connector(ca_pem, &[&rustls::version::TLS13])
            .connect(ServerName::try_from("evil.example.com").unwrap(), tcp)
            .await;
        assert!(wrong.is_err());

        running.shutdown().await;
    });
}

/// A ClientHello written out by hand, since no current client library will send TLS 1.1.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut hello = version.to_vec();
    hello.extend([0x11; 32]); // random
    hello.push(0); // no session id
    hello.extend([0x00, 0x02, 0xc0, 0x2b]); // ECDHE-ECDSA-AES128-GCM-SHA256, which this server has
    hello.extend([0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // groups: x25519, P-256
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // point formats: uncompressed
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signatures: ECDSA P-256 SHA-256
    ];
    hello.extend((extensions.len() as u16).to_be_bytes());
    hello.extend(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((hello.len() as u16).to_be_bytes());
    handshake.extend(hello);
    let mut record = vec![0x16, version[0], version[1]];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

async fn first_record(addr: SocketAddr, hello: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(hello).await.unwrap();
    let mut answer = vec![0; 7];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut answer)).await.unwrap().unwrap();
    answer
}

/// The same hello is answered with a ServerHello as TLS 1.2, and refused as TLS 1.1.
#[test]
fn tls_1_1_is_refused() {
    runtime().block_on(async {
        let Fixture { dir: _dir, ca: _, running } = Fixture::start("tls11", LIMITS).await;

        let tls12 = first_record(running.addr, &client_hello([0x03, 0x03])).await;
        assert_eq!((tls12[0], tls12[5]), (0x16, 0x02), "a handshake record with a ServerHello: {tls12:?}");
        let tls11 = first_record(running.addr, &client_hello([0x03, 0x02])).await;
        assert_eq!(tls11[0], 0x15, "an alert record, not a ServerHello: {tls11:?}");
        assert_eq!(tls11[5], 2, "a fatal alert: {tls11:?}");

        running.shutdown().await;
    });
}

/// The status of one request to the routes, in process: no socket is needed to see it.
fn status_in_process(method: &str, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(axum::body::Body::from(body))
        .unwrap();
    let routes = sidecar_injector::server::routes(Config::builtin(), LIMITS);
    runtime().block_on(routes.oneshot(request)).unwrap().status().as_u16()
}

fn answers_with_status(method: &str, path: &str, content_type: &str, body: Vec<u8>, status: u16) {
    assert_eq!(status_in_process(method, path, content_type, body), status);
}

rows! { answers_with_status;
    a_review_is_answered_200: ("POST", "/mutate", "application/json", REVIEW.to_vec(), 200),
    a_body_over_the_limit_is_refused_413: ("POST", "/mutate", "application/json", vec![b' '; MAX_BODY + 1], 413),
    another_content_type_is_refused_415: ("POST", "/mutate", "text/plain", REVIEW.to_vec(), 415),
    get_on_mutate_is_refused_405: ("GET", "/mutate", "application/json", Vec::new(), 405),
    // The method is judged before the content type: a PUT of text is refused as a PUT.
    put_of_another_content_type_is_refused_405_not_415: ("PUT", "/mutate", "text/plain", REVIEW.to_vec(), 405),
    put_on_mutate_is_refused_405: ("PUT", "/mutate", "application/json", REVIEW.to_vec(), 405),
    malformed_json_is_refused_400: ("POST", "/mutate", "application/json", b"{".to_vec(), 400),
    an_unknown_path_is_404: ("POST", "/mutate/more", "application/json", REVIEW.to_vec(), 404),
    health_is_200: ("GET", "/healthz", "text/plain", Vec::new(), 200),
}

/// A body that never comes: its sender went quiet after the headers.
struct Silent;

impl axum::body::HttpBody for Silent {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

/// A request whose body does not arrive within `--request-timeout` is answered 408, and its
/// place in flight is given back.
#[test]
fn a_request_past_the_request_timeout_is_answered_408() {
    use tower::ServiceExt;
    let limits = Limits { max_in_flight: 1, request_timeout: Duration::from_millis(50) };
    let routes = sidecar_injector::server::routes(Config::builtin(), limits);
    let request = |body: axum::body::Body| {
        axum::http::Request::post("/mutate").header("content-type", "application/json").body(body).unwrap()
    };
    runtime().block_on(async {
        // A bound against hanging, not a timing check: without the timeout the request never ends.
        let silent = routes.clone().oneshot(request(axum::body::Body::new(Silent)));
        let silent = tokio::time::timeout(Duration::from_secs(30), silent).await;
        let silent = silent.expect("a silent request is answered, not left waiting").unwrap();
        assert_eq!(silent.status().as_u16(), 408);
        let next = routes.oneshot(request(axum::body::Body::from(REVIEW))).await.unwrap();
        assert_eq!(next.status().as_u16(), 200, "the one place in flight is free again");
    });
}

/// With one review in flight, the next is refused at once with 503 (over TLS: the slot is held by
/// a half-sent request on a real connection).
#[test]
fn a_review_past_the_in_flight_limit_is_shed_with_503() {
    runtime().block_on(async {
        let one_at_a_time = Limits { max_in_flight: 1, request_timeout: Duration::from_secs(10) };
        let Fixture { dir: _dir, ca, running } = Fixture::start("limits", one_at_a_time).await;
        let ca_pem = &ca.pem().cert_pem;

        // Hold the one slot: headers sent, body not finished.
        let mut held = connect(running.addr, ca_pem).await.unwrap();
        send_part(&mut held, 10).await;
        // Until the server has taken it, a second review may still get the slot: retry briefly.
        // A 503 while the held review is still unanswered: shedding refuses, it does not queue.
        // A bound against hanging, not a timing check: under a loaded `cargo test` the server may
        // take a while to read the held headers (5 s was once too short).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = post_review(&running, ca_pem, REVIEW).await;
            if reply.status == 503 {
                break;
            }
            assert_eq!(reply.status, 200);
            assert!(Instant::now() < deadline, "the second review was never shed");
        }
        // Health is answered while reviews are shed.
        assert_eq!(
            request(running.addr, ca_pem, "GET", "/healthz", "text/plain", b"").await.unwrap().0.status,
            200
        );

        held.write_all(&REVIEW[10..]).await.unwrap();
        assert_eq!(read_reply(&mut held).await.unwrap().status, 200, "the held review completes");

        let metrics = metrics_text(running.metrics).await;
        // The loop above stops at the first 503: exactly one review was shed.
        assert!(metrics.lines().any(|line| line == "sidecar_injector_shed_requests_total 1"), "{metrics}");
        running.shutdown().await;
    });
}

/// Dashboards count reviews by decision and skip reason: each answer is counted in its series,
/// the injected one included (held apart from the others in the server).
#[test]
fn reviews_are_counted_by_decision_and_reason() {
    runtime().block_on(async {
        let Fixture { dir: _dir, ca, running } = Fixture::start("counted", LIMITS).await;
        let ca_pem = &ca.pem().cert_pem;
        let update = String::from_utf8(REVIEW.to_vec())
            .unwrap()
            .replace(r#""operation": "CREATE""#, r#""operation": "UPDATE""#);
        assert_ne!(update.as_bytes(), REVIEW);
        for (body, status) in [(REVIEW, 200), (REVIEW, 200), (update.as_bytes(), 200), (&b"{}"[..], 400)] {
            assert_eq!(post_review(&running, ca_pem, body).await.status, status);
        }
        let metrics = metrics_text(running.metrics).await;
        for series in [
            r#"sidecar_injector_reviews_total{decision="injected",reason=""} 2"#,
            r#"sidecar_injector_reviews_total{decision="skipped",reason="not-create"} 1"#,
            r#"sidecar_injector_reviews_total{decision="error",reason=""} 1"#,
        ] {
            assert!(metrics.lines().any(|line| line == series), "no line {series} in:\n{metrics}");
        }
        running.shutdown().await;
    });
}

/// Which protocol the API server calls with decides which timeouts apply to its connections, and
/// operators read it from `connections_total` (as the end-to-end test does): each handshake is
/// counted under the protocol it agreed on, whatever the client then sends.
#[test]
fn connections_are_counted_by_the_protocol_their_handshake_agreed_on() {
    runtime().block_on(async {
        let Fixture { dir: _dir, ca, running } = Fixture::start("alpn", LIMITS).await;
        let ca_pem = &ca.pem().cert_pem;
        let counts = |text: &str| {
            ["h2", "http/1.1", "none"].map(|protocol| {
                let series = format!(r#"sidecar_injector_connections_total{{protocol="{protocol}"}} "#);
                text.lines()
                    .find_map(|line| line.strip_prefix(series.as_str()))
                    .map_or(0, |n| n.parse().unwrap())
            })
        };
        let before = counts(&metrics_text(running.metrics).await);
        let (h2, h1) = (b"h2".to_vec(), b"http/1.1".to_vec());
        for offered in [vec![h2.clone(), h1.clone()], vec![h1], vec![h2], vec![]] {
            let mut config = tls::client_config(ca_pem, &[&rustls::version::TLS13]);
            config.alpn_protocols = offered;
            let tcp = TcpStream::connect(running.addr).await.unwrap();
            let name = ServerName::try_from(format!("{SERVICE}.{NAMESPACE}.svc")).unwrap();
            let mut stream =
                tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
            // Answered, so counted: the count is taken before the connection is served.
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
            assert_eq!(read_reply(&mut stream).await.unwrap().status, 200);
        }
        let after = counts(&metrics_text(running.metrics).await);
        let added: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        assert_eq!(added, [2, 1, 1], "connections added as h2, http/1.1 and none");
        running.shutdown().await;
    });
}

async fn metrics_text(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    raw
}

/// The certificate files are replaced the way the kubelet updates a Secret, while requests keep
/// coming: none fails, and new connections get the new certificate without a restart.
#[test]
fn a_rotated_certificate_is_served_without_a_restart_or_a_failed_request() {
    runtime().block_on(async {
        let dir = TempDir::new("rotate");
        let ca = new_ca();
        let (first, second) = (serving(&ca), serving(&ca));
        mount_secret(&dir.0, &first, 1);
        let running = Running::start(options(&dir.0, None, LIMITS)).await;
        let ca_pem = ca.pem().cert_pem.clone();
        let first_serial = serial_of_pem(&first.cert_pem);
        let second_serial = serial_of_pem(&second.cert_pem);
        assert_ne!(first_serial, second_serial);

        let (addr, pem) = (running.addr, ca_pem.clone());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let traffic = tokio::spawn({
            let stop = stop.clone();
            async move {
                let (mut ok, mut failed) = (0, 0);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    match request(addr, &pem, "POST", "/mutate", "application/json", REVIEW).await {
                        Ok((reply, _)) if reply.status == 200 => ok += 1,
                        _ => failed += 1,
                    }
                }
                (ok, failed)
            }
        });

        let (_, serial) = request(running.addr, &ca_pem, "GET", "/healthz", "text/plain", b"").await.unwrap();
        assert_eq!(serial, first_serial);
        mount_secret(&dir.0, &second, 2);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, serial) =
                request(running.addr, &ca_pem, "GET", "/healthz", "text/plain", b"").await.unwrap();
            if serial == second_serial {
                break;
            }
            assert_eq!(serial, first_serial);
            assert!(Instant::now() < deadline, "the new certificate was never served");
        }

        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (ok, failed) = traffic.await.unwrap();
        assert_eq!(failed, 0, "{failed} requests failed during the rotation ({ok} succeeded)");
        assert!(ok > 0);
        let metrics = metrics_text(running.metrics).await;
        assert!(
            metrics.contains("sidecar_injector_certificate_reloads_total{result=\"success\"} 1"),
            "{metrics}"
        );

        // A broken pair (the key of another certificate) is refused; the second one stays.
        let third = serving(&ca);
        mount_secret(&dir.0, &PemPair { cert_pem: third.cert_pem, key_pem: first.key_pem }, 3);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !metrics_text(running.metrics).await.contains("certificate_reloads_total{result=\"failure\"} 1")
        {
            assert!(Instant::now() < deadline, "the broken pair was never looked at");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (reply, serial) =
            request(running.addr, &ca_pem, "POST", "/mutate", "application/json", REVIEW).await.unwrap();
        assert_eq!((reply.status, serial), (200, second_serial));
        running.shutdown().await;
    });
}

/// A shutdown while a review is half sent: the review still gets its answer, and the server stops.
#[test]
fn shutdown_lets_in_flight_requests_finish() {
    runtime().block_on(async {
        let Fixture { dir: _dir, ca, running } = Fixture::start("shutdown", LIMITS).await;
        let ca_pem = &ca.pem().cert_pem;

        let mut in_flight = connect(running.addr, ca_pem).await.unwrap();
        send_part(&mut in_flight, 100).await;
        // Make sure the server has the request before it is told to stop.
        assert_eq!(post_review(&running, ca_pem, REVIEW).await.status, 200);

        let Running { stop, done, addr, .. } = running;
        stop.unwrap().send(()).unwrap();
        in_flight.write_all(&REVIEW[100..]).await.unwrap();
        in_flight.flush().await.unwrap();
        let mut raw = vec![0; 64 * 1024];
        let n = in_flight.read(&mut raw).await.unwrap();
        let reply = String::from_utf8_lossy(&raw[..n]);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains("\"uid\":\"d5a2c8e4-1b3f-4a6e-9c7d-2f8e0a1b3c5d\""), "{reply}");
        drop(in_flight);
        tokio::time::timeout(Duration::from_secs(15), done)
            .await
            .expect("the server stops once the request is answered")
            .unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
    });
}

/// The configuration file is replaced: the new one serves; an invalid one is refused, counted,
/// and the last good one keeps serving.
#[test]
fn configuration_reloads_and_a_bad_one_is_refused() {
    runtime().block_on(async {
        let dir = TempDir::new("config");
        let ca = new_ca();
        mount_secret(&dir.0, &serving(&ca), 1);
        let config = dir.0.join("config.yaml");
        std::fs::write(&config, "labels: {generation: one}\n").unwrap();
        let running = Running::start(options(&dir.0, Some(config.clone()), LIMITS)).await;
        let ca_pem = &ca.pem().cert_pem;
        let label = |reply: &Reply| -> String {
            let response: ReviewResponse = serde_json::from_slice(&reply.body).unwrap();
            let patch = response.response.patch.as_deref().unwrap_or_default().to_owned();
            String::from_utf8(base64_decode(&patch)).unwrap()
        };
        assert!(label(&post_review(&running, ca_pem, REVIEW).await).contains("\"value\":\"one\""));

        std::fs::write(dir.0.join("config.new"), "labels: {generation: two}\n").unwrap();
        std::fs::rename(dir.0.join("config.new"), &config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !label(&post_review(&running, ca_pem, REVIEW).await).contains("\"value\":\"two\"") {
            assert!(Instant::now() < deadline, "the new configuration was never used");
        }

        std::fs::write(dir.0.join("config.new"), "labels: {generation: [not, a, string]}\n").unwrap();
        std::fs::rename(dir.0.join("config.new"), &config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !metrics_text(running.metrics).await.contains("config_reloads_total{result=\"failure\"} 1") {
            assert!(Instant::now() < deadline, "the bad configuration was never looked at");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let reply = post_review(&running, ca_pem, REVIEW).await;
        assert_eq!(reply.status, 200);
        assert!(label(&reply).contains("\"value\":\"two\""), "the last good configuration serves");
        running.shutdown().await;
    });
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_sidecar-injector"))
}

/// `sidecar-injector certs` output, applied as the user would (the Secret's keys mounted as files,
/// the caBundle trusted by the client), verifies a TLS connection for the Service's name.
#[test]
fn certs_output_serves_the_service_name() {
    let dir = TempDir::new("certs-command");
    let out = dir.0.join("out");
    let status = binary()
        .args(["certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());

    let secret: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(out.join("secret.yaml")).unwrap()).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["metadata"]["namespace"], NAMESPACE);
    let field =
        |name: &str| String::from_utf8(base64_decode(secret["data"][name].as_str().unwrap())).unwrap();
    let mounted = dir.0.join("mounted");
    std::fs::create_dir_all(&mounted).unwrap();
    mount_secret(&mounted, &PemPair { cert_pem: field("tls.crt"), key_pem: field("tls.key") }, 1);
    let ca_bundle =
        String::from_utf8(base64_decode(std::fs::read_to_string(out.join("ca-bundle.txt")).unwrap().trim()))
            .unwrap();
    assert_eq!(ca_bundle, std::fs::read_to_string(out.join("ca.crt")).unwrap());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out.join("tls.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the private key is readable by its owner only");

    runtime().block_on(async {
        let running = Running::start(options(&mounted, None, LIMITS)).await;
        let reply = post_review(&running, &ca_bundle, REVIEW).await;
        assert_eq!(reply.status, 200);
        running.shutdown().await;
    });
}

/// `sidecar-injector serve` as a user first runs it (a certificate it makes for localhost): the
/// process, its address, the CA to trust, and its stderr after the first line.
fn serve_binary(
    dir: &TempDir,
) -> (std::process::Child, SocketAddr, String, std::io::BufReader<std::process::ChildStderr>) {
    serve_binary_with_metrics(dir, "127.0.0.1:0")
}

/// `serve_binary`, with its metrics on `metrics`.
fn serve_binary_with_metrics(
    dir: &TempDir,
    metrics: &str,
) -> (std::process::Child, SocketAddr, String, std::io::BufReader<std::process::ChildStderr>) {
    use std::io::{BufRead, BufReader};
    let ca_out = dir.0.join("ca.pem");
    let mut child = binary()
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", metrics, "--ca-out"])
        .arg(&ca_out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first line on stderr names the port, once the sockets are bound.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port: u16 = line
        .split("https://localhost:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    (child, addr, std::fs::read_to_string(&ca_out).unwrap(), stderr)
}

/// One request to a server whose certificate names localhost: its status.
async fn to_localhost(addr: SocketAddr, ca_pem: &str, method: &str, content_type: &str, body: &[u8]) -> u16 {
    let mut stream = tls::connect(addr, ca_pem, "localhost").await.unwrap();
    exchange(&mut stream, "localhost", method, "/mutate", content_type, body).await.unwrap().status
}

/// No log line carries a Pod's content. A Pod full of distinctive values is reviewed every way a
/// review can end (injected, denied, malformed, refused for its content type); none of the values
/// is in anything the server printed, while its review lines are.
#[test]
fn no_log_line_carries_the_pod() {
    use std::io::Read;
    let dir = TempDir::new("no-pod-in-logs");
    let (mut child, addr, ca_pem, mut stderr) = serve_binary(&dir);
    let container = |name: &str| {
        serde_json::json!({"name": name, "image": "MARK-IMAGE", "args": ["MARK-ARG"],
                           "env": [{"name": "TOKEN", "value": "MARK-ENV"}], "command": ["MARK-COMMAND"]})
    };
    let review = |containers: Vec<Value>| {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
                "namespace": "shop", "object": {
                    "metadata": {"name": "web", "labels": {"team": "MARK-LABEL"},
                                 "annotations": {"note": "MARK-ANNOTATION"}},
                    "spec": {"containers": containers, "volumes": [{"name": "v", "secret": {"secretName": "MARK-SECRET"}}]}}}
        }))
        .unwrap()
    };
    let injected = review(vec![container("app")]);
    let denied = review(vec![container("example-sidecar")]);
    let statuses = runtime().block_on(async {
        vec![
            to_localhost(addr, &ca_pem, "POST", "application/json", &injected).await,
            to_localhost(addr, &ca_pem, "POST", "application/json", &denied).await,
            to_localhost(addr, &ca_pem, "POST", "application/json", &injected[..injected.len() - 40]).await,
            to_localhost(addr, &ca_pem, "POST", "text/plain", &injected).await,
        ]
    });
    assert_eq!(statuses, [200, 200, 400, 415]);
    let killed =
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let mut printed = String::new();
    child.stdout.take().unwrap().read_to_string(&mut printed).unwrap();
    stderr.read_to_string(&mut printed).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(printed.matches(r#""message":"review""#).count(), 2, "the reviews are logged: {printed}");
    assert_eq!(
        printed.matches(r#""message":"request refused""#).count(),
        2,
        "so are the refusals: {printed}"
    );
    assert!(!printed.contains("MARK-"), "a log line carries the Pod:\n{printed}");
}

/// The real binary, stopped with SIGTERM while a review is half sent: the review is answered,
/// and the process exits cleanly.
#[test]
fn sigterm_lets_the_binary_finish_in_flight_reviews() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("sigterm");
    // A port of the test's own for the metrics, to see the request in flight.
    let metrics: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (mut child, addr, ca_pem, _stderr) = serve_binary_with_metrics(&dir, &metrics.to_string());

    runtime().block_on(async {
        // Generated certificates are for localhost; connect by that name.
        let tls = connector(&ca_pem, &[&rustls::version::TLS13]);
        let mut in_flight = tls
            .connect(ServerName::try_from("localhost").unwrap(), TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        send_part(&mut in_flight, 100).await;
        // In flight once the server has the headers: a request it has not read yet is not one it
        // is answering, and a shutdown closes its connection (CI on a loaded machine saw that).
        let counted = "\nsidecar_injector_requests_in_flight 1\n";
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !metrics_text(metrics).await.contains(counted) {
            assert!(tokio::time::Instant::now() < deadline, "the half-sent review is never in flight");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let killed =
            std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        // The server logs that it is shutting down before it stops accepting.
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lines = stdout.lines();
        loop {
            let line = lines.next().expect("the server logs its shutdown").unwrap();
            let event: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("log lines are JSON ({e}): {line}"));
            if event["message"] == "shutting down: not ready" {
                break;
            }
        }
        in_flight.write_all(&REVIEW[100..]).await.unwrap();
        in_flight.flush().await.unwrap();
        let mut raw = vec![0; 64 * 1024];
        let n = in_flight.read(&mut raw).await.unwrap();
        assert!(String::from_utf8_lossy(&raw[..n]).starts_with("HTTP/1.1 200"));
        drop(in_flight);
        // Every log line is JSON, and none carries the Pod.
        for line in lines {
            let line = line.unwrap();
            assert!(!line.contains("busybox"), "a log line carries the Pod: {line}");
        }
    });
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

type Http2 = hyper::client::conn::http2::SendRequest<http_body_util::Full<Bytes>>;

/// An HTTP/2 connection agreed by ALPN, as a client that sends requests on it.
async fn http2_client(addr: SocketAddr, ca_pem: &str) -> Http2 {
    let mut config = tls::client_config(ca_pem, &[&rustls::version::TLS13, &rustls::version::TLS12]);
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(format!("{SERVICE}.{NAMESPACE}.svc")).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let io = hyper_util::rt::TokioIo::new(tls);
    let (sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(connection);
    sender
}

/// A review over `client`: its status and body.
async fn http2_review(client: &mut Http2) -> (hyper::StatusCode, Bytes) {
    use http_body_util::BodyExt;
    let request = hyper::Request::post(format!("https://{SERVICE}.{NAMESPACE}.svc/mutate"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from_static(REVIEW)))
        .unwrap();
    let response = client.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    (response.status(), response.into_body().collect().await.unwrap().to_bytes())
}

/// ALPN offers h2, and a review over HTTP/2 gets the same bytes as over HTTP/1.1.
#[test]
fn http2_is_served() {
    runtime().block_on(async {
        let Fixture { dir: _dir, ca, running } = Fixture::start("h2", LIMITS).await;
        let mut client = http2_client(running.addr, &ca.pem().cert_pem).await;
        let (status, body) = http2_review(&mut client).await;
        assert_eq!(status, 200);
        assert_eq!(body, review(REVIEW, &Config::builtin()).unwrap().body);
        running.shutdown().await;
    });
}

/// Likewise an idle HTTP/2 connection: its frames between streams (here the answers to the
/// server's keep-alive PINGs, every second) start no header read timeout.
#[test]
fn an_idle_http2_connection_outlives_the_header_read_timeout() {
    runtime().block_on(async {
        let (dir, ca) = (TempDir::new("h2-kept"), new_ca());
        mount_secret(&dir.0, &serving(&ca), 1);
        let pinging = Options { http2_keepalive: Duration::from_secs(1), ..options(&dir.0, None, LIMITS) };
        let running = Running::start(pinging).await;
        let mut client = http2_client(running.addr, &ca.pem().cert_pem).await;
        assert_eq!(http2_review(&mut client).await.0, 200);
        // Idle is what is tested: longer than the header read timeout, well inside the idle one.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(http2_review(&mut client).await.0, 200);
        running.shutdown().await;
    });
}

/// One request on a kept-alive HTTP/1.1 connection, its answer read by its length: the status.
async fn kept_alive_review(stream: &mut TlsStream<TcpStream>) -> u16 {
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: {SERVICE}.{NAMESPACE}.svc\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        REVIEW.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(REVIEW).await.unwrap();
    let mut raw = Vec::new();
    let split = loop {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the connection was closed instead of answered");
        raw.extend_from_slice(&chunk[..read]);
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break split;
        }
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let length: usize =
        head.split("content-length: ").nth(1).unwrap().lines().next().unwrap().parse().unwrap();
    let mut body = raw.split_off(split + 4);
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "the connection was closed in the middle of an answer");
        body.extend_from_slice(&chunk[..read]);
    }
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

/// A kept-alive HTTP/1.1 connection after one review and 3 s of nothing: longer than the tests'
/// header read timeout (2 s), well inside the idle timeout (60 s). The idleness is what is tested.
async fn idle_after_a_review(running: &Running, ca: &Ca) -> TlsStream<TcpStream> {
    let mut stream = connect(running.addr, &ca.pem().cert_pem).await.unwrap();
    assert_eq!(kept_alive_review(&mut stream).await, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stream
}

/// The API server calls webhooks over HTTP/1.1 and keeps idle connections for the next Pod: one
/// idle for longer than the header read timeout (2 s here) is served again, not closed under it.
#[test]
fn an_idle_http1_keep_alive_connection_outlives_the_header_read_timeout() {
    runtime().block_on(async {
        let Fixture { dir: _dir, ca, running } = Fixture::start("kept", LIMITS).await;
        let mut stream = idle_after_a_review(&running, &ca).await;
        assert_eq!(kept_alive_review(&mut stream).await, 200);
        running.shutdown().await;
    });
}

/// The header read timeout bounds every request's headers from their first byte, not only the
/// first request's: a later request on a kept-alive connection that never finishes its headers is
/// cut off after about 2 s here (the idle timeout, 60 s, would be much later).
#[test]
fn a_later_requests_unfinished_headers_are_cut_off() {
    runtime().block_on(async {
        let Fixture { dir: _dir, ca, running } = Fixture::start("trickle", LIMITS).await;
        let mut stream = idle_after_a_review(&running, &ca).await;
        let started = Instant::now();
        stream.write_all(b"POST /mutate HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest)).await;
        let after = started.elapsed();
        assert!(closed.is_ok(), "still open after 20 s");
        assert!(
            after >= Duration::from_millis(1500) && after < Duration::from_secs(10),
            "closed after {after:?}"
        );
        running.shutdown().await;
    });
}
