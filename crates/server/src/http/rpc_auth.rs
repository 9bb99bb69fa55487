//! Who is calling `/_rpc/<id>`: the request a session is opened with, as the function sees it
//! (its `authenticate(request, env, ctx)` hook, or `ctx.request` on its RPC target), the
//! client address in `cf-connecting-ip`, what a refused caller gets, and the headers that are
//! never written back out (`serve --redact-header`, default `Authorization` and `Cookie`).
//!
//! A refusal happens before any RPC is served, as plain HTTP (a WebSocket client sees its
//! handshake fail with that status): the `Response` `authenticate` returned, as it is; or,
//! when it throws, 403 (401 if the error's `status` property says 401) with
//! `{"error": {name, message}}` in which the values of the redacted headers are replaced.

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderName};
use axum::response::Response;
use capnweb::{RequestValue, RpcError, Value};

use super::{status, AppState};

/// The headers never written to logs, traces or error bodies by default.
pub const DEFAULT_REDACTED: [&str; 2] = ["authorization", "cookie"];

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// The headers whose values are never written out.
#[derive(Debug, Clone)]
pub struct Redact(pub Vec<HeaderName>);

impl Default for Redact {
    fn default() -> Self {
        Redact(
            DEFAULT_REDACTED
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect(),
        )
    }
}

impl Redact {
    /// `text` with every value of the redacted headers of `headers` replaced by
    /// [`REDACTED`], and their parts: the credentials after an auth scheme (`Bearer <token>`),
    /// each cookie (`a=1; b=2`) and its value. Parts of 3 bytes or fewer are left alone.
    pub fn scrub(&self, headers: &HeaderMap, text: &str) -> String {
        let mut secrets: Vec<&str> = Vec::new();
        for name in &self.0 {
            for v in headers.get_all(name) {
                let Ok(v) = v.to_str() else { continue };
                secrets.push(v.trim());
                if let Some((_, credentials)) = v.trim().split_once(' ') {
                    secrets.push(credentials.trim());
                }
                for pair in v.split(';') {
                    secrets.push(pair.trim());
                    if let Some((_, value)) = pair.split_once('=') {
                        secrets.push(value.trim());
                    }
                }
            }
        }
        secrets.retain(|s| s.len() > 3);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_owned();
        for s in secrets {
            out = out.replace(s, REDACTED);
        }
        out
    }
}

/// The request a session's function sees: method, `http://<host>/_rpc/<id>?<query>`, the
/// headers without their body and hop-by-hop ones, and `cf-connecting-ip` set to the client
/// address (the trusted-proxy rule: a client cannot forge it).
pub fn session_request(
    state: &AppState,
    id: &str,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> RequestValue {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let url = match uri.query() {
        Some(q) => format!("http://{host}/_rpc/{id}?{q}"),
        None => format!("http://{host}/_rpc/{id}"),
    };
    let mut request = super::convert::request_value(method, url, headers, bytes::Bytes::new());
    request.body = None;
    // As it came: a WebSocket session's Upgrade and Connection headers included.
    for name in [axum::http::header::UPGRADE, axum::http::header::CONNECTION] {
        for v in headers.get_all(&name) {
            request.headers.push((
                name.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
        }
    }
    request
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("cf-connecting-ip"));
    if let Some(ip) = state.trusted_proxies.client(peer, headers) {
        request
            .headers
            .push(("cf-connecting-ip".to_owned(), ip.to_string()));
    }
    request
}

/// The answer to a caller `authenticate` threw for: 403, or 401/403 from the error's `status`.
pub fn refused(state: &AppState, id: &str, headers: &HeaderMap, e: &RpcError) -> Response {
    let (name, message, code) = match e.value() {
        Value::Error(ev) => {
            let code = match ev.props.get("status") {
                Some(Value::Number(n)) if *n == 401.0 => 401,
                _ => 403,
            };
            (ev.name.clone(), ev.message.clone(), code)
        }
        _ => ("Error".to_owned(), e.message(), 403),
    };
    let message = state.redact.scrub(headers, &message);
    tracing::info!(function = %id, status = code, error = %message, "rpc caller refused");
    status::error(code, &name, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_tokens_cookies_and_their_values_but_not_the_scheme() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abcd1234".parse().unwrap());
        h.insert("cookie", "session=zzzz9999; theme=dark".parse().unwrap());
        h.insert("x-other", "visible-value".parse().unwrap());
        let r = Redact::default();
        let out = r.scrub(
            &h,
            "Bearer abcd1234 / abcd1234 / zzzz9999 / dark / visible-value",
        );
        assert_eq!(
            out,
            "[redacted] / [redacted] / [redacted] / [redacted] / visible-value"
        );
        assert_eq!(r.scrub(&h, "a Bearer scheme"), "a Bearer scheme");
    }
}
