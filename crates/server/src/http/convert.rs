//! Conversions between HTTP messages and capnweb's `Request`/`Response` values.

use axum::body::Body as AxBody;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use capnweb::{Body, RequestValue, ResponseValue, Value};

/// Headers that describe one HTTP hop, not the message; never passed through.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "content-length"
    )
}

/// The request a function's `fetch` sees: `url` is absolute (`http://<host><path>?<query>`)
/// with the `/<id>` prefix already removed by the caller.
pub fn request_value(
    method: &Method,
    url: String,
    headers: &HeaderMap,
    body: bytes::Bytes,
) -> RequestValue {
    let headers = headers
        .iter()
        .filter(|(k, _)| !is_hop_by_hop(k.as_str()))
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = if body.is_empty() && (method == Method::GET || method == Method::HEAD) {
        None
    } else {
        Some(Body::Bytes(body.to_vec()))
    };
    RequestValue {
        url,
        method: method.as_str().to_owned(),
        headers,
        body,
        extra: capnweb::Object::new(),
    }
}

fn chunk_bytes(v: Value) -> Result<bytes::Bytes, std::io::Error> {
    match v {
        Value::Bytes(b) => Ok(b.data.into()),
        Value::String(s) => Ok(s.into_bytes().into()),
        _ => Err(std::io::Error::other("response stream chunk is not bytes")),
    }
}

/// The HTTP response for a function's `Response`: status, headers and body kept.
pub fn response(resp: ResponseValue) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match resp.body {
        None => AxBody::empty(),
        Some(Body::Text(t)) => AxBody::from(t),
        Some(Body::Bytes(b)) => AxBody::from(b),
        Some(Body::Stream(s)) => {
            let stream = futures::stream::unfold(s, |s| async move {
                let next = s.next().await?;
                let item = next
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(chunk_bytes);
                Some((item, s))
            });
            AxBody::from_stream(stream)
        }
        Some(_) => AxBody::empty(),
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    let headers = out.headers_mut();
    for (k, v) in resp.headers {
        if is_hop_by_hop(&k.to_ascii_lowercase()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            headers.append(name, value);
        }
    }
    out
}
