//! The router as a tower service: one verified delivery in, one [`Outcome`] out.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use boxhook_core::model::{DeletionReason, Envelope, RoutingFields, Trigger, WebhookEvent};
use boxhook_core::{Clock as _, Verified};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt as _, Full};
use tower_service::Service;

use super::{EventHandler, Outcome, RoutedEvent, Router, Routes};
use crate::context::DeliveryContext;
use crate::handler::{BoxFuture, ErasedHandler};
use crate::idempotency::{Claim, EventKey};
use crate::inbox::{ErasedInbox, NewRecord, Stored};
use crate::{alert, escaped, metrics, RequestClock};

impl<B> Service<Request<B>> for Router
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: fmt::Display,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = RouterFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let routes = Arc::clone(&self.routes);
        RouterFuture {
            inner: Box::pin(async move {
                let (outcome, event) = routes.dispatch(request).await;
                let mut response = Response::new(Full::default());
                *response.status_mut() = outcome.status();
                response.extensions_mut().insert(outcome);
                if let Some(event) = event {
                    response.extensions_mut().insert(event);
                }
                Ok(response)
            }),
        }
    }
}

/// The future [`Router`] returns.
pub struct RouterFuture {
    inner: BoxFuture<'static, Result<Response<Full<Bytes>>, Infallible>>,
}

impl Future for RouterFuture {
    type Output = Result<Response<Full<Bytes>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for RouterFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterFuture").finish_non_exhaustive()
    }
}

/// How much longer than the handler timeout a claim lasts by default, so a
/// running handler is never doubled.
const CLAIM_MARGIN: Duration = Duration::from_secs(5);

/// Where one event goes: a handler, run under a claim, or the inbox of
/// [`Router::store_in`](super::Router::store_in) with the record to store,
/// deduplicated by the inbox.
enum Target {
    Handler(EventHandler),
    Inbox(Arc<dyn ErasedInbox>, NewRecord),
}

/// A verified request, read: the proof, the receiver's clock, the body.
struct Delivery {
    verified: Verified,
    clock: RequestClock,
    body: Bytes,
}

impl Delivery {
    /// Takes the proof and clock the verify layer left, and reads the body.
    async fn receive<B>(request: Request<B>) -> Result<Self, Outcome>
    where
        B: Body,
        B::Error: fmt::Display,
    {
        let (mut parts, body) = request.into_parts();
        let Some(verified) = parts.extensions.remove::<Verified>() else {
            tracing::error!(
                "boxhook router reached without VerifyLayer: no Verified proof in the request"
            );
            return Err(Outcome::Unverified);
        };
        let clock = parts
            .extensions
            .remove::<RequestClock>()
            .unwrap_or_default();
        match body.collect().await {
            Ok(collected) => Ok(Self {
                verified,
                clock,
                body: collected.to_bytes(),
            }),
            Err(error) => {
                tracing::error!(
                    delivery_id = escaped::opt(verified.delivery_id()),
                    error = escaped::shown(&error),
                    "verified body could not be read"
                );
                Err(Outcome::NotAnEvent)
            }
        }
    }

    fn delivery_id(&self) -> Option<&str> {
        self.verified.delivery_id()
    }
}

impl Routes {
    /// Handles one request: read, route, then store or claim → run → settle.
    /// The event is returned once the body is known to be a `webhook_event`,
    /// so the response can say which event it was.
    async fn dispatch<B>(&self, request: Request<B>) -> (Outcome, Option<RoutedEvent>)
    where
        B: Body,
        B::Error: fmt::Display,
    {
        let delivery = match Delivery::receive(request).await {
            Ok(delivery) => delivery,
            Err(outcome) => return (outcome, None),
        };
        // The peek's fast path when it applies, else the envelope's.
        let routed = self
            .peek_route(&delivery)
            .map_or_else(|| self.route(&delivery), Ok);
        let (event, target) = match routed {
            Ok(routed) => routed,
            Err(outcome) => return (outcome, None),
        };
        let outcome = match target {
            None => Outcome::Unhandled,
            Some(Target::Inbox(inbox, record)) => self.store(inbox.as_ref(), record).await,
            Some(Target::Handler(handler)) => self.handle(&handler, delivery, &event).await,
        };
        // No event is named for a body that turned out not to be one.
        if outcome == Outcome::NotAnEvent {
            return (outcome, None);
        }
        metrics::event(event.trigger(), outcome);
        (outcome, Some(event))
    }

    /// The fast path to a handler: the routing fields peeked off the front
    /// of the body ([`RoutingFields::peek`]), for an event a handler takes
    /// and that raises no operator alert. The whole body is then parsed
    /// once, after the claim, in [`Routes::handle`]; a duplicate costs the
    /// peek and the claim. `None` (the peek declined, no handler, or an
    /// alert trigger) sends the delivery down [`Routes::route`], which reads
    /// and checks the whole envelope first.
    fn peek_route(&self, delivery: &Delivery) -> Option<(RoutedEvent, Option<Target>)> {
        let peeked = RoutingFields::peek(&delivery.body)?;
        let trigger = peeked.trigger();
        if alert::for_trigger(trigger).is_some() {
            return None;
        }
        let handler = self.handler_for(trigger)?;
        let event = RoutedEvent::new(
            peeked.id().to_owned(),
            Some(peeked.webhook_id().to_owned()),
            trigger.clone(),
        );
        Some((event, Some(Target::Handler(Arc::clone(handler)))))
    }

    /// The handler for `trigger`: its own, its family's, or the fallback.
    fn handler_for(&self, trigger: &boxhook_core::model::Trigger) -> Option<&EventHandler> {
        self.exact
            .get(trigger)
            .or_else(|| self.family.get(&trigger.family()))
            .or(self.fallback.as_ref())
    }

    /// Reads the event's envelope, raises the operator alert, and picks its
    /// target (`None`: nobody takes it, logged).
    fn route(&self, delivery: &Delivery) -> Result<(RoutedEvent, Option<Target>), Outcome> {
        let delivery_id = delivery.delivery_id();
        let envelope = Envelope::parse(&delivery.body).map_err(|error| {
            tracing::error!(
                delivery_id = escaped::opt(delivery_id),
                error = escaped::shown(&error),
                "verified body is not a webhook_event"
            );
            Outcome::NotAnEvent
        })?;
        let trigger = envelope.trigger();
        // Read only for this rare trigger: the envelope pass skips
        // `additional_info`.
        let reason = (*trigger == Trigger::WebhookDeleted)
            .then(|| WebhookEvent::parse(&delivery.body).ok())
            .flatten()
            .and_then(|event| event.additional_info().deletion_reason());
        alert(&envelope, reason.as_ref(), delivery_id);
        let event = RoutedEvent::new(
            envelope.id().to_owned(),
            envelope.webhook_id().map(str::to_owned),
            trigger.clone(),
        )
        .with_deletion_reason(reason);
        let handler = self.handler_for(trigger);
        let target = match (handler, &self.inbox) {
            (Some(handler), _) => Some(Target::Handler(Arc::clone(handler))),
            (None, Some(inbox)) => Some(Target::Inbox(
                Arc::clone(inbox),
                NewRecord::from_envelope(
                    &envelope,
                    delivery_id,
                    delivery.clock.now(),
                    delivery.body.clone(),
                ),
            )),
            (None, None) => {
                tracing::info!(
                    delivery_id = escaped::opt(delivery_id),
                    event_id = escaped::text(envelope.id()),
                    trigger = escaped::text(trigger.as_str()),
                    "no handler for this trigger; acknowledged"
                );
                None
            }
        };
        Ok((event, target))
    }

    /// Runs `handler` on the event under a claim: claim, parse, run, settle.
    ///
    /// The typed event is parsed here, after the claim, and only for a
    /// delivery a handler runs on: a duplicate costs the peek (or the
    /// envelope pass of [`Routes::route`]) and nothing more. Parsing the
    /// typed event up front instead would make every duplicate pay a full
    /// typed parse, about 3x an envelope pass (`router_parse` in
    /// benches/benches/parse.rs; see "One-pass parsing" in
    /// docs/PERFORMANCE.md). A body that fails the parse, or whose id or
    /// webhook id differ from those it was claimed under (which a peek
    /// followed by a successful parse rules out), is answered `NotAnEvent`
    /// and its claim released.
    async fn handle(
        &self,
        handler: &EventHandler,
        delivery: Delivery,
        event: &RoutedEvent,
    ) -> Outcome {
        let key = EventKey::new(event.webhook_id().unwrap_or_default(), event.event_id());
        let clock = delivery.clock.clone();
        let delivery_id = delivery.delivery_id().map(str::to_owned);
        let delivery_id = delivery_id.as_deref();
        if let Err(outcome) = self.claim(&key, clock.now(), delivery_id).await {
            return outcome;
        }
        let outcome = match WebhookEvent::parse(&delivery.body) {
            Ok(parsed) if !claimed_as(&parsed, event) => {
                tracing::error!(delivery_id = escaped::opt(delivery_id), event = %key, "the event's id or webhook id differ from those it was routed by");
                Outcome::NotAnEvent
            }
            Ok(parsed) => {
                let ctx = DeliveryContext::new(
                    delivery.verified,
                    key.event_id().to_owned(),
                    event.webhook_id().map(str::to_owned),
                    delivery.body,
                )
                .with_clock(delivery.clock);
                let deadline = self.handler_timeout;
                run(handler.as_ref(), parsed, ctx, deadline, delivery_id, &key).await
            }
            Err(error) => {
                tracing::error!(delivery_id = escaped::opt(delivery_id), event = %key, error = escaped::shown(&error), "verified body is not a webhook_event");
                Outcome::NotAnEvent
            }
        };
        self.settle(&key, outcome, clock.now(), delivery_id).await;
        outcome
    }

    /// How long a claim lasts: the one set, or the handler timeout plus
    /// 5 s (saturating: `Duration::MAX` stays `Duration::MAX`).
    fn lease(&self) -> Duration {
        self.claim_lease
            .unwrap_or_else(|| self.handler_timeout.saturating_add(CLAIM_MARGIN))
    }

    /// Claims `key` for one attempt; `Err` is the outcome when it cannot be
    /// taken.
    async fn claim(
        &self,
        key: &EventKey,
        now: DateTime<Utc>,
        delivery_id: Option<&str>,
    ) -> Result<(), Outcome> {
        let delivery_id = escaped::opt(delivery_id);
        match self.store.claim(key, now, self.lease()).await {
            Ok(Claim::Acquired) => Ok(()),
            Ok(Claim::Done) => {
                tracing::info!(delivery_id, event = %key, "event handled before; acknowledged");
                Err(Outcome::Duplicate)
            }
            Ok(Claim::InProgress) => {
                tracing::info!(delivery_id, event = %key, "event is being handled by another attempt");
                Err(Outcome::InProgress)
            }
            Err(error) => {
                tracing::error!(delivery_id, event = %key, error = escaped::shown(&error), "cannot claim event");
                Err(Outcome::StoreFailed)
            }
        }
    }

    /// Records the attempt: done when handled, released otherwise so Box's
    /// retry runs. A failure here is logged; the outcome stands.
    async fn settle(
        &self,
        key: &EventKey,
        outcome: Outcome,
        now: DateTime<Utc>,
        delivery_id: Option<&str>,
    ) {
        let settled = if outcome == Outcome::Handled {
            self.store.complete(key, now).await
        } else {
            self.store.release(key).await
        };
        if let Err(error) = settled {
            // At worst a retry runs the handler again.
            tracing::error!(delivery_id = escaped::opt(delivery_id), event = %key, %outcome, error = escaped::shown(&error), "cannot record the outcome");
        }
    }

    /// Stores an event for [`Router::store_in`](super::Router::store_in): the
    /// inbox's answer is the outcome, within the handler deadline, a panic
    /// caught.
    async fn store(&self, inbox: &dyn ErasedInbox, record: NewRecord) -> Outcome {
        let key = record.key();
        let delivery_id = record.delivery_id.clone();
        let delivery_id = escaped::opt(delivery_id.as_deref());
        let trigger = record.trigger.clone();
        let trigger = escaped::text(&trigger);
        let deadline = self.handler_timeout;
        let stored = crate::panic::catch_unwind(|| inbox.store_boxed(record));
        match tokio::time::timeout(deadline, stored).await {
            Ok(Ok(Ok(Stored::New))) => {
                tracing::info!(delivery_id, event = %key, trigger, "event stored in the inbox");
                Outcome::Handled
            }
            Ok(Ok(Ok(Stored::Duplicate { deliveries }))) => {
                tracing::info!(delivery_id, event = %key, trigger, deliveries, "event was in the inbox already; delivery counted");
                Outcome::Duplicate
            }
            Ok(Ok(Err(error))) => {
                tracing::error!(
                    delivery_id,
                    event = %key,
                    trigger,
                    kind = error.kind().as_str(),
                    error = escaped::shown(&error),
                    "cannot store the event in the inbox"
                );
                Outcome::InboxFailed
            }
            Ok(Err(panic)) => {
                tracing::error!(
                    delivery_id,
                    event = %key,
                    trigger,
                    panic = escaped::text(crate::panic::panic_message(panic.as_ref())),
                    "the inbox panicked storing the event"
                );
                Outcome::Panicked
            }
            Err(_) => {
                tracing::warn!(delivery_id, event = %key, trigger, ?deadline, "the inbox did not store the event before the handler deadline; cancelled");
                Outcome::TimedOut
            }
        }
    }
}

/// Whether the parsed event has the id and webhook id `routed` was claimed
/// under.
fn claimed_as(parsed: &WebhookEvent, routed: &RoutedEvent) -> bool {
    parsed.id() == routed.event_id()
        && parsed.envelope().webhook_id().unwrap_or_default()
            == routed.webhook_id().unwrap_or_default()
}

/// Logs the two triggers that need an operator, handled or not, with the
/// text of [`alert::for_trigger`] and, for `WEBHOOK.DELETED`, the reason
/// Box gave (`reason=-` when it gave none).
fn alert(envelope: &Envelope<'_>, reason: Option<&DeletionReason>, delivery_id: Option<&str>) {
    let Some(alert) = alert::for_trigger(envelope.trigger()) else {
        return;
    };
    metrics::alert(envelope.trigger());
    let reason = (*envelope.trigger() == Trigger::WebhookDeleted)
        .then(|| escaped::text(reason.map_or("-", DeletionReason::as_str)));
    tracing::warn!(
        delivery_id = escaped::opt(delivery_id),
        trigger = envelope.trigger().as_str(),
        reason,
        webhook_id = escaped::opt(envelope.webhook_id()),
        source_type = escaped::opt(envelope.source_type()),
        source_id = escaped::opt(envelope.source_id()),
        "{alert}"
    );
}

/// Runs the handler with its deadline, catching a panic.
async fn run(
    handler: &dyn ErasedHandler,
    event: WebhookEvent,
    ctx: DeliveryContext,
    deadline: Duration,
    delivery_id: Option<&str>,
    key: &EventKey,
) -> Outcome {
    let trigger = event.trigger().clone();
    let started = std::time::Instant::now();
    let running = crate::panic::catch_unwind(|| handler.call_boxed(event, ctx));
    // tokio saturates: a deadline past what `Instant` holds never fires.
    let result = tokio::time::timeout(deadline, running).await;
    metrics::handler_time(started.elapsed());
    let outcome = match &result {
        Ok(Ok(Ok(()))) => Outcome::Handled,
        Ok(Ok(Err(e))) if e.is_retry() => Outcome::RetryRequested,
        Ok(Ok(Err(_))) => Outcome::Failed,
        Ok(Err(_)) => Outcome::Panicked,
        Err(_) => Outcome::TimedOut,
    };
    let delivery_id = escaped::opt(delivery_id);
    let trigger = escaped::text(trigger.as_str());
    match result {
        Ok(Ok(Ok(()))) => tracing::info!(delivery_id, event = %key, trigger, "event handled"),
        Ok(Ok(Err(error))) if error.is_retry() => {
            tracing::warn!(delivery_id, event = %key, trigger, error = escaped::shown(&error), "handler asked Box to retry");
        }
        Ok(Ok(Err(error))) => {
            tracing::error!(delivery_id, event = %key, trigger, error = escaped::shown(&error), "handler failed");
        }
        Ok(Err(panic)) => tracing::error!(
            delivery_id,
            event = %key,
            trigger,
            panic = escaped::text(crate::panic::panic_message(panic.as_ref())),
            "handler panicked"
        ),
        Err(_) => {
            tracing::warn!(delivery_id, event = %key, trigger, ?deadline, "handler passed its deadline; cancelled");
        }
    }
    outcome
}
