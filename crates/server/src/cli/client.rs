//! A small HTTP client for the admin API (plain HTTP; put a TLS proxy in front for remote
//! servers).

use anyhow::{anyhow, bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

/// Where and how to reach a server.
pub struct Client {
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request to the admin API and returns the JSON answer of a 2xx response, or an
    /// error that says what the server said.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<serde_json::Value> {
        let resp = self.send(method, path, body).await?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .context("reading the response")?
            .to_bytes();
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(
            |_| serde_json::json!({ "error": { "message": String::from_utf8_lossy(&bytes) } }),
        ))
    }

    /// Sends a request to the admin API and returns the response if it is a 2xx (its body
    /// not read yet), or an error that says what the server said.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let Some(token) = &self.token else {
            bail!(
                "no admin token: set FUNCTIONS_ADMIN_TOKEN, pass --token, or pass --data DIR \
                 to read the token file of a local server"
            );
        };
        let url = format!("{}{}", self.base, path);
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("bad server URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("server URL {url:?} must start with http:// (TLS is not supported by the CLI)");
        }
        let req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))
            .context("building the request")?;
        let client: HyperClient<_, Full<bytes::Bytes>> =
            HyperClient::builder(TokioExecutor::new()).build_http();
        let resp = client.request(req).await.map_err(|e| {
            anyhow!(
                "cannot reach the server at {}: {e} (is `functions serve` running? set \
                 --server or FUNCTIONS_URL)",
                self.base
            )
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .context("reading the response")?
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(
            |_| serde_json::json!({ "error": { "message": String::from_utf8_lossy(&bytes) } }),
        );
        let msg = json["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| json.to_string());
        let hint = match status.as_u16() {
            401 => " (check --token, FUNCTIONS_ADMIN_TOKEN or --data)",
            _ => "",
        };
        bail!("{msg} (HTTP {}){hint}", status.as_u16());
    }
}
