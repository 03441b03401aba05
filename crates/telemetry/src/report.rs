//! Reports: the summary of a time range, overall and per group, as a table, JSON or CSV.

use crate::committed::{Key, Lines};
use crate::error::{Result, TelemetryError};
use crate::metrics::{aggregate, ByCompletion, Judged, Summary};
use crate::record::Completion;
use crate::retention::CHECKPOINTS;
use crate::store::Loaded;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    User,
    Language,
    Editor,
    Model,
    Repo,
    Day,
}

impl Dimension {
    pub fn from_name(s: &str) -> Result<Self> {
        Ok(match s {
            "user" => Self::User,
            "language" => Self::Language,
            "editor" => Self::Editor,
            "model" => Self::Model,
            "repo" => Self::Repo,
            "day" => Self::Day,
            _ => {
                return Err(TelemetryError::Invalid(format!(
                    "--by takes user, language, editor, model, repo or day, not {s}"
                )))
            }
        })
    }

    /// The group of committed lines, for the dimensions they have.
    fn committed_key(self, k: &Key) -> Option<&str> {
        match self {
            Self::User => Some(&k.user),
            Self::Language => Some(&k.language),
            Self::Repo => Some(&k.repo),
            Self::Day => Some(&k.day),
            Self::Editor | Self::Model => None,
        }
    }

    fn key(self, c: &Completion) -> Cow<'_, str> {
        match self {
            Self::User => Cow::Borrowed(&c.user),
            Self::Language => Cow::Borrowed(&c.language),
            Self::Editor => Cow::Borrowed(&c.editor),
            Self::Model => Cow::Borrowed(&c.model),
            Self::Repo => Cow::Borrowed(&c.repo),
            Self::Day => Cow::Owned(day(c.time_ms)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
    /// One self-contained page with charts (`html`).
    Html,
}

impl Format {
    pub fn from_name(s: &str) -> Result<Self> {
        Ok(match s {
            "table" => Self::Table,
            "json" => Self::Json,
            "csv" => Self::Csv,
            "html" => Self::Html,
            _ => {
                return Err(TelemetryError::Invalid(format!(
                    "--format takes table, json, csv or html, not {s}"
                )))
            }
        })
    }
}

/// A time as the report's options take it: a span back from `now_ms` (`30d`, `12h`, `45m`)
/// or a UTC date (`2026-11-01`, its start). Unix milliseconds.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64> {
    let bad = || {
        TelemetryError::Invalid(format!(
            "`{s}` is neither a span back from now (30d, 12h, 45m) nor a date (YYYY-MM-DD)"
        ))
    };
    let s = s.trim();
    if let Some((n, unit)) = s
        .char_indices()
        .last()
        .and_then(|(i, u)| Some((s[..i].parse::<i64>().ok()?, u)))
    {
        let ms = match unit {
            'd' => 86_400_000,
            'h' => 3_600_000,
            'm' => 60_000,
            _ => return Err(bad()),
        };
        return Ok(now_ms - n.max(0) * ms);
    }
    let date = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
    Ok(date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis())
}

/// `YYYY-MM-DD` (UTC) of a unix time in milliseconds.
pub fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "?".into())
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub key: String,
    #[serde(flatten)]
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub since: String,
    pub until: String,
    pub by: Option<Dimension>,
    pub total: Summary,
    pub groups: Vec<Group>,
}

/// The report of `data` in `format`; the HTML page also charts it per day, language,
/// editor and user.
pub fn render(
    data: &Loaded,
    since_ms: i64,
    until_ms: i64,
    by: Option<Dimension>,
    committed: Option<&HashMap<Key, Lines>>,
    format: Format,
) -> String {
    let build = |by| Report::build(data, since_ms, until_ms, by, committed);
    let table = build(by);
    if format != Format::Html {
        return table.render(format);
    }
    crate::html::render(&crate::html::Page {
        table: &table,
        by_day: &build(Some(Dimension::Day)),
        by_language: &build(Some(Dimension::Language)),
        by_editor: &build(Some(Dimension::Editor)),
        by_user: &build(Some(Dimension::User)),
    })
}

impl Report {
    /// `committed`: the attributed lines of the repositories read (`committed::attribute`),
    /// `None` when none was.
    pub fn build(
        data: &Loaded,
        since_ms: i64,
        until_ms: i64,
        by: Option<Dimension>,
        committed: Option<&HashMap<Key, Lines>>,
    ) -> Self {
        let by_completion = ByCompletion::new(&data.completions, &data.events, &data.retention);
        let judged: Vec<Judged> = by_completion.judge_all();
        let all: Vec<&Judged> = judged.iter().collect();
        let mut total = aggregate(&all);
        let mut groups: HashMap<Cow<str>, Vec<&Judged>> = HashMap::new();
        if let Some(by) = by {
            for j in &all {
                groups.entry(by.key(j.completion)).or_default().push(j);
            }
        }
        let mut groups: Vec<Group> = groups
            .into_iter()
            .map(|(key, js)| Group {
                key: key.into_owned(),
                summary: aggregate(&js),
            })
            .collect();
        if let Some(committed) = committed {
            total.add_committed(Lines::default());
            // Groups of a dimension commits have start at zero committed lines; the others
            // (editor, model) show none.
            if by.is_some_and(|b| b.committed_key(&Key::default()).is_some()) {
                for g in &mut groups {
                    g.summary.add_committed(Lines::default());
                }
            }
            for (k, lines) in committed {
                total.add_committed(*lines);
                let Some(key) = by.and_then(|by| by.committed_key(k)) else {
                    continue;
                };
                match groups.iter_mut().find(|g| g.key == key) {
                    Some(g) => g.summary.add_committed(*lines),
                    None => {
                        let mut summary = Summary::default();
                        summary.add_committed(*lines);
                        groups.push(Group {
                            key: key.to_string(),
                            summary,
                        });
                    }
                }
            }
        }
        groups.sort_by(|a, b| a.key.cmp(&b.key));
        Self {
            since: day(since_ms),
            until: day(until_ms),
            by,
            total,
            groups,
        }
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string_pretty(self).expect("a report serializes"),
            Format::Csv => self.csv(),
            Format::Table => self.table(),
            Format::Html => {
                let none = Self::build(&Loaded::default(), 0, 0, None, None);
                crate::html::render(&crate::html::Page {
                    table: self,
                    by_day: &none,
                    by_language: &none,
                    by_editor: &none,
                    by_user: &none,
                })
            }
        }
    }

    fn rows(&self) -> Vec<(String, &Summary)> {
        let mut rows: Vec<(String, &Summary)> = self
            .groups
            .iter()
            .map(|g| (g.key.clone(), &g.summary))
            .collect();
        rows.push(("total".into(), &self.total));
        rows
    }

    fn csv(&self) -> String {
        let mut out = String::from(
            "group,completions,shown,accepted,acceptance_rate,shown_chars,accepted_chars,char_acceptance_rate,accepted_lines,partially_accepted,dismissed",
        );
        for at in CHECKPOINTS {
            out.push_str(&format!(",retention_{at}s"));
        }
        out.push_str(
            ",latency_p50_ms,latency_p95_ms,committed_lines,committed_from_moat,committed_share\n",
        );
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
        for (key, s) in self.rows() {
            out.push_str(&format!(
                "{},{},{},{:.2},{},{},{:.0},{},{:.1},{},{}",
                csv_field(&key),
                s.completions,
                s.shown,
                s.accepted,
                opt(s.acceptance_rate),
                s.shown_chars,
                s.accepted_chars,
                opt(s.char_acceptance_rate),
                s.accepted_lines,
                s.partially_accepted,
                s.dismissed
            ));
            for at in CHECKPOINTS {
                out.push_str(&format!(",{}", opt(s.retention.get(&at).copied())));
            }
            let count = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
            out.push_str(&format!(
                ",{},{},{},{},{}\n",
                opt(s.latency_p50_ms),
                opt(s.latency_p95_ms),
                count(s.committed_lines),
                count(s.committed_from_moat),
                opt(s.committed_share)
            ));
        }
        out
    }

    fn table(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
        let ms = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.0}"));
        let mut lines = vec![format!(
            "moat report, {} to {} (UTC days; shown = visible ≥ 750 ms)",
            self.since, self.until
        )];
        let head = [
            "group",
            "made",
            "shown",
            "accepted",
            "rate",
            "char rate",
            "lines",
            "kept 30s",
            "2m",
            "5m",
            "10m",
            "p50 ms",
            "p95 ms",
            "committed",
            "by moat",
        ];
        let mut table: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
        for (key, s) in self.rows() {
            let mut row = vec![
                key,
                s.completions.to_string(),
                s.shown.to_string(),
                format!("{:.1}", s.accepted),
                pct(s.acceptance_rate),
                pct(s.char_acceptance_rate),
                format!("{:.0}", s.accepted_lines),
            ];
            for at in CHECKPOINTS {
                row.push(pct(s.retention.get(&at).copied()));
            }
            row.push(ms(s.latency_p50_ms));
            row.push(ms(s.latency_p95_ms));
            row.push(s.committed_lines.map_or("-".into(), |n| n.to_string()));
            row.push(pct(s.committed_share));
            table.push(row);
        }
        let widths: Vec<usize> = (0..head.len())
            .map(|i| {
                table
                    .iter()
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &table {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("{c:<w$}", w = widths[i])
                    } else {
                        format!("{c:>w$}", w = widths[i])
                    }
                })
                .collect();
            lines.push(cells.join("  ").trim_end().to_string());
        }
        lines.join("\n") + "\n"
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_spans_or_dates() {
        let now = 1_000 * 86_400_000;
        assert_eq!(parse_time("30d", now).unwrap(), now - 30 * 86_400_000);
        assert_eq!(parse_time("12h", now).unwrap(), now - 12 * 3_600_000);
        assert_eq!(parse_time("1970-01-02", now).unwrap(), 86_400_000);
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("30x", now).is_err());
        assert_eq!(day(86_400_000), "1970-01-02");
    }
}
