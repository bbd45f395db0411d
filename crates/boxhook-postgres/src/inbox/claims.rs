//! [`BatchClaims`] for [`PgInbox`]: many claims, and many settles, each in
//! one statement.

use std::time::Duration;

use boxhook::inbox::backend::{lease_end, millis};
use boxhook::inbox::{BatchClaims, Claimed, InboxError, SettleAs};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{entry, PgInbox, ADD_COUNTS, ENTRY_COLUMNS, SHARD};
use crate::storage;

impl BatchClaims for PgInbox {
    /// One statement: `… ORDER BY seq LIMIT $n FOR UPDATE SKIP LOCKED`, as
    /// [`claim_matching`](boxhook::inbox::FilteredClaims::claim_matching)
    /// for one. Concurrent workers each lock different ready rows and never
    /// wait for each other; the pending events claimed move from `pending`
    /// to `claimed` in the counts (one counter row per webhook, in webhook
    /// order) in the same statement.
    async fn claim_batch(
        &self,
        worker_id: &str,
        lease: Duration,
        now: DateTime<Utc>,
        triggers: &[String],
        max: usize,
    ) -> Result<Vec<Claimed>, InboxError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let lease_until = lease_end(now, lease);
        let stmt = client
            .prepare_cached(&format!(
                "WITH next AS ( \
                   SELECT event_id, webhook_id, received_at, state FROM events \
                   WHERE state IN ('pending', 'claimed') AND ready_at <= $3 \
                   AND (cardinality($4::text[]) = 0 OR trigger_name = ANY($4)) \
                   ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED), \
                 taken AS ( \
                   UPDATE events e SET state = 'claimed', attempts = e.attempts + 1, \
                   worker_id = $1, ready_at = $2 \
                   FROM next WHERE e.event_id = next.event_id \
                   AND e.webhook_id = next.webhook_id AND e.received_at = next.received_at \
                   RETURNING e.*, next.state AS was), \
                 counted AS ( \
                   INSERT INTO event_counts AS c (webhook_id, shard, pending, claimed) \
                   SELECT webhook_id, {SHARD}, -count(*), count(*) FROM taken \
                   WHERE was = 'pending' GROUP BY webhook_id ORDER BY webhook_id \
                   ON CONFLICT (webhook_id, shard) DO UPDATE SET {ADD_COUNTS}) \
                 SELECT {ENTRY_COLUMNS}, e.body \
                 FROM taken e LEFT JOIN event_keys k \
                 ON k.webhook_id = e.webhook_id AND k.event_id = e.event_id \
                 ORDER BY e.seq"
            ))
            .await
            .map_err(storage)?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &stmt,
                &[
                    &worker_id,
                    &millis(lease_until),
                    &millis(now),
                    &triggers,
                    &limit,
                ],
            )
            .await
            .map_err(storage)?;
        // A row that does not read back fails only itself: it stays claimed
        // until its lease ends (as a single claim of it would), and the
        // others of the batch run.
        Ok(rows
            .iter()
            .filter_map(|row| {
                let claimed = row
                    .try_get::<_, Vec<u8>>(11)
                    .map_err(storage)
                    .and_then(|body| {
                        Ok(Claimed {
                            entry: entry(row)?,
                            body: Bytes::from(body),
                            worker_id: worker_id.to_owned(),
                            lease_until,
                        })
                    });
                claimed
                    .map_err(|error| unreadable_claim(row.try_get::<_, &str>(1).ok(), &error))
                    .ok()
            })
            .collect())
    }

    /// One statement: the claims as arrays (`unnest … WITH ORDINALITY`),
    /// one `UPDATE` of the rows whose claim is still the one held (same
    /// worker and attempt, still `claimed`, lease not ended by `now`), and
    /// the counts moved from `claimed` to each new state for exactly the
    /// rows updated. Requeued events wake the workers waiting in
    /// [`wait_for_work`](boxhook::inbox::Inbox::wait_for_work).
    async fn settle_batch(
        &self,
        settles: &[(Claimed, SettleAs)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, InboxError> {
        if settles.is_empty() {
            return Ok(Vec::new());
        }
        let mut webhook_ids = Vec::with_capacity(settles.len());
        let mut event_ids = Vec::with_capacity(settles.len());
        let mut received = Vec::with_capacity(settles.len());
        let mut attempts = Vec::with_capacity(settles.len());
        let mut workers = Vec::with_capacity(settles.len());
        let mut states = Vec::with_capacity(settles.len());
        let mut retry_ats: Vec<Option<i64>> = Vec::with_capacity(settles.len());
        for (claimed, how) in settles {
            webhook_ids.push(claimed.entry.webhook_id.as_str());
            event_ids.push(claimed.entry.event_id.as_str());
            received.push(millis(claimed.entry.received_at));
            attempts.push(i32::try_from(claimed.entry.attempts).unwrap_or(i32::MAX));
            workers.push(claimed.worker_id.as_str());
            let (state, retry_at) = match how {
                SettleAs::Done => ("done", None),
                SettleAs::Pending(at) => ("pending", Some(millis(*at))),
                SettleAs::Dead => ("dead", None),
            };
            states.push(state);
            retry_ats.push(retry_at);
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "WITH input AS ( \
                   SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], \
                                        $5::text[], $6::text[], $7::bigint[]) \
                   WITH ORDINALITY AS i(webhook_id, event_id, received_at, attempts, \
                                        worker_id, state, retry_at, n)), \
                 settled AS ( \
                   UPDATE events e SET state = i.state, ready_at = coalesce(i.retry_at, e.ready_at) \
                   FROM input i WHERE e.event_id = i.event_id AND e.webhook_id = i.webhook_id \
                   AND e.received_at = i.received_at AND e.state = 'claimed' \
                   AND e.attempts = i.attempts AND e.worker_id = i.worker_id \
                   AND e.ready_at > $8 \
                   RETURNING e.webhook_id, i.state, i.n), \
                 counted AS ( \
                   INSERT INTO event_counts AS c (webhook_id, shard, pending, claimed, done, dead) \
                   SELECT webhook_id, {SHARD}, count(*) FILTER (WHERE state = 'pending'), \
                          -count(*), count(*) FILTER (WHERE state = 'done'), \
                          count(*) FILTER (WHERE state = 'dead') \
                   FROM settled GROUP BY webhook_id ORDER BY webhook_id \
                   ON CONFLICT (webhook_id, shard) DO UPDATE SET {ADD_COUNTS}) \
                 SELECT n, state FROM settled"
            ))
            .await
            .map_err(storage)?;
        let rows = client
            .query(
                &stmt,
                &[
                    &webhook_ids,
                    &event_ids,
                    &received,
                    &attempts,
                    &workers,
                    &states,
                    &retry_ats,
                    &millis(now),
                ],
            )
            .await
            .map_err(storage)?;
        let mut settled = vec![false; settles.len()];
        let mut requeued = false;
        for row in &rows {
            let n: i64 = row.try_get(0).map_err(storage)?;
            let state: &str = row.try_get(1).map_err(storage)?;
            requeued |= state == "pending";
            if let Some(slot) = usize::try_from(n)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|n| settled.get_mut(n))
            {
                *slot = true;
            }
        }
        if requeued {
            self.shared.notify_ready();
        }
        Ok(settled)
    }
}

/// Logs a claimed row that does not read back (its event id, if that
/// reads): it is left claimed until its lease ends.
fn unreadable_claim(event_id: Option<&str>, error: &InboxError) {
    tracing::error!(
        event_id = ?event_id,
        error = %error,
        "an event claimed in a batch does not read back from the inbox; the others run, it \
         stays claimed until its lease ends (inspect it with `boxhook inbox show`)"
    );
}
