//! Post-processing, table-driven. Every `raw` below is what the default model really said
//! (Qwen2.5-Coder-0.5B-Instruct, greedy) at that cursor: a few from `moat complete` on small
//! files, the rest from HumanEval-FIM rows (their prefix and suffix cut to the lines near the
//! hole; the set's holes are whole lines, so the cursor sits on an empty line).

use moat_context::post::{Post, Shape};
use moat_index::Lang;

struct Case {
    name: &'static str,
    lang: Lang,
    prefix: &'static str,
    suffix: &'static str,
    raw: &'static str,
    want: &'static str,
    shape: Shape,
}

const CASES: &[Case] = &[
    Case {
        name: "rust: body of an empty method, run-on into the next method",
        lang: Lang::Rust,
        prefix: "impl<T> Stack<T> {\n    pub fn new() -> Self {\n        Stack { items: Vec::new() }\n    }\n\n    pub fn push(&mut self, item: T) {\n        ",
        suffix: "\n    }\n\n    pub fn len(&self) -> usize {\n        self.items.len()\n    }\n}\n",
        raw: "self.items.push(item);\n    }\n\n    pub fn pop(&mut self) -> Option<T> {\n        if self.items.is_empty() {\n            None\n        } else {\n            Some(self.items.pop",
        want: "self.items.push(item);",
        shape: Shape::Block,
    },
    Case {
        name: "rust: the model repeats what follows the cursor on its line",
        lang: Lang::Rust,
        prefix: "impl<T> Stack<T> {\n    pub fn new() -> Self {\n        ",
        suffix: "Stack { items: Vec::new() }\n    }\n}\n",
        raw: "Stack { items: Vec::new() }\n    }\n\n    pub fn pop(&mut self) -> Option<T> {\n",
        want: "",
        shape: Shape::Line,
    },
    Case {
        name: "typescript: function body, run-on into a new function",
        lang: Lang::TypeScript,
        prefix: "interface Point {\n  x: number;\n  y: number;\n}\n\nexport function distance(a: Point, b: Point): number {\n  ",
        suffix: "\n}\n\nexport function midpoint(a: Point, b: Point): Point {\n  return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };\n}\n",
        raw: "return Math.sqrt((a.x - b.x) ** 2 + (a.y - b.y) ** 2);\n}\n\nexport function angle(a: Point, b: Point): number {\n ",
        want: "return Math.sqrt((a.x - b.x) ** 2 + (a.y - b.y) ** 2);",
        shape: Shape::Block,
    },
    Case {
        name: "typescript: mid-line, the model repeats the rest of the line",
        lang: Lang::TypeScript,
        prefix: "export function midpoint(a: Point, b: Point): Point {\n  return ",
        suffix: "{ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };\n}\n",
        raw: "{ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };\n}\n```\n\nThis code defines a `Point` interface with `",
        want: "",
        shape: Shape::Line,
    },
    Case {
        name: "go: a loop statement between two statements, run-on past the return",
        lang: Lang::Go,
        prefix: "func Count(s string) map[string]int {\n\tcounts := make(map[string]int)\n\t",
        suffix: "\n\treturn counts\n}\n",
        raw: "for _, word := range Words(s) {\n\t\tcounts[word]++\n\t}\n\treturn counts\n}\n\n// Join joins a slice of strings into a single string.\nfunc Join(fields []string) string",
        want: "for _, word := range Words(s) {\n\t\tcounts[word]++\n\t}",
        shape: Shape::Statement,
    },
    Case {
        name: "python: an argument whose closing parenthesis the line has already",
        lang: Lang::Python,
        prefix: "def main():\n    config = load(\"config.json\")\n    config[\"runs\"] = config.get(\"runs\", 0) + 1\n    save(\"config.json\", ",
        suffix: ")\n",
        raw: "config)\n\n    print(\"Running...\")\n    # Add your main logic here\n\nif __name__ == \"__main__\":\n    main()\n```\n",
        want: "config",
        shape: Shape::Line,
    },
    Case {
        name: "python: else branch, run-on into a check function",
        lang: Lang::Python,
        prefix: "    if n > 1:\n        prime_factors.append(n)\n    if len(prime_factors) == 3:\n        return True\n    else:\n",
        suffix: "\n\n",
        raw: "        return False\n\n# Check function to verify the correctness of the solution\ndef check_solution():\n",
        want: "        return False",
        shape: Shape::Block,
    },
    Case {
        name: "python: one branch; the model goes on with the suffix's own elif",
        lang: Lang::Python,
        prefix: "        a_tmp = a.replace(',', '.')\n        b_tmp = b.replace(',', '.')\n        if float(a_tmp) > float(b_tmp):\n",
        suffix: "\n        elif float(a_tmp) < float(b_tmp):\n            return b\n        else:\n            return None\n",
        raw: "            return a\n        elif float(a_tmp) < b:\n            return b\n        else:\n",
        want: "            return a",
        shape: Shape::Block,
    },
    Case {
        name: "python: a statement after a docstring",
        lang: Lang::Python,
        prefix: "def compare(game, guess):\n    \"\"\"Distances.\n    >>> compare([1, 2], [1, 3])\n    [0, 1]\n    \"\"\"\n",
        suffix: "\n",
        raw: "    return [abs(score - guess) for score, guess in zip(game, guess)]\n\n# Check function to verify the correctness of the solution\ndef check():\n",
        want: "    return [abs(score - guess) for score, guess in zip(game, guess)]",
        shape: Shape::Statement,
    },
    Case {
        name: "java: a closing brace on its own, then run-on",
        lang: Lang::Java,
        prefix: "        long x = n;\n        for (long i = 2; i * i <= x; i++) {\n            if (x % i == 0) {\n                primes.add(i);\n            }\n        }\n        if (x > 1) {\n            primes.add(x);\n",
        suffix: "\n        return primes.get(primes.size() - 1);\n    }\n}",
        raw: "        }\n        Collections.sort(primes);\n        return primes.get(primes.size() - 1);\n    }\n\n",
        want: "        }",
        shape: Shape::Statement,
    },
    Case {
        name: "java: the method's closing brace before the class's",
        lang: Lang::Java,
        prefix: "class Problem {\n    public static long fib4(long n) {\n        if (n == 3) return 0;\n        return fib4(n-1) + fib4(n-2) + fib4(n-3) + fib4(n-4);\n",
        suffix: "\n}",
        raw: "    }\n",
        want: "    }",
        shape: Shape::Statement,
    },
    Case {
        name: "java: a loop header whose body the suffix has",
        lang: Lang::Java,
        prefix: "    public static boolean belowThreshold(ArrayList<Long> l, long t) {\n        Long[] a = l.toArray(new Long[l.size()]);\n",
        suffix: "\n            if (a[i] >= t) {\n                return false;\n            }\n        }\n        return true;\n    }\n}",
        raw: "        for (int i = 0; i < a.length; i++) {\n            if (a[i] < t) {\n                return false;\n            }\n",
        want: "        for (int i = 0; i < a.length; i++) {",
        shape: Shape::Statement,
    },
    Case {
        name: "java: `} else {` between two bodies",
        lang: Lang::Java,
        prefix: "            if (i % 2 == 0) {\n                v = 1l;\n                for (long j = 2l; j <= i; j++) {\n                    v *= j;\n                }\n",
        suffix: "\n                v = (i * (i + 1l)) / 2l;\n            }\n            ret.add(v);\n        }\n        return ret;\n    }\n}",
        raw: "            } else {\n                v = i * (i + 1l) / 2l;\n            }\n            ret.add(v);\n",
        want: "            } else {",
        shape: Shape::Statement,
    },
    Case {
        name: "javascript: a loop header whose body the suffix has",
        lang: Lang::JavaScript,
        prefix: "function monotonic(l){\n    if(l[0] < l[1]){\n        for(var i = 1; i < l.length - 1; i++){\n            if(l[i] > l[i + 1]){\n                return false;\n            }\n        }\n    }\n    else{\n",
        suffix: "\n            if(l[i] < l[i + 1]){\n                return false;\n            }\n        }\n    }\n    return true;\n}",
        raw: "        for(var i = 1; i < l.length - 1; i++){\n            if(l[i] < l[i + 1]){\n                return false;\n            }\n",
        want: "        for(var i = 1; i < l.length - 1; i++){",
        shape: Shape::Statement,
    },
    Case {
        name: "javascript: the model only repeats the suffix: nothing rather than junk",
        lang: Lang::JavaScript,
        prefix: "        else if (paren_string[i] == \" \"){\n            result.push(maxlevel);\n            maxlevel = 0;\n",
        suffix: "\n        }\n    }\n    result.push(maxlevel);\n    return result;\n}",
        raw: "        }\n    }\n    result.push(maxlevel);\n    return result;\n",
        want: "",
        shape: Shape::Statement,
    },
];

#[test]
fn real_outputs_are_cut_to_the_hole() {
    let mut failed = Vec::new();
    for c in CASES {
        let post = Post::new(Some(c.lang), c.prefix, c.suffix);
        let got = post.finish(c.raw);
        if got != c.want || post.shape() != c.shape {
            failed.push(format!(
                "{}: shape {:?} (want {:?}), got {got:?}, want {:?}",
                c.name,
                post.shape(),
                c.shape,
                c.want
            ));
        }
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

#[test]
fn generation_stops_once_the_hole_is_filled() {
    // `end` must see the completion complete from the streamed text, so that the engine
    // stops early instead of running to its token limit.
    for c in CASES.iter().filter(|c| !c.want.is_empty()) {
        let post = Post::new(Some(c.lang), c.prefix, c.suffix);
        let end = post.end(c.raw);
        assert!(end.is_some(), "{}: never complete", c.name);
        assert!(
            end.unwrap() >= c.want.trim_end().len().min(c.raw.len()),
            "{}: stopped at {:?}, before the answer ends",
            c.name,
            end
        );
    }
}

#[test]
fn no_language_still_trims_by_lines() {
    let post = Post::new(None, "x = foo(", ")\nprint(x)\n");
    assert_eq!(post.finish("a, b)\nprint(x)\n"), "a, b");
    let post = Post::new(None, "def f():\n    ", "\n\nprint(f())\n");
    assert_eq!(post.finish("return 1\n\nprint(f())\n"), "return 1");
    assert_eq!(post.finish("   \n\n"), "");
}

#[test]
fn a_compound_statement_ends_with_its_block() {
    // Python: the block ends where a line comes back to the statement's indentation.
    let post = Post::new(
        Some(Lang::Python),
        "def f(xs):\n    total = 0\n",
        "\n    return total\n",
    );
    assert_eq!(post.shape(), Shape::Statement);
    assert_eq!(
        post.finish("    for x in xs:\n        total += x\n    print(total)\n"),
        "    for x in xs:\n        total += x"
    );
    // An `else` continues it.
    assert_eq!(
        post.finish(
            "    if xs:\n        total = 1\n    else:\n        total = 2\n    print(total)\n"
        ),
        "    if xs:\n        total = 1\n    else:\n        total = 2"
    );
    // Braces: the closing brace ends it.
    let post = Post::new(
        Some(Lang::Go),
        "func f(xs []int) int {\n\ttotal := 0\n",
        "\n\treturn total\n}\n",
    );
    assert_eq!(
        post.finish("\tfor _, x := range xs {\n\t\ttotal += x\n\t}\n\tfmt.Println(total)\n"),
        "\tfor _, x := range xs {\n\t\ttotal += x\n\t}"
    );
}
