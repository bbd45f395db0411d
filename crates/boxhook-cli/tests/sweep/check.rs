//! The invariants checked after every injection, on the inbox reopened
//! cleanly (the receiver stopped): `PRAGMA integrity_check` is `ok`, and
//! every delivery answered 2xx is stored exactly once, byte for byte.

use std::collections::HashSet;
use std::path::Path;

use boxhook::inbox::{Inbox as _, ListFilter, RecordKind};
use boxhook_sqlite::SqliteInbox;

use crate::wire::Item;

/// What was sent, and how often it was acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    /// Each item once, with the number of 2xx its deliveries got, and
    /// whether any delivery of it got one.
    pub items: Vec<(Item, usize)>,
}

impl Sent {
    /// Notes one delivery of `item` and whether it was acknowledged.
    pub fn note(&mut self, item: &Item, acknowledged: bool) {
        let key = key(item);
        let count = usize::from(acknowledged);
        match self.items.iter_mut().find(|(i, _)| key_eq(i, &key)) {
            Some((_, n)) => *n += count,
            None => self.items.push((item.clone(), count)),
        }
    }

    /// How many deliveries were acknowledged.
    pub fn acknowledged(&self) -> usize {
        self.items.iter().map(|(_, n)| n).sum()
    }
}

fn key(item: &Item) -> String {
    match item {
        Item::V2 { id, .. } => format!("v2:{id}"),
        Item::V1 { item_id, .. } => format!("v1:{item_id}"),
    }
}

fn key_eq(item: &Item, k: &str) -> bool {
    key(item) == k
}

/// The problems found in `inbox` against `sent` (empty: all held), and the
/// number of acknowledged deliveries missing from it.
pub fn check(inbox: &Path, sent: &Sent) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    match integrity(inbox) {
        Ok(text) if text == "ok" => {}
        Ok(text) => problems.push(format!("PRAGMA integrity_check: {text}")),
        Err(e) => problems.push(format!("cannot run PRAGMA integrity_check: {e}")),
    }
    let stored = match read_all(inbox) {
        Ok(stored) => stored,
        Err(e) => {
            problems.push(format!("cannot reopen the inbox: {e}"));
            let lost = sent.items.iter().map(|(_, n)| n).sum();
            return (problems, lost);
        }
    };
    let (more, lost) = compare(&stored, sent);
    problems.extend(more);
    (problems, lost)
}

/// The problems found in `stored` (every record of an inbox) against
/// `sent`, and the number of acknowledged deliveries missing from it:
/// each store's own reading feeds this (SQLite here, PostgreSQL in
/// `pgcheck.rs`).
pub fn compare(stored: &[Row], sent: &Sent) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut lost = 0;
    for (item, acknowledged) in &sent.items {
        let (rows, want): (Vec<&Row>, &str) = match item {
            Item::V2 { id, body } => (
                stored
                    .iter()
                    .filter(|r| r.kind == RecordKind::V2 && &r.event_id == id)
                    .collect(),
                body,
            ),
            Item::V1 {
                item_id,
                stored: body,
            } => (
                stored
                    .iter()
                    .filter(|r| r.kind == RecordKind::V1 && r.source_id.as_deref() == Some(item_id))
                    .collect(),
                body,
            ),
        };
        if rows.len() > 1 {
            problems.push(format!("{} stored {} times", key(item), rows.len()));
        }
        match rows.first() {
            None if *acknowledged > 0 => {
                lost += acknowledged;
                problems.push(format!(
                    "LOST: {} answered 2xx {acknowledged} time(s) but not in the inbox",
                    key(item)
                ));
            }
            None => {}
            Some(row) => {
                if row.body != want.as_bytes() {
                    problems.push(format!(
                        "{} stored with other bytes: {:?}",
                        key(item),
                        String::from_utf8_lossy(&row.body)
                    ));
                }
                let counted = usize::try_from(row.deliveries).unwrap_or(usize::MAX);
                if matches!(item, Item::V2 { .. }) && counted < *acknowledged {
                    lost += acknowledged - counted;
                    problems.push(format!(
                        "LOST: {} answered 2xx {acknowledged} time(s), counted {counted}",
                        key(item)
                    ));
                }
            }
        }
    }
    let known: HashSet<String> = sent.items.iter().map(|(item, _)| key(item)).collect();
    for row in stored {
        let k = match row.kind {
            RecordKind::V1 => format!("v1:{}", row.source_id.as_deref().unwrap_or("")),
            RecordKind::V2 => format!("v2:{}", row.event_id),
        };
        if !known.contains(&k) {
            problems.push(format!("{k} stored but never sent"));
        }
    }
    (problems, lost)
}

/// `PRAGMA integrity_check`'s answer, on a connection of its own.
fn integrity(inbox: &Path) -> Result<String, rusqlite::Error> {
    let conn = rusqlite::Connection::open(inbox)?;
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows.join("; "))
}

/// One stored record, as the check reads it.
pub struct Row {
    pub event_id: String,
    pub source_id: Option<String>,
    pub kind: RecordKind,
    pub deliveries: u64,
    pub body: Vec<u8>,
}

/// Every record, read through the library (`SqliteInbox::open_read_only`).
fn read_all(inbox: &Path) -> Result<Vec<Row>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let reader = SqliteInbox::open_read_only(inbox).map_err(|e| e.to_string())?;
        let entries = reader
            .list(ListFilter::new())
            .await
            .map_err(|e| e.to_string())?;
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            let stored = reader
                .get(&entry.event_id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{} listed but not found", entry.event_id))?;
            rows.push(Row {
                event_id: entry.event_id,
                source_id: entry.source_id,
                kind: entry.kind,
                deliveries: entry.deliveries,
                body: stored.body.to_vec(),
            });
        }
        Ok(rows)
    })
}
