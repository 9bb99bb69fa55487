//! `serve` flags for the capnweb session limits table (`capnweb::limits`): one flag per row,
//! defaults from `capnweb::Limits::default()`; and the limits of WebSockets functions accept
//! (`isolate::SocketLimits`), which also count against the session caps and idle timeout.

use clap::Args;
use server::http::client_addr::Network;

const MIB: usize = 1024 * 1024;

#[derive(Args, Debug)]
pub struct RpcLimitArgs {
    /// Largest capnweb message accepted, in UTF-16 code units of its JSON text (as capnweb
    /// counts it); the WebSocket and HTTP batch caps are three bytes per code unit.
    #[arg(long, default_value_t = 32 * MIB)]
    rpc_max_message_size: usize,
    /// Deepest nesting of a capnweb message.
    #[arg(long, default_value_t = 256)]
    rpc_max_depth: usize,
    /// Most entries a peer may create in a session's export table.
    #[arg(long, default_value_t = 100_000)]
    rpc_max_exports: usize,
    /// Most calls (and pipes, stream writes) a peer may have pushed and not released.
    #[arg(long, default_value_t = 10_000)]
    rpc_max_calls_in_flight: usize,
    /// MiB one session may buffer (unread pipe/stream chunks, blob bodies being read, frames
    /// queued for a peer that does not read); past it the session is aborted.
    #[arg(long, default_value_t = 64)]
    rpc_session_buffer_mb: usize,
    /// MiB of results of a peer's calls one session may hold until the peer releases them
    /// (pulled or not); past it the session is aborted.
    #[arg(long, default_value_t = 128)]
    rpc_held_results_mb: usize,
    /// MiB all sessions together may buffer; past it the session that asks is closed with 1013
    /// (an HTTP batch gets 503 with Retry-After).
    #[arg(long, default_value_t = 512)]
    rpc_buffer_budget_mb: usize,
    /// Most sessions open at once on one function.
    #[arg(long, default_value_t = 1_000)]
    rpc_max_sessions_per_function: usize,
    /// Most sessions open at once from one client address.
    #[arg(long, default_value_t = 256)]
    rpc_max_sessions_per_address: usize,
    /// Seconds a WebSocket session may pass without a message either way before it is closed
    /// with 1001 (0: never).
    #[arg(long, default_value_t = 300)]
    rpc_idle_timeout: u64,
    /// A proxy (address or network, e.g. 10.0.0.0/8) whose X-Forwarded-For names the client
    /// address sessions are counted under; repeat for several.
    #[arg(long = "trusted-proxy", value_name = "ADDR[/PREFIX]")]
    trusted_proxies: Vec<Network>,
    /// A request header whose value never appears in server logs, traces or error bodies
    /// (repeat for several; default Authorization and Cookie).
    #[arg(long = "redact-header", value_name = "NAME", default_values_t = ["authorization".to_owned(), "cookie".to_owned()])]
    redact_headers: Vec<String>,
    /// Largest message a peer may send on a WebSocket a function accepted, in bytes; larger
    /// closes that socket with 1009.
    #[arg(long, default_value_t = MIB)]
    ws_max_message_bytes: usize,
    /// Received WebSocket messages waiting for the function before the server stops reading.
    #[arg(long, default_value_t = 64)]
    ws_max_inbound_messages: usize,
    /// MiB of received WebSocket messages waiting for the function before the server stops
    /// reading.
    #[arg(long, default_value_t = 4)]
    ws_max_inbound_mb: usize,
    /// MiB a function may queue for a WebSocket peer that does not read; past it the socket
    /// closes with 1008.
    #[arg(long, default_value_t = 16)]
    ws_max_outbound_mb: usize,
}

impl RpcLimitArgs {
    /// The limits table these flags describe.
    pub fn limits(&self) -> capnweb::Limits {
        let defaults = capnweb::Limits::default();
        capnweb::Limits {
            max_message_size: self.rpc_max_message_size,
            max_depth: self.rpc_max_depth,
            max_exports: self.rpc_max_exports,
            max_calls_in_flight: self.rpc_max_calls_in_flight,
            max_buffered_bytes: self.rpc_session_buffer_mb.saturating_mul(MIB),
            max_held_bytes: self.rpc_held_results_mb.saturating_mul(MIB),
            budget: capnweb::Budget::new(self.rpc_buffer_budget_mb.saturating_mul(MIB)),
            max_sessions_per_function: self.rpc_max_sessions_per_function,
            max_sessions_per_address: self.rpc_max_sessions_per_address,
            idle_timeout: (self.rpc_idle_timeout > 0)
                .then(|| std::time::Duration::from_secs(self.rpc_idle_timeout)),
            ..defaults
        }
    }

    /// The limits of WebSockets functions accept.
    pub fn socket_limits(&self) -> isolate::SocketLimits {
        isolate::SocketLimits {
            max_message_bytes: self.ws_max_message_bytes.max(1),
            max_inbound_messages: self.ws_max_inbound_messages.max(1),
            max_inbound_bytes: self.ws_max_inbound_mb.saturating_mul(MIB).max(1),
            max_outbound_bytes: self.ws_max_outbound_mb.saturating_mul(MIB),
        }
    }

    /// The headers to redact.
    pub fn redact(&self) -> anyhow::Result<server::http::rpc_auth::Redact> {
        let mut names = Vec::new();
        for h in &self.redact_headers {
            names.push(
                axum::http::HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
                    .map_err(|e| anyhow::anyhow!("--redact-header {h}: {e}"))?,
            );
        }
        Ok(server::http::rpc_auth::Redact(names))
    }

    /// The trusted proxies.
    pub fn trusted_proxies(&self) -> Vec<Network> {
        self.trusted_proxies.clone()
    }
}
