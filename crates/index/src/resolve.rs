//! Imports → repository files, where that can be decided from paths alone. Each language's
//! rule is small; what is not in the repository (the standard library, packages) resolves
//! to nothing.

use crate::lang::Lang;
use std::collections::BTreeSet;

/// What resolution needs to know about the repository.
pub trait FileSet {
    fn contains(&self, path: &str) -> bool;
    /// Files whose path ends with `/suffix` or equals it.
    fn with_suffix(&self, suffix: &str) -> Vec<String>;
    /// Files directly inside `dir` ("" for the root).
    fn in_dir(&self, dir: &str) -> Vec<String>;
    /// Files directly inside any directory whose path is `dir` or ends with `/dir`.
    fn in_dir_ending(&self, dir: &str) -> Vec<String>;
    /// The Go module path declared by `go.mod` at the root, if any.
    fn go_module(&self) -> Option<String>;
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn join(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = if dir.is_empty() {
        Vec::new()
    } else {
        dir.split('/').collect()
    };
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn first_existing(
    files: &dyn FileSet,
    candidates: impl IntoIterator<Item = String>,
) -> Vec<String> {
    candidates
        .into_iter()
        .find(|c| files.contains(c))
        .into_iter()
        .collect()
}

/// The repository files `target`, imported from `from`, refers to.
pub fn resolve(files: &dyn FileSet, lang: Lang, from: &str, target: &str) -> Vec<String> {
    let dir = dir_of(from);
    let out: Vec<String> = match lang {
        Lang::Python => python(files, dir, target),
        Lang::TypeScript | Lang::Tsx | Lang::JavaScript => {
            if !target.starts_with('.') {
                return Vec::new(); // a package
            }
            let Some(base) = join(dir, target) else {
                return Vec::new();
            };
            let exts = ["", ".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs"];
            let mut c: Vec<String> = exts.iter().map(|e| format!("{base}{e}")).collect();
            c.extend(
                ["ts", "tsx", "js", "jsx"]
                    .iter()
                    .map(|e| format!("{base}/index.{e}")),
            );
            first_existing(files, c)
        }
        Lang::Rust => rust(files, from, target),
        Lang::Go => {
            let Some(module) = files.go_module() else {
                return Vec::new();
            };
            let rest = match target.strip_prefix(&module) {
                Some(r) => r.trim_start_matches('/'),
                None => return Vec::new(),
            };
            files
                .in_dir(rest)
                .into_iter()
                .filter(|f| f.ends_with(".go") && !f.ends_with("_test.go"))
                .collect()
        }
        Lang::Java | Lang::Kotlin => {
            let ext = if lang == Lang::Java { "java" } else { "kt" };
            let path = target.trim_end_matches(".*").replace('.', "/");
            if target.ends_with(".*") {
                let ext = format!(".{ext}");
                files
                    .in_dir_ending(&path)
                    .into_iter()
                    .filter(|f| f.ends_with(&ext))
                    .collect()
            } else {
                let mut v = files.with_suffix(&format!("{path}.{ext}"));
                if v.is_empty() {
                    // `import a.b.C.method`: the class is one level up.
                    if let Some((cls, _)) = path.rsplit_once('/') {
                        v = files.with_suffix(&format!("{cls}.{ext}"));
                    }
                }
                v
            }
        }
        Lang::C | Lang::Cpp => {
            let mut v = first_existing(
                files,
                [join(dir, target), Some(target.to_string())]
                    .into_iter()
                    .flatten(),
            );
            if v.is_empty() {
                v = files.with_suffix(target);
            }
            v
        }
        Lang::Php => {
            if target.contains('\\') || !target.contains('.') {
                // A namespace (`App\Models\User`): PSR-4 keeps the last parts as the path.
                let path = target.trim_start_matches('\\').replace('\\', "/");
                let mut parts: Vec<&str> = path.split('/').collect();
                let mut v = Vec::new();
                while !parts.is_empty() && v.is_empty() {
                    v = files.with_suffix(&format!("{}.php", parts.join("/")));
                    parts.remove(0);
                }
                v
            } else {
                first_existing(files, join(dir, target))
            }
        }
        Lang::CSharp => Vec::new(), // namespaces span files; resolved by definitions instead
    };
    let set: BTreeSet<String> = out.into_iter().filter(|f| f != from).collect();
    set.into_iter().collect()
}

fn python(files: &dyn FileSet, dir: &str, target: &str) -> Vec<String> {
    let dots = target.chars().take_while(|c| *c == '.').count();
    let module = &target[dots..];
    let mut bases = Vec::new();
    if dots > 0 {
        let mut base = dir.to_string();
        for _ in 1..dots {
            base = dir_of(&base).to_string();
        }
        bases.push(base);
    } else {
        // Absolute: from the root, or from a `src/` layout.
        bases.push(String::new());
        bases.push("src".to_string());
    }
    for base in bases {
        let path = module.replace('.', "/");
        let stem = match (base.is_empty(), path.is_empty()) {
            (true, _) => path.clone(),
            (false, true) => base.clone(),
            (false, false) => format!("{base}/{path}"),
        };
        let c = if path.is_empty() {
            vec![format!("{stem}/__init__.py")]
        } else {
            vec![format!("{stem}.py"), format!("{stem}/__init__.py")]
        };
        let found = first_existing(files, c);
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// `mod x;` → `x.rs` or `x/mod.rs` beside the file (or in its own directory for a
/// non-root file); `use crate::a::b::…` → the longest prefix that is a module file.
fn rust(files: &dyn FileSet, from: &str, target: &str) -> Vec<String> {
    let dir = dir_of(from);
    let file = from.rsplit('/').next().unwrap_or(from);
    let module_dir = if matches!(file, "mod.rs" | "lib.rs" | "main.rs") {
        dir.to_string()
    } else {
        let stem = file.trim_end_matches(".rs");
        if dir.is_empty() {
            stem.to_string()
        } else {
            format!("{dir}/{stem}")
        }
    };
    if !target.contains("::") && !target.contains('{') {
        // `mod name;`
        let base = if module_dir.is_empty() {
            target.to_string()
        } else {
            format!("{module_dir}/{target}")
        };
        return first_existing(files, [format!("{base}.rs"), format!("{base}/mod.rs")]);
    }
    let path = target
        .split('{')
        .next()
        .unwrap_or(target)
        .trim_end_matches("::");
    let mut segs: Vec<&str> = path.split("::").collect();
    let base = match segs.first() {
        Some(&"crate") => {
            // The crate root: the nearest `src` directory above the file.
            let mut d = dir.to_string();
            while !d.is_empty() && !d.ends_with("src") {
                d = dir_of(&d).to_string();
            }
            segs.remove(0);
            d
        }
        Some(&"super") => {
            segs.remove(0);
            dir_of(&module_dir).to_string()
        }
        Some(&"self") => {
            segs.remove(0);
            module_dir
        }
        _ => return Vec::new(), // another crate
    };
    while !segs.is_empty() {
        let rel = segs.join("/");
        let stem = if base.is_empty() {
            rel
        } else {
            format!("{base}/{rel}")
        };
        let found = first_existing(files, [format!("{stem}.rs"), format!("{stem}/mod.rs")]);
        if !found.is_empty() {
            return found;
        }
        segs.pop();
    }
    Vec::new()
}
