use moat_engine::tiny::{write_tiny_model, TinySpec};
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("tiny.gguf");
    write_tiny_model(&base, &TinySpec::default()).unwrap();
    let f = moat_engine::gguf::GgufFile::open(&base).unwrap();
    let tok = moat_engine::tokenizer::Tokenizer::from_gguf(&f.content).unwrap();
    let mut files = Vec::new();
    for i in 0..24 {
        let text = format!(
            "def handler_{i}(event):\n    total = zorblax(event, {i})\n    return total\n\n\ndef check_{i}(event):\n    return zorblax(event, {})\n",
            i + 1
        );
        files.push(moat_tune::data::SourceFile {
            path: format!("mod_{i:02}.py"),
            lang: moat_index::Lang::Python,
            text,
            weight: 1.0,
        });
    }
    let opts = moat_tune::samples::SampleOptions {
        seq: 128,
        per_kb: 40.0,
        context: moat_context::ContextMode::File,
        ..Default::default()
    };
    let p = moat_tune::samples::Prompter {
        tok: &tok,
        format: moat_engine::FimFormat::Qwen,
        mode: moat_context::ContextMode::File,
        index: None,
        repo_name: "x".into(),
    };
    let s = moat_tune::samples::samples(&p, &files, &opts).unwrap();
    for x in s.iter().take(400) {
        println!("{:?} {}", x.tokens, x.target_from);
    }
}
