//! The wake-up: a `NOTIFY` after each commit that makes an event ready, and
//! the `LISTEN` connection that wakes idle workers in every process.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};

use crate::connect::Shared;

/// The channel stores and requeues notify, and idle workers listen on.
pub(crate) const CHANNEL: &str = "boxhook_events";

/// How long a worker's `LISTEN` connection waits before reconnecting.
const RECONNECT: Duration = Duration::from_secs(1);

impl Shared {
    /// Tells the idle workers of every process that an event is ready:
    /// `NOTIFY` in a transaction of its own, after the caller's COMMIT,
    /// from a background task (the caller does not wait). At most one is
    /// in flight per process; requests meanwhile are folded into one more.
    pub(crate) fn notify_ready(&self) {
        use std::sync::atomic::Ordering;
        if self.notifying.fetch_add(1, Ordering::AcqRel) > 0 {
            // One is in flight: make sure one more follows it, no more.
            self.notifying.store(2, Ordering::Release);
            return;
        }
        let pool = self.pool.clone();
        let notifying = Arc::clone(&self.notifying);
        tokio::spawn(async move {
            loop {
                if let Ok(client) = pool.get().await
                    && let Err(error) = client.batch_execute(&format!("NOTIFY {CHANNEL}")).await
                {
                    tracing::debug!(%error, "NOTIFY failed; workers will poll");
                }
                // 1 → 0: done. 2 → 1: someone asked meanwhile, go again.
                if notifying.fetch_sub(1, Ordering::AcqRel) == 1 {
                    return;
                }
                notifying.store(1, Ordering::Release);
            }
        });
    }

    /// Starts the `LISTEN` connection, once, on first use.
    pub(crate) fn ensure_listening(&self) {
        let mut listener = self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if listener
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            *listener = Some((self.start_listener)(Arc::clone(&self.wake)));
        }
    }
}

/// Holds a connection that `LISTEN`s on [`CHANNEL`], waking `wake` on each
/// notification (and once on every reconnect, for what was missed).
pub(crate) async fn listen<T>(config: tokio_postgres::Config, tls: T, wake: Arc<Notify>)
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    // Whether the connection was lost: its loss (or the first failure to
    // open it) is a warning, the retries every second after it are debug
    // lines, and the reconnect is said once.
    let mut lost = false;
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => {
                                if tx.send(()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(error) => {
                                let error = crate::describe(&error);
                                tracing::warn!(%error, "PostgreSQL LISTEN connection failed");
                                return;
                            }
                        }
                    }
                    // Closed without an error message (a server shutting
                    // down may close the socket before its own error is
                    // read): as much a loss, unless this end let go.
                    if !tx.is_closed() {
                        tracing::warn!("PostgreSQL LISTEN connection closed by the server");
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    if std::mem::take(&mut lost) {
                        tracing::warn!("PostgreSQL LISTEN connection open again");
                    }
                    wake_all(&wake);
                    while rx.recv().await.is_some() {
                        wake_all(&wake);
                    }
                }
                // The driver said why (a warning); the reconnects are quiet.
                lost = true;
                driver.abort();
            }
            Err(error) => {
                let error = crate::describe(&error);
                if std::mem::replace(&mut lost, true) {
                    tracing::debug!(%error, "cannot open the PostgreSQL LISTEN connection yet");
                } else {
                    tracing::warn!(
                        %error,
                        "cannot open the PostgreSQL LISTEN connection; workers poll meanwhile, \
                         retrying every second"
                    );
                }
            }
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// Wakes every idle worker, and the next one to wait if none is waiting.
fn wake_all(wake: &Notify) {
    wake.notify_waiters();
    wake.notify_one();
}
