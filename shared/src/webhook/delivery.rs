//! Delivery idempotency: every authenticated delivery is recorded once, keyed by its
//! [`DeliveryKey`](super::DeliveryKey), before anything is started for it.
//!
//! The caller's order (the webhook function, issue 15):
//! 1. [`record_delivery`]; `AlreadySeen` → answer 200 and do nothing;
//! 2. route the event; start the execution named [`execution_name`](super::execution_name)
//!    of the same key (Step Functions refuses a second execution of one name, so two
//!    deliveries that both got past step 1 — the log's record expired in between, say —
//!    still start one);
//! 3. when the start fails, `DeliveryLog::forget` the key and answer 5xx, so the PSA's
//!    next attempt is a first delivery again rather than an event lost.

use std::time::Duration;

use super::{WebhookError, WebhookEvent};
use crate::ports::DeliveryLog;

/// How long a delivery is remembered: past the PSAs' retry windows (hours), well inside
/// the 90 days a Step Functions execution name stays taken.
pub const DEFAULT_DELIVERY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whether a delivery is the first of its event.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Recorded now: route it.
    First(WebhookEvent),
    /// Seen before: acknowledge (200) and do nothing.
    AlreadySeen(WebhookEvent),
}

impl Delivery {
    pub fn event(&self) -> &WebhookEvent {
        match self {
            Delivery::First(event) | Delivery::AlreadySeen(event) => event,
        }
    }

    pub fn is_first(&self) -> bool {
        matches!(self, Delivery::First(_))
    }
}

/// Record an authenticated delivery with one conditional write.
pub async fn record_delivery(
    log: &dyn DeliveryLog,
    event: WebhookEvent,
    ttl: Duration,
) -> Result<Delivery, WebhookError> {
    if log.first_delivery(event.delivery_key.as_str(), ttl).await? {
        Ok(Delivery::First(event))
    } else {
        tracing::info!(psa = %event.psa, delivery = %event.delivery_key, "webhook delivery already seen");
        Ok(Delivery::AlreadySeen(event))
    }
}
