//! `moat bench index DIR`: how fast the index builds, reloads and follows an edit, next to
//! the limit that tree-sitter parsing alone sets on the same files.

use crate::bench::{cpu_seconds, peak_rss_mb};
use anyhow::{bail, Context, Result};
use moat_index::extract::Extractor;
use moat_index::{persist, walk, Index, WalkOptions};
use rayon::prelude::*;
use serde_json::json;
use std::cell::RefCell;
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    percentile(v, 0.5)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// What the update benchmark types into each open document, a keystroke at a time.
const TYPED: &str = "x = 1";

thread_local! {
    static PARSER: RefCell<Extractor> = RefCell::new(Extractor::new());
}

pub fn run(
    dir: &std::path::Path,
    json_out: bool,
    updates: usize,
    phases: bool,
    runs: usize,
) -> Result<()> {
    let root = dir
        .canonicalize()
        .with_context(|| format!("{}", dir.display()))?;
    if !root.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let (mut fulls, mut parses, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu_ratios = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        // The previous run's index goes first, so that each run starts alike.
        drop(last.take());
        // 1. The whole index, from nothing (as on first start).
        let t = Instant::now();
        let cpu = cpu_seconds();
        let mut idx = Index::new(&root, WalkOptions::default())?;
        let stats = idx.refresh();
        let full_s = t.elapsed().as_secs_f64();
        let full_cpu = cpu.zip(cpu_seconds()).map(|(a, b)| b - a);
        let rss_index = peak_rss_mb();

        // 2. The limit: tree-sitter parsing alone, on the same files already in memory, on
        //    the same threads.
        let texts: Vec<(moat_index::Lang, String)> = idx
            .paths()
            .filter_map(|p| walk::read_source(&root.join(p), &WalkOptions::default()).ok())
            .collect();
        let t = Instant::now();
        let cpu = cpu_seconds();
        let parsed: usize = texts
            .par_iter()
            .map(|(lang, text)| {
                PARSER.with(|p| p.borrow_mut().parse(*lang, text).map_or(0, |_| 1usize))
            })
            .sum();
        let parse_s = t.elapsed().as_secs_f64();
        let parse_cpu = cpu.zip(cpu_seconds()).map(|(a, b)| b - a);
        if let (Some(p), Some(f)) = (parse_cpu, full_cpu) {
            cpu_ratios.push(p / f);
        }
        fulls.push(full_s);
        parses.push(parse_s);
        ratios.push(parse_s / full_s);
        last = Some((idx, stats, rss_index, texts, parsed));
    }
    let (mut idx, stats, rss_index, texts, parsed) = last.expect("at least one run");
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    let (full_s, parse_s, ratio) = (
        median(&mut fulls.clone()),
        median(&mut parses.clone()),
        median(&mut ratios.clone()),
    );
    let stages = phases.then(|| time_stages(&root, &idx, &texts, parse_s));
    drop(texts);

    // 3. Persisted size and reload (load, then a refresh that finds nothing changed).
    let cache = std::env::temp_dir().join(format!("moat-bench-index-{}", std::process::id()));
    let file = persist::index_path(&cache, idx.root());
    persist::save(&idx, &file)?;
    let disk = std::fs::metadata(&file)?.len();
    let t = Instant::now();
    let mut back = persist::load(&root, WalkOptions::default(), &file)?;
    let load_s = t.elapsed().as_secs_f64();
    let again = back.refresh();
    let reload_s = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&cache);
    if again.parsed != 0 {
        bail!(
            "reload re-parsed {} files of an unchanged repository",
            again.parsed
        );
    }

    // 4. One-file updates: an edit to a file under 2,000 lines, as typed in an editor.
    let small: Vec<String> = idx
        .paths()
        .filter(|p| {
            idx.file(p)
                .is_some_and(|f| f.definitions.last().is_none_or(|d| d.end_line < 2000))
        })
        .map(String::from)
        .collect();
    let mut lat = Vec::new();
    let mut typed = Vec::new();
    let step = (small.len() / updates.max(1)).max(1);
    for (n, p) in small.iter().step_by(step).take(updates).enumerate() {
        let Ok((lang, mut text)) = walk::read_source(&root.join(p), &WalkOptions::default()) else {
            continue;
        };
        if text.lines().count() >= 2000 {
            continue;
        }
        text.push_str(&format!("\n// edit {n}\n"));
        let t = Instant::now();
        idx.update_text(p, lang, &text);
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        // Then keystrokes in the now open document, at the start of its middle line: each
        // re-parses from the previous tree.
        // (By bytes: the middle byte may be inside a character; a newline never is.)
        let middle = text.len() / 2;
        let mut at = text.as_bytes()[..middle]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        for c in TYPED.chars() {
            text.insert(at, c);
            at += c.len_utf8();
            let t = Instant::now();
            idx.update_text(p, lang, &text);
            typed.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let p50_p95 = |v: &mut Vec<f64>| {
        if v.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (percentile(v, 0.5), percentile(v, 0.95))
        }
    };
    let (p50, p95) = p50_p95(&mut lat);
    let (typed50, typed95) = p50_p95(&mut typed);
    let mb = bytes as f64 / 1e6;
    let r2 = |v: &[f64]| {
        v.iter()
            .map(|x| (x * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    };
    if json_out {
        println!(
            "{}",
            json!({
                "dir": root.display().to_string(),
                "threads": rayon::current_num_threads(),
                "files": stats.files,
                "mb": (mb * 10.0).round() / 10.0,
                "definitions": stats.definitions,
                "chunks": stats.chunks,
                "skipped": stats.skipped,
                "full_index_s": (full_s * 100.0).round() / 100.0,
                "full_index_mb_s": (mb / full_s * 10.0).round() / 10.0,
                "parse_only_s": (parse_s * 100.0).round() / 100.0,
                "parse_only_mb_s": (mb / parse_s * 10.0).round() / 10.0,
                "index_vs_parse_speed": (ratio * 100.0).round() / 100.0,
                "runs": {"full_index_s": r2(&fulls), "parse_only_s": r2(&parses),
                         "index_vs_parse_speed": r2(&ratios),
                         "index_vs_parse_cpu": r2(&cpu_ratios)},
                "index_vs_parse_cpu": (!cpu_ratios.is_empty())
                    .then(|| (median(&mut cpu_ratios.clone()) * 100.0).round() / 100.0),
                "parsed_files": parsed,
                "peak_rss_mb_after_index": rss_index.map(f64::round),
                "on_disk_mb": (disk as f64 / 1e5).round() / 10.0,
                "load_s": (load_s * 1000.0).round() / 1000.0,
                "reload_with_refresh_s": (reload_s * 1000.0).round() / 1000.0,
                "update_ms_p50": (p50 * 100.0).round() / 100.0,
                "update_ms_p95": (p95 * 100.0).round() / 100.0,
                "updates": lat.len(),
                "keystroke_ms_p50": (typed50 * 100.0).round() / 100.0,
                "keystroke_ms_p95": (typed95 * 100.0).round() / 100.0,
                "keystrokes": typed.len(),
                "phases": stages,
            })
        );
    } else {
        println!(
            "{} ({} threads)",
            root.display(),
            rayon::current_num_threads()
        );
        println!(
            "{} files, {mb:.1} MB, {} definitions, {} chunks; skipped {:?}",
            stats.files, stats.definitions, stats.chunks, stats.skipped
        );
        println!(
            "full index   {full_s:.2} s ({:.1} MB/s); tree-sitter parsing alone {parse_s:.2} s ({:.1} MB/s): {ratio:.2}x",
            mb / full_s,
            mb / parse_s
        );
        if fulls.len() > 1 {
            println!(
                "             medians of {} alternated runs; full {:?} s, parsing {:?} s, ratios {:?}; by CPU time {:?}",
                fulls.len(),
                r2(&fulls),
                r2(&parses),
                r2(&ratios),
                r2(&cpu_ratios)
            );
        }
        if let Some(r) = rss_index {
            println!("peak RSS     {r:.0} MB");
        }
        println!(
            "on disk      {:.1} MB; load {load_s:.3} s, load + refresh {reload_s:.3} s",
            disk as f64 / 1e6
        );
        println!(
            "update       p50 {p50:.2} ms, p95 {p95:.2} ms over {} files",
            lat.len()
        );
        println!(
            "keystroke    p50 {typed50:.2} ms, p95 {typed95:.2} ms over {} keystrokes in those files",
            typed.len()
        );
        if let Some(s) = &stages {
            println!("stages alone (wall s, on the same threads): {s}");
        }
    }
    Ok(())
}

/// Each stage of indexing alone over the same files, on the same threads (wall seconds):
/// the full index's time above parsing is spread over these, and the filing and tables.
fn time_stages(
    root: &std::path::Path,
    idx: &Index,
    texts: &[(moat_index::Lang, String)],
    parse_s: f64,
) -> serde_json::Value {
    let time = |f: &(dyn Fn() -> usize + Sync)| {
        let t = Instant::now();
        let n = f();
        (t.elapsed().as_secs_f64(), n)
    };
    let paths: Vec<String> = idx.paths().map(String::from).collect();
    let (read_s, _) = time(&|| {
        paths
            .par_iter()
            .filter_map(|p| walk::read_source(&root.join(p), &WalkOptions::default()).ok())
            .map(|(_, t)| t.len())
            .sum()
    });
    // One stage over every text in parallel: its wall time and the sum of what it counted.
    let each = |f: &(dyn Fn(moat_index::Lang, &str, &mut Extractor) -> usize + Sync)| {
        time(&|| {
            texts
                .par_iter()
                .map(|(lang, text)| PARSER.with(|p| f(*lang, text, &mut p.borrow_mut())))
                .sum()
        })
    };
    let (hash_s, _) = each(&|_, t, _| moat_index::content_hash(t.as_bytes())[0] as usize);
    let (walk_s, nodes) = each(&|lang, t, p| {
        p.parse(lang, t)
            .map_or(0, |tree| moat_index::extract::count_nodes(&tree))
    });
    let (extract_s, _) = each(&|lang, t, p| p.extract(lang, t).map_or(0, |s| s.definitions.len()));
    let (chunks_s, _) = each(&|_, t, _| moat_index::similar::chunks(t).chunks.len());
    let r = |x: f64| (x * 100.0).round() / 100.0;
    json!({
        "read_and_vet_s": r(read_s),
        "hash_s": r(hash_s),
        "parse_s": r(parse_s),
        "parse_and_walk_s": r(walk_s),
        "parse_and_extract_s": r(extract_s),
        "chunks_s": r(chunks_s),
        "nodes": nodes,
    })
}
