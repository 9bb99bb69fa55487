//! W3C Trace Context: a `traceparent` on the request is accepted and continued; every
//! request runs in a `tracing` span carrying the trace id, and every response carries a
//! `traceparent` naming our span (so a caller can find our logs). The function sees our
//! `traceparent` in its request headers, so its own outbound calls continue the trace.
//!
//! The trace id is also current ([`capnweb::trace`]) while the request is handled: calls into
//! functions carry it, so their console lines (and the functions they call in turn, through
//! service bindings and stubs) show it.
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

/// A fast pseudo-random `u64` (wyrand), per thread, seeded once from the system's random
/// source: trace and span ids must be unique, not secret, and a `getrandom` system call per
/// request showed up in profiles.
fn fast_random() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            if getrandom::fill(&mut seed).is_err() {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                seed = (nanos ^ (&seed as *const _ as u64)).to_le_bytes();
            }
            u64::from_le_bytes(seed)
        });
    }
    STATE.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// `bytes` random bytes as lowercase hex, not all zero.
fn random_id(bytes: usize) -> String {
    let mut buf = [0u8; 16];
    let buf = &mut buf[..bytes];
    for chunk in buf.chunks_mut(8) {
        let r = fast_random().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    if buf.iter().all(|&b| b == 0) {
        buf[bytes - 1] = 1;
    }
    crate::token::hex(buf)
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
        .map_or_else(|| random_id(16), |t| t.trace_id.clone());
    let flags = incoming.as_ref().map_or("01", |t| t.flags.as_str());
    let span_id = random_id(8);
    let mut ours = String::with_capacity(55);
    for part in ["00-", &trace_id, "-", &span_id, "-", flags] {
        ours.push_str(part);
    }
    let ours = HeaderValue::from_str(&ours).ok();
    let span = tracing::info_span!(
        "request",
        trace_id = %trace_id,
        span_id = %span_id,
        parent_id = incoming.as_ref().map(|t| t.parent_id.as_str()).unwrap_or(""),
        method = %req.method(),
        path = %req.uri().path(),
    );
    if let Some(v) = &ours {
        req.headers_mut().insert("traceparent", v.clone());
    }
    // The trace is current (`capnweb::trace`) while the request is handled, so calls into
    // functions carry it to their console lines and on through the calls they make.
    let current = capnweb::trace::from_hex(&trace_id);
    let mut resp = capnweb::trace::Traced::new(current, next.run(req))
        .instrument(span.clone())
        .await;
    span.in_scope(|| tracing::debug!(status = resp.status().as_u16(), "done"));
    if let Some(v) = ours {
        resp.headers_mut().insert("traceparent", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::{random_id, TraceParent};

    #[test]
    fn random_ids_are_lowercase_hex_of_the_right_length_and_differ() {
        let a = random_id(16);
        let b = random_id(16);
        assert_ne!(a, b);
        let tp = format!("00-{a}-{}-01", random_id(8));
        assert!(TraceParent::parse(&tp).is_some(), "{tp}");
    }

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
