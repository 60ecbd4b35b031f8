//! The Lambda handler, in process: real Function URL and API Gateway v2 events from `lambda_http`,
//! turned into requests by `lambda_http::request::from_str`, through the same service the binary
//! runs.
#![cfg(feature = "lambda")]

mod common;

use base64::Engine as _;
use common::{rows, runtime};
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

/// One row: the review in `fixture`'s event, plain or base64-encoded, gets the pure function's bytes.
fn gets_the_pure_functions_bytes(fixture: &str, base64: bool) {
    let response = runtime().block_on(async {
        let path = format!("/mutate/{TOKEN}");
        call(&lambda(), event(fixture, "POST", &path, "application/json", REVIEW, base64)).await
    });
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(bytes(&response), review(REVIEW, &Config::builtin()).unwrap().body);
}

rows! { gets_the_pure_functions_bytes;
    function_url_plain_body: (FUNCTION_URL, false),
    function_url_base64_body: (FUNCTION_URL, true),
    api_gateway_v2_plain_body: (APIGW_V2, false),
    api_gateway_v2_base64_body: (APIGW_V2, true),
}

/// One row: without the right token, every method and body gets 404, and nothing about the body.
fn not_found_without_the_token(path: &str) {
    let wrong = "0123456789abcdef0123456789abcdeX";
    let path = path.replace("{wrong}", wrong).replace("{token}", TOKEN);
    for (method, body) in [("POST", REVIEW), ("POST", &b"{not json"[..]), ("GET", &b""[..])] {
        let response = runtime().block_on(async {
            call(&lambda(), event(FUNCTION_URL, method, &path, "application/json", body, false)).await
        });
        assert_eq!(response.status(), 404, "{method} {path}");
        let text = String::from_utf8(bytes(&response)).unwrap();
        assert!(!text.contains("AdmissionReview"), "nothing about the body leaks");
    }
}

rows! { not_found_without_the_token;
    a_wrong_token: ("/mutate/{wrong}"),
    no_token: ("/mutate/"),
    no_token_no_slash: ("/mutate"),
    the_token_and_more: ("/mutate/{token}x"),
    the_token_on_another_route: ("/other/{token}"),
    the_root: ("/"),
}

/// One row: with the right token, what the engine's HTTP edge answers.
fn with_the_token(method: &str, content_type: &str, body: Vec<u8>, status: u16, starts: &str) {
    let path = format!("/mutate/{TOKEN}");
    let response = runtime().block_on(async {
        call(&lambda(), event(FUNCTION_URL, method, &path, content_type, &body, true)).await
    });
    assert_eq!(response.status(), status);
    if status == 405 {
        assert_eq!(response.headers()["allow"], "POST");
    }
    let text = String::from_utf8(bytes(&response)).unwrap();
    assert!(text.starts_with(starts), "{text:?} should start with {starts:?}");
}

rows! { with_the_token;
    a_malformed_body_names_the_problem: ("POST", "application/json", b"{not json".to_vec(), 400, "malformed AdmissionReview"),
    get_is_refused_405: ("GET", "application/json", Vec::new(), 405, "a review is sent with POST"),
    text_plain_is_refused_415: ("POST", "text/plain", REVIEW.to_vec(), 415, "an AdmissionReview is sent as application/json"),
    a_body_over_the_limit_is_refused_413: (
        "POST",
        "application/json",
        vec![b' '; sidecar_injector::engine::http_answer::MAX_BODY + 1],
        413,
        "the body is over",
    ),
}

/// One row: tokens the cold start refuses, and what its error names.
fn refused_at_cold_start(tokens: &str, names: &str) {
    let error = Lambda::new(Config::builtin(), tokens).err().expect("refused");
    assert!(error.contains(names), "{error:?} should name {names:?}");
}

rows! { refused_at_cold_start;
    an_empty_parameter: ("", "found 0"),
    only_blank_lines: ("\n \n", "found 0"),
    a_short_token: ("short", "token 1 of 1 is shorter than 16"),
    a_short_second_token: ("0123456789abcdef\nshort", "token 2 of 2 is shorter than 16"),
    three_tokens: ("0123456789abcdef\n0123456789abcdeg\n0123456789abcdeh", "1 to 2 tokens"),
}

const OLD: &str = "fedcba9876543210fedcba9876543210";

/// One row: which paths the tokens `tokens` let in.
fn during_a_rotation(tokens: &str, path: &str, status: u16) {
    let lambda = Lambda::new(Config::builtin(), tokens).unwrap();
    let path = path.replace("{new}", TOKEN).replace("{old}", OLD);
    let response = runtime().block_on(async {
        call(&lambda, event(FUNCTION_URL, "POST", &path, "application/json", REVIEW, false)).await
    });
    assert_eq!(response.status(), status, "{path}");
}

rows! { during_a_rotation;
    the_new_token_is_accepted: (&format!("{TOKEN}\n{OLD}"), "/mutate/{new}", 200),
    the_old_token_is_accepted_until_retired: (&format!("{TOKEN}\n{OLD}"), "/mutate/{old}", 200),
    the_old_token_is_refused_once_retired: (TOKEN, "/mutate/{old}", 404),
    the_two_run_together_are_refused: (&format!("{TOKEN}\n{OLD}"), &format!("/mutate/{TOKEN}{OLD}"), 404),
    surrounding_blank_lines_and_spaces_are_ignored: (&format!("\n {TOKEN} \n\n{OLD}\n"), "/mutate/{old}", 200),
}
