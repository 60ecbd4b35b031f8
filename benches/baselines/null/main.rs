//! The null server: sidecar-injector's own stack with nothing of ours on the request path. The
//! same TLS configuration (`server::certs::server_config`: rustls with ring, TLS 1.2 and 1.3, h2 and
//! http/1.1 by ALPN), tokio, hyper-util's auto builder for HTTP/1.1 and HTTP/2, TCP_NODELAY, the
//! same allocator and release profile; it reads each request's whole body and answers the
//! response sidecar-injector gives to the load benchmark's review, computed once at start. What
//! sidecar-injector spends beyond this server's cost is the review, the log line, the metrics and
//! the routing and limits around them: the limit `benches/load.sh` measures the others against.
//!
//! `null-server PORT CERT KEY REVIEW`; built by benches/load.sh as the image's binary is.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sidecar_injector::server::certs;
use sidecar_injector::{Config, review};
use tokio_rustls::TlsAcceptor;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, cert, key, review_file] = args.as_slice() else {
        eprintln!("usage: null-server PORT CERT KEY REVIEW");
        std::process::exit(2);
    };
    let read = |path: &str| std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let loaded = certs::load(&read(cert), &read(key)).expect("the certificate and key load");
    let tls = TlsAcceptor::from(certs::server_config(certs::CurrentCert::new(&loaded)));
    let answer =
        Bytes::from(review(&read(review_file), &Config::builtin()).expect("the review is valid").body);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("a port");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(serve(addr, tls, answer));
}

async fn serve(addr: SocketAddr, tls: TlsAcceptor, answer: Bytes) {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("the port is free");
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let _ = tcp.set_nodelay(true);
        let (tls, answer) = (tls.clone(), answer.clone());
        tokio::spawn(async move {
            let Ok(stream) = tls.accept(tcp).await else { return };
            let service = service_fn(move |request: Request<Incoming>| {
                let answer = answer.clone();
                async move {
                    // Read it all, as a webhook must before it can answer.
                    let _ = request.into_body().collect().await;
                    let response = Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(answer))
                        .expect("a fixed response");
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
