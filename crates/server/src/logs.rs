//! Live console output: what `console.log` & co. print inside functions, as a stream per
//! function (`GET /_admin/functions/<id>/logs`, `functions logs ID`).
//!
//! JavaScript's `console.debug/log/info/warn/error` emits a `tracing` event with target
//! [`CONSOLE_TARGET`] and a field `function` holding the isolate id (see the isolate crate).
//! [`layer`] is a [`tracing_subscriber::Layer`] that turns those events into [`LogLine`]s
//! and publishes them on the process-wide [`Hub`] ([`hub`]); the binary installs it next to
//! its stderr `fmt` layer, so console output still reaches stderr as before (subject to
//! `RUST_LOG`), while the hub sees every console event whatever `RUST_LOG` says.
//!
//! Isolate ids map back to deployed functions ([`function_of`]):
//!
//! | isolate id | function | `source` |
//! |---|---|---|
//! | `<id>@<version>` (a deployed version, [`crate::host_loader::cache_key`]) | `<id>` | none |
//! | `<caller>/<sub-id>` (code `<caller>` loaded with `env.LOADER.get(sub-id, …)`) | `<caller>` | `<sub-id>` |
//! | `anonymous-N` (`env.LOADER.load(code)`, and the test-load of a deploy) | none: stderr only | |
//!
//! The hub keeps one bounded [`tokio::sync::broadcast`] channel per function that has
//! subscribers ([`LINE_BUFFER`] lines each); publishing never blocks an isolate and costs a
//! map look-up when nobody listens. A subscriber that falls more than that many lines behind
//! loses the oldest ones and receives [`Received::Dropped`] with the count instead.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{FilterFn, Filtered};
use tracing_subscriber::layer::{Context, Layer};

/// The `tracing` target of console output from JavaScript.
pub const CONSOLE_TARGET: &str = "isolate::console";

/// How many lines a subscriber may fall behind before it loses some.
pub const LINE_BUFFER: usize = 1024;

/// One line of console output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The deployed function it belongs to.
    pub function: String,
    /// For code the function loaded with `env.LOADER.get(sub_id, …)`: that sub-id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `debug` (console.debug), `info` (console.log, console.info), `warn`, `error`.
    pub level: String,
    /// What was printed (console's arguments joined by spaces).
    pub message: String,
    /// When, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The W3C trace id (32 hex digits) of the request the line was printed for, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Only on a "lines dropped" marker: how many lines this stream lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// On a shared store: the id of the node that printed it (see `functions nodes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl LogLine {
    /// The marker a subscriber gets instead of `n` lines it was too slow to take.
    pub fn dropped(function: &str, n: u64) -> LogLine {
        LogLine {
            function: function.to_owned(),
            source: None,
            level: "warn".into(),
            message: format!("… {n} lines dropped (this stream fell behind)"),
            timestamp_ms: now_ms(),
            trace: None,
            dropped: Some(n),
            node: None,
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `(function, source)` of an isolate id, or `None` for code no deployed function owns.
pub fn function_of(isolate_id: &str) -> Option<(&str, Option<&str>)> {
    if let Some((caller, sub)) = isolate_id.split_once('/') {
        return valid(caller).map(|c| (c, Some(sub)));
    }
    let (id, version) = isolate_id.split_once('@')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    valid(id).map(|id| (id, None))
}

fn valid(id: &str) -> Option<&str> {
    store::validate_function_id(id).ok().map(|()| id)
}

/// What a [`Subscription`] hands out next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A line.
    Line(LogLine),
    /// This many lines were lost because the subscriber was too slow.
    Dropped(u64),
}

/// The process-wide publish/subscribe point of console lines, keyed by function.
#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<LogLine>>>,
}

/// The process's hub (what [`layer`] feeds and the logs endpoint reads).
pub fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(Hub::default)
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<LogLine>>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `line` to the subscribers of its function (none: dropped). Never blocks.
    pub fn publish(&self, line: LogLine) {
        let mut channels = self.lock();
        let Some(tx) = channels.get(&line.function) else {
            return;
        };
        let function = line.function.clone();
        if tx.send(line).is_err() {
            // Every subscriber is gone.
            channels.remove(&function);
        }
    }

    /// Lines of `function` from now on.
    pub fn subscribe(&self, function: &str) -> Subscription {
        let mut channels = self.lock();
        channels.retain(|_, tx| tx.receiver_count() > 0);
        let rx = channels
            .entry(function.to_owned())
            .or_insert_with(|| broadcast::channel(LINE_BUFFER).0)
            .subscribe();
        Subscription { rx }
    }

    /// How many subscriptions are open for `function`.
    pub fn subscribers(&self, function: &str) -> usize {
        self.lock()
            .get(function)
            .map_or(0, broadcast::Sender::receiver_count)
    }
}

/// One subscriber's view of a function's lines.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<LogLine>,
}

impl Subscription {
    /// The next line (or how many were lost); `None` if the hub dropped the channel.
    pub async fn recv(&mut self) -> Option<Received> {
        match self.rx.recv().await {
            Ok(line) => Some(Received::Line(line)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Dropped(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// The layer that feeds [`hub`]: it sees only [`CONSOLE_TARGET`] events (its own filter, so
/// it is independent of the filters of other layers, `RUST_LOG` included).
pub fn layer<S>() -> Filtered<ConsoleLayer, FilterFn, S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    ConsoleLayer { hub: hub() }.with_filter(FilterFn::new(|meta| meta.target() == CONSOLE_TARGET))
}

/// Publishes console events to a [`Hub`] (use [`layer`]).
#[derive(Debug, Clone, Copy)]
pub struct ConsoleLayer {
    hub: &'static Hub,
}

impl<S: Subscriber> Layer<S> for ConsoleLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() != CONSOLE_TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(isolate_id) = fields.function else {
            return;
        };
        let Some((function, source)) = function_of(&isolate_id) else {
            return;
        };
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            Level::DEBUG | Level::TRACE => "debug",
        };
        self.hub.publish(LogLine {
            function: function.to_owned(),
            source: source.map(str::to_owned),
            level: level.to_owned(),
            message: fields.message,
            timestamp_ms: now_ms(),
            trace: fields.trace,
            dropped: None,
            node: None,
        });
    }
}

#[derive(Default)]
struct Fields {
    function: Option<String>,
    message: String,
    trace: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "function" => self.function = Some(value.to_owned()),
            "message" => self.message = value.to_owned(),
            "trace" => self.trace = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "function" => self.function = Some(format!("{value:?}")),
            "message" => self.message = format!("{value:?}"),
            _ => {}
        }
    }
}

/// `timestamp_ms` as RFC 3339 UTC with milliseconds (`2025-06-01T12:34:56.789Z`).
pub fn format_timestamp(timestamp_ms: u64) -> String {
    let secs = timestamp_ms / 1000;
    let ms = timestamp_ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolate_ids_map_to_functions() {
        assert_eq!(function_of("hello@3"), Some(("hello", None)));
        assert_eq!(function_of("front/app"), Some(("front", Some("app"))));
        assert_eq!(function_of("front/a/b@1"), Some(("front", Some("a/b@1"))));
        assert_eq!(function_of("anonymous-7"), None);
        assert_eq!(function_of("hello@"), None);
        assert_eq!(function_of("hello@x"), None);
        assert_eq!(function_of("Bad@1"), None);
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_timestamp(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            format_timestamp(1_748_781_296_789),
            "2025-06-01T12:34:56.789Z"
        );
    }

    #[tokio::test]
    async fn slow_subscribers_get_a_dropped_count() {
        let hub = Hub::default();
        let mut sub = hub.subscribe("f");
        let mut other = hub.subscribe("g");
        let line = |i: usize| LogLine {
            function: "f".into(),
            source: None,
            level: "info".into(),
            message: format!("line {i}"),
            timestamp_ms: 0,
            trace: None,
            dropped: None,
            node: None,
        };
        for i in 0..LINE_BUFFER + 5 {
            hub.publish(line(i));
        }
        assert_eq!(sub.recv().await, Some(Received::Dropped(5)));
        assert_eq!(sub.recv().await, Some(Received::Line(line(5))));
        // Another function's subscriber saw none of it.
        hub.publish(LogLine {
            function: "g".into(),
            ..line(0)
        });
        match other.recv().await {
            Some(Received::Line(l)) => assert_eq!(l.function, "g"),
            x => panic!("{x:?}"),
        }
        drop(sub);
        drop(other);
        hub.publish(line(0));
        assert_eq!(hub.subscribers("f"), 0);
    }
}
