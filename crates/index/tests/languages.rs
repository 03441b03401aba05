//! Per language: a small project written to a temporary directory; the index must find its
//! definitions (names, kinds, scopes, signatures, docs), resolve its imports inside the
//! project, and record identifier uses. Expectations are data: (name, kind, scope,
//! signature start).

use moat_index::extract::{extract_tree, extract_tree_by_query_engine};
use moat_index::{DefKind, Extractor, Index, Lang, WalkOptions};
use std::path::Path;

struct Case {
    files: &'static [(&'static str, &'static str)],
    /// (file, name, kind, scope, signature prefix)
    defs: &'static [(
        &'static str,
        &'static str,
        DefKind,
        &'static str,
        &'static str,
    )],
    /// (file, import target, resolved file or "" for outside the repository)
    imports: &'static [(&'static str, &'static str, &'static str)],
    /// (file, 0-based line, identifier used there)
    uses: &'static [(&'static str, u32, &'static str)],
    /// (file, name, doc fragment)
    docs: &'static [(&'static str, &'static str, &'static str)],
}

fn check(case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in case.files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    // The pattern matcher's walk finds what tree-sitter's query engine finds.
    let mut ex = Extractor::new();
    for (path, text) in case.files {
        if let Some(lang) = Lang::from_path(Path::new(path)) {
            let tree = ex.parse(lang, text).unwrap();
            assert_eq!(
                extract_tree(lang, text, &tree),
                extract_tree_by_query_engine(lang, text, &tree),
                "{path}"
            );
        }
    }
    let mut idx = Index::new(dir.path(), WalkOptions::default()).unwrap();
    let stats = idx.refresh();
    let sources = case
        .files
        .iter()
        .filter(|(p, _)| Lang::from_path(Path::new(p)).is_some())
        .count();
    assert_eq!(stats.files, sources, "{:?}", stats.skipped);
    for (file, name, kind, scope, sig) in case.defs {
        let hits = idx.definitions(name);
        let found = hits
            .iter()
            .find(|h| h.path == *file && h.def.kind == *kind && h.def.scope == *scope);
        let Some(h) = found else {
            let all: Vec<_> = idx
                .file(file)
                .unwrap()
                .definitions
                .iter()
                .map(|d| (d.name.clone(), d.kind, d.scope.clone()))
                .collect();
            panic!("{file}: no {kind:?} {name}; found {all:?}");
        };
        assert_eq!(h.def.scope, *scope, "{file}: scope of {name}");
        assert!(
            h.def.signature.starts_with(sig),
            "{file}: signature of {name}: {:?} does not start with {sig:?}",
            h.def.signature
        );
    }
    for (file, target, resolved) in case.imports {
        let imports = idx.imports_of(file);
        let imp = imports
            .iter()
            .find(|i| i.target == *target)
            .unwrap_or_else(|| panic!("{file}: no import {target}; found {imports:?}"));
        if resolved.is_empty() {
            assert!(
                imp.files.is_empty(),
                "{file}: {target} resolved to {:?}",
                imp.files
            );
        } else {
            assert!(
                imp.files.iter().any(|f| f == resolved),
                "{file}: {target} resolved to {:?}, want {resolved}",
                imp.files
            );
        }
    }
    for (file, line, ident) in case.uses {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let lang = Lang::from_path(Path::new(file)).unwrap();
        let (_, uses) = Extractor::new().extract_with_uses(lang, &text).unwrap();
        let used = uses.identifiers_in(*line, *line);
        assert!(
            used.contains(ident),
            "{file}:{line}: uses {used:?}, want {ident}"
        );
    }
    for (file, name, fragment) in case.docs {
        let h = idx
            .definitions(name)
            .into_iter()
            .find(|h| h.path == *file)
            .unwrap();
        let doc = h.def.doc.unwrap_or_default();
        assert!(doc.contains(fragment), "{file}: doc of {name}: {doc:?}");
    }
}

use DefKind::*;

#[test]
fn python() {
    check(&Case {
        files: &[
            ("pkg/__init__.py", ""),
            (
                "pkg/models.py",
                "MAX_USERS = 10\n\nclass User:\n    \"\"\"A person.\"\"\"\n    role = 'admin'\n\n    def greet(self, other: str) -> str:\n        return other\n",
            ),
            (
                "pkg/service.py",
                "import os\nfrom .models import User\nfrom pkg import models\n\n# Makes users.\ndef make_user(name):\n    u = User()\n    return u.greet(name)\n",
            ),
        ],
        defs: &[
            ("pkg/models.py", "MAX_USERS", Constant, "", "MAX_USERS = 10"),
            ("pkg/models.py", "User", Class, "", "class User"),
            ("pkg/models.py", "role", Field, "User", "role"),
            ("pkg/models.py", "greet", Method, "User", "def greet(self, other: str) -> str"),
            ("pkg/service.py", "make_user", Function, "", "def make_user(name)"),
        ],
        imports: &[
            ("pkg/service.py", ".models", "pkg/models.py"),
            ("pkg/service.py", "pkg", "pkg/__init__.py"),
            ("pkg/service.py", "os", ""),
        ],
        uses: &[("pkg/service.py", 6, "User"), ("pkg/service.py", 7, "greet")],
        docs: &[
            ("pkg/models.py", "User", "A person."),
            ("pkg/service.py", "make_user", "Makes users."),
        ],
    });
}

#[test]
fn rust() {
    check(&Case {
        files: &[
            ("src/lib.rs", "mod store;\npub mod util;\n"),
            (
                "src/store.rs",
                "use crate::util::clamp;\nuse std::fmt;\n\n/// A key-value store.\n#[derive(Debug)]\npub struct Store {\n    items: Vec<u8>,\n}\n\npub trait Backend {\n    fn get(&self, k: u32) -> u8;\n}\n\nimpl Store {\n    pub fn new() -> Self {\n        Store { items: vec![clamp(1)] }\n    }\n}\n\npub enum Mode { A, B }\npub const LIMIT: usize = 4;\ntype Id = u32;\n",
            ),
            ("src/util.rs", "pub fn clamp(x: u8) -> u8 {\n    x.min(9)\n}\n"),
        ],
        defs: &[
            ("src/store.rs", "Store", Struct, "", "pub struct Store"),
            ("src/store.rs", "items", Field, "Store", "items: Vec<u8>"),
            ("src/store.rs", "Backend", Interface, "", "pub trait Backend"),
            ("src/store.rs", "get", Method, "Backend", "fn get(&self, k: u32) -> u8"),
            ("src/store.rs", "new", Method, "Store", "pub fn new() -> Self"),
            ("src/store.rs", "Mode", Enum, "", "pub enum Mode"),
            ("src/store.rs", "LIMIT", Constant, "", "pub const LIMIT: usize = 4;"),
            ("src/store.rs", "Id", Type, "", "type Id = u32;"),
            ("src/util.rs", "clamp", Function, "", "pub fn clamp(x: u8) -> u8"),
        ],
        imports: &[
            ("src/lib.rs", "store", "src/store.rs"),
            ("src/store.rs", "crate::util::clamp", "src/util.rs"),
            ("src/store.rs", "std::fmt", ""),
        ],
        uses: &[("src/store.rs", 15, "clamp")],
        docs: &[("src/store.rs", "Store", "A key-value store.")],
    });
}

#[test]
fn typescript_tsx_and_javascript() {
    check(&Case {
        files: &[
            (
                "src/api.ts",
                "import { helper } from './util';\nimport React from 'react';\n\n/** Talks to the server. */\nexport interface Client {\n  fetch(url: string): Promise<string>;\n}\n\nexport class HttpClient implements Client {\n  retries = 3;\n  async fetch(url: string): Promise<string> {\n    return helper(url);\n  }\n}\n\nexport type Url = string;\nexport enum Verb { Get, Post }\nexport const send = (v: Verb) => v;\n",
            ),
            ("src/util/index.ts", "export function helper(u: string): string {\n  return u;\n}\n"),
            (
                "src/view.tsx",
                "import { HttpClient } from './api';\nexport function View(props: { n: number }) {\n  return <div>{props.n}</div>;\n}\n",
            ),
            (
                "web/app.js",
                "const lib = require('./lib');\nclass App {\n  start() {\n    return lib.run();\n  }\n}\nfunction boot() { return new App(); }\n",
            ),
            ("web/lib.js", "export function run() { return 1; }\n"),
        ],
        defs: &[
            ("src/api.ts", "Client", Interface, "", "interface Client"),
            ("src/api.ts", "fetch", Method, "Client", "fetch(url: string): Promise<string>"),
            ("src/api.ts", "HttpClient", Class, "", "class HttpClient implements Client"),
            ("src/api.ts", "fetch", Method, "HttpClient", "async fetch(url: string): Promise<string>"),
            ("src/api.ts", "retries", Field, "HttpClient", "retries = 3"),
            ("src/api.ts", "Url", Type, "", "type Url = string;"),
            ("src/api.ts", "Verb", Enum, "", "enum Verb"),
            ("src/api.ts", "send", Function, "", "const send"),
            ("src/util/index.ts", "helper", Function, "", "function helper(u: string): string"),
            ("src/view.tsx", "View", Function, "", "function View(props: { n: number })"),
            ("web/app.js", "App", Class, "", "class App"),
            ("web/app.js", "start", Method, "App", "start()"),
            ("web/app.js", "boot", Function, "", "function boot()"),
        ],
        imports: &[
            ("src/api.ts", "./util", "src/util/index.ts"),
            ("src/api.ts", "react", ""),
            ("src/view.tsx", "./api", "src/api.ts"),
            ("web/app.js", "./lib", "web/lib.js"),
        ],
        uses: &[("src/api.ts", 11, "helper")],
        docs: &[("src/api.ts", "Client", "Talks to the server.")],
    });
}

#[test]
fn go() {
    check(&Case {
        files: &[
            ("go.mod", "module example.com/shop\n\ngo 1.22\n"),
            (
                "cart/cart.go",
                "package cart\n\nimport (\n\t\"fmt\"\n\t\"example.com/shop/money\"\n)\n\n// Cart holds items.\ntype Cart struct {\n\tItems []string\n}\n\ntype Pricer interface {\n\tPrice(id string) money.Cents\n}\n\nconst MaxItems = 50\n\nfunc (c *Cart) Add(id string) {\n\tfmt.Println(id)\n}\n\nfunc New() *Cart { return &Cart{} }\n",
            ),
            ("money/money.go", "package money\n\ntype Cents int64\n"),
        ],
        defs: &[
            ("cart/cart.go", "Cart", Struct, "", "Cart struct"),
            ("cart/cart.go", "Items", Field, "Cart", "Items []string"),
            ("cart/cart.go", "Pricer", Interface, "", "Pricer interface"),
            ("cart/cart.go", "Price", Method, "Pricer", "Price(id string) money.Cents"),
            ("cart/cart.go", "MaxItems", Constant, "", "MaxItems = 50"),
            ("cart/cart.go", "Add", Method, "Cart", "func (c *Cart) Add(id string)"),
            ("cart/cart.go", "New", Function, "", "func New() *Cart"),
            ("money/money.go", "Cents", Type, "", "Cents int64"),
        ],
        imports: &[
            ("cart/cart.go", "example.com/shop/money", "money/money.go"),
            ("cart/cart.go", "fmt", ""),
        ],
        uses: &[("cart/cart.go", 19, "Println")],
        docs: &[],
    });
}

#[test]
fn java_and_kotlin() {
    check(&Case {
        files: &[
            (
                "src/main/java/com/acme/pay/Ledger.java",
                "package com.acme.pay;\n\nimport com.acme.util.Money;\nimport java.util.List;\n\n/** Double-entry ledger. */\npublic class Ledger {\n    private final List<Money> entries;\n    public static final int LIMIT = 5;\n\n    public Ledger() { this.entries = null; }\n\n    public Money total(int n) {\n        return Money.zero();\n    }\n}\n\ninterface Auditor { void audit(Ledger l); }\nenum State { OPEN, CLOSED }\n",
            ),
            (
                "src/main/java/com/acme/util/Money.java",
                "package com.acme.util;\npublic record Money(long cents) {\n    public static Money zero() { return new Money(0); }\n}\n",
            ),
            (
                "app/src/Main.kt",
                "package com.acme.app\n\nimport com.acme.util.Money\n\ninterface Greeter { fun greet(): String }\n\nclass App(val name: String) : Greeter {\n    val size = 3\n    override fun greet(): String = name\n}\n\nobject Registry\n\nfun main() { App(\"x\").greet() }\n",
            ),
        ],
        defs: &[
            ("src/main/java/com/acme/pay/Ledger.java", "Ledger", Class, "", "public class Ledger"),
            ("src/main/java/com/acme/pay/Ledger.java", "entries", Field, "Ledger", "private final List<Money> entries;"),
            ("src/main/java/com/acme/pay/Ledger.java", "total", Method, "Ledger", "public Money total(int n)"),
            ("src/main/java/com/acme/pay/Ledger.java", "Auditor", Interface, "", "interface Auditor"),
            ("src/main/java/com/acme/pay/Ledger.java", "audit", Method, "Auditor", "void audit(Ledger l);"),
            ("src/main/java/com/acme/pay/Ledger.java", "State", Enum, "", "enum State"),
            ("src/main/java/com/acme/util/Money.java", "Money", Class, "", "public record Money(long cents)"),
            ("src/main/java/com/acme/util/Money.java", "zero", Method, "Money", "public static Money zero()"),
            ("app/src/Main.kt", "Greeter", Interface, "", "interface Greeter"),
            ("app/src/Main.kt", "App", Class, "", "class App(val name: String) : Greeter"),
            ("app/src/Main.kt", "greet", Method, "App", "override fun greet(): String"),
            ("app/src/Main.kt", "Registry", Class, "", "object Registry"),
            ("app/src/Main.kt", "main", Function, "", "fun main()"),
        ],
        imports: &[
            ("src/main/java/com/acme/pay/Ledger.java", "com.acme.util.Money", "src/main/java/com/acme/util/Money.java"),
            ("src/main/java/com/acme/pay/Ledger.java", "java.util.List", ""),
            ("app/src/Main.kt", "com.acme.util.Money", ""),
        ],
        uses: &[("src/main/java/com/acme/pay/Ledger.java", 13, "zero")],
        docs: &[("src/main/java/com/acme/pay/Ledger.java", "Ledger", "Double-entry ledger.")],
    });
}

#[test]
fn c_and_cpp() {
    check(&Case {
        files: &[
            ("include/buf.h", "#ifndef BUF_H\n#define BUF_H\n#define BUF_MAX 64\ntypedef struct buf {\n  int len;\n} buf_t;\nint buf_push(buf_t *b, int x);\n#endif\n"),
            ("src/buf.c", "#include \"../include/buf.h\"\n#include <stdio.h>\n\n/* Appends x. */\nint buf_push(buf_t *b, int x) {\n  b->len += x;\n  return b->len;\n}\n"),
            // A C++ header: `.h` is shared with C, its text says which it is.
            ("include/grid.h", "#pragma once\n#include <vector>\nnamespace geo {\ntemplate <typename T>\nclass Grid {\n public:\n  T at(int i) const;\n};\n}\n"),
            ("src/shape.cpp", "#include \"buf.h\"\nnamespace geo {\nclass Shape {\n public:\n  virtual double area() const;\n  int sides;\n};\ndouble Shape::area() const { return 0.0; }\n}\n"),
        ],
        defs: &[
            ("include/buf.h", "BUF_MAX", Constant, "", "#define BUF_MAX 64"),
            ("include/buf.h", "buf", Struct, "", "struct buf"),
            ("include/buf.h", "len", Field, "buf", "int len;"),
            ("include/buf.h", "buf_t", Type, "", "typedef struct buf"),
            ("include/buf.h", "buf_push", Function, "", "int buf_push(buf_t *b, int x);"),
            ("src/buf.c", "buf_push", Function, "", "int buf_push(buf_t *b, int x)"),
            ("include/grid.h", "geo", Module, "", "namespace geo"),
            ("include/grid.h", "Grid", Class, "geo", "class Grid"),
            ("include/grid.h", "at", Method, "geo.Grid", "T at(int i) const;"),
            ("src/shape.cpp", "geo", Module, "", "namespace geo"),
            ("src/shape.cpp", "Shape", Class, "geo", "class Shape"),
            ("src/shape.cpp", "area", Method, "geo.Shape", "virtual double area() const;"),
            ("src/shape.cpp", "sides", Field, "geo.Shape", "int sides;"),
            ("src/shape.cpp", "Shape::area", Function, "geo", "double Shape::area() const"),
        ],
        imports: &[
            ("src/buf.c", "../include/buf.h", "include/buf.h"),
            ("src/shape.cpp", "buf.h", "include/buf.h"),
        ],
        uses: &[("src/buf.c", 5, "len")],
        docs: &[("src/buf.c", "buf_push", "Appends x.")],
    });
}

#[test]
fn csharp_and_php() {
    check(&Case {
        files: &[
            (
                "Billing/Invoice.cs",
                "using System;\nusing Acme.Common;\n\nnamespace Acme.Billing\n{\n    /// <summary>An invoice.</summary>\n    public class Invoice\n    {\n        private int total;\n        public string Number { get; set; }\n        public Invoice(int t) { total = t; }\n        public int Total() { return total; }\n    }\n    public interface ISender { void Send(Invoice i); }\n    public enum Status { Draft, Sent }\n}\n",
            ),
            (
                "app/Models/User.php",
                "<?php\nnamespace App\\Models;\n\nuse App\\Support\\Str;\n\n/** A user. */\nclass User {\n    public $name;\n    const ROLE = 'admin';\n    public function greet(string $who): string {\n        return Str::upper($who);\n    }\n}\n\nfunction helper() { return 1; }\n",
            ),
            ("app/Support/Str.php", "<?php\nnamespace App\\Support;\nclass Str { public static function upper($s) { return $s; } }\n"),
        ],
        defs: &[
            ("Billing/Invoice.cs", "Acme.Billing", Module, "", "namespace Acme.Billing"),
            ("Billing/Invoice.cs", "Invoice", Class, "Acme.Billing", "public class Invoice"),
            ("Billing/Invoice.cs", "total", Field, "Acme.Billing.Invoice", "private int total;"),
            ("Billing/Invoice.cs", "Number", Field, "Acme.Billing.Invoice", "public string Number"),
            ("Billing/Invoice.cs", "Total", Method, "Acme.Billing.Invoice", "public int Total()"),
            ("Billing/Invoice.cs", "ISender", Interface, "Acme.Billing", "public interface ISender"),
            ("Billing/Invoice.cs", "Status", Enum, "Acme.Billing", "public enum Status"),
            ("app/Models/User.php", "User", Class, "", "class User"),
            ("app/Models/User.php", "name", Field, "User", "public $name;"),
            ("app/Models/User.php", "ROLE", Constant, "User", "const ROLE = 'admin';"),
            ("app/Models/User.php", "greet", Method, "User", "public function greet(string $who): string"),
            ("app/Models/User.php", "helper", Function, "", "function helper()"),
        ],
        imports: &[
            ("app/Models/User.php", "App\\Support\\Str", "app/Support/Str.php"),
            ("Billing/Invoice.cs", "System", ""),
        ],
        uses: &[("app/Models/User.php", 10, "upper")],
        docs: &[("app/Models/User.php", "User", "A user.")],
    });
}

#[test]
fn referenced_definitions_come_from_the_unsaved_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("util.py"),
        "def parse_row(line):\n    return line.split(',')\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("main.py"), "x = 1\n").unwrap();
    let mut idx = Index::new(dir.path(), WalkOptions::default()).unwrap();
    idx.refresh();
    // The editor's buffer, not yet saved: it calls parse_row.
    let text = "from util import parse_row\n\ndef load(f):\n    return [parse_row(l) for l in f]\n";
    let hits = idx.referenced_definitions("main.py", Lang::Python, text, 2, 3);
    assert!(
        hits.iter()
            .any(|h| h.def.name == "parse_row" && h.path == "util.py"),
        "{hits:?}"
    );
    // `load` is defined inside the range itself: not context.
    assert!(!hits.iter().any(|h| h.def.name == "load"));
    // Once the editor has sent the text, the uses kept for it give the same answer.
    idx.update_text("main.py", Lang::Python, text);
    let kept = idx.referenced_definitions("main.py", Lang::Python, text, 2, 3);
    assert_eq!(kept, hits);
    // A newer text than the kept one is read afresh, not answered from the old uses.
    let newer = "def go(f):\n    return load(f)\n";
    let hits = idx.referenced_definitions("main.py", Lang::Python, newer, 0, 1);
    assert!(!hits.iter().any(|h| h.def.name == "parse_row"), "{hits:?}");
    assert!(hits.iter().any(|h| h.def.name == "load"), "{hits:?}");
}

const B_RS: &str = "fn a() { fn top() {} run(|| { fn inner() {} struct S; }); vec![fn_like()]; }\nconst C: u8 = { fn in_const() {} 1 };\n";
const B_JS: &str = "call({ m() { return 1 } }, class { n() {} }, () => { function q() {} });\n";
const B_JAVA: &str =
    "class A { Object o = new Runnable() { public void run() { class L {} } }; void m() { class K {} } }\n";
const B_GO: &str =
    "package p\nfunc f() { type U int; go func() { type T struct{}; const c = 1 }() }\n";
const B_C: &str =
    "int f(void) { struct local { int a; } l; return sizeof(struct inner { int b; }); }\n";

/// What the query files' local kinds (`; local:`) keep out: definitions inside expressions
/// (closures, anonymous classes, `sizeof`), not those written in a function's body, and
/// none in a language that names no local kind (JavaScript).
#[test]
fn definitions_inside_expressions_are_local_except_where_a_module_exports_them() {
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "b.rs",
            B_RS,
            &["a", "top", "C"],
            &["inner", "S", "in_const"],
        ),
        ("b.js", B_JS, &["m", "n", "q"], &[]),
        ("b.java", B_JAVA, &["A", "o", "m", "K"], &["run", "L"]),
        ("b.go", B_GO, &["f", "U"], &["T", "c"]),
        ("b.c", B_C, &["f", "local", "a"], &["inner", "b"]),
    ];
    let mut ex = Extractor::new();
    for (path, text, found, local) in cases {
        let lang = Lang::from_path(Path::new(path)).unwrap();
        let tree = ex.parse(lang, text).unwrap();
        let names: Vec<String> = extract_tree(lang, text, &tree)
            .definitions
            .into_iter()
            .map(|d| d.name)
            .collect();
        for n in *found {
            assert!(names.iter().any(|d| d == n), "{path}: no {n} in {names:?}");
        }
        for n in *local {
            assert!(!names.iter().any(|d| d == n), "{path}: {n} in {names:?}");
        }
    }
}

/// Snippets where one node matches a pattern more than once, or the patterns use
/// alternations, anchors, optional children and `#eq?`: the walk and the query engine agree.
#[test]
fn the_walk_and_the_query_engine_agree_on_tricky_snippets() {
    let snippets: &[(&str, &str)] = &[
        ("a.py", "import os, sys\nimport a.b as c, d\nfrom . import (x, y)\n@dec\nclass K:\n    a = b = 1\n    def f(self): pass\n"),
        ("a.js", "const a = require('./a'), b = require(\"b\");\nrequire(x);\nfoo('./c');\nexport const f = () => 1, g = function () {};\n"),
        ("a.ts", "export default class A { m() {} }\nexport { b } from './b';\nimport * as c from './c';\nnamespace N { export function h() {} }\n"),
        ("a.go", "package p\nimport (\n\t\"a\"\n\tb \"c/d\"\n)\nfunc (r *T[K]) M() {}\nvar x, y = 1, 2\nconst (A = 1; B = 2)\n"),
        ("a.c", "struct s { int a, b; int (*f)(void); };\nint x, *y, z(int);\n#include \"q.h\"\n"),
        ("a.cpp", "namespace n { class C { int a, b; void f(); }; }\ntemplate <class T> T *g(T t) { return 0; }\n"),
        ("a.java", "import a.b.C;\nimport static d.E.f;\n@interface Ann {}\nrecord R(int a) { void m() {} }\nenum E { A, B; void g() {} }\n"),
        ("a.kt", "import a.b\ninterface I { fun f() }\nenum class E { A }\nobject O { val x = 1 }\nclass C { companion object { fun g() = 1 } }\n"),
        ("a.cs", "using A.B;\nnamespace N;\nrecord R(int X);\ninterface I { void M(); }\nstruct S { int a, b; }\n"),
        ("a.php", "<?php\nuse A\\B, C\\D;\nrequire_once 'x.php';\ninterface I { function f(); }\ntrait T { public $a, $b; }\n"),
        ("a.rs", "mod m;\nuse a::{b, c};\nimpl<T> X for Y<T> { fn f() {} }\nmacro_rules! mm { () => {} }\nunion U { a: u8 }\n"),
        // Definitions deep inside expressions, where the walk must still go (`reach`) or,
        // in a local kind, must not, and inside syntax errors, where the grammar cannot say
        // what is there.
        ("b.rs", B_RS),
        ("b.js", B_JS),
        ("b.java", B_JAVA),
        ("b.go", B_GO),
        ("b.c", B_C),
        ("b.py", "def f():\n    def g():\n        pass\n    return h(lambda: 1, [x for x in y])\n"),
        ("c.py", "foo(\nimport os\n)\ndef a(): pass\n"),
    ];
    let mut ex = Extractor::new();
    for (path, text) in snippets {
        let lang = Lang::from_path(Path::new(path)).unwrap();
        let tree = ex.parse(lang, text).unwrap();
        let walk = extract_tree(lang, text, &tree);
        assert_eq!(
            walk,
            extract_tree_by_query_engine(lang, text, &tree),
            "{path}"
        );
        assert!(
            !walk.definitions.is_empty() || !walk.imports.is_empty(),
            "{path}"
        );
    }
}
