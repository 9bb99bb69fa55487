//! WebSockets a function accepts (`WebSocketPair`, a 101 `Response`) and who is calling an RPC
//! session (`authenticate`, `ctx.request`), at the isolate's API: what the server bridges.

mod common;
use capnweb::{RequestValue, Value};
use common::*;
use isolate::{RpcSession, SocketFrame, SocketMessage};

fn upgrade(headers: &[(&str, &str)]) -> RequestValue {
    RequestValue {
        url: "http://fn.example/socket".into(),
        method: "GET".into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: None,
        extra: Default::default(),
    }
}

const ECHO: &str = r#"
  let closes = [];
  export default {
    fetch(request) {
      if (new URL(request.url).pathname === "/closes") return Response.json(closes);
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      server.addEventListener("message", (e) => {
        if (e.data === "bye") { server.close(4000, "asked"); return; }
        server.send(typeof e.data === "string" ? "echo:" + e.data : new Uint8Array(e.data).reverse());
      });
      server.addEventListener("close", (e) => closes.push([e.code, e.reason]));
      return new Response(null, { status: 101, webSocket: client, headers: { "x-chosen": "yes" } });
    },
  };
"#;

#[tokio::test]
async fn an_accepted_socket_echoes_text_and_binary_and_hears_the_close() {
    let iso = load("echo", ECHO).await;
    let (response, socket) = iso.fetch_socket(upgrade(&[])).await.unwrap();
    assert_eq!(response.status, 101);
    assert!(response
        .headers
        .iter()
        .any(|(k, v)| k == "x-chosen" && v == "yes"));
    let mut socket = socket.expect("the 101 carries a socket");
    let mut out = socket.outgoing().unwrap();
    assert_eq!(iso.open_sockets(), 1);
    socket.deliver(SocketMessage::Text("hi".into())).await;
    assert_eq!(
        out.next_frame().await,
        Some(SocketFrame::Message(SocketMessage::Text("echo:hi".into())))
    );
    socket.deliver(SocketMessage::Binary(vec![1, 2, 3])).await;
    assert_eq!(
        out.next_frame().await,
        Some(SocketFrame::Message(SocketMessage::Binary(vec![3, 2, 1])))
    );
    socket.deliver(SocketMessage::Text("bye".into())).await;
    assert_eq!(
        out.next_frame().await,
        Some(SocketFrame::Close {
            code: 4000,
            reason: "asked".into()
        })
    );
    socket.finish(4000, "asked".into());
    let closes = iso
        .fetch(RequestValue {
            url: "http://fn.example/closes".into(),
            ..upgrade(&[])
        })
        .await
        .unwrap();
    let Some(capnweb::Body::Text(t)) = closes.body else {
        panic!("a JSON body")
    };
    assert_eq!(t, r#"[[4000,"asked"]]"#);
    assert_eq!(iso.open_sockets(), 0);
}

#[tokio::test]
async fn a_socket_response_through_a_plain_fetch_is_a_type_error() {
    let iso = load("plain", ECHO).await;
    let err = iso.fetch(upgrade(&[])).await.unwrap_err();
    assert_eq!(err.name(), "TypeError");
    assert!(err.message().contains("WebSocket"), "{}", err.message());
    assert_eq!(iso.open_sockets(), 0);
}

#[tokio::test]
async fn a_discarded_isolate_closes_its_sockets_with_1011_and_the_reason() {
    let src = r#"
      export default {
        fetch() {
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          server.addEventListener("message", () => { for (;;) {} });
          return new Response(null, { status: 101, webSocket: client });
        },
      };
    "#;
    let mut config = isolate::IsolateConfig::single("spin", src);
    config.limits.cpu_time = std::time::Duration::from_millis(50);
    let iso = isolate::Isolate::new(config).await.unwrap();
    let (_, socket) = iso.fetch_socket(upgrade(&[])).await.unwrap();
    let mut socket = socket.unwrap();
    let mut out = socket.outgoing().unwrap();
    socket.deliver(SocketMessage::Text("spin".into())).await;
    match out.next_frame().await {
        Some(SocketFrame::Close { code, reason }) => {
            assert_eq!(code, 1011);
            assert_eq!(reason, "CPU time limit of 50 ms exceeded");
        }
        other => panic!("expected a 1011 close, got {other:?}"),
    }
    assert!(iso.is_broken());
    // Its sockets are forgotten with it (a broken isolate pins nothing in a cache).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while iso.open_sockets() != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(iso.open_sockets(), 0);
}

#[tokio::test]
async fn rpc_session_without_authenticate_gives_the_target_its_request() {
    let src = r#"
      import { RpcTarget } from "cloudflare:workers";
      class Api extends RpcTarget {
        constructor(ctx) { super(); this.ctx = ctx; }
        who() { return this.ctx.request.headers.get("authorization"); }
      }
      export default { rpc: Api };
    "#;
    let iso = load("who", src).await;
    let RpcSession::Main(a) = iso
        .rpc_session(upgrade(&[("authorization", "Bearer a")]))
        .await
        .unwrap()
    else {
        panic!("a main capability")
    };
    let RpcSession::Main(b) = iso
        .rpc_session(upgrade(&[("authorization", "Bearer b")]))
        .await
        .unwrap()
    else {
        panic!("a main capability")
    };
    assert_eq!(
        a.call("who", vec![]).await.unwrap().as_str(),
        Some("Bearer a")
    );
    assert_eq!(
        b.call("who", vec![]).await.unwrap().as_str(),
        Some("Bearer b")
    );
}

#[tokio::test]
async fn authenticate_refuses_accepts_and_is_not_an_rpc_method() {
    let src = r#"
      import { WorkerEntrypoint, RpcTarget } from "cloudflare:workers";
      class Alice extends RpcTarget { who() { return "alice"; } }
      export default class extends WorkerEntrypoint {
        authenticate(request) {
          const auth = request.headers.get("authorization");
          if (auth === null) return new Response("no", { status: 401 });
          if (auth === "Bearer alice") return new Alice();
          if (auth === "Bearer self") return this;
          throw new Error("bad token");
        }
        hello() { return "hello"; }
      };
    "#;
    let iso = load("auth", src).await;
    assert!(iso.has_authenticate());
    match iso.rpc_session(upgrade(&[])).await.unwrap() {
        RpcSession::Refused(r) => assert_eq!(r.status, 401),
        RpcSession::Main(_) => panic!("refused"),
    }
    let RpcSession::Main(alice) = iso
        .rpc_session(upgrade(&[("authorization", "Bearer alice")]))
        .await
        .unwrap()
    else {
        panic!("accepted")
    };
    assert_eq!(
        alice.call("who", vec![]).await.unwrap().as_str(),
        Some("alice")
    );
    let err = iso
        .rpc_session(upgrade(&[("authorization", "Bearer mallory")]))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "bad token");
    let RpcSession::Main(me) = iso
        .rpc_session(upgrade(&[("authorization", "Bearer self")]))
        .await
        .unwrap()
    else {
        panic!("accepted")
    };
    assert_eq!(
        me.call("hello", vec![]).await.unwrap().as_str(),
        Some("hello")
    );
    let err = me
        .call("authenticate", vec![Value::Null])
        .await
        .unwrap_err();
    assert_eq!(err.name(), "TypeError");
}

#[tokio::test]
async fn a_broken_connection_is_an_error_then_a_close_1006() {
    let src = r#"
      const seen = [];
      export default {
        fetch(request) {
          if (new URL(request.url).pathname === "/seen") return Response.json(seen);
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          server.addEventListener("error", () => seen.push("error"));
          server.addEventListener("close", (e) => seen.push("close " + e.code + " " + e.wasClean));
          return new Response(null, { status: 101, webSocket: client });
        },
      };
    "#;
    let iso = load("broken", src).await;
    let (_, socket) = iso.fetch_socket(upgrade(&[])).await.unwrap();
    drop(socket);
    let seen = loop {
        let r = iso
            .fetch(RequestValue {
                url: "http://fn.example/seen".into(),
                ..upgrade(&[])
            })
            .await
            .unwrap();
        let Some(capnweb::Body::Text(t)) = r.body else {
            panic!("a JSON body")
        };
        if t != "[]" {
            break t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(seen, r#"["error","close 1006 false"]"#);
}

#[tokio::test]
async fn bytes_queued_for_a_peer_count_in_the_isolates_memory() {
    let src = r#"
      export default {
        fetch() {
          const [client, server] = Object.values(new WebSocketPair());
          server.accept();
          server.addEventListener("message", () => {
            for (let i = 0; i < 8; i++) server.send("z".repeat(256 * 1024));
          });
          return new Response(null, { status: 101, webSocket: client });
        },
      };
    "#;
    let iso = load("queued", src).await;
    let (_, socket) = iso.fetch_socket(upgrade(&[])).await.unwrap();
    let mut socket = socket.unwrap();
    let mut out = socket.outgoing().unwrap();
    let before = iso.memory_usage();
    socket.deliver(SocketMessage::Text("go".into())).await;
    // Nothing read yet: the 2 MiB queued for the peer are the isolate's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while iso.memory_usage() < before + 2 * 1024 * 1024 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        iso.memory_usage() >= before + 2 * 1024 * 1024,
        "{} → {}",
        before,
        iso.memory_usage()
    );
    let peak = iso.memory_usage();
    for _ in 0..8 {
        assert!(matches!(
            out.next_frame().await,
            Some(SocketFrame::Message(_))
        ));
    }
    // Handed to the connection: no longer the isolate's.
    assert!(iso.memory_usage() + 1024 * 1024 < peak);
}
