//! The Lambda handler, in process: real Function URL and API Gateway v2 events from `lambda_http`,
//! turned into requests by `lambda_http::request::from_str`, through the same service the binary
//! runs.
#![cfg(feature = "lambda")]

mod common;

use base64::Engine as _;
use common::runtime;
use lambda_http::tower::ServiceExt;
use lambda_http::{Body, Error, Request, Response, service_fn};
use serde_json::{Value, json};
use sidecar_injector::lambda::Lambda;
use sidecar_injector::{Config, review};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const REVIEW: &[u8] = include_bytes!("fixtures/pod-create-review.json");
const FUNCTION_URL: &str = include_str!("fixtures/lambda/lambda_function_url_request.json");
const APIGW_V2: &str = include_str!("fixtures/lambda/apigw_v2_proxy_request.json");

/// The fixture, changed into a request for `path` with `body`.
fn event(fixture: &str, method: &str, path: &str, content_type: &str, body: &[u8], base64: bool) -> Request {
    let mut event: Value = serde_json::from_str(fixture).unwrap();
    event["rawPath"] = json!(path);
    event["rawQueryString"] = json!("");
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["headers"]["content-type"] = json!(content_type);
    event["body"] = if base64 {
        json!(base64::engine::general_purpose::STANDARD.encode(body))
    } else {
        json!(String::from_utf8(body.to_vec()).unwrap())
    };
    event["isBase64Encoded"] = json!(base64);
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

/// Through the service, as `lambda_http::run` would call it.
async fn call(lambda: &Lambda, request: Request) -> Response<Body> {
    let service = service_fn(|request: Request| async move { Ok::<_, Error>(lambda.handle(&request)) });
    service.oneshot(request).await.unwrap()
}

fn bytes(response: &Response<Body>) -> Vec<u8> {
    match response.body() {
        Body::Empty => Vec::new(),
        Body::Text(text) => text.as_bytes().to_vec(),
        Body::Binary(bytes) => bytes.clone(),
        _ => panic!("an unexpected body kind"),
    }
}

fn lambda() -> Lambda {
    Lambda::new(Config::builtin(), TOKEN).unwrap()
}

#[test]
fn plain_and_base64_bodies_get_the_pure_functions_bytes() {
    runtime().block_on(async {
        let lambda = lambda();
        let expected = review(REVIEW, &Config::builtin()).unwrap().body;
        let path = format!("/mutate/{TOKEN}");
        for fixture in [FUNCTION_URL, APIGW_V2] {
            for base64 in [false, true] {
                let response =
                    call(&lambda, event(fixture, "POST", &path, "application/json", REVIEW, base64)).await;
                assert_eq!(response.status(), 200, "base64: {base64}");
                assert_eq!(response.headers()["content-type"], "application/json");
                assert_eq!(bytes(&response), expected, "base64: {base64}");
            }
        }
    });
}

#[test]
fn the_token_is_checked_first() {
    runtime().block_on(async {
        let lambda = lambda();
        let wrong = "0123456789abcdef0123456789abcdeX";
        for path in [
            format!("/mutate/{wrong}"),
            "/mutate/".into(),
            "/mutate".into(),
            format!("/mutate/{TOKEN}x"),
            format!("/other/{TOKEN}"),
            "/".into(),
        ] {
            for (method, body) in [("POST", REVIEW), ("POST", &b"{not json"[..]), ("GET", &b""[..])] {
                let response =
                    call(&lambda, event(FUNCTION_URL, method, &path, "application/json", body, false)).await;
                assert_eq!(response.status(), 404, "{method} {path}");
                assert!(
                    !String::from_utf8(bytes(&response)).unwrap().contains("AdmissionReview"),
                    "nothing about the body leaks"
                );
            }
        }
        // With the right token, the same malformed body is a 400 that names the problem.
        let right = format!("/mutate/{TOKEN}");
        let response =
            call(&lambda, event(FUNCTION_URL, "POST", &right, "application/json", b"{not json", false)).await;
        assert_eq!(response.status(), 400);
        assert!(String::from_utf8(bytes(&response)).unwrap().starts_with("malformed AdmissionReview"));
    });
}

#[test]
fn only_json_posts_under_the_size_limit_are_served() {
    runtime().block_on(async {
        let lambda = lambda();
        let path = format!("/mutate/{TOKEN}");
        let get = call(&lambda, event(FUNCTION_URL, "GET", &path, "application/json", b"", false)).await;
        assert_eq!(get.status(), 405);
        assert_eq!(get.headers()["allow"], "POST");
        let text = call(&lambda, event(FUNCTION_URL, "POST", &path, "text/plain", REVIEW, false)).await;
        assert_eq!(text.status(), 415);
        let big = vec![b' '; sidecar_injector::engine::http_answer::MAX_BODY + 1];
        let big = call(&lambda, event(FUNCTION_URL, "POST", &path, "application/json", &big, true)).await;
        assert_eq!(big.status(), 413);
    });
}

#[test]
fn a_short_token_is_refused_at_cold_start() {
    assert!(Lambda::new(Config::builtin(), "").is_err());
    assert!(Lambda::new(Config::builtin(), "short").is_err());
}
