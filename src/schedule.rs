//! Feed schedules: a cron expression (6 fields with seconds, or 5) in an
//! IANA timezone, evaluated by croner so daylight-saving nights are right: a
//! 02:30 run happens once on the spring-forward night (at 03:00, as Vixie
//! cron) and once on the fall-back night.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

#[derive(Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    expr: String,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?} in {})", self.expr, self.tz)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression {expr:?}: {detail}")]
    Cron { expr: String, detail: String },
    #[error("unknown timezone {0:?}: use an IANA name such as Europe/Zurich or America/Montreal")]
    Timezone(String),
}

impl Schedule {
    pub fn parse(expr: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let tz: Tz = timezone.parse().map_err(|_| ScheduleError::Timezone(timezone.to_owned()))?;
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(ScheduleError::Cron {
                expr: expr.to_owned(),
                detail: format!("{fields} fields; use 6 (sec min hour dom mon dow) or 5 (min hour dom mon dow)"),
            });
        }
        // Years are disallowed so that 6 fields always mean "with seconds".
        let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
        let cron =
            parser.parse(expr).map_err(|e| ScheduleError::Cron { expr: expr.to_owned(), detail: e.to_string() })?;
        Ok(Schedule { cron, tz, expr: expr.to_owned() })
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&Utc))
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    fn runs_between(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
        let mut out = Vec::new();
        let mut t = from;
        while let Some(next) = s.next_after(t) {
            if next > to {
                break;
            }
            out.push(next.with_timezone(&s.tz).format("%Y-%m-%d %H:%M:%S %Z").to_string());
            t = next;
        }
        out
    }

    fn utc(tz: Tz, y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        tz.from_local_datetime(&NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, 0, 0).unwrap())
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_0230_run_happens_once_on_the_spring_forward_night_in_zurich_and_montreal() {
        for (zone, day) in [("Europe/Zurich", 29), ("America/Montreal", 8)] {
            let s = Schedule::parse("0 30 2 * * *", zone).unwrap();
            let tz = s.timezone();
            // Both switch in March 2026: Zurich on the 29th, Montreal on the 8th.
            let runs = runs_between(&s, utc(tz, 2026, 3, day - 1, 12), utc(tz, 2026, 3, day + 1, 12));
            assert_eq!(runs.len(), 2, "{zone}: {runs:?}");
            assert!(runs[0].contains(" 03:00:00"), "{zone}: the skipped 02:30 runs at 03:00: {runs:?}");
            assert!(runs[1].contains(" 02:30:00"), "{zone}: {runs:?}");
        }
    }

    #[test]
    fn a_0230_run_happens_once_on_the_fall_back_night_in_zurich_and_montreal() {
        for (zone, month, day, start_hour) in [("Europe/Zurich", 10, 25, 0), ("America/Montreal", 11, 1, 0)] {
            let s = Schedule::parse("0 30 2 * * *", zone).unwrap();
            let tz = s.timezone();
            // Montreal repeats 01:00-02:00, Zurich 02:00-03:00: use a 01:30 run too.
            let runs = runs_between(&s, utc(tz, 2026, month, day, start_hour), utc(tz, 2026, month, day, 12));
            assert_eq!(runs.len(), 1, "{zone}: {runs:?}");
            let s = Schedule::parse("0 30 1 * * *", zone).unwrap();
            let runs = runs_between(&s, utc(tz, 2026, month, day, start_hour), utc(tz, 2026, month, day, 12));
            assert_eq!(runs.len(), 1, "{zone} 01:30: {runs:?}");
        }
    }

    #[test]
    fn five_field_expressions_and_sunday_as_zero_are_accepted() {
        let s = Schedule::parse("30 2 * * 0", "Europe/Zurich").unwrap();
        let next = s.next_after(Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()).unwrap();
        let local = next.with_timezone(&s.timezone());
        assert_eq!(local.format("%a %H:%M").to_string(), "Sun 02:30");
    }

    #[test]
    fn bad_expressions_and_timezones_are_refused_with_the_reason() {
        assert!(matches!(Schedule::parse("0 30 25 * * *", "UTC"), Err(ScheduleError::Cron { .. })));
        assert!(matches!(Schedule::parse("* * *", "UTC"), Err(ScheduleError::Cron { .. })));
        assert!(matches!(Schedule::parse("0 30 2 * * *", "Mars/Olympus"), Err(ScheduleError::Timezone(_))));
    }
}
