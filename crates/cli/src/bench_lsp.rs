//! `moat bench lsp FILE`: completion latency through the protocol, as an editor sees it.
//!
//! Drives a real `moat lsp` process over pipes with the file's repository as the workspace.
//! At evenly spaced lines of FILE, the line's code is removed and the cursor put after its
//! indentation. One request there is the cold case. Then the line is typed back character
//! by character at a steady rate: each keystroke sends the edit and a new inline-completion
//! request, and cancels the previous request if it is still unanswered (as VS Code does).
//! Latency is request sent → response received. Keystrokes that type the next character
//! of the completion on screen must be answered by the typing-through cache; the server's
//! counters tell whether the model was called for them.
//!
//! With `--lines N` each site is N consecutive lines, removed together and typed back one
//! after another: after each line an Enter (a newline and the next line's indentation, as
//! an editor's auto-indent types it) and one request at the new line, waited for. That is
//! the next-line case, the one a developer writing new code meets most.

use anyhow::{bail, Context, Result};
use moat_index::Lang;
use moat_lsp::client::{file_uri, Client};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// A file in the repository to complete in.
    file: std::path::PathBuf,
    /// Places to type at.
    #[arg(long, default_value_t = 12)]
    sites: usize,
    /// Consecutive lines typed at each place.
    #[arg(long, default_value_t = 1)]
    lines: usize,
    /// Typing speed, characters per second.
    #[arg(long, default_value_t = 8.0)]
    cps: f64,
    #[arg(long)]
    model: Option<String>,
    /// none, file or repo.
    #[arg(long, default_value = "repo")]
    context: String,
    /// The server's `suffixTokens` (default: the server's own, 64 on a CPU).
    #[arg(long)]
    suffix_tokens: Option<usize>,
    #[arg(long)]
    json: bool,
    /// Write the server's log here (`MOAT_LOG` sets its level).
    #[arg(long)]
    server_log: Option<std::path::PathBuf>,
}

const ANSWER: Duration = Duration::from_secs(60);

fn percentile(v: &[f64], p: f64) -> Option<f64> {
    (!v.is_empty()).then(|| moat_eval::metrics::percentile(v, p))
}

fn utf16_len(s: &str) -> u32 {
    s.encode_utf16().count() as u32
}

/// A response's completion text (empty when there is none, or on an error).
fn first_item(m: &Value) -> String {
    m["result"]["items"][0]["insertText"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn counter(status: &Value, name: &str) -> u64 {
    status["counters"][name].as_u64().unwrap_or(0)
}

/// Lines to type: code after the indentation, long enough to be worth completing, spread
/// evenly over the file.
fn sites(text: &str, n: usize) -> Vec<usize> {
    let candidates: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(i, l)| {
            let code = l.trim();
            *i >= 3 && code.len() >= 8 && !code.starts_with(['#', '/', '*', '"'])
        })
        .map(|(i, _)| i)
        .collect();
    if candidates.len() <= n {
        return candidates;
    }
    (0..n)
        .map(|k| candidates[(2 * k + 1) * candidates.len() / (2 * n)])
        .collect()
}

#[derive(Default)]
struct Figures {
    cold: Vec<f64>,
    cold_empty: usize,
    /// First requests at the line after an Enter.
    next_line: Vec<f64>,
    next_line_empty: usize,
    /// Answered typing requests: (latency ms, from the cache by the counters).
    typing: Vec<f64>,
    typing_model: Vec<f64>,
    keystrokes: usize,
    cancelled: usize,
    /// Keystrokes that typed the next character of the shown completion, and the model
    /// calls made meanwhile while some of the completion was still left to type.
    matched: usize,
    matched_model_calls: u64,
    /// Keystrokes that typed a shown completion's last character (the next suggestion is new
    /// work for the model), and the model calls made meanwhile.
    finished: usize,
    finished_model_calls: u64,
}

pub fn run(a: Args, threads: usize) -> Result<()> {
    let file = a
        .file
        .canonicalize()
        .with_context(|| format!("{}", a.file.display()))?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("{} is not a UTF-8 text file", file.display()))?;
    let lang = Lang::from_path(&file)
        .with_context(|| format!("{}: not a language moat knows", file.display()))?;
    if !(a.cps > 0.0 && a.cps <= 100.0) {
        bail!("--cps must be between 0 and 100");
    }
    if !(1..=50).contains(&a.lines) {
        bail!("--lines must be between 1 and 50");
    }
    let dir = file.parent().context("the file has no directory")?;
    let root = moat_index::git::discover(dir)
        .map(|g| g.root)
        .unwrap_or_else(|| dir.to_path_buf());
    let sites = sites(&text, a.sites);
    if sites.is_empty() {
        bail!("{}: no line of code to type", file.display());
    }

    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["lsp", "--threads", &threads.to_string()]);
    match &a.server_log {
        Some(p) => {
            cmd.stderr(std::fs::File::create(p).with_context(|| format!("{}", p.display()))?)
        }
        None => cmd.stderr(Stdio::null()),
    };
    let mut c = Client::spawn(cmd)?;
    // A synthetic session: not for the user's acceptance reports.
    let mut options = json!({"context": a.context, "telemetry": false});
    if let Some(m) = &a.model {
        options["model"] = json!(m);
    }
    if let Some(n) = a.suffix_tokens {
        options["suffixTokens"] = json!(n);
    }
    c.initialize(&root, options)?;
    let t = Instant::now();
    loop {
        let s = c.status()?;
        match (s["model"]["state"].as_str(), s["index"]["state"].as_str()) {
            (Some("failed"), _) => bail!("the model did not load: {}", s["model"]["error"]),
            (Some("ready"), Some(i)) if i != "indexing" => break,
            _ if t.elapsed() > Duration::from_secs(600) => bail!("not ready after 10 min: {s}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let ready_s = t.elapsed().as_secs_f64();
    let uri = file_uri(&file);
    let mut version = 1;
    c.open(&uri, lang.name(), version, &text)?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let period = Duration::from_secs_f64(1.0 / a.cps);
    let before = c.status()?;
    let mut f = Figures::default();

    for &site in &sites {
        let run = &lines[site..(site + a.lines).min(lines.len())];
        let parts: Vec<(&str, &str, &str)> = run
            .iter()
            .map(|l| {
                let full = l.trim_end_matches(['\n', '\r']);
                let code = full.trim_start();
                (&full[..full.len() - code.len()], code, &l[full.len()..])
            })
            .collect();
        let (indent, _, ending) = parts[0];
        let mut doc: String = lines[..site].concat();
        doc.push_str(indent);
        doc.push_str(ending);
        doc.push_str(&lines[site + run.len()..].concat());
        version += 1;
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": doc}]}),
        )?;
        let mut col = utf16_len(indent);
        // Cold: the first request at a new place.
        let sent = Instant::now();
        let id = c.inline_async(&uri, site as u32, col)?;
        let r = c.wait(id, ANSWER)?;
        f.cold.push(sent.elapsed().as_secs_f64() * 1e3);
        let mut shown = first_item(&r);
        if shown.is_empty() {
            f.cold_empty += 1;
        }
        for (k, &(indent, code, _)) in parts.iter().enumerate() {
            let line = (site + k) as u32;
            if k > 0 {
                // Enter at the end of the line above, auto-indented.
                let ending = parts[k - 1].2;
                let ending = if ending.is_empty() { "\n" } else { ending };
                insert(
                    &mut c,
                    &uri,
                    &mut version,
                    (line - 1, col),
                    &format!("{ending}{indent}"),
                )?;
                col = utf16_len(indent);
                let sent = Instant::now();
                let id = c.inline_async(&uri, line, col)?;
                let r = c.wait(id, ANSWER)?;
                f.next_line.push(sent.elapsed().as_secs_f64() * 1e3);
                shown = first_item(&r);
                if shown.is_empty() {
                    f.next_line_empty += 1;
                }
            }
            type_line(
                &mut c,
                &uri,
                &mut version,
                line,
                &mut col,
                code,
                &mut shown,
                period,
                &mut f,
            )?;
        }
    }
    let after = c.status()?;
    let delta = |k: &str| counter(&after, k) - counter(&before, k);
    let _ = c.shutdown(Duration::from_secs(10));
    report(&a, threads, &file, &f, ready_s, &delta, &after)
}

/// Sends the edit that inserts `text` at `(line, col)`, as the next version.
fn insert(
    c: &mut Client,
    uri: &str,
    version: &mut i32,
    (line, col): (u32, u32),
    text: &str,
) -> Result<()> {
    *version += 1;
    let at = json!({"line": line, "character": col});
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": *version},
            "contentChanges": [{"range": {"start": at, "end": at}, "text": text}],
        }),
    )?;
    Ok(())
}

/// Types `code` at `line` from `col`, a request per keystroke; the previous request is
/// cancelled when still unanswered at the next keystroke, as VS Code does.
#[allow(clippy::too_many_arguments)]
fn type_line(
    c: &mut Client,
    uri: &str,
    version: &mut i32,
    line: u32,
    col: &mut u32,
    code: &str,
    shown: &mut String,
    period: Duration,
    f: &mut Figures,
) -> Result<()> {
    let mut pending: Option<(i64, Instant)> = None;
    let mut next_key = Instant::now() + period;
    for ch in code.chars() {
        // Read answers until the next keystroke is due.
        for (rid, m) in c.poll(next_key)? {
            if let Some((pid, sent)) = pending {
                if pid == rid {
                    let ms = sent.elapsed().as_secs_f64() * 1e3;
                    f.typing.push(ms);
                    f.typing_model.push(ms);
                    *shown = first_item(&m);
                    pending = None;
                }
            }
        }
        if let Some((pid, _)) = pending.take() {
            c.cancel(pid)?;
            f.cancelled += 1;
            shown.clear(); // nothing on screen for the user now
        }
        let matched = shown.starts_with(ch);
        let calls_before = if matched {
            counter(&c.status()?, "model_calls")
        } else {
            0
        };
        insert(c, uri, version, (line, *col), ch.encode_utf8(&mut [0; 4]))?;
        *col += ch.len_utf16() as u32;
        f.keystrokes += 1;
        let sent = Instant::now();
        let id = c.inline_async(uri, line, *col)?;
        next_key += period;
        if matched {
            // The cache answers at once; the model must not have been asked.
            f.matched += 1;
            let r = c.wait(id, ANSWER)?;
            f.typing.push(sent.elapsed().as_secs_f64() * 1e3);
            let expected = shown[ch.len_utf8()..].to_string();
            let calls = counter(&c.status()?, "model_calls") - calls_before;
            if expected.is_empty() {
                f.finished += 1;
                f.finished_model_calls += calls;
            } else {
                f.matched_model_calls += calls;
            }
            *shown = first_item(&r);
            if !expected.is_empty() && *shown != expected {
                tracing::warn!("typed through {expected:?} but got {shown:?}");
            }
        } else {
            pending = Some((id, sent));
        }
    }
    if let Some((pid, sent)) = pending {
        let r = c.wait(pid, ANSWER)?;
        let ms = sent.elapsed().as_secs_f64() * 1e3;
        f.typing.push(ms);
        f.typing_model.push(ms);
        *shown = first_item(&r);
    }
    Ok(())
}

fn report(
    a: &Args,
    threads: usize,
    file: &std::path::Path,
    f: &Figures,
    ready_s: f64,
    delta: &dyn Fn(&str) -> u64,
    status: &Value,
) -> Result<()> {
    let r = |v: Option<f64>| v.map(|x| (x * 10.0).round() / 10.0);
    let out = json!({
        "file": file.display().to_string(),
        "model": status["model"]["model"],
        "threads": threads,
        "context": a.context,
        "suffix_tokens": a.suffix_tokens,
        "chars_per_second": a.cps,
        "ready_s": (ready_s * 10.0).round() / 10.0,
        "sites": f.cold.len(),
        "lines_per_site": a.lines,
        "cold_ms": {"p50": r(percentile(&f.cold, 0.5)), "p95": r(percentile(&f.cold, 0.95)), "empty": f.cold_empty},
        "next_line_ms": {"lines": f.next_line.len(), "p50": r(percentile(&f.next_line, 0.5)), "p95": r(percentile(&f.next_line, 0.95)), "empty": f.next_line_empty},
        "typing_ms": {
            "answered": f.typing.len(),
            "p50": r(percentile(&f.typing, 0.5)),
            "p95": r(percentile(&f.typing, 0.95)),
            "model_p50": r(percentile(&f.typing_model, 0.5)),
            "model_p95": r(percentile(&f.typing_model, 0.95)),
        },
        "keystrokes": f.keystrokes,
        "cancelled_by_client": f.cancelled,
        "typed_through": f.matched,
        "model_calls_while_typing_through": f.matched_model_calls,
        "typed_to_the_end": f.finished,
        "model_calls_after_typing_to_the_end": f.finished_model_calls,
        "server": {
            "requests": delta("requests"),
            "model_calls": delta("model_calls"),
            "typing_cache_hits": delta("typing_cache_hits"),
            "superseded": delta("superseded"),
            "speculative": delta("speculative"),
            "speculative_hits": delta("speculative_hits"),
        },
    });
    if a.json {
        println!("{out}");
        return Ok(());
    }
    let ms = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.0} ms"));
    println!("file       {}", file.display());
    println!(
        "model      {} ({} threads, context {}), ready after {:.1} s",
        status["model"]["model"].as_str().unwrap_or("?"),
        threads,
        a.context,
        ready_s
    );
    println!(
        "cold       {} sites: p50 {}, p95 {} ({} empty)",
        f.cold.len(),
        ms(&out["cold_ms"]["p50"]),
        ms(&out["cold_ms"]["p95"]),
        f.cold_empty
    );
    if !f.next_line.is_empty() {
        println!(
            "next line  {} lines after an Enter: p50 {}, p95 {} ({} empty)",
            f.next_line.len(),
            ms(&out["next_line_ms"]["p50"]),
            ms(&out["next_line_ms"]["p95"]),
            f.next_line_empty
        );
    }
    let t = &out["typing_ms"];
    println!(
        "typing     {} keystrokes at {} chars/s; {} answered: p50 {}, p95 {}; those the model answered: p50 {}, p95 {}",
        f.keystrokes,
        a.cps,
        f.typing.len(),
        ms(&t["p50"]),
        ms(&t["p95"]),
        ms(&t["model_p50"]),
        ms(&t["model_p95"])
    );
    println!(
        "cache      {} keystrokes typed through a shown completion, {} model calls for them while some of it was left ({} typed its last character, {} model calls then); server: {} model calls and {} cache hits for {} requests ({} superseded, {} cancelled by the client)",
        f.matched,
        f.matched_model_calls,
        f.finished,
        f.finished_model_calls,
        delta("model_calls"),
        delta("typing_cache_hits"),
        delta("requests"),
        delta("superseded"),
        f.cancelled
    );
    Ok(())
}
