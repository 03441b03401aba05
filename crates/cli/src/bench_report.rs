//! `moat bench report`: how long `moat report` takes on a large synthetic database.
//!
//! Completions over 30 days by 50 users in 6 languages, each with a `shown` event and,
//! for some, an accept, a partial accept or a dismissal, plus retention checks for the
//! accepted ones, until the database holds the asked number of events. The time measured is
//! what `moat report --by user` does: open, load the range, summarize, render.

use anyhow::Result;
use moat_telemetry::{
    Completion, Dimension, Event, EventKind, Format, Record, Report, Retention, Store,
};
use std::time::Instant;

const DAY: i64 = 86_400_000;
const LANGS: [&str; 6] = ["python", "rust", "go", "typescript", "java", "c"];

pub fn run(events: usize, json: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("telemetry.db");
    let mut store = Store::open(&path)?;
    let t = Instant::now();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let start = 20_000 * DAY;
    let (mut written, mut completions) = (0usize, 0usize);
    let mut batch = Vec::with_capacity(50_000);
    while written < events {
        let id = format!("c{completions}");
        let r = next();
        let time = start + (r % (30 * DAY as u64)) as i64;
        let chars = 5 + (r >> 20) % 120;
        batch.push(Record::Completion(Box::new(Completion {
            id: id.clone(),
            time_ms: time,
            user: format!("dev{}@example.com", (r >> 8) % 50),
            editor: if r % 3 == 0 { "neovim" } else { "vscode" }.into(),
            editor_version: "1".into(),
            repo: "payments".into(),
            language: LANGS[((r >> 12) % 6) as usize].into(),
            model: "qwen2.5-coder-0.5b".into(),
            context: "repo".into(),
            prompt_tokens: 1500,
            latency_ms: 100.0 + ((r >> 30) % 900) as f64,
            chars: chars as u32,
            lines: 1 + (chars / 40) as u32,
            ..Default::default()
        })));
        let event = |kind, dt: i64, chars: Option<u32>| {
            Record::Event(Event {
                completion: id.clone(),
                time_ms: time + dt,
                kind,
                chars,
                visible_ms: None,
            })
        };
        batch.push(event(EventKind::Shown, 10, None));
        written += 1;
        match (r >> 40) % 10 {
            0..=2 => {
                batch.push(event(EventKind::Accepted, 1500, None));
                written += 1;
                for at in moat_telemetry::retention::CHECKPOINTS {
                    batch.push(Record::Retention(Retention {
                        completion: id.clone(),
                        after_s: at,
                        kept: ((r >> (44 + at % 7)) % 2) as f64,
                    }));
                }
            }
            3 => {
                batch.push(event(EventKind::Partial, 1200, Some(chars as u32 / 2)));
                written += 1;
            }
            4 => {
                batch.push(event(EventKind::Dismissed, 900, None));
                written += 1;
            }
            5 => {
                batch.push(event(EventKind::Hidden, 300, None));
                written += 1;
            }
            _ => {}
        }
        completions += 1;
        if batch.len() >= 50_000 {
            store.write(&batch)?;
            batch.clear();
        }
    }
    store.write(&batch)?;
    drop(store);
    let fill_s = t.elapsed().as_secs_f64();
    let size_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;

    let mut runs = Vec::new();
    let mut loads = Vec::new();
    let mut rendered = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let store = Store::open_read_only(&path)?;
        let data = store.load(start, start + 31 * DAY)?;
        loads.push(t.elapsed().as_secs_f64());
        let report = Report::build(&data, start, start + 31 * DAY, Some(Dimension::User), None);
        rendered = report.render(Format::Table).len();
        runs.push(t.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    loads.sort_by(f64::total_cmp);
    let (median, load) = (runs[1], loads[1]);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "events": written, "completions": completions, "db_mb": (size_mb * 10.0).round() / 10.0,
                "fill_s": (fill_s * 100.0).round() / 100.0, "report_s": (median * 1000.0).round() / 1000.0,
                "load_s": (load * 1000.0).round() / 1000.0,
            })
        );
    } else {
        println!("{written} events for {completions} completions ({size_mb:.0} MB), written in {fill_s:.1} s");
        println!("moat report --by user: {median:.2} s, of which loading {load:.2} s (median of 3; {rendered} bytes of table)");
    }
    Ok(())
}
