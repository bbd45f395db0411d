//! `--retain-done`, `--retain-dead`, `--retain-v1` and `--retain-keys`: how
//! long `serve` and `work` keep what the inbox has finished with, and the
//! duration syntax they (and `boxhook inbox prune --older-than`) share:
//! `90s`, `30m`, `12h`, `30d`, or `forever`.
//!
//! Every value is checked by clap while the arguments are parsed, so a bad
//! one is a usage error (exit 2) naming the flag and the accepted forms,
//! before any store is opened.

use std::time::Duration;

use boxhook::inbox::{Retention, MIN_KEEP_KEYS};
use chrono::{DateTime, Utc};

/// The longest duration accepted: 100 years, far past any retention and
/// still a time `chrono` can subtract from now.
const MAX_SECS: u64 = 36_500 * 86_400;

/// The accepted forms, for error messages.
const FORMS: &str = "a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)";

/// How long the inbox keeps one kind of finished event, from its
/// `received_at`: `serve` and `work` prune it once that has passed.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Retention")]
#[allow(
    clippy::struct_field_names,
    reason = "the fields are the --retain-* flags, named as the user types them"
)]
pub(crate) struct RetentionArgs {
    /// How long done events are kept, counted from when they were received:
    /// 90s, 30m, 12h, 30d, or forever (never pruned).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_keep)]
    retain_done: Keep,
    /// How long dead events are kept (they wait for `boxhook inbox requeue`):
    /// 90s, 30m, 12h, 30d, or forever.
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_keep)]
    retain_dead: Keep,
    /// How long V1 callbacks are kept once done or dead: 90s, 30m, 12h, 30d,
    /// or forever.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_keep)]
    retain_v1: Keep,
    /// How long the deduplication key of a pruned event is kept, counted
    /// from when it was received, so that Box's late retries are still
    /// answered as duplicates: at least 1d (Box retries for about 2 hours).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_keys)]
    retain_keys: Duration,
}

impl RetentionArgs {
    /// The retention these flags give.
    pub(crate) fn retention(&self) -> Retention {
        Retention::nothing()
            .done(self.retain_done.0)
            .dead(self.retain_dead.0)
            .v1(self.retain_v1.0)
            .keys(self.retain_keys)
    }
}

/// A duration or `forever` (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Keep(pub(crate) Option<Duration>);

/// `DURATION`: `90s`, `30m`, `12h`, `30d` (1 second to 100 years).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let per: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} is not a duration: use {FORMS}")),
    };
    let secs = number
        .parse::<u64>()
        .map_err(|_| format!("{text:?} is not a duration: use {FORMS}"))?;
    if secs == 0 {
        return Err(format!(
            "{text:?} is zero: give at least 1s (or forever to keep everything)"
        ));
    }
    match secs.checked_mul(per) {
        Some(total) if total <= MAX_SECS => Ok(Duration::from_secs(total)),
        _ => Err(format!(
            "{text:?} is over 100 years: give at most 36500d, or forever"
        )),
    }
}

/// `DURATION` or `forever`.
pub(crate) fn parse_keep(text: &str) -> Result<Keep, String> {
    if text == "forever" {
        return Ok(Keep(None));
    }
    parse_duration(text)
        .map(|d| Keep(Some(d)))
        .map_err(|err| format!("{err}, or forever"))
}

/// `--retain-keys`: a duration of at least [`MIN_KEEP_KEYS`].
pub(crate) fn parse_keys(text: &str) -> Result<Duration, String> {
    if text == "forever" {
        return Err(
            "keys of pruned events must expire: give a duration of at least 1d, e.g. 7d or 365d"
                .to_owned(),
        );
    }
    let keys = parse_duration(text)?;
    if keys < MIN_KEEP_KEYS {
        return Err(format!(
            "{text:?} is shorter than 1d: a key must outlive Box's retries (about 2 hours, \
             which Box may lengthen); give 1d or more, e.g. 7d"
        ));
    }
    Ok(keys)
}

/// `TIME`: RFC 3339 (`2026-01-31T12:00:00Z`), or an age before now
/// (`90s`, `30m`, `12h`, `7d`).
pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let age = parse_duration(text).map_err(|_| {
        format!(
            "{text:?} is neither an RFC 3339 time (2026-01-31T12:00:00Z) nor an age (90s, 30m, \
             12h, 7d)"
        )
    })?;
    Retention::cutoff(Utc::now(), Some(age)).ok_or_else(|| format!("{text:?} is out of range"))
}

/// A duration as the flags take it: the largest unit that divides it
/// exactly (`30d`, `12h`, `90s`), or `forever`.
pub(crate) fn show(keep: Option<Duration>) -> String {
    let Some(keep) = keep else {
        return "forever".to_owned();
    };
    let secs = keep.as_secs();
    for (per, unit) in [(86_400, 'd'), (3600, 'h'), (60, 'm')] {
        if secs > 0 && secs % per == 0 {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

/// The whole retention on one line, for logs and the dashboard.
pub(crate) fn describe(retention: &Retention) -> String {
    format!(
        "done {}, dead {}, v1 {}, keys {}",
        show(retention.done),
        show(retention.dead),
        show(retention.v1),
        show(Some(retention.keys))
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    const DAY: u64 = 86_400;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        retention: RetentionArgs,
    }

    fn parse(args: &[&str]) -> Result<Retention, String> {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .map(|cli| cli.retention.retention())
            .map_err(|err| err.to_string())
    }

    #[test]
    fn durations_take_seconds_minutes_hours_and_days() {
        let cases: &[(&str, u64)] = &[
            ("1s", 1),
            ("90s", 90),
            ("30m", 1800),
            ("12h", 43_200),
            ("30d", 30 * DAY),
            ("36500d", 36_500 * DAY),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(*secs)),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_durations_say_what_is_accepted() {
        let cases: &[(&str, &str)] = &[
            ("", "\"\" is not a duration: use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)"),
            ("30", "\"30\" is not a duration: use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)"),
            ("d", "\"d\" is not a duration: use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)"),
            ("2w", "\"2w\" is not a duration: use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)"),
            ("-1d", "\"-1d\" is not a duration: use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)"),
            ("1.5h", "\"1.5h\" is not a duration: use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)"),
            (" 1d", "\" 1d\" is not a duration: use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)"),
            ("0s", "\"0s\" is zero: give at least 1s (or forever to keep everything)"),
            ("36501d", "\"36501d\" is over 100 years: give at most 36500d, or forever"),
            ("99999999999999999999d", "\"99999999999999999999d\" is not a duration: use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d)"),
            ("9999999999999999999d", "\"9999999999999999999d\" is over 100 years: give at most 36500d, or forever"),
        ];
        for (text, message) in cases {
            assert_eq!(parse_duration(text), Err((*message).to_owned()), "{text:?}");
        }
    }

    #[test]
    fn forever_keeps_and_shows_as_forever() {
        assert_eq!(parse_keep("forever"), Ok(Keep(None)));
        assert_eq!(parse_keep("1h"), Ok(Keep(Some(Duration::from_secs(3600)))));
        assert_eq!(
            parse_keep("never"),
            Err(
                "\"never\" is not a duration: use a whole number and a unit: s, m, h or d \
                 (90s, 30m, 12h, 30d), or forever"
                    .to_owned()
            )
        );
        assert_eq!(show(None), "forever");
        assert_eq!(show(Some(Duration::from_secs(30 * DAY))), "30d");
        assert_eq!(show(Some(Duration::from_secs(36 * 3600))), "36h");
        assert_eq!(show(Some(Duration::from_secs(90))), "90s");
        assert_eq!(show(Some(Duration::from_secs(120))), "2m");
        assert_eq!(show(Some(Duration::ZERO)), "0s");
    }

    #[test]
    fn the_defaults_are_30_90_30_and_7_days() {
        assert_eq!(parse(&[]), Ok(Retention::default()));
        assert_eq!(
            describe(&Retention::default()),
            "done 30d, dead 90d, v1 30d, keys 7d"
        );
    }

    #[test]
    fn each_flag_sets_its_state() {
        let got = parse(&[
            "--retain-done",
            "12h",
            "--retain-dead",
            "forever",
            "--retain-v1",
            "90s",
            "--retain-keys",
            "2d",
        ])
        .expect("valid");
        assert_eq!(
            got,
            Retention {
                done: Some(Duration::from_secs(43_200)),
                dead: None,
                v1: Some(Duration::from_secs(90)),
                keys: Duration::from_secs(2 * DAY),
            }
        );
        assert_eq!(describe(&got), "done 12h, dead forever, v1 90s, keys 2d");
    }

    #[test]
    fn a_bad_value_names_its_flag_and_the_forms() {
        let err = parse(&["--retain-dead", "3 days"]).expect_err("refused");
        assert!(
            err.starts_with(
                "error: invalid value '3 days' for '--retain-dead <DURATION>': \"3 days\" is not \
                 a duration: use a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d), \
                 or forever"
            ),
            "{err}"
        );
    }

    #[test]
    fn keys_are_kept_at_least_a_day_and_never_forever() {
        assert_eq!(
            parse(&["--retain-keys", "1d"]).map(|r| r.keys),
            Ok(MIN_KEEP_KEYS)
        );
        let short = parse(&["--retain-keys", "23h"]).expect_err("refused");
        assert!(
            short.contains(
                "'--retain-keys <DURATION>': \"23h\" is shorter than 1d: a key must outlive \
                 Box's retries"
            ),
            "{short}"
        );
        let forever = parse(&["--retain-keys", "forever"]).expect_err("refused");
        assert!(
            forever.contains("keys of pruned events must expire"),
            "{forever}"
        );
    }

    #[test]
    fn times_are_rfc_3339_or_ages() {
        assert_eq!(
            parse_time("2026-01-31T12:00:00+01:00").map(|t| t.to_rfc3339()),
            Ok("2026-01-31T11:00:00+00:00".to_owned())
        );
        let age = Utc::now() - parse_time("2h").expect("an age");
        assert!((7199..=7201).contains(&age.num_seconds()), "{age}");
        assert_eq!(
            parse_time("yesterday"),
            Err(
                "\"yesterday\" is neither an RFC 3339 time (2026-01-31T12:00:00Z) nor an age \
                 (90s, 30m, 12h, 7d)"
                    .to_owned()
            )
        );
    }
}
