//! The last 30 nights of a feed as an inline SVG bar chart drawn by the
//! server (no chart library, nothing to load): one stacked bar per night
//! (inserted, updated, rejected), the rows read as a tick above it.

use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::store::runs::Night;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
const NIGHTS: i64 = 30;

/// The chart of the nights ending on `last` (included); `labels`:
/// inserted, updated, rejected, rows, and the chart's title.
pub fn nights_svg(nights: &[Night], last: NaiveDate, labels: [&str; 5]) -> String {
    let max = nights.iter().map(|n| n.rows.max(n.inserted + n.updated + n.rejected)).max().unwrap_or(0).max(1) as f64;
    let slot = WIDTH / NIGHTS as f64;
    let bar = slot * 0.7;
    let esc = |s: &str| html_escape::encode_text(s).into_owned();
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {}\" width=\"{WIDTH}\" height=\"{}\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        HEIGHT + 18.0,
        HEIGHT + 18.0,
        esc(labels[4])
    );
    let _ = write!(svg, "<line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\" stroke=\"#b9c0cc\"/>");
    for i in 0..NIGHTS {
        let day = last - chrono::Duration::days(NIGHTS - 1 - i);
        let x = i as f64 * slot + (slot - bar) / 2.0;
        if let Some(n) = nights.iter().find(|n| n.day == day) {
            let mut y = HEIGHT;
            let title = format!(
                "{day}: {} {}, {} {}, {} {}, {} {}",
                n.rows, labels[3], n.inserted, labels[0], n.updated, labels[1], n.rejected, labels[2]
            );
            let _ = write!(svg, "<g><title>{}</title>", esc(&title));
            for (value, colour) in [(n.inserted, "#12b76a"), (n.updated, "#2e90fa"), (n.rejected, "#f04438")] {
                let h = value as f64 / max * (HEIGHT - 4.0);
                if h > 0.0 {
                    y -= h;
                    let _ = write!(
                        svg,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{colour}\"/>"
                    );
                }
            }
            let rows_y = HEIGHT - n.rows as f64 / max * (HEIGHT - 4.0);
            let _ = write!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{rows_y:.1}\" x2=\"{:.1}\" y2=\"{rows_y:.1}\" stroke=\"#1d2330\" stroke-width=\"2\"/></g>",
                x + bar
            );
        }
        if (NIGHTS - 1 - i) % 7 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" fill=\"#5b6475\">{}</text>",
                x,
                HEIGHT + 14.0,
                day.format("%d.%m")
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_night_is_a_bar_whose_parts_add_up_to_its_rows_and_an_empty_night_draws_nothing() {
        let last = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let nights = [Night { day: last, rows: 100, inserted: 50, updated: 40, rejected: 10 }];
        let svg = nights_svg(&nights, last, ["inserted", "updated", "rejected", "rows", "30 nights"]);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("<title>2026-12-04: 100 rows, 50 inserted, 40 updated, 10 rejected</title>"), "{svg}");
        let empty = nights_svg(&[], last, ["i", "u", "r", "rows", "<b>"]);
        assert_eq!(empty.matches("<rect").count(), 0);
        assert!(empty.contains("aria-label=\"&lt;b&gt;\""), "labels are escaped");
    }
}
