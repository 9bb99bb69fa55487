//! W3C Trace Context: a `traceparent` on the request is accepted and continued; every
//! request runs in a `tracing` span carrying the trace id, and every response carries a
//! `traceparent` naming our span (so a caller can find our logs). The function sees our
//! `traceparent` in its request headers, so its own outbound calls continue the trace.
//!
//! A malformed `traceparent` is ignored (a new trace is started), as the spec asks.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// A parsed `traceparent` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub parent_id: String,
    /// The trace flags byte (`01` = sampled).
    pub flags: String,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl TraceParent {
    /// Parses `00-<trace-id>-<parent-id>-<flags>` (later versions: the first four fields).
    pub fn parse(header: &str) -> Option<TraceParent> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let parent_id = parts.next()?;
        let flags = parts.next()?;
        let rest_ok = if version == "00" {
            parts.next().is_none()
        } else {
            true
        };
        let ok = is_hex(version, 2)
            && version != "ff"
            && is_hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && is_hex(parent_id, 16)
            && parent_id.bytes().any(|b| b != b'0')
            && is_hex(flags, 2)
            && rest_ok;
        ok.then(|| TraceParent {
            trace_id: trace_id.to_owned(),
            parent_id: parent_id.to_owned(),
            flags: flags.to_owned(),
        })
    }
}

/// The middleware.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let incoming = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    let trace_id = incoming
        .as_ref()
        .map_or_else(|| crate::token::random_hex(16), |t| t.trace_id.clone());
    let flags = incoming
        .as_ref()
        .map_or("01".to_owned(), |t| t.flags.clone());
    let span_id = crate::token::random_hex(8);
    let ours = format!("00-{trace_id}-{span_id}-{flags}");
    let span = tracing::info_span!(
        "request",
        trace_id = %trace_id,
        span_id = %span_id,
        parent_id = incoming.as_ref().map(|t| t.parent_id.as_str()).unwrap_or(""),
        method = %req.method(),
        path = %req.uri().path(),
    );
    if let Ok(v) = HeaderValue::from_str(&ours) {
        req.headers_mut().insert("traceparent", v);
    }
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = resp.status().as_u16(), "done"));
    if let Ok(v) = HeaderValue::from_str(&ours) {
        resp.headers_mut().insert("traceparent", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::TraceParent;

    #[test]
    fn valid_traceparent_is_parsed_and_invalid_ones_are_ignored() {
        let t = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id, "00f067aa0ba902b7");
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad:?}");
        }
    }
}
