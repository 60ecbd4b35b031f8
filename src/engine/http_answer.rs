//! What an HTTP adapter answers to a request for the review route: the same status, headers and
//! bytes from the in-cluster server and from the Lambda, for a review and for every way a request
//! can be wrong (method, content type, size). What comes before the route (the server's paths, the
//! Lambda's token) stays with each adapter.

use super::config::Config;
use super::review::{Reviewed, review};

/// The API server refuses request bodies over 3 MiB, so a review can never be larger.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// A request for the review route, as an adapter received it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub content_type: Option<&'a str>,
    /// The body; `None` when it was longer than [`MAX_BODY`] and the adapter stopped reading it.
    pub body: Option<&'a [u8]>,
}

/// The answer to one HTTP request for the review route.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub content_type: &'static str,
    /// The `Allow` header, with 405.
    pub allow: Option<&'static str>,
    pub answered: Answered,
}

/// What the request got: a review, whose body is the response AdmissionReview, or a refusal.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one per request, moved once: a box would be an allocation")]
pub enum Answered {
    Reviewed(Reviewed),
    /// The plain-text reason, as the body.
    Refused(Vec<u8>),
}

impl HttpAnswer {
    /// What was reviewed, for the adapter's log line and metrics; `None` when refused.
    pub fn reviewed(&self) -> Option<&Reviewed> {
        match &self.answered {
            Answered::Reviewed(reviewed) => Some(reviewed),
            Answered::Refused(_) => None,
        }
    }

    pub fn body(&self) -> &[u8] {
        match &self.answered {
            Answered::Reviewed(reviewed) => &reviewed.body,
            Answered::Refused(reason) => reason,
        }
    }

    /// The body, moved out rather than copied on every review.
    pub fn into_body(self) -> Vec<u8> {
        match self.answered {
            Answered::Reviewed(reviewed) => reviewed.body,
            Answered::Refused(reason) => reason,
        }
    }
}

/// Review the body of a JSON POST of acceptable size: 200 with the response AdmissionReview, or
/// 405, 415, 413 or 400 with a plain-text reason, checked in that order.
pub fn answer(request: HttpRequest, config: &Config) -> HttpAnswer {
    if request.method != "POST" {
        return HttpAnswer { allow: Some("POST"), ..refused(405, "a review is sent with POST".into()) };
    }
    if !is_json(request.content_type) {
        return refused(415, "an AdmissionReview is sent as application/json".into());
    }
    let Some(body) = request.body.filter(|body| body.len() <= MAX_BODY) else {
        return refused(413, format!("the body is over {MAX_BODY} bytes, the API server's own limit"));
    };
    match review(body, config) {
        Ok(reviewed) => HttpAnswer {
            status: 200,
            content_type: "application/json",
            allow: None,
            answered: Answered::Reviewed(reviewed),
        },
        Err(error) => refused(400, error.to_string()),
    }
}

fn refused(status: u16, message: String) -> HttpAnswer {
    HttpAnswer {
        status,
        content_type: "text/plain; charset=utf-8",
        allow: None,
        answered: Answered::Refused(format!("{message}\n").into_bytes()),
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

    fn post<'a>(content_type: &'a str, body: Option<&'a [u8]>) -> HttpRequest<'a> {
        HttpRequest { method: "POST", content_type: Some(content_type), body }
    }

    #[test]
    fn statuses() {
        let config = Config::builtin();
        let get = answer(HttpRequest { method: "GET", ..post("application/json", Some(b"{}")) }, &config);
        assert_eq!((get.status, get.allow), (405, Some("POST")));
        assert_eq!(answer(post("text/plain", Some(b"{}")), &config).status, 415);
        assert_eq!(answer(post("text/plain", None), &config).status, 415, "the type is checked first");
        assert_eq!(answer(post("application/json", None), &config).status, 413);
        assert_eq!(answer(post("application/json", Some(&vec![b' '; MAX_BODY + 1])), &config).status, 413);
        let bad = answer(post("application/json", Some(b"{")), &config);
        assert_eq!((bad.status, bad.reviewed().is_none()), (400, true));
        assert!(String::from_utf8(bad.into_body()).unwrap().starts_with("malformed AdmissionReview"));
    }
}
