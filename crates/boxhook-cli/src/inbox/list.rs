//! `boxhook inbox list`: the newest events first, a page at a time, with
//! how many there are in all (from [`Inbox::counts`], no scan) and the
//! cursor of the next page (`--before EVENT_ID`).
//!
//! Whatever the number of events asked for (`--all` included), the store
//! is read in pages of at most [`PAGE`] events, each written out before the
//! next is read: `--json` streams, and memory stays flat.

use std::io::Write;
use std::process::ExitCode;

use boxhook::inbox::{Counts, EntryState, Inbox, InboxEntry, ListFilter};
use boxhook_core::Printable;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::retention::parse_time;
use crate::store::StoreArgs;

/// How many events `list` shows without `--limit` or `--all`.
pub(crate) const DEFAULT_LIMIT: u64 = 50;

/// The most events read from the store at once.
pub(crate) const PAGE: usize = 1000;

/// Arguments of `boxhook inbox list`.
#[derive(clap::Args)]
#[command(after_help = "\
Newest first: the last 50 events received unless --limit N or --all, then \
how many there are in all and, when more are left, the cursor of the next \
page: run the same command again with --before EVENT_ID (the last event \
shown). With --json one object per line on stdout, written as the store is \
read, and the next page's cursor on stderr.

Examples:
  boxhook inbox list
  boxhook inbox list --state dead --limit 200
  boxhook inbox list --since 2h --trigger FILE.UPLOADED --json
  boxhook inbox list --before 2c3c7e8a-1b5e-4e6c-9c3f-0c2d8d1b4a11")]
pub(crate) struct Args {
    /// Only events in this state: pending, claimed (held by a worker), done
    /// or dead.
    #[arg(long, value_name = "STATE", value_parser = super::parse_state)]
    state: Option<EntryState>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Only events with exactly this trigger, e.g. FILE.UPLOADED.
    #[arg(long, value_name = "T")]
    trigger: Option<String>,
    /// At most N events, newest first (default 50).
    #[arg(long, value_name = "N", conflicts_with = "all",
          value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Every event, newest first, read page by page.
    #[arg(long)]
    all: bool,
    /// Only events received at or after TIME: RFC 3339
    /// (2026-01-31T12:00:00Z) or an age (90s, 30m, 12h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only events stored before the event with this id: the cursor the
    /// previous page printed.
    #[arg(long, value_name = "EVENT_ID")]
    before: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pub(crate) state: Option<EntryState>,
    pub(crate) trigger: Option<String>,
    pub(crate) since: Option<DateTime<Utc>>,
    pub(crate) before: Option<String>,
    /// `None`: every event.
    pub(crate) limit: Option<u64>,
}

impl Args {
    fn query(&self) -> Query {
        Query {
            state: self.state,
            trigger: self.trigger.clone(),
            since: self.since,
            before: self.before.clone(),
            limit: (!self.all).then_some(self.limit.unwrap_or(DEFAULT_LIMIT)),
        }
    }
}

/// What a listing wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) shown: u64,
    /// The cursor of the next page, when more events match.
    pub(crate) next: Option<String>,
}

/// Writes the events `query` selects, newest first, as JSON lines or a
/// table (header first), reading at most [`PAGE`] at a time.
pub(crate) async fn write_events(
    inbox: &impl Inbox,
    query: &Query,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<Listed> {
    let mut table = Table::default();
    let mut shown: u64 = 0;
    let mut cursor = query.before.clone();
    loop {
        let remaining = query.limit.map(|limit| limit.saturating_sub(shown));
        // One more than is shown, to know whether a next page exists.
        let want = remaining.map_or(PAGE, |r| usize::try_from(r).unwrap_or(usize::MAX).min(PAGE));
        let mut filter = ListFilter::new()
            .newest_first()
            .limit(want.saturating_add(1));
        if let Some(state) = query.state {
            filter = filter.state(state);
        }
        if let Some(trigger) = &query.trigger {
            filter = filter.trigger(trigger.clone());
        }
        if let Some(since) = query.since {
            filter = filter.since(since);
        }
        if let Some(before) = &cursor {
            filter = filter.before(before.clone());
        }
        let mut page = inbox.list(filter).await?;
        let beyond = page.len() > want;
        page.truncate(want);
        if json {
            for entry in &page {
                writeln!(out, "{}", super::entry_json(entry))?;
            }
        } else {
            table.write(&page, out)?;
        }
        out.flush()?;
        shown = shown.saturating_add(page.len() as u64);
        let Some(last) = page.last() else {
            break;
        };
        cursor = Some(last.event_id.clone());
        if !beyond {
            break;
        }
        if query.limit.is_some_and(|limit| shown >= limit) {
            return Ok(Listed {
                shown,
                next: cursor,
            });
        }
    }
    if !json {
        table.write(&[], out)?;
    }
    Ok(Listed { shown, next: None })
}

/// The line after the events: how many were shown, of how many, and the
/// next page's cursor.
pub(crate) fn footer(query: &Query, listed: &Listed, counts: Option<&Counts>) -> String {
    let shown = listed.shown;
    let Some(next) = &listed.next else {
        return format!("{shown} event(s)");
    };
    let filtered = query.trigger.is_some() || query.since.is_some() || query.before.is_some();
    let of = match (counts, query.state) {
        (Some(counts), Some(state)) if !filtered => {
            format!(" of {} {} event(s)", counts.get(state), state.as_str())
        }
        (Some(counts), None) if !filtered => format!(" of {} event(s)", counts.total()),
        (Some(counts), _) => format!(" event(s) ({} in the inbox)", counts.total()),
        (None, _) => " event(s)".to_owned(),
    };
    format!(
        "{shown}{of}, newest first; next page: --before {}",
        Printable(next)
    )
}

/// Runs `boxhook inbox list`.
pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let store = args.store.store()?;
    let query = args.query();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let inbox = crate::store::open_existing(&store).await?;
        let counts = match inbox.counts().await {
            Ok(counts) => Some(counts),
            Err(err) => {
                eprintln!("cannot count the events in {}: {err}", store.describe());
                None
            }
        };
        let mut out = std::io::stdout().lock();
        let listed = write_events(&inbox, &query, args.json, &mut out).await?;
        if let Some(before) = &query.before {
            if listed.shown == 0 && inbox.get(before).await?.is_none() {
                eprintln!(
                    "no event \"{}\" in {}: --before takes an event id that a previous page \
                     showed",
                    Printable(before),
                    store.describe()
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        let footer = footer(&query, &listed, counts.as_ref());
        if !args.json {
            writeln!(out, "{footer}")?;
        } else if listed.next.is_some() {
            eprintln!("{footer}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The table, written a page at a time: the columns are as wide as the
/// first page needs (later, wider cells push their line out).
#[derive(Default)]
pub(crate) struct Table {
    widths: Option<[usize; 7]>,
}

const HEADER: [&str; 7] = [
    "RECEIVED",
    "KIND",
    "EVENT ID",
    "TRIGGER",
    "SOURCE",
    "DELIVERIES",
    "STATE",
];

impl Table {
    /// Writes `entries`, after the header if it is the first call.
    pub(crate) fn write(
        &mut self,
        entries: &[InboxEntry],
        out: &mut impl Write,
    ) -> std::io::Result<()> {
        let rows: Vec<[String; 7]> = entries.iter().map(row).collect();
        let widths = if let Some(widths) = self.widths {
            widths
        } else {
            let mut widths = HEADER.map(str::len);
            for row in &rows {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.chars().count());
                }
            }
            self.widths = Some(widths);
            line(out, &HEADER, &widths)?;
            widths
        };
        for row in &rows {
            line(out, &row.each_ref().map(String::as_str), &widths)?;
        }
        Ok(())
    }
}

fn line(out: &mut impl Write, cells: &[&str; 7], widths: &[usize; 7]) -> std::io::Result<()> {
    let text: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}"))
        .collect();
    writeln!(out, "{}", text.join("  ").trim_end())
}

/// One entry's cells, every field a sender chose written through
/// [`Printable`].
pub(crate) fn row(e: &InboxEntry) -> [String; 7] {
    [
        e.received_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        e.kind.as_str().to_owned(),
        Printable(&e.event_id).to_string(),
        Printable(&e.trigger).to_string(),
        format!(
            "{}:{}",
            Printable(e.source_type.as_deref().unwrap_or("-")),
            Printable(e.source_id.as_deref().unwrap_or("-"))
        ),
        e.deliveries.to_string(),
        e.state.as_str().to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use boxhook::inbox::NewRecord;

    use super::*;
    use crate::fake::Fake;

    /// `n` events, newest first, `e-{n}` down to `e-1`, every third one
    /// `FILE.DELETED` and done.
    fn inbox(n: u32) -> Arc<Fake> {
        let base = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let entries = (1..=n)
            .rev()
            .map(|i| {
                let trigger = if i % 3 == 0 {
                    "FILE.DELETED"
                } else {
                    "FILE.UPLOADED"
                };
                let body = format!(
                    r#"{{"type":"webhook_event","id":"e-{i}","trigger":"{trigger}","webhook":{{"id":"w","type":"webhook"}}}}"#
                );
                let at = base + chrono::TimeDelta::seconds(i64::from(i));
                let record = NewRecord::parse(body, Some("d"), at).expect("record");
                let state = if i % 3 == 0 {
                    EntryState::Done
                } else {
                    EntryState::Pending
                };
                InboxEntry::new(&record, 1, 0, state)
            })
            .collect();
        let fake = Fake::default();
        *fake.entries.lock().expect("lock") = entries;
        Arc::new(fake)
    }

    async fn json(inbox: &Arc<Fake>, query: &Query) -> (Vec<String>, Listed) {
        let mut out = Vec::new();
        let listed = write_events(inbox, query, true, &mut out)
            .await
            .expect("listed");
        let ids = String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["event_id"].as_str().expect("id").to_owned()
            })
            .collect();
        (ids, listed)
    }

    fn ids(range: impl Iterator<Item = u32>) -> Vec<String> {
        range.map(|i| format!("e-{i}")).collect()
    }

    #[tokio::test]
    async fn the_newest_50_by_default_with_the_next_cursor() {
        let inbox = inbox(120);
        let query = Query {
            limit: Some(DEFAULT_LIMIT),
            ..Query::default()
        };
        let (shown, listed) = json(&inbox, &query).await;
        assert_eq!(shown, ids((71..=120).rev()));
        assert_eq!(
            listed,
            Listed {
                shown: 50,
                next: Some("e-71".to_owned())
            }
        );
        // One read of 51: the 51st only says a next page exists.
        let calls = inbox.list_calls.lock().expect("lock").clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0], ListFilter::new().newest_first().limit(51));
        let counts = Counts {
            pending: 80,
            done: 40,
            ..Counts::default()
        };
        assert_eq!(
            footer(&query, &listed, Some(&counts)),
            "50 of 120 event(s), newest first; next page: --before e-71"
        );
        // The next page, from the cursor.
        let page_two = Query {
            before: Some("e-71".to_owned()),
            ..query.clone()
        };
        let (shown, listed) = json(&inbox, &page_two).await;
        assert_eq!(shown, ids((21..=70).rev()));
        assert_eq!(
            footer(&page_two, &listed, Some(&counts)),
            "50 event(s) (120 in the inbox), newest first; next page: --before e-21"
        );
        let page_three = Query {
            before: Some("e-21".to_owned()),
            ..query
        };
        let (shown, listed) = json(&inbox, &page_three).await;
        assert_eq!(shown, ids((1..=20).rev()));
        assert_eq!(footer(&page_three, &listed, Some(&counts)), "20 event(s)");
    }

    #[tokio::test]
    async fn all_reads_page_by_page_and_every_event_once() {
        let inbox = inbox(2500);
        let query = Query::default();
        let (shown, listed) = json(&inbox, &query).await;
        assert_eq!(shown, ids((1..=2500).rev()));
        assert_eq!(
            listed,
            Listed {
                shown: 2500,
                next: None
            }
        );
        let calls = inbox.list_calls.lock().expect("lock").clone();
        let pages: Vec<(Option<String>, Option<usize>)> =
            calls.iter().map(|f| (f.before.clone(), f.limit)).collect();
        assert_eq!(
            pages,
            [
                (None, Some(PAGE + 1)),
                (Some("e-1501".to_owned()), Some(PAGE + 1)),
                (Some("e-501".to_owned()), Some(PAGE + 1)),
            ]
        );
        assert!(calls.iter().all(|f| f.newest_first));
    }

    #[tokio::test]
    async fn filters_reach_the_store_and_the_footer_counts_the_state() {
        let inbox = inbox(30);
        let since = DateTime::parse_from_rfc3339("2026-01-01T00:00:10Z")
            .expect("time")
            .with_timezone(&Utc);
        let query = Query {
            state: Some(EntryState::Done),
            trigger: Some("FILE.DELETED".to_owned()),
            since: Some(since),
            limit: Some(3),
            ..Query::default()
        };
        let (shown, listed) = json(&inbox, &query).await;
        assert_eq!(shown, ["e-30", "e-27", "e-24"]);
        let calls = inbox.list_calls.lock().expect("lock").clone();
        assert_eq!(
            calls[0],
            ListFilter::new()
                .newest_first()
                .limit(4)
                .state(EntryState::Done)
                .trigger("FILE.DELETED")
                .since(since)
        );
        let counts = Counts {
            done: 10,
            pending: 20,
            ..Counts::default()
        };
        assert_eq!(
            footer(&query, &listed, Some(&counts)),
            "3 event(s) (30 in the inbox), newest first; next page: --before e-24"
        );
        let state_only = Query {
            state: Some(EntryState::Done),
            limit: Some(3),
            ..Query::default()
        };
        assert_eq!(
            footer(&state_only, &listed, Some(&counts)),
            "3 of 10 done event(s), newest first; next page: --before e-24"
        );
        assert_eq!(
            footer(&state_only, &listed, None),
            "3 event(s), newest first; next page: --before e-24"
        );
    }

    #[tokio::test]
    async fn the_table_has_one_header_and_columns_set_by_the_first_page() {
        let inbox = inbox(3);
        let mut out = Vec::new();
        let query = Query {
            limit: Some(2),
            ..Query::default()
        };
        let listed = write_events(&inbox, &query, false, &mut out)
            .await
            .expect("listed");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "RECEIVED              KIND  EVENT ID  TRIGGER        SOURCE  DELIVERIES  STATE\n\
             2026-01-01T00:00:03Z  v2    e-3       FILE.DELETED   -:-     1           done\n\
             2026-01-01T00:00:02Z  v2    e-2       FILE.UPLOADED  -:-     1           pending\n"
        );
        assert_eq!(listed.next.as_deref(), Some("e-2"));
        let mut out = Vec::new();
        let empty = Arc::new(Fake::default());
        let listed = write_events(&empty, &Query::default(), false, &mut out)
            .await
            .expect("listed");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "RECEIVED  KIND  EVENT ID  TRIGGER  SOURCE  DELIVERIES  STATE\n"
        );
        assert_eq!(footer(&Query::default(), &listed, None), "0 event(s)");
    }
}
