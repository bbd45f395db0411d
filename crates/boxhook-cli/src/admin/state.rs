//! What the dashboard remembers of the deliveries `serve` answered: counts
//! per minute for the last hour, the last rejected deliveries and the last
//! alerts, each in a bounded ring. Totals come from the metrics instead.

use std::collections::VecDeque;
use std::sync::Mutex;

use boxhook::model::Trigger;
use chrono::{DateTime, Utc};

use crate::logging::DeliveryLog;

/// Minutes the chart covers.
pub(super) const MINUTES: usize = 60;
/// Rejected deliveries kept for the dashboard.
pub(super) const RECENT: usize = 50;
/// Alerts kept for the dashboard.
pub(super) const ALERTS: usize = 50;

/// One minute of the chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Minute {
    /// Minutes since the Unix epoch.
    pub(super) index: i64,
    pub(super) accepted: u64,
    pub(super) rejected: u64,
}

/// A delivery answered with anything but a 2xx.
#[derive(Debug, Clone)]
pub(super) struct Rejected {
    pub(super) at: DateTime<Utc>,
    pub(super) status: u16,
    pub(super) delivery_id: Option<String>,
    pub(super) reason: &'static str,
    pub(super) detail: Option<String>,
    /// The diagnosis' first hint: its code and what to do.
    pub(super) hint: Option<(&'static str, String)>,
}

/// A `WEBHOOK.DELETED` or `NO_ACTIVE_SESSION` delivery.
#[derive(Debug, Clone)]
pub(super) struct Alert {
    pub(super) at: DateTime<Utc>,
    pub(super) trigger: &'static str,
    pub(super) event_id: String,
    pub(super) webhook_id: Option<String>,
    /// `additional_info.reason`, read from the stored event when shown.
    pub(super) reason: Option<String>,
    pub(super) what_to_do: &'static str,
}

#[derive(Default)]
struct Inner {
    minutes: VecDeque<Minute>,
    recent: VecDeque<Rejected>,
    alerts: VecDeque<Alert>,
}

/// The receiver's recent deliveries, fed by `serve`'s delivery log.
#[derive(Default)]
pub(crate) struct Dashboard {
    inner: Mutex<Inner>,
}

impl Dashboard {
    /// Notes one answered request (any path: a probe on a wrong path is a
    /// rejected delivery too).
    pub(crate) fn record(&self, log: &DeliveryLog) {
        self.record_at(log, Utc::now());
    }

    pub(super) fn record_at(&self, log: &DeliveryLog, at: DateTime<Utc>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let minute = at.timestamp().div_euclid(60);
        if inner.minutes.back().is_none_or(|m| m.index != minute) {
            inner.minutes.push_back(Minute {
                index: minute,
                ..Minute::default()
            });
            let oldest = minute.saturating_sub(MINUTES as i64);
            while inner.minutes.front().is_some_and(|m| m.index <= oldest) {
                inner.minutes.pop_front();
            }
        }
        let accepted = log.status.is_success();
        if let Some(current) = inner.minutes.back_mut() {
            if accepted {
                current.accepted = current.accepted.saturating_add(1);
            } else {
                current.rejected = current.rejected.saturating_add(1);
            }
        }
        if !accepted {
            push_bounded(
                &mut inner.recent,
                RECENT,
                Rejected {
                    at,
                    status: log.status.as_u16(),
                    delivery_id: log.delivery_id.clone(),
                    reason: log.outcome,
                    detail: log.detail.clone(),
                    hint: log
                        .hints
                        .first()
                        .map(|h| (h.code().as_str(), h.message().to_owned())),
                },
            );
        }
        if let Some(event) = &log.event {
            let trigger = match event.trigger() {
                Trigger::WebhookDeleted => "WEBHOOK.DELETED",
                Trigger::NoActiveSession => "NO_ACTIVE_SESSION",
                _ => return,
            };
            if let Some(what_to_do) = boxhook::alert::for_trigger(event.trigger()) {
                push_bounded(
                    &mut inner.alerts,
                    ALERTS,
                    Alert {
                        at,
                        trigger,
                        event_id: event.event_id().to_owned(),
                        webhook_id: event.webhook_id().map(str::to_owned),
                        reason: None,
                        what_to_do,
                    },
                );
            }
        }
    }

    /// The last [`MINUTES`] minutes up to `now`, oldest first, with the
    /// quiet ones as zeros.
    pub(super) fn minutes(&self, now: DateTime<Utc>) -> Vec<Minute> {
        let last = now.timestamp().div_euclid(60);
        let inner = self.inner.lock().ok();
        (0..MINUTES as i64)
            .rev()
            .map(|ago| {
                let minute = last.saturating_sub(ago);
                inner
                    .as_ref()
                    .and_then(|i| i.minutes.iter().find(|m| m.index == minute).copied())
                    .unwrap_or(Minute {
                        index: minute,
                        ..Minute::default()
                    })
            })
            .collect()
    }

    /// The rejected deliveries kept, newest first.
    pub(super) fn recent(&self) -> Vec<Rejected> {
        self.inner
            .lock()
            .map(|i| i.recent.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// The alerts kept, newest first.
    pub(super) fn alerts(&self) -> Vec<Alert> {
        self.inner
            .lock()
            .map(|i| i.alerts.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Remembers an alert's reason once read from the store.
    pub(super) fn set_alert_reason(&self, event_id: &str, reason: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            for alert in inner.alerts.iter_mut().filter(|a| a.event_id == event_id) {
                alert.reason = Some(reason.to_owned());
            }
        }
    }
}

fn push_bounded<T>(ring: &mut VecDeque<T>, cap: usize, item: T) {
    if ring.len() >= cap {
        ring.pop_front();
    }
    ring.push_back(item);
}
