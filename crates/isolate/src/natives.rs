//! The Rust functions JavaScript calls: the capnweb half of stub proxies (call, pull, dup,
//! dispose, wrap, settle) and the Rust-backed web APIs (logging, timers, UTF-8, base64,
//! randomness, clocks, URL parsing). They are handed to `js/web.js` and `js/prelude.js` as
//! one `native` object and are not reachable from user code.

use std::rc::{Rc, Weak};
use std::time::Duration;

use base64::Engine as _;
use rquickjs::function::Opt;
use rquickjs::{
    Array, Class, Ctx, Exception, Function, Object, Promise, TypedArray, Value as JsValue,
};
use std::future::IntoFuture;

use crate::background::TimerError;
use crate::bridge::{self, path_of, Cap, CapHandle, StreamHandle};
use crate::host::{js_array, Host};

fn gone(ctx: &Ctx<'_>) -> rquickjs::Error {
    Exception::throw_internal(ctx, "the isolate is shutting down")
}

fn host_of(ctx: &Ctx<'_>, weak: &Weak<Host>) -> rquickjs::Result<Rc<Host>> {
    weak.upgrade().ok_or_else(|| gone(ctx))
}

fn handle_value<'js>(ctx: &Ctx<'js>, cap: Cap) -> rquickjs::Result<Class<'js, CapHandle>> {
    Class::instance(ctx.clone(), CapHandle { cap: Some(cap) })
}

/// Builds the `native` object.
/// Longest `console` line kept, in bytes (UTF-8); the rest is cut (see `console_line`).
/// Well under the 1 MiB a log line may take between nodes, even after JSON escaping.
pub const MAX_CONSOLE_LINE_BYTES: usize = 64 * 1024;

/// `line` cut to at most [`MAX_CONSOLE_LINE_BYTES`] (at a character boundary), with how many
/// bytes were cut appended, so one `console.log` cannot make a line every log reader must hold.
fn console_line(mut line: String) -> String {
    if line.len() <= MAX_CONSOLE_LINE_BYTES {
        return line;
    }
    let mut end = MAX_CONSOLE_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let cut = line.len() - end;
    line.truncate(end);
    line.push_str(&format!("… [{cut} more bytes]"));
    line
}

pub(crate) fn install<'js>(ctx: &Ctx<'js>, host: Weak<Host>) -> rquickjs::Result<Object<'js>> {
    let n = Object::new(ctx.clone())?;

    let h = host.clone();
    n.set(
        "call",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  handle: Class<'js, CapHandle>,
                  path: Array<'js>,
                  args: Array<'js>| {
                let host = host_of(&ctx, &h)?;
                let cap = handle
                    .borrow()
                    .get()
                    .ok_or_else(|| Exception::throw_reference(&ctx, "RPC stub was disposed"))?;
                let path = path_of(&path)?;
                tracing::trace!(
                    target: "isolate::rpc",
                    function = host.id().as_str(),
                    event = "issued",
                    method = %path.last().map(ToString::to_string).unwrap_or_default(),
                    "call issued"
                );
                let mut values = Vec::with_capacity(args.len());
                for a in args.iter::<JsValue<'js>>() {
                    values.push(bridge::to_value(&host, &ctx, a?)?);
                }
                handle_value(&ctx, Cap::Promise(cap.call_path(&path, values)))
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "pull",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  handle: Class<'js, CapHandle>,
                  path: Array<'js>|
                  -> rquickjs::Result<Promise<'js>> {
                let host = host_of(&ctx, &h)?;
                let cap = handle
                    .borrow()
                    .get()
                    .ok_or_else(|| Exception::throw_reference(&ctx, "RPC stub was disposed"))?;
                let promise = cap.at(&path_of(&path)?);
                host.settle_later(&ctx, promise.into_future())
            },
        )?,
    )?;

    n.set(
        "dup",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, handle: Class<'js, CapHandle>| {
                let cap = handle
                    .borrow()
                    .get()
                    .ok_or_else(|| Exception::throw_reference(&ctx, "RPC stub was disposed"))?;
                handle_value(&ctx, cap)
            },
        )?,
    )?;

    n.set(
        "dispose",
        Function::new(ctx.clone(), move |handle: Class<'js, CapHandle>| {
            handle.borrow_mut().cap = None;
        })?,
    )?;

    let h = host.clone();
    n.set(
        "wrap",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, value: JsValue<'js>| {
            let host = host_of(&ctx, &h)?;
            let cap = match bridge::to_value(&host, &ctx, value)? {
                capnweb::Value::Stub(s) => Cap::Stub(s),
                capnweb::Value::Promise(p) => Cap::Promise(p),
                _ => {
                    return Err(Exception::throw_type(
                        &ctx,
                        "RpcStub() requires an RpcTarget, a function or a stub",
                    ))
                }
            };
            handle_value(&ctx, cap)
        })?,
    )?;

    let h = host.clone();
    n.set(
        "settle",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, id: u64, ok: bool, value: JsValue<'js>| -> rquickjs::Result<()> {
                let host = host_of(&ctx, &h)?;
                let result = if ok {
                    bridge::to_value(&host, &ctx, value).map_err(|e| host.rpc_error(&ctx, e))
                } else {
                    Err(host.error_from_js(&ctx, value))
                };
                host.settle(id, result);
                Ok(())
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "log",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, level: i32, msg: rquickjs::String<'js>| {
                let msg = console_line(bridge::string_lossy(&ctx, &msg)?);
                let host = host_of(&ctx, &h)?;
                let id = host.id();
                let id = id.as_str();
                let trace = capnweb::trace::current().map(|t| capnweb::trace::to_hex(&t));
                let trace = trace.as_deref();
                match level {
                    0 => tracing::debug!(target: "isolate::console", function = id, trace, "{msg}"),
                    1 => tracing::info!(target: "isolate::console", function = id, trace, "{msg}"),
                    2 => tracing::warn!(target: "isolate::console", function = id, trace, "{msg}"),
                    _ => tracing::error!(target: "isolate::console", function = id, trace, "{msg}"),
                }
                Ok::<_, rquickjs::Error>(())
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "setTimer",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: u64, ms: f64| {
            let host = host_of(&ctx, &h)?;
            let delay = Duration::from_secs_f64((ms.max(0.0) / 1000.0).min(86_400.0 * 365.0));
            host.add_timer(id, delay).map_err(|e| match e {
                TimerError::GlobalScope => Exception::throw_message(&ctx, &e.to_string()),
                TimerError::TooMany(_) => Exception::throw_range(&ctx, &e.to_string()),
            })
        })?,
    )?;

    let h = host.clone();
    n.set(
        "clearTimer",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: u64| {
            host_of(&ctx, &h)?.clear_timer(id);
            Ok::<_, rquickjs::Error>(())
        })?,
    )?;

    let h = host.clone();
    n.set(
        "keepAlive",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
            Ok::<_, rquickjs::Error>(host_of(&ctx, &h)?.keep_alive())
        })?,
    )?;

    let h = host.clone();
    n.set(
        "letGo",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, token: u64| {
            host_of(&ctx, &h)?.let_go(token);
            Ok::<_, rquickjs::Error>(())
        })?,
    )?;

    let h = host.clone();
    n.set(
        "now",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>| {
            Ok::<_, rquickjs::Error>(host_of(&ctx, &h)?.elapsed_ms())
        })?,
    )?;

    install_streams(ctx, &n, &host)?;
    install_sockets(ctx, &n, &host)?;
    install_capnweb(ctx, &n, &host)?;
    crate::node::install_natives(ctx, &n)?;

    // The WebAssembly API, built on first use (most functions never touch it).
    let h = host.clone();
    n.set(
        "webAssembly",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>| -> rquickjs::Result<JsValue<'js>> {
                host_of(&ctx, &h)?.wasm_api(&ctx)?.get("WebAssembly")
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "newWasmModule",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, bytes: TypedArray<'js, u8>| -> rquickjs::Result<JsValue<'js>> {
                let new_module: Function<'js> =
                    host_of(&ctx, &h)?.wasm_api(&ctx)?.get("newModule")?;
                new_module.call((bytes,))
            },
        )?,
    )?;

    n.set(
        "utf8Encode",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, s: rquickjs::String<'js>| {
                let text = bridge::string_lossy(&ctx, &s)?;
                bridge::js_bytes(&ctx, text.as_bytes())
            },
        )?,
    )?;

    n.set(
        "utf8Decode",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  data: TypedArray<'js, u8>,
                  fatal: Opt<bool>,
                  ignore_bom: Opt<bool>| {
                let bytes = bridge::bytes_of(&data);
                let body =
                    if !ignore_bom.0.unwrap_or(false) && bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
                        &bytes[3..]
                    } else {
                        &bytes[..]
                    };
                if fatal.0.unwrap_or(false) {
                    std::str::from_utf8(body).map(str::to_owned).map_err(|_| {
                        Exception::throw_type(
                            &ctx,
                            "The encoded data was not valid for encoding utf-8",
                        )
                    })
                } else {
                    Ok(String::from_utf8_lossy(body).into_owned())
                }
            },
        )?,
    )?;

    n.set(
        "b64encode",
        Function::new(ctx.clone(), move |data: TypedArray<'js, u8>| {
            base64::engine::general_purpose::STANDARD.encode(bridge::bytes_of(&data))
        })?,
    )?;

    n.set(
        "b64decode",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, s: String| {
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                // Forgiving-base64 (WHATWG, used by atob and Buffer): the bits past the last
                // whole byte are dropped whatever they are.
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            match engine.decode(s.as_bytes()) {
                Ok(bytes) => bridge::js_bytes(&ctx, &bytes),
                Err(_) => {
                    let e = Exception::from_message(
                        ctx.clone(),
                        "The string to be decoded is not correctly encoded.",
                    )?;
                    e.set("name", "InvalidCharacterError")?;
                    Err(e.throw())
                }
            }
        })?,
    )?;

    n.set(
        "randomBytes",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, len: usize| {
            let mut buf = vec![0u8; len.min(65_536)];
            getrandom::fill(&mut buf).map_err(|e| {
                Exception::throw_internal(&ctx, &format!("no randomness available: {e}"))
            })?;
            bridge::js_bytes(&ctx, &buf)
        })?,
    )?;

    n.set(
        "parseUrl",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, input: String, base: Opt<String>| {
                let parsed = match base.0 {
                    Some(b) => url::Url::parse(&b).and_then(|b| b.join(&input)),
                    None => url::Url::parse(&input),
                };
                match parsed {
                    Ok(u) => url_parts(&ctx, &u),
                    Err(e) => invalid_url(&ctx, &input, e),
                }
            },
        )?,
    )?;

    // Just the normalized href (what `new URL(input).href` gives), for Request URLs.
    n.set(
        "hrefOf",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, input: String| match url::Url::parse(&input) {
                Ok(u) => Ok(String::from(u)),
                Err(e) => invalid_url(&ctx, &input, e),
            },
        )?,
    )?;

    n.set(
        "setUrl",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, href: String, part: String, value: String| {
                let mut u = url::Url::parse(&href).map_err(|e| {
                    Exception::throw_type(&ctx, &format!("Invalid URL '{href}': {e}"))
                })?;
                set_url_part(&mut u, &part, &value).map_err(|m| Exception::throw_type(&ctx, &m))?;
                url_parts(&ctx, &u)
            },
        )?,
    )?;

    Ok(n)
}

/// The Rust half of streams (see `js/web.js`): writing JavaScript chunks into a capnweb
/// stream, and reading capnweb chunks into JavaScript. Every wait happens on tokio and comes
/// back to the isolate as a settled promise, charged to the invocation that waited.
fn install_streams<'js>(
    ctx: &Ctx<'js>,
    n: &Object<'js>,
    host: &Weak<Host>,
) -> rquickjs::Result<()> {
    let h = host.clone();
    n.set(
        "streamWrite",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, sid: u64, chunk: JsValue<'js>| -> rquickjs::Result<Promise<'js>> {
                let host = host_of(&ctx, &h)?;
                let tx = host
                    .sender(sid)
                    .ok_or_else(|| Exception::throw_type(&ctx, "the stream was closed"))?;
                let chunk = bridge::to_value(&host, &ctx, chunk)?;
                host.settle_later(&ctx, async move {
                    tx.write(chunk).await.map(|()| capnweb::Value::Undefined)
                })
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "streamClose",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, sid: u64| {
            drop(host_of(&ctx, &h)?.take_sender(sid));
            Ok::<_, rquickjs::Error>(())
        })?,
    )?;

    let h = host.clone();
    n.set(
        "streamAbort",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, sid: u64, reason: JsValue<'js>| {
                let host = host_of(&ctx, &h)?;
                if let Some(tx) = host.take_sender(sid) {
                    let err = host.error_from_js(&ctx, reason);
                    drop(capnweb::rt::handle().spawn(async move { tx.abort(err).await }));
                }
                Ok::<_, rquickjs::Error>(())
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "streamNext",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  handle: Class<'js, StreamHandle>|
                  -> rquickjs::Result<Promise<'js>> {
                let host = host_of(&ctx, &h)?;
                let stream = handle
                    .borrow()
                    .stream
                    .clone()
                    .ok_or_else(|| Exception::throw_type(&ctx, "the stream was canceled"))?;
                host.settle_later(&ctx, async move {
                    match stream.next().await {
                        None => Ok(capnweb::Value::Array(vec![
                            capnweb::Value::Bool(true),
                            capnweb::Value::Undefined,
                        ])),
                        Some(Ok(chunk)) => Ok(capnweb::Value::Array(vec![
                            capnweb::Value::Bool(false),
                            chunk,
                        ])),
                        Some(Err(e)) => Err(e),
                    }
                })
            },
        )?,
    )?;

    n.set(
        "streamCancel",
        Function::new(ctx.clone(), move |handle: Class<'js, StreamHandle>| {
            handle.borrow_mut().stream = None;
        })?,
    )?;
    Ok(())
}

fn url_parts<'js>(ctx: &Ctx<'js>, u: &url::Url) -> rquickjs::Result<Array<'js>> {
    let search = match u.query() {
        Some(q) if !q.is_empty() => format!("?{q}"),
        _ => String::new(),
    };
    let hash = match u.fragment() {
        Some(f) if !f.is_empty() => format!("#{f}"),
        _ => String::new(),
    };
    let host = u.host_str().unwrap_or("").to_owned();
    let port = u.port().map(|p| p.to_string()).unwrap_or_default();
    let full_host = if port.is_empty() {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let parts = [
        u.as_str().to_owned(),
        format!("{}:", u.scheme()),
        u.username().to_owned(),
        u.password().unwrap_or("").to_owned(),
        full_host,
        host,
        port,
        u.path().to_owned(),
        search,
        hash,
        u.origin().ascii_serialization(),
    ];
    let items = parts
        .into_iter()
        .map(|p| rquickjs::String::from_str(ctx.clone(), &p).map(|s| s.into_value()))
        .collect::<rquickjs::Result<Vec<_>>>()?;
    js_array(ctx, items)
}

fn set_url_part(u: &mut url::Url, part: &str, value: &str) -> Result<(), String> {
    let bad = |_| format!("cannot set URL {part} to '{value}'");
    match part {
        "href" => *u = url::Url::parse(value).map_err(|e| format!("Invalid URL '{value}': {e}"))?,
        "protocol" => u.set_scheme(value.trim_end_matches(':')).map_err(bad)?,
        "username" => u.set_username(value).map_err(bad)?,
        "password" => u.set_password(Some(value)).map_err(bad)?,
        "host" => u.set_host(Some(value)).map_err(|e| e.to_string())?,
        "hostname" => u.set_host(Some(value)).map_err(|e| e.to_string())?,
        "port" => {
            let port = if value.is_empty() {
                None
            } else {
                Some(
                    value
                        .parse::<u16>()
                        .map_err(|_| format!("invalid port '{value}'"))?,
                )
            };
            u.set_port(port).map_err(bad)?
        }
        "pathname" => u.set_path(value),
        "search" => {
            let q = value.strip_prefix('?').unwrap_or(value);
            u.set_query(if q.is_empty() { None } else { Some(q) })
        }
        "hash" => {
            let f = value.strip_prefix('#').unwrap_or(value);
            u.set_fragment(if f.is_empty() { None } else { Some(f) })
        }
        _ => return Err(format!("unknown URL part '{part}'")),
    }
    Ok(())
}

/// Throws the `TypeError` a bad URL gets, naming the input.
fn invalid_url<T>(ctx: &Ctx<'_>, input: &str, e: url::ParseError) -> rquickjs::Result<T> {
    Err(Exception::throw_type(
        ctx,
        &format!("Invalid URL '{input}': {e}"),
    ))
}

/// The WebSocket natives: attach the server's end of a pair to a real connection, send on it,
/// close it (see `socket.rs`).
fn install_sockets<'js>(
    ctx: &Ctx<'js>,
    n: &Object<'js>,
    host: &Weak<Host>,
) -> rquickjs::Result<()> {
    let h = host.clone();
    n.set(
        "wsAttach",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, invocation: u64, end: JsValue<'js>| -> rquickjs::Result<u64> {
                let host = host_of(&ctx, &h)?;
                host.attach_socket(&ctx, invocation, end)
                    .ok_or_else(|| gone(&ctx))
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "wsSend",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, sid: u64, data: JsValue<'js>| -> rquickjs::Result<u8> {
                use crate::socket::{SendRefused, SocketMessage};
                let host = host_of(&ctx, &h)?;
                let msg = match data.as_string() {
                    Some(s) => SocketMessage::Text(s.to_string()?),
                    None => {
                        let a =
                            <TypedArray<'js, u8> as rquickjs::FromJs<'js>>::from_js(&ctx, data)?;
                        SocketMessage::Binary(bridge::bytes_of(&a))
                    }
                };
                Ok(match host.socket_send(sid, msg) {
                    Ok(()) => 0,
                    Err(SendRefused::Closing) => 1,
                    Err(SendRefused::Overflow) => 2,
                })
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "wsClose",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, sid: u64, code: u16, reason: String| -> rquickjs::Result<()> {
                host_of(&ctx, &h)?.socket_close(sid, code, reason);
                Ok(())
            },
        )?,
    )?;
    Ok(())
}

/// The `capnweb` module's natives: sessions over a function's WebSockets, and HTTP batch
/// answers (see `capnweb_js.rs`).
fn install_capnweb<'js>(
    ctx: &Ctx<'js>,
    n: &Object<'js>,
    host: &Weak<Host>,
) -> rquickjs::Result<()> {
    let h = host.clone();
    n.set(
        "rpcOverSocket",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, main: JsValue<'js>| -> rquickjs::Result<Array<'js>> {
                let host = host_of(&ctx, &h)?;
                let (id, remote) = host.rpc_start(&ctx, main)?;
                js_array(
                    &ctx,
                    vec![JsValue::new_float(ctx.clone(), id as f64), remote],
                )
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "rpcFeed",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: u64, text: String| {
            host_of(&ctx, &h)?.rpc_feed(id, text);
            Ok::<_, rquickjs::Error>(())
        })?,
    )?;

    let h = host.clone();
    n.set(
        "rpcEnd",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, id: u64| {
            host_of(&ctx, &h)?.rpc_end(id);
            Ok::<_, rquickjs::Error>(())
        })?,
    )?;

    let h = host.clone();
    n.set(
        "rpcBatchClient",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  url: String,
                  headers: Array<'js>|
                  -> rquickjs::Result<JsValue<'js>> {
                let host = host_of(&ctx, &h)?;
                let mut pairs = Vec::new();
                for pair in headers.iter::<Array<'js>>() {
                    let pair = pair?;
                    pairs.push((pair.get::<String>(0)?, pair.get::<String>(1)?));
                }
                Ok(host
                    .rpc_batch_client(&ctx, url, pairs)?
                    .unwrap_or_else(|| JsValue::new_null(ctx.clone())))
            },
        )?,
    )?;

    let h = host.clone();
    n.set(
        "rpcBatch",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, body: String, main: JsValue<'js>| -> rquickjs::Result<Promise<'js>> {
                let host = host_of(&ctx, &h)?;
                let main = match bridge::to_value(&host, &ctx, main)? {
                    capnweb::Value::Stub(s) => s,
                    capnweb::Value::Promise(p) => p.to_stub(),
                    _ => {
                        return Err(Exception::throw_type(
                            &ctx,
                            "the main object of a capnweb session must be an RpcTarget, a function or a stub",
                        ))
                    }
                };
                host.settle_later(&ctx, async move {
                    Ok(capnweb::Value::String(crate::capnweb_js::batch(body, main).await))
                })
            },
        )?,
    )?;
    Ok(())
}
