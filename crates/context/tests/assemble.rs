//! Prompt assembly against a real index and a real (tiny) tokenizer: budgets are exact,
//! ordering is stable, the in-file window is never repeated, and the definitions the cursor
//! needs are there.

use moat_context::{
    Assembled, Assembler, Budget, ContextMemo, ContextMode, ContextStyle, RecentEdit, Request,
};
use moat_engine::tiny::{write_tiny_model, TinySpec};
use moat_engine::{fim, Engine, EngineOptions};
use moat_index::{Index, Lang, WalkOptions};
use std::path::Path;

fn engine(dir: &Path) -> Engine {
    let model = dir.join("tiny.gguf");
    write_tiny_model(&model, &TinySpec::default()).unwrap();
    Engine::load(&model, &EngineOptions::default()).unwrap()
}

const UTIL: &str = "\
import os


def parse_row(line, sep=','):
    \"\"\"Splits one CSV line into trimmed fields.\"\"\"
    return [f.strip() for f in line.split(sep)]


def unrelated_helper(x):
    return x * 2
";

/// A repository: a helper module, a long main module that imports it, and filler files.
fn repo(dir: &Path) -> String {
    std::fs::write(dir.join("util.py"), UTIL).unwrap();
    let mut main = String::from("from util import parse_row\n\n\n");
    for i in 0..60 {
        main.push_str(&format!(
            "def step_{i}(rows):\n    return [r + {i} for r in rows]\n\n\n"
        ));
    }
    main.push_str("def load(path):\n    with open(path) as f:\n        rows = [parse_row(l) for l in f]\n    return rows\n");
    std::fs::write(dir.join("main.py"), &main).unwrap();
    for i in 0..5 {
        std::fs::write(
            dir.join(format!("other_{i}.py")),
            format!("def other_{i}(a, b):\n    total = a + b\n    return total * {i}\n"),
        )
        .unwrap();
    }
    main
}

fn assemble(
    e: &Engine,
    idx: &Index,
    text: &str,
    cursor: usize,
    total: usize,
    mode: ContextMode,
) -> Assembled {
    assemble_memo(
        e,
        idx,
        text,
        cursor,
        total,
        mode,
        &mut ContextMemo::default(),
    )
}

fn assemble_memo(
    e: &Engine,
    idx: &Index,
    text: &str,
    cursor: usize,
    total: usize,
    mode: ContextMode,
    memo: &mut ContextMemo,
) -> Assembled {
    let a = Assembler {
        tok: e.tokenizer(),
        format: e.fim_format(),
        repo_name: "shop".into(),
        budget: Budget {
            total,
            ..Budget::default()
        },
        style: ContextStyle::RepoMarkup,
    };
    let req = Request {
        path: "main.py",
        lang: Some(Lang::Python),
        text,
        cursor,
        recent: &[],
    };
    a.assemble_memo(&req, Some(idx), mode, memo).unwrap()
}

fn setup() -> (tempfile::TempDir, Engine, Index, String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let repo_dir = dir.path().join("shop");
    std::fs::create_dir(&repo_dir).unwrap();
    let main = repo(&repo_dir);
    let mut idx = Index::new(&repo_dir, WalkOptions::default()).unwrap();
    idx.refresh();
    // The cursor after `parse_row(` in `load`.
    let cursor = main.find("parse_row(l)").unwrap() + "parse_row(".len();
    (dir, e, idx, main, cursor)
}

#[test]
fn budgets_are_exact_and_filled() {
    let (_d, e, idx, main, cursor) = setup();
    for total in [120, 300, 700, 1500] {
        for mode in ContextMode::ALL {
            let a = assemble(&e, &idx, &main, cursor, total, mode);
            let rendered = fim::render(e.tokenizer(), e.fim_format(), &a.prompt).unwrap();
            assert_eq!(a.tokens, rendered.len(), "{mode:?} {total}");
            assert!(a.tokens <= total, "{mode:?}: {} > {total}", a.tokens);
            // The file is long enough to fill any of these budgets nearly, unless the
            // window was cut back to start on a line that is a multiple of 16.
            let start = a.sources[0].start_line;
            assert!(
                a.tokens + 40 >= total || start.is_multiple_of(16),
                "{mode:?}: only {} of {total} used, window from line {start}",
                a.tokens
            );
        }
    }
}

#[test]
fn modes_differ_as_documented() {
    let (_d, e, idx, main, cursor) = setup();
    let none = assemble(&e, &idx, &main, cursor, 700, ContextMode::None);
    assert!(none.prompt.suffix.is_empty() && none.prompt.context.is_empty());
    assert!(none.prompt.path.is_none());
    let file = assemble(&e, &idx, &main, cursor, 700, ContextMode::File);
    assert!(file.prompt.suffix.starts_with("l) for l in f]"));
    assert!(file.prompt.context.is_empty());
    // Without context, plain fill-in-the-middle; with it, the repository format.
    assert!(file.prompt.path.is_none() && file.prompt.repo_name.is_none());
    let repo = assemble(&e, &idx, &main, cursor, 700, ContextMode::Repo);
    assert!(!repo.prompt.context.is_empty());
    assert_eq!(repo.prompt.path.as_deref(), Some("main.py"));
    assert_eq!(repo.prompt.repo_name.as_deref(), Some("shop"));
    // The window is whole lines nearest the cursor.
    for a in [&none, &file, &repo] {
        let (before, after) = main.split_at(cursor);
        let p = &a.prompt.prefix;
        assert!(before.ends_with(p.as_str()));
        assert!(p.len() == before.len() || before[..before.len() - p.len()].ends_with('\n'));
        let s = &a.prompt.suffix;
        assert!(after.starts_with(s.as_str()));
        assert!(s.is_empty() || s.ends_with('\n') || s.len() == after.len());
    }
    assert!(
        file.prompt.prefix.len() < main[..cursor].len(),
        "the budget cut nothing"
    );
}

#[test]
fn the_imported_helper_is_in_the_prompt() {
    let (_d, e, idx, main, cursor) = setup();
    let a = assemble(&e, &idx, &main, cursor, 700, ContextMode::Repo);
    let util = a
        .prompt
        .context
        .iter()
        .find(|f| f.path == "util.py")
        .unwrap_or_else(|| panic!("no util.py in {:?}", a.prompt.context));
    assert!(util.content.contains("def parse_row(line, sep=','):"));
    // Short: shown whole, docstring and body included.
    assert!(util.content.contains("return [f.strip()"));
    assert!(a
        .sources
        .iter()
        .any(|s| s.kind == "definition" && s.path == "util.py"));
}

#[test]
fn the_window_is_never_repeated_as_context() {
    let (_d, e, idx, main, cursor) = setup();
    for total in [300, 1500] {
        let a = assemble(&e, &idx, &main, cursor, total, ContextMode::Repo);
        let prefix = a.sources.iter().find(|s| s.kind == "prefix").unwrap();
        let suffix_end = a
            .sources
            .iter()
            .find(|s| s.kind == "suffix")
            .map_or(prefix.end_line, |s| s.end_line);
        for s in a.sources.iter().filter(|s| s.path == "main.py") {
            if s.kind == "prefix" || s.kind == "suffix" {
                continue;
            }
            assert!(
                s.end_line < prefix.start_line || s.start_line > suffix_end,
                "{s:?} overlaps the window {}..={suffix_end}",
                prefix.start_line
            );
        }
    }
}

#[test]
fn typing_keeps_the_context_and_its_tokens() {
    let (_d, e, idx, main, cursor) = setup();
    let first = assemble(&e, &idx, &main, cursor, 900, ContextMode::Repo);
    // The user types one character at the cursor.
    let typed = format!("{}l{}", &main[..cursor], &main[cursor..]);
    let second = assemble(&e, &idx, &typed, cursor + 1, 900, ContextMode::Repo);
    assert_eq!(first.prompt.context, second.prompt.context);
    let a = fim::render(e.tokenizer(), e.fim_format(), &first.prompt).unwrap();
    let b = fim::render(e.tokenizer(), e.fim_format(), &second.prompt).unwrap();
    let shared = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let context_tokens = a.len()
        - e.tokenizer().count(&first.prompt.prefix).unwrap()
        - e.tokenizer().count(&first.prompt.suffix).unwrap()
        - 3;
    assert!(
        shared >= context_tokens,
        "only {shared} of {context_tokens} context tokens shared"
    );
}

#[test]
fn recent_edits_are_context_and_bad_cursors_are_errors() {
    let (_d, e, idx, main, cursor) = setup();
    let a = Assembler {
        tok: e.tokenizer(),
        format: e.fim_format(),
        repo_name: "shop".into(),
        budget: Budget::default(),
        style: ContextStyle::RepoMarkup,
    };
    let recent = [RecentEdit {
        path: "notes.py".into(),
        start_line: 3,
        text: "def freshly_typed(x):\n    return x\n".into(),
    }];
    let req = Request {
        path: "main.py",
        lang: Some(Lang::Python),
        text: &main,
        cursor,
        recent: &recent,
    };
    let got = a.assemble(&req, Some(&idx), ContextMode::Repo).unwrap();
    assert!(got
        .prompt
        .context
        .iter()
        .any(|f| f.path == "notes.py" && f.content.contains("freshly_typed")));
    let bad = Request {
        cursor: main.len() + 1,
        ..req
    };
    assert!(a.assemble(&bad, Some(&idx), ContextMode::Repo).is_err());
    let tiny = Assembler {
        budget: Budget {
            total: 5,
            ..Budget::default()
        },
        ..a
    };
    let err = tiny
        .assemble(&req, Some(&idx), ContextMode::Repo)
        .unwrap_err();
    assert!(err.to_string().contains("budget"), "{err}");
}

#[test]
fn the_comments_style_puts_context_in_a_plain_prefix() {
    let (_d, e, idx, main, cursor) = setup();
    let a = Assembler {
        tok: e.tokenizer(),
        format: e.fim_format(),
        repo_name: "shop".into(),
        budget: Budget {
            total: 700,
            ..Budget::default()
        },
        style: ContextStyle::Comments,
    };
    let req = Request {
        path: "main.py",
        lang: Some(Lang::Python),
        text: &main,
        cursor,
        recent: &[],
    };
    let got = a.assemble(&req, Some(&idx), ContextMode::Repo).unwrap();
    let p = &got.prompt;
    assert!(p.context.is_empty() && p.path.is_none() && p.repo_name.is_none());
    assert!(p.prefix.starts_with("# "), "{:?}", &p.prefix[..40]);
    assert!(p.prefix.contains("# util.py\n") && p.prefix.contains("def parse_row"));
    assert!(p.prefix.contains("# main.py\n"));
    // Post-processing gets the window alone.
    assert!(p.prefix.ends_with(&got.prefix) && main[..cursor].ends_with(&got.prefix));
    assert_eq!(got.suffix, p.suffix);
    let rendered = fim::render(e.tokenizer(), e.fim_format(), p).unwrap();
    assert_eq!(rendered.len(), got.tokens);
    assert!(got.tokens <= 700);
}

#[test]
fn typing_on_a_line_keeps_the_head_of_the_prompt() {
    let (_d, e, idx, main, cursor) = setup();
    // Type `l) + unrelated_helper(l) for l` one character at a time after `parse_row(`: the
    // context and the start of the window must not change, so the engine reuses its cache
    // for them, although a name on the line has a definition of its own.
    let typed = "l) + unrelated_helper(l) for l";
    let mut memo = ContextMemo::default();
    let line_end = main[cursor..].find('\n').map_or(main.len(), |i| cursor + i);
    let base = format!("{}{}", &main[..cursor], &main[line_end..]);
    let mut first: Option<(Vec<(String, String)>, usize)> = None;
    for n in 0..=typed.len() {
        let text = format!("{}{}{}", &base[..cursor], &typed[..n], &base[cursor..]);
        let a = assemble_memo(
            &e,
            &idx,
            &text,
            cursor + n,
            700,
            ContextMode::Repo,
            &mut memo,
        );
        let context: Vec<(String, String)> = a
            .prompt
            .context
            .iter()
            .map(|f| (f.path.clone(), f.content.clone()))
            .collect();
        let window_start = cursor + n - a.prompt.prefix.len();
        match &first {
            None => first = Some((context, window_start)),
            Some((c, w)) => {
                assert_eq!(
                    &context,
                    c,
                    "context changed after typing {:?}",
                    &typed[..n]
                );
                assert_eq!(
                    window_start,
                    *w,
                    "window moved after typing {:?}",
                    &typed[..n]
                );
            }
        }
    }
}

/// The repository context files of an assembled prompt.
fn context_of(a: &Assembled) -> Vec<(String, String)> {
    a.prompt
        .context
        .iter()
        .map(|f| (f.path.clone(), f.content.clone()))
        .collect()
}

#[test]
fn the_context_stays_for_the_next_lines_and_is_chosen_afresh_beyond() {
    let (_d, e, idx, main, cursor) = setup();
    // Without a memo, a name completed on the line brings its definition (short: whole).
    let typed = "l) + unrelated_helper(l) for l";
    let line_end = main[cursor..].find('\n').map_or(main.len(), |i| cursor + i);
    let text = format!("{}{typed}{}", &main[..cursor], &main[line_end..]);
    let at = cursor + typed.len();
    let fresh = assemble(&e, &idx, &text, at, 700, ContextMode::Repo);
    let util = |a: &Assembled| {
        a.prompt
            .context
            .iter()
            .find(|f| f.path == "util.py")
            .map(|f| f.content.clone())
            .unwrap_or_default()
    };
    assert!(
        util(&fresh).contains("return x * 2"),
        "{:?}",
        fresh.prompt.context
    );
    // With the memo of the same line, taken before the name was typed, it is not there.
    let mut memo = ContextMemo::default();
    let base = format!("{}{}", &main[..cursor], &main[line_end..]);
    assemble_memo(&e, &idx, &base, cursor, 700, ContextMode::Repo, &mut memo);
    let same_line = assemble_memo(&e, &idx, &text, at, 700, ContextMode::Repo, &mut memo);
    // (The file's summary may show the signature; the whole definition is what the name
    // near the cursor brings.)
    assert!(!util(&same_line).contains("return x * 2"));
    // A memo kept for its own line only chooses afresh on the next line.
    let next = text.find("    return rows").unwrap() + 4;
    let mut own_line = ContextMemo::default();
    assemble_memo(
        &e,
        &idx,
        &base,
        cursor,
        700,
        ContextMode::Repo,
        &mut own_line,
    );
    let after_enter = assemble_memo(&e, &idx, &text, next, 700, ContextMode::Repo, &mut own_line);
    let next_fresh = assemble(&e, &idx, &text, next, 700, ContextMode::Repo);
    assert_eq!(context_of(&after_enter), context_of(&next_fresh));
    assert_ne!(context_of(&after_enter), context_of(&same_line));
    // A memo kept for no line chooses afresh on the same line too.
    let mut none = ContextMemo::keeping(0);
    assemble_memo(&e, &idx, &base, cursor, 700, ContextMode::Repo, &mut none);
    let typed_on = assemble_memo(&e, &idx, &text, at, 700, ContextMode::Repo, &mut none);
    assert_eq!(context_of(&typed_on), context_of(&fresh));
    // Kept for the next lines (the server's choice on a CPU), on the next line it stays, so
    // the head of the prompt is the same.
    memo.set_lines(moat_context::MEMO_LINES);
    let next_line = assemble_memo(&e, &idx, &text, next, 700, ContextMode::Repo, &mut memo);
    assert_eq!(context_of(&next_line), context_of(&same_line));
    // Chosen MEMO_LINES lines above the cursor's line, the context stays down to the line
    // above it and is chosen afresh at the cursor's line.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line = text[..at].matches('\n').count();
    let first = line - moat_context::MEMO_LINES as usize;
    let mut memo = ContextMemo::keeping(moat_context::MEMO_LINES);
    let mut context_at = |cursor: usize| {
        context_of(&assemble_memo(
            &e,
            &idx,
            &text,
            cursor,
            700,
            ContextMode::Repo,
            &mut memo,
        ))
    };
    let chosen = context_at(starts[first]);
    assert_eq!(
        context_at(starts[line - 1]),
        chosen,
        "kept to the line above"
    );
    assert_eq!(context_at(at), context_of(&fresh), "afresh below");
    assert_ne!(
        chosen,
        context_of(&fresh),
        "the two places must differ for this to test anything"
    );
    assert_eq!(context_at(starts[first]), chosen, "afresh back up");
}

#[test]
fn a_homonym_in_a_file_not_imported_is_left_out() {
    let (d, e, _idx, main, cursor) = setup();
    let repo_dir = d.path().join("shop");
    // Another `parse_row`, in a file main.py does not import: another thing of that name.
    std::fs::write(
        repo_dir.join("legacy.py"),
        "def parse_row(record):\n    \"\"\"Old fixed-width records.\"\"\"\n    return record[:8]\n",
    )
    .unwrap();
    let mut idx = Index::new(&repo_dir, WalkOptions::default()).unwrap();
    idx.refresh();
    let a = assemble(&e, &idx, &main, cursor, 700, ContextMode::Repo);
    let paths: Vec<&str> = a.prompt.context.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&"util.py"), "{paths:?}");
    assert!(!paths.contains(&"legacy.py"), "{:?}", a.prompt.context);
    // Without the import, neither definition is sure: neither is shown.
    let unimported = main.replacen("from util import parse_row\n", "\n", 1);
    idx.update_text("main.py", Lang::Python, &unimported);
    let cursor = unimported.find("parse_row(l)").unwrap() + "parse_row(".len();
    let a = assemble(&e, &idx, &unimported, cursor, 700, ContextMode::Repo);
    assert!(
        !a.sources
            .iter()
            .any(|s| s.kind == "definition" && s.path != "main.py"),
        "{:?}",
        a.sources
    );
}

#[test]
fn similar_code_is_the_matching_lines_and_what_follows_them() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let repo_dir = dir.path().join("shop");
    std::fs::create_dir(&repo_dir).unwrap();
    // orders.py has, deep in a long file, the loop the user is writing again elsewhere.
    let mut orders = String::new();
    for i in 0..40 {
        orders.push_str(&format!("STATUS_{i} = 'status {i}'\n"));
    }
    let pattern = "\
def total_by_customer(orders, currency):
    totals = {}
    for order in orders:
        if order.currency != currency:
            continue
        customer = order.customer_id
        totals[customer] = totals.get(customer, 0) + order.amount_cents
";
    orders.push_str(pattern);
    orders.push_str("    return {c: cents / 100 for c, cents in totals.items()}\n");
    std::fs::write(repo_dir.join("orders.py"), &orders).unwrap();
    // A file that shares one rare word and nothing else.
    std::fs::write(
        repo_dir.join("noise.py"),
        "def amount_cents_label():\n    return 'label'\n",
    )
    .unwrap();
    let doc = pattern.replace("total_by_customer", "refunds_by_customer") + "    return ";
    std::fs::write(repo_dir.join("refunds.py"), &doc).unwrap();
    let mut idx = Index::new(&repo_dir, WalkOptions::default()).unwrap();
    idx.refresh();
    let a = Assembler {
        tok: e.tokenizer(),
        format: e.fim_format(),
        repo_name: "shop".into(),
        budget: Budget {
            total: 900,
            ..Budget::default()
        },
        style: ContextStyle::RepoMarkup,
    };
    let req = Request {
        path: "refunds.py",
        lang: Some(Lang::Python),
        text: &doc,
        cursor: doc.len(),
        recent: &[],
    };
    let got = a.assemble(&req, Some(&idx), ContextMode::Repo).unwrap();
    let similar: Vec<_> = got.sources.iter().filter(|s| s.kind == "similar").collect();
    assert_eq!(similar.len(), 1, "{:?}", got.sources);
    assert_eq!(similar[0].path, "orders.py");
    let shown = &got
        .prompt
        .context
        .iter()
        .find(|f| f.path == "orders.py")
        .unwrap()
        .content;
    // The matching lines, then the line that answers the hole; not the constants above.
    assert!(shown.contains("for order in orders:"), "{shown}");
    assert!(shown.contains("return {c: cents / 100"), "{shown}");
    assert!(!shown.contains("STATUS_0 "), "{shown}");
    assert!(!got.prompt.context.iter().any(|f| f.path == "noise.py"));
}

#[test]
fn a_name_imported_far_above_and_not_used_yet_brings_its_definition() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let repo_dir = dir.path().join("shop");
    std::fs::create_dir(&repo_dir).unwrap();
    let util = "\
def parse_row(line, sep=','):
    return [f.strip() for f in line.split(sep)]


def format_row(fields, sep=','):
    \"\"\"Joins fields into one CSV line.\"\"\"
    return sep.join(str(f) for f in fields)
";
    std::fs::write(repo_dir.join("util.py"), util).unwrap();
    // Both names imported at the top; only parse_row used since, 240 lines further down.
    let mut main = String::from("from util import (\n    format_row,\n    parse_row,\n)\n\n\n");
    for i in 0..60 {
        main.push_str(&format!(
            "def step_{i}(rows):\n    return [r + {i} for r in rows]\n\n\n"
        ));
    }
    main.push_str("def save(path, rows):\n    rows = [parse_row(r) for r in rows]\n    return ");
    std::fs::write(repo_dir.join("main.py"), &main).unwrap();
    let mut idx = Index::new(&repo_dir, WalkOptions::default()).unwrap();
    idx.refresh();
    let a = assemble(&e, &idx, &main, main.len(), 900, ContextMode::Repo);
    let format_body = util.lines().position(|l| l.contains("sep.join")).unwrap() as u32;
    let defs: Vec<_> = a
        .sources
        .iter()
        .filter(|s| s.kind == "definition" && s.path == "util.py")
        .collect();
    assert!(
        defs.iter()
            .any(|s| s.start_line <= format_body && format_body <= s.end_line),
        "{:?}",
        a.sources
    );
    let context: String = a
        .prompt
        .context
        .iter()
        .map(|f| f.content.as_str())
        .collect();
    assert!(
        context.contains("return sep.join(str(f) for f in fields)"),
        "{context}"
    );
}

#[test]
fn a_member_written_on_an_imported_module_brings_its_members_not_used_yet() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let repo_dir = dir.path().join("shop");
    std::fs::create_dir(&repo_dir).unwrap();
    // More top-level functions than a summary shows (30 lines).
    let mut util = String::new();
    for i in 0..40 {
        util.push_str(&format!(
            "def check_{i}(value):\n    return value > {i}\n\n\n"
        ));
    }
    std::fs::write(repo_dir.join("util.py"), &util).unwrap();
    // The first 30 already used; the cursor writes a member of `utils`.
    let mut main = String::from("import util as utils\n\n\ndef run(v):\n");
    for i in 0..30 {
        main.push_str(&format!("    utils.check_{i}(v)\n"));
    }
    // Far from the uses, so that their definitions are not the ones near the cursor.
    for i in 0..45 {
        main.push_str(&format!("    v = v + {i}\n"));
    }
    main.push_str("    return utils.");
    std::fs::write(repo_dir.join("main.py"), &main).unwrap();
    let mut idx = Index::new(&repo_dir, WalkOptions::default()).unwrap();
    idx.refresh();
    let a = assemble(&e, &idx, &main, main.len(), 3000, ContextMode::Repo);
    let context: String = a
        .prompt
        .context
        .iter()
        .map(|f| f.content.as_str())
        .collect();
    assert!(
        context.contains("def check_39(value):"),
        "{context} {:?}",
        a.sources
    );
    assert!(context.contains("def check_30(value):"), "{context}");
}

#[test]
fn a_member_written_on_an_imported_class_brings_that_class_members() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let repo_dir = dir.path().join("paint");
    std::fs::create_dir(&repo_dir).unwrap();
    // A module with a class whose methods are long (not shown whole by a definition) and
    // many top-level functions that a module summary would show instead.
    let mut style = String::from("class Style:\n");
    for name in ["parse", "combine", "null", "chain"] {
        style.push_str(&format!("    @classmethod\n    def {name}(cls, value):\n"));
        for i in 0..20 {
            style.push_str(&format!("        value = value + {i}\n"));
        }
        style.push_str("        return value\n\n");
    }
    for i in 0..40 {
        style.push_str(&format!("\n\ndef helper_{i}(v):\n    return v\n"));
    }
    std::fs::write(repo_dir.join("style.py"), &style).unwrap();
    let mut main = String::from("from style import Style\n\n\ndef run(v):\n");
    main.push_str("    a = Style.parse(v)\n    b = Style.combine(a)\n");
    for i in 0..45 {
        main.push_str(&format!("    v = v + {i}\n"));
    }
    let at_class = main.len() + "    return Style.".len();
    main.push_str("    return Style.");
    std::fs::write(repo_dir.join("main.py"), &main).unwrap();
    let mut idx = Index::new(&repo_dir, WalkOptions::default()).unwrap();
    idx.refresh();
    let context = |a: &Assembled| -> String {
        a.prompt
            .context
            .iter()
            .map(|f| f.content.as_str())
            .collect()
    };
    let a = assemble(&e, &idx, &main, at_class, 3000, ContextMode::Repo);
    let c = context(&a);
    // The class's unused members with their signatures, ahead of the module's functions.
    assert!(c.contains("def null(cls, value):"), "{c} {:?}", a.sources);
    assert!(c.contains("def chain(cls, value):"), "{c}");
    assert!(c.contains("class Style:"), "{c}");
    assert!(!c.contains("def helper_0(v):"), "{c}");
}
