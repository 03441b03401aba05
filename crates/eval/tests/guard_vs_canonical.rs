//! Data-driven check of the first-line guard (`moat_engine::AvoidLine`) against the
//! HumanEval-FIM set's own answers: each rule claims to refuse only lines that are never
//! right, so no canonical line may be refused, in the one-line mode the eval decodes with
//! nor in the server's. The set lives beside the repository (`../shared/eval`, see
//! `benches/README.md`); where it is absent (a clone without it) the check says so and
//! passes, as it has nothing to judge.

use moat_engine::repeat::Verdict;
use moat_engine::AvoidLine;
use moat_eval::humaneval::load;
use std::path::PathBuf;

fn set() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/eval/humaneval-fim/fim_singleline.jsonl.gz");
    p.exists().then_some(p)
}

#[test]
fn no_canonical_line_is_refused_by_the_guard() {
    let Some(path) = set() else {
        eprintln!("HumanEval-FIM set not found beside the repository: nothing to check");
        return;
    };
    let rows = load(&path).unwrap();
    assert!(rows.len() > 4_000, "{} rows", rows.len());
    let mut refused = Vec::new();
    for row in &rows {
        // The set's convention: the hole holds both newlines around its line.
        let answer = format!("\n{}\n", row.canonical_solution.trim_end_matches('\n'));
        let guards = [
            Some(AvoidLine::one_line(&row.prompt, &row.suffix)),
            AvoidLine::after(&row.prompt, &row.suffix),
        ];
        for g in guards.iter().flatten() {
            if let Verdict::Refused(_) = g.verdict(&answer, true) {
                refused.push(format!("{} ({}): {:?}", row.name, row.language, answer));
            }
        }
    }
    assert!(
        refused.is_empty(),
        "{} refused:\n{}",
        refused.len(),
        refused.join("\n")
    );
}
