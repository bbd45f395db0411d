//! The router as a tower service: one verified delivery in, one [`Outcome`] out.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use boxhook_core::model::{Envelope, Trigger, WebhookEvent};
use boxhook_core::{Clock as _, Verified};
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt as _, Full};
use tower_service::Service;

use super::{DeliveryContext, EventHandler, Outcome, RoutedEvent, Router, Routes};
use crate::handler::{BoxFuture, ErasedHandler, NoActiveSession, WebhookDeleted};
use crate::idempotency::{Claim, EventKey};
use crate::inbox::{ErasedInbox, NewRecord, Stored};
use crate::{log, RequestClock};

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
                let mut event = None;
                let outcome = routes.dispatch(request, &mut event).await;
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

/// The handler chosen for one event.
enum Route {
    Event(EventHandler),
    Deleted(Arc<dyn ErasedHandler<WebhookDeleted>>),
    NoSession(Arc<dyn ErasedHandler<NoActiveSession>>),
}

/// Where one event goes: a handler, run under a claim, or the inbox of
/// [`Router::store_in`](super::Router::store_in), deduplicated by the inbox.
enum Target {
    Handler(Route),
    Inbox(Arc<dyn ErasedInbox>),
}

impl Routes {
    fn route(&self, trigger: &Trigger) -> Option<Target> {
        let dedicated = match trigger {
            Trigger::WebhookDeleted => self.webhook_deleted.clone().map(Route::Deleted),
            Trigger::NoActiveSession => self.no_active_session.clone().map(Route::NoSession),
            _ => None,
        };
        dedicated
            .or_else(|| {
                self.exact
                    .get(trigger)
                    .or_else(|| self.family.get(&trigger.family()))
                    .or(self.fallback.as_ref())
                    .cloned()
                    .map(Route::Event)
            })
            .map(Target::Handler)
            .or_else(|| self.inbox.clone().map(Target::Inbox))
    }

    fn lease(&self) -> Duration {
        self.claim_lease
            .unwrap_or(self.handler_timeout + Duration::from_secs(5))
    }

    /// Handles one request; `routed` is filled in once the body is known to
    /// be a `webhook_event`, so the caller can report which event it was.
    async fn dispatch<B>(&self, request: Request<B>, routed: &mut Option<RoutedEvent>) -> Outcome
    where
        B: Body,
        B::Error: fmt::Display,
    {
        let (mut parts, body) = request.into_parts();
        let Some(verified) = parts.extensions.remove::<Verified>() else {
            tracing::error!(
                "boxhook router reached without VerifyLayer: no Verified proof in the request"
            );
            return Outcome::Unverified;
        };
        let clock = parts
            .extensions
            .remove::<RequestClock>()
            .unwrap_or_default();
        let delivery_id = verified.delivery_id().map(str::to_owned);
        let delivery_id = delivery_id.as_deref();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                tracing::error!(
                    delivery_id = log::opt(delivery_id),
                    error = log::shown(&error),
                    "verified body could not be read"
                );
                return Outcome::NotAnEvent;
            }
        };
        let envelope = match Envelope::parse(&body) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::error!(
                    delivery_id = log::opt(delivery_id),
                    error = log::shown(&error),
                    "verified body is not a webhook_event"
                );
                return Outcome::NotAnEvent;
            }
        };
        let trigger = envelope.trigger().clone();
        *routed = Some(RoutedEvent::new(
            envelope.id().to_owned(),
            envelope.webhook_id().map(str::to_owned),
            trigger.clone(),
        ));
        alert(&trigger, &envelope, delivery_id);
        let Some(target) = self.route(&trigger) else {
            tracing::info!(
                delivery_id = log::opt(delivery_id),
                event_id = log::text(envelope.id()),
                trigger = log::text(trigger.as_str()),
                "no handler for this trigger; acknowledged"
            );
            return Outcome::Unhandled;
        };
        let route = match target {
            Target::Handler(route) => route,
            Target::Inbox(inbox) => {
                let record =
                    NewRecord::from_envelope(&envelope, delivery_id, clock.now(), body.clone());
                drop(envelope);
                return self.store(inbox.as_ref(), record).await;
            }
        };
        let webhook_id = envelope.webhook_id().map(str::to_owned);
        let key = EventKey::new(webhook_id.clone().unwrap_or_default(), envelope.id());
        drop(envelope);

        match self.store.claim(&key, clock.now(), self.lease()).await {
            Ok(Claim::Acquired) => {}
            Ok(Claim::Done) => {
                tracing::info!(delivery_id = log::opt(delivery_id), event = %key, "event handled before; acknowledged");
                return Outcome::Duplicate;
            }
            Ok(Claim::InProgress) => {
                tracing::info!(delivery_id = log::opt(delivery_id), event = %key, "event is being handled by another attempt");
                return Outcome::InProgress;
            }
            Err(error) => {
                tracing::error!(delivery_id = log::opt(delivery_id), event = %key, error = log::shown(&error), "cannot claim event");
                return Outcome::StoreFailed;
            }
        }

        let outcome = match WebhookEvent::parse(&body) {
            Ok(event) => {
                let ctx =
                    DeliveryContext::new(verified, key.event_id().to_owned(), webhook_id, body)
                        .with_clock(clock.clone());
                run(&route, event, ctx, self.handler_timeout, delivery_id, &key).await
            }
            Err(error) => {
                tracing::error!(delivery_id = log::opt(delivery_id), event = %key, error = log::shown(&error), "verified body is not a webhook_event");
                Outcome::NotAnEvent
            }
        };
        let settled = if outcome == Outcome::Handled {
            self.store.complete(&key, clock.now()).await
        } else {
            self.store.release(&key).await
        };
        if let Err(error) = settled {
            // The outcome stands; at worst a retry runs the handler again.
            tracing::error!(delivery_id = log::opt(delivery_id), event = %key, %outcome, error = log::shown(&error), "cannot record the outcome");
        }
        outcome
    }

    /// Stores an event for [`Router::store_in`](super::Router::store_in): the
    /// inbox's answer is the outcome, within the handler deadline, a panic
    /// caught.
    async fn store(&self, inbox: &dyn ErasedInbox, record: NewRecord) -> Outcome {
        let key = record.key();
        let delivery_id = record.delivery_id.clone();
        let delivery_id = log::opt(delivery_id.as_deref());
        let trigger = record.trigger.clone();
        let trigger = log::text(&trigger);
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
                    error = log::shown(&error),
                    "cannot store the event in the inbox"
                );
                Outcome::InboxFailed
            }
            Ok(Err(panic)) => {
                tracing::error!(
                    delivery_id,
                    event = %key,
                    trigger,
                    panic = log::text(crate::panic::panic_message(panic.as_ref())),
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

/// Logs the two triggers that need an operator, handled or not.
fn alert(trigger: &Trigger, envelope: &Envelope<'_>, delivery_id: Option<&str>) {
    match trigger {
        Trigger::WebhookDeleted => tracing::warn!(
            delivery_id = log::opt(delivery_id),
            webhook_id = log::opt(envelope.webhook_id()),
            "Box deleted this webhook (WEBHOOK.DELETED); recreate it to keep receiving events"
        ),
        Trigger::NoActiveSession => tracing::warn!(
            delivery_id = log::opt(delivery_id),
            webhook_id = log::opt(envelope.webhook_id()),
            source_type = log::opt(envelope.source_type()),
            source_id = log::opt(envelope.source_id()),
            "NO_ACTIVE_SESSION: the webhook's authorization has expired; re-authorize the Box app"
        ),
        _ => {}
    }
}

/// Runs the handler with its deadline, catching a panic.
async fn run(
    route: &Route,
    event: WebhookEvent,
    ctx: DeliveryContext,
    deadline: Duration,
    delivery_id: Option<&str>,
    key: &EventKey,
) -> Outcome {
    let trigger = event.trigger().clone();
    let handled = crate::panic::catch_unwind(|| match route {
        Route::Event(h) => h.call_boxed(event, ctx),
        Route::Deleted(h) => h.call_boxed(WebhookDeleted::new(event), ctx),
        Route::NoSession(h) => h.call_boxed(NoActiveSession::new(event), ctx),
    });
    let result = tokio::time::timeout(deadline, handled).await;
    let outcome = match &result {
        Ok(Ok(Ok(()))) => Outcome::Handled,
        Ok(Ok(Err(e))) if e.is_retry() => Outcome::RetryRequested,
        Ok(Ok(Err(_))) => Outcome::Failed,
        Ok(Err(_)) => Outcome::Panicked,
        Err(_) => Outcome::TimedOut,
    };
    let delivery_id = log::opt(delivery_id);
    let trigger = log::text(trigger.as_str());
    match result {
        Ok(Ok(Ok(()))) => tracing::info!(delivery_id, event = %key, trigger, "event handled"),
        Ok(Ok(Err(error))) if error.is_retry() => {
            tracing::warn!(delivery_id, event = %key, trigger, error = log::shown(&error), "handler asked Box to retry");
        }
        Ok(Ok(Err(error))) => {
            tracing::error!(delivery_id, event = %key, trigger, error = log::shown(&error), "handler failed");
        }
        Ok(Err(panic)) => tracing::error!(
            delivery_id,
            event = %key,
            trigger,
            panic = log::text(crate::panic::panic_message(panic.as_ref())),
            "handler panicked"
        ),
        Err(_) => {
            tracing::warn!(delivery_id, event = %key, trigger, ?deadline, "handler passed its deadline; cancelled");
        }
    }
    outcome
}
