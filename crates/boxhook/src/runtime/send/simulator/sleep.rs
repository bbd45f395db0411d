//! [`Sleeper`]: how the simulator spends the waits of a retry schedule.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use boxhook_core::FixedClock;

/// The future a [`Sleeper`] returns.
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Spends a wait of the [`RetrySchedule`](crate::runtime::send::RetrySchedule).
///
/// Three come with the kit: [`RealSleep`] (the default), [`CompressedSleep`]
/// (real time divided by a factor) and [`AdvanceClock`] (no real wait: moves a
/// [`FixedClock`] that the simulator and the server under test share). Any
/// `Fn(Duration) -> impl Future<Output = ()>` is a sleeper too.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use boxhook::runtime::send::Sleeper;
///
/// let waited = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&waited);
/// let sleeper = move |d: Duration| {
///     log.lock().unwrap().push(d);
///     async {}
/// };
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// sleeper.sleep(Duration::from_secs(300)).await;
/// # });
/// assert_eq!(*waited.lock().unwrap(), [Duration::from_secs(300)]);
/// ```
pub trait Sleeper: Send + Sync + 'static {
    /// Waits `duration` of Box's time.
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

impl<F, Fut> Sleeper for F
where
    F: Fn(Duration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(self(duration))
    }
}

/// Really waits, on tokio's timer.
///
/// ```
/// use std::time::Duration;
/// use boxhook::runtime::send::{RealSleep, Sleeper};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// RealSleep.sleep(Duration::from_millis(1)).await;
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RealSleep;

impl Sleeper for RealSleep {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Really waits, `factor` times faster than Box would.
///
/// ```
/// use std::time::{Duration, Instant};
/// use boxhook::runtime::send::{CompressedSleep, Sleeper};
///
/// let sleeper = CompressedSleep::new(1000);
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let start = Instant::now();
/// sleeper.sleep(Duration::from_secs(1)).await; // 1 ms
/// assert!(start.elapsed() < Duration::from_millis(500));
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CompressedSleep {
    factor: u32,
}

impl CompressedSleep {
    /// Divides every wait by `factor` (0 counts as 1).
    #[must_use]
    pub const fn new(factor: u32) -> Self {
        Self {
            factor: if factor == 0 { 1 } else { factor },
        }
    }
}

impl Sleeper for CompressedSleep {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(
            duration.checked_div(self.factor).unwrap_or(duration),
        ))
    }
}

/// Virtual time: does not wait, moves a [`FixedClock`] forward instead.
///
/// Give the same clock to the simulator (for timestamps) and to the server
/// under test (for freshness): Box's hours pass in an instant and every retry
/// is still fresh on arrival. Concurrent deliveries share the clock, so each
/// one's wait moves time for all of them.
///
/// ```
/// use std::time::Duration;
/// use boxhook::{Clock, FixedClock};
/// use boxhook::runtime::send::{AdvanceClock, Sleeper};
///
/// let clock = FixedClock::at("2020-01-01T00:00:00Z".parse().unwrap());
/// let sleeper = AdvanceClock::new(clock.clone());
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// sleeper.sleep(Duration::from_secs(300)).await;
/// # });
/// assert_eq!(clock.now().to_rfc3339(), "2020-01-01T00:05:00+00:00");
/// ```
#[derive(Debug, Clone)]
pub struct AdvanceClock {
    clock: FixedClock,
}

impl AdvanceClock {
    /// A sleeper that advances `clock`.
    #[must_use]
    pub fn new(clock: FixedClock) -> Self {
        Self { clock }
    }
}

impl Sleeper for AdvanceClock {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        self.clock.advance(duration);
        Box::pin(std::future::ready(()))
    }
}
