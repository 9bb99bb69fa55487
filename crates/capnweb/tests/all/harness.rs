//! Connects a client session to a server session over each transport, so every semantic
//! test runs over the in-memory pair and over a real WebSocket on loopback.

use capnweb::transport::{memory_pair, websocket};
use capnweb::{Limits, Session, Stub};

#[derive(Debug, Clone, Copy)]
pub enum Link {
    Memory,
    WebSocket,
}

pub struct Connected {
    pub client: Session,
    pub server: Session,
}

pub async fn connect(link: Link, main: Stub, limits: Limits) -> Connected {
    match link {
        Link::Memory => {
            let (a, b) = memory_pair();
            let server = Session::new(a, Some(main), limits.clone());
            let client = Session::new(b, None, limits);
            Connected { client, server }
        }
        Link::WebSocket => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (tx, rx) = tokio::sync::oneshot::channel();
            let server_limits = limits.clone();
            tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.expect("accept");
                let ws = tokio_tungstenite::accept_async_with_config(
                    tcp,
                    Some(capnweb::transport::websocket::config(&server_limits)),
                )
                .await
                .expect("handshake");
                let _ = tx.send(websocket::serve_socket(ws, main, server_limits));
            });
            let client = websocket::connect(&format!("ws://{addr}/"), None, limits)
                .await
                .expect("connect");
            let server = rx.await.expect("server session");
            Connected { client, server }
        }
    }
}

/// Defines one test per transport from one body.
#[macro_export]
macro_rules! over_both {
    ($name:ident, |$link:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($link: $crate::harness::Link) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn over_memory() {
                run($crate::harness::Link::Memory).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn over_websocket() {
                run($crate::harness::Link::WebSocket).await
            }
        }
    };
}
