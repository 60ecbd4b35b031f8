//! What an HTTP adapter answers to a posted review: the same status, type and bytes from the
//! in-cluster server and from the Lambda. Routing (paths, methods, the Lambda's token) stays with
//! each adapter; this is what happens once a request has reached the review.

use super::config::Config;
use super::review::{Reviewed, review};

/// The API server refuses request bodies over 3 MiB, so a review can never be larger.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The answer to one HTTP request for `/mutate`.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// What was reviewed, for the adapter's log line and metrics (its `body` moved to `body`
    /// above); `None` when refused.
    pub reviewed: Option<Reviewed>,
}

/// Review `body` if it is a JSON body of acceptable size: 200 with the response AdmissionReview,
/// or 415, 413 or 400 with a plain-text reason.
pub fn answer(content_type: Option<&str>, body: &[u8], config: &Config) -> Answer {
    if !is_json(content_type) {
        return refused(415, "an AdmissionReview is sent as application/json".into());
    }
    if body.len() > MAX_BODY {
        return refused(413, format!("the body is over {MAX_BODY} bytes, the API server's own limit"));
    }
    match review(body, config) {
        // The body moves to the answer rather than being copied on every review.
        Ok(mut reviewed) => Answer {
            status: 200,
            content_type: "application/json",
            body: std::mem::take(&mut reviewed.body),
            reviewed: Some(reviewed),
        },
        Err(error) => refused(400, error.to_string()),
    }
}

fn refused(status: u16, message: String) -> Answer {
    Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{message}\n").into_bytes(),
        reviewed: None,
    }
}

/// `application/json`, with or without parameters such as `charset`.
pub fn is_json(content_type: Option<&str>) -> bool {
    let essence = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        for other in [None, Some(""), Some("text/plain"), Some("application/json-patch+json")] {
            assert!(!is_json(other), "{other:?}");
        }
    }

    #[test]
    fn statuses() {
        let config = Config::builtin();
        assert_eq!(answer(Some("text/plain"), b"{}", &config).status, 415);
        assert_eq!(answer(Some("application/json"), &vec![b' '; MAX_BODY + 1], &config).status, 413);
        let bad = answer(Some("application/json"), b"{", &config);
        assert_eq!((bad.status, bad.reviewed.is_none()), (400, true));
        assert!(String::from_utf8(bad.body).unwrap().starts_with("malformed AdmissionReview"));
    }
}
