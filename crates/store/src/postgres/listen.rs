//! The listener: one connection outside the pool that `LISTEN`s on the code channel and
//! turns notifications into [`CodeEvent`]s.
//!
//! A notification is sent by the transaction that changed a function's live version and is
//! delivered when it commits, to every listening connection, this node's included.
//! Notifications sent while a listener is disconnected are lost, so each (re)connection is
//! announced as [`CodeEvent::Resync`]: the receiver compares everything it caches with the
//! store. The connection is pinged every 5 s, so a database that went away silently is
//! noticed within 10 s and the listener reconnects.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::pg_error;
use super::tls::Tls;
use crate::error::StoreError;

/// What a node hears about code changes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeEvent {
    /// The listener (re)connected: changes made while it was away were not heard.
    Resync,
    /// The live version of this function changed, or it was deleted.
    Changed(String),
}

const PING_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub(super) fn spawn(
    config: tokio_postgres::Config,
    tls: Tls,
    channel: String,
) -> mpsc::Receiver<CodeEvent> {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut backoff = BACKOFF_MIN;
        while !tx.is_closed() {
            match listen(&config, &tls, &channel, &tx, &mut backoff).await {
                Ok(()) => return,
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    });
    rx
}

/// Listens until the connection fails (`Err`) or the receiver is dropped (`Ok`).
async fn listen(
    config: &tokio_postgres::Config,
    tls: &Tls,
    channel: &str,
    tx: &mpsc::Sender<CodeEvent>,
    backoff: &mut Duration,
) -> Result<(), StoreError> {
    let mut config = config.clone();
    let name = format!(
        "{}-listener",
        config.get_application_name().unwrap_or("functions")
    );
    config.application_name(&name);
    let (client, mut connection) = tls.connect(&config).await?;
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    // Driving the connection delivers query results to `client` and notifications here.
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                if heard_tx.send(n.payload().to_owned()).is_err() {
                    return;
                }
            }
        }
    });
    let _abort = AbortOnDrop(driver);
    // The channel name is ours (letters, digits, '_'), quoted as an identifier.
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await
        .map_err(pg_error)?;
    *backoff = BACKOFF_MIN;
    if tx.send(CodeEvent::Resync).await.is_err() {
        return Ok(());
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            heard_id = heard.recv() => match heard_id {
                Some(id) => {
                    if tx.send(CodeEvent::Changed(id)).await.is_err() {
                        return Ok(());
                    }
                }
                None => {
                    return Err(StoreError::Unavailable("the listener's connection closed".into()))
                }
            },
            _ = ping.tick() => {
                let pinged = tokio::time::timeout(PING_EVERY, client.simple_query("")).await;
                match pinged {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(pg_error(e)),
                    Err(_) => {
                        return Err(StoreError::Unavailable("the listener's ping timed out".into()))
                    }
                }
            }
            () = tx.closed() => return Ok(()),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
