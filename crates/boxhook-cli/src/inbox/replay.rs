//! `boxhook inbox replay`: re-send stored events to a receiver, each signed
//! as Box signs it (a fresh timestamp and delivery id, the stored body byte
//! for byte), one at a time, at most `--rate` per second, with progress
//! and a final summary. Ctrl-C stops after the delivery in flight.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use boxhook::inbox::{EntryState, ListFilter};
use boxhook::runtime::replay::{Replay, Step, Tally};
use boxhook::runtime::send::{Attempt, RetrySchedule, Simulator};
use boxhook_core::Printable;
use chrono::{DateTime, Utc};

use crate::keys::KeyArgs;

/// Arguments of `boxhook inbox replay`.
#[derive(clap::Args)]
#[command(after_help = "\
Each stored V2 event is sent once (no retries), oldest first, signed with \
the keys from --primary-key/--secondary-key or BOX_PRIMARY_KEY/\
BOX_SECONDARY_KEY, with a fresh BOX-DELIVERY-TIMESTAMP and delivery id and \
the stored body unchanged, so a boxhook receiver verifies it and, knowing \
the event id, stores it at most once. V1 callbacks are skipped (they carry \
no signature to re-create).

Progress: a bar on a terminal; otherwise one plain line per second. Ctrl-C \
stops after the delivery in flight and says how far it got.

Exit status: 0 every event got a 2xx, 1 some did not, 2 usage error, 130 \
stopped by Ctrl-C.

Examples:
  boxhook inbox replay --to http://127.0.0.1:8080/ --trigger FILE.UPLOADED
  boxhook inbox replay --to http://staging:8080/ --since 2h --rate 20")]
pub(crate) struct Args {
    /// The receiver, plain http:// (point it at the receiver, not at its
    /// TLS proxy).
    #[arg(long, value_name = "URL")]
    to: String,
    /// Only events with exactly this trigger, e.g. FILE.UPLOADED.
    #[arg(long, value_name = "T")]
    trigger: Option<String>,
    /// Only events received at or after TIME: RFC 3339
    /// (2026-01-31T12:00:00Z) or an age (90s, 30m, 2h, 7d).
    #[arg(long, value_name = "TIME", value_parser = crate::retention::parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only events in this state: pending, claimed, done or dead.
    #[arg(long, value_name = "S", value_parser = super::parse_state)]
    state: Option<EntryState>,
    /// At most N deliveries per second, 0.01 to 10000 (default: as fast as
    /// the receiver answers).
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    rate: Option<f64>,
    /// How long to wait for each answer, in seconds (Box: 30).
    #[arg(long, value_name = "S", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    timeout: u64,
    /// The store to read: --store URL or --inbox FILE (opened read-only).
    #[command(flatten)]
    store: crate::store::StoreArgs,
    #[command(flatten)]
    pub(crate) keys: crate::keys::KeyArgs,
}

/// Replays, printing progress and a summary.
pub(crate) fn run(keys: &KeyArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let ring = keys.ring()?;
    let target = crate::send::target_uri(&args.to)?;
    let store = args.store.store()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let inbox = crate::store::open_existing(&store).await?;
        let mut filter = ListFilter::new();
        if let Some(trigger) = &args.trigger {
            filter = filter.trigger(trigger.clone());
        }
        if let Some(state) = args.state {
            filter = filter.state(state);
        }
        if let Some(since) = args.since {
            filter = filter.since(since);
        }
        let mut replay = Replay::new(filter);
        if let Some(rate) = args.rate {
            replay = replay.every(Duration::from_secs_f64(1.0 / rate));
        }
        // V1 callbacks cannot be re-signed: counted, not replayed.
        let selection = replay.select(&inbox).await?;
        let skipped = selection.skipped_v1();
        let total = selection.len() as u64;
        eprintln!(
            "replaying {total} event(s) from {} to {}{}",
            store.describe(),
            Printable(&args.to),
            if skipped > 0 {
                format!(" ({skipped} V1 callback(s) skipped: they cannot be re-signed)")
            } else {
                String::new()
            }
        );
        let simulator = Simulator::builder(target, ring)
            .schedule(RetrySchedule::none())
            .timeout(Duration::from_secs(args.timeout))
            .build();
        let mut progress = Progress::new(total);
        let tally = selection
            .send(&inbox, &simulator, tokio::signal::ctrl_c(), |step| {
                progress.step(&step);
            })
            .await?;
        progress.finish();
        let mut out = std::io::stdout().lock();
        if tally.stopped {
            writeln!(
                out,
                "interrupted after {} of {total} event(s): {tally}",
                tally.sent
            )?;
            return Ok(ExitCode::from(130));
        }
        writeln!(out, "replayed {total} event(s): {tally}")?;
        Ok(if tally.ok == total {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// A bar on a terminal, plain lines (at most one a second) otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    rate: Rate,
    last_line: Option<Instant>,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} events  {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            total,
            rate: Rate::default(),
            last_line: None,
        }
    }

    /// Shows one step of the replay: a note for each event not answered
    /// with a 2xx, the bar or a line for each one sent.
    fn step(&mut self, step: &Step<'_>) {
        match step {
            Step::Sending(_) => self.rate.started(Instant::now()),
            Step::Sent {
                entry,
                report,
                tally,
            } => {
                match report.last().map(Attempt::result) {
                    Some(Ok(status)) if !status.is_success() => self.note(&format!(
                        "event {}: HTTP {status}",
                        Printable(&entry.event_id)
                    )),
                    Some(Err(err)) => {
                        self.note(&format!("event {}: {err}", Printable(&entry.event_id)));
                    }
                    Some(Ok(_)) | None => {}
                }
                self.update(tally);
            }
            // Gone (removed since the list): nothing sent.
            _ => {}
        }
    }

    fn update(&mut self, tally: &Tally) {
        let now = Instant::now();
        let rate = self.rate.per_second();
        if let Some(bar) = &self.bar {
            let eta = rate.filter(|rate| *rate > 0.0).map(|rate| {
                // Reason: event counts are far below 2^53.
                #[allow(clippy::cast_precision_loss)]
                let left = self.total.saturating_sub(tally.sent) as f64;
                Duration::try_from_secs_f64(left / rate).unwrap_or(Duration::MAX)
            });
            bar.set_position(tally.sent);
            bar.set_message(format!(
                "{}  ETA {}  2xx {} other {} failed {}",
                shown_rate(rate),
                eta.map_or_else(|| "-".to_owned(), shown_duration),
                tally.ok,
                tally.other,
                tally.failed
            ));
            return;
        }
        // The first line once a second has passed (or at the end): a rate
        // needs more than one delivery.
        let since = self.last_line.or(self.rate.first);
        let due = since.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1));
        if due || tally.sent == self.total {
            self.last_line = Some(now);
            println!(
                "progress {}/{}: {tally}, {}",
                tally.sent,
                self.total,
                shown_rate(rate)
            );
        }
    }

    /// A line about one event, above the bar or among the plain lines.
    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Deliveries per second: the deliveries sent after the first over the
/// time since the first was sent. Counting the first one over the time it
/// took would make it look instantaneous (thousands a second under `--rate
/// 2`), and timing answers rather than sends would count the first
/// connection's setup against the rate.
#[derive(Debug, Default)]
struct Rate {
    first: Option<Instant>,
    last: Option<Instant>,
    count: u64,
}

impl Rate {
    /// A delivery sent at `at`.
    fn started(&mut self, at: Instant) {
        self.first.get_or_insert(at);
        self.last = Some(at);
        self.count = self.count.saturating_add(1);
    }

    /// `None` until two deliveries are apart in time.
    fn per_second(&self) -> Option<f64> {
        let span = self.last?.duration_since(self.first?).as_secs_f64();
        // Reason: event counts are far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        let intervals = self.count.saturating_sub(1) as f64;
        (span > 0.0 && intervals > 0.0).then(|| intervals / span)
    }
}

/// A rate as a person reads it: `437/s`, `2.0/s`, `0.5/s`, or `-/s`
/// before there is one.
fn shown_rate(rate: Option<f64>) -> String {
    match rate {
        Some(rate) if rate >= 9.95 => format!("{rate:.0}/s"),
        Some(rate) => format!("{rate:.1}/s"),
        None => "-/s".to_owned(),
    }
}

/// `42s`, `3m05s`, `2h07m`.
fn shown_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// `--rate`: deliveries per second, 0.01 to 10000.
fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.strip_suffix("/s").unwrap_or(text);
    match text.parse::<f64>() {
        Ok(rate) if (0.01..=10_000.0).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate from 0.01 to 10000 deliveries per second, e.g. 20 or 0.5"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_ages_as_inbox_list_does() {
        let since = |text| crate::retention::parse_time(text);
        assert_eq!(
            since("2026-01-31T12:00:00+01:00").map(|t| t.to_rfc3339()),
            Ok("2026-01-31T11:00:00+00:00".to_owned())
        );
        let age = Utc::now() - since("2h").expect("an age");
        assert!((7199..=7201).contains(&age.num_seconds()), "{age}");
        for bad in [
            "",
            "0s",
            "2",
            "h",
            "2w",
            "-2h",
            "yesterday",
            "99999999999999999d",
        ] {
            assert_eq!(
                since(bad),
                Err(format!(
                    "{bad:?} is neither an RFC 3339 time (2026-01-31T12:00:00Z) nor an age (90s, \
                     30m, 12h, 7d)"
                )),
            );
        }
    }

    #[test]
    fn rates_and_durations_read_as_a_person_reads_them() {
        let cases = [
            (Some(437.1225), "437/s"),
            (Some(9.96), "10/s"),
            (Some(9.94), "9.9/s"),
            (Some(2.0), "2.0/s"),
            (Some(0.5), "0.5/s"),
            (None, "-/s"),
        ];
        for (rate, want) in cases {
            assert_eq!(shown_rate(rate), want, "{rate:?}");
        }
        for (secs, want) in [(42, "42s"), (185, "3m05s"), (7620, "2h07m")] {
            assert_eq!(shown_duration(Duration::from_secs(secs)), want);
        }
    }

    #[test]
    fn the_rate_counts_intervals_not_the_first_delivery() {
        let start = Instant::now();
        let mut rate = Rate::default();
        assert_eq!(rate.per_second(), None);
        rate.started(start);
        assert_eq!(rate.per_second(), None, "one delivery has no rate");
        rate.started(start + Duration::from_millis(500));
        assert_eq!(rate.per_second(), Some(2.0));
        rate.started(start + Duration::from_secs(1));
        assert_eq!(rate.per_second(), Some(2.0));
    }

    #[test]
    fn rate_is_bounded() {
        assert_eq!(parse_rate("20"), Ok(20.0));
        assert_eq!(parse_rate("0.5/s"), Ok(0.5));
        for bad in ["0", "-1", "10001", "NaN", "inf", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
