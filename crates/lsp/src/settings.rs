//! Settings, from `initializationOptions` and `workspace/didChangeConfiguration` (either the
//! object itself or under a `moat` key). Unknown keys are ignored; a wrong type for a known
//! key is reported and the key keeps its value.

use moat_context::ContextMode;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// A built-in model name or a GGUF path (`None`: the default model).
    pub model: Option<String>,
    /// A tuned adapter (`moat tune`), by name or directory, served unmerged on top of the
    /// model; it can be switched while the server runs.
    pub adapter: Option<String>,
    /// Serve the adapter even if it did not beat the base model on its held-out files.
    pub adapter_force: bool,
    /// `cpu`, `cuda[:N]`, `metal[:N]`.
    pub device: String,
    /// CPU threads for the model (fixed when the process starts; shown in the status).
    pub threads: Option<usize>,
    /// Prompt budget in tokens.
    pub context_budget: usize,
    pub context: ContextMode,
    /// Most tokens of the text after the cursor (`None`: 128 on a CPU, else the budget's
    /// usual share). The engine recomputes this part at every keystroke: it sits after the
    /// text being typed in the prompt.
    pub suffix_tokens: Option<usize>,
    /// Lines the repository context is kept for while the cursor moves down from where it
    /// was chosen (`None`: `MEMO_LINES` on a CPU, where new context at each Enter costs
    /// seconds of prefill; 0 elsewhere: chosen afresh for every request, so that what was
    /// just typed on the line, such as `module.`, counts; a GPU prefills a whole prompt in
    /// ~0.1 s).
    pub context_lines: Option<u32>,
    /// How long a request waits for the next keystroke before it runs.
    pub debounce_ms: u64,
    /// Most tokens generated for one completion.
    pub max_tokens: usize,
    /// Decoding time after which a completion ends with its current line (0: no limit). On a
    /// CPU a 64-token block takes ~3 s to decode; the typing latency target is 1.2 s.
    pub decode_budget_ms: u64,
    /// Language ids completions are offered for (empty: all).
    pub languages: Vec<String>,
    pub telemetry: bool,
    /// How users appear in telemetry: `email` (git's user.email) or `hash` (a salted hash
    /// of it).
    pub telemetry_user: String,
    pub telemetry_salt: String,
    /// Store the completions' text in telemetry (off: no code is stored).
    pub telemetry_code: bool,
    /// Completions on or off (the editors' toggle).
    pub enabled: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            adapter: None,
            adapter_force: false,
            device: "cpu".into(),
            threads: None,
            context_budget: moat_context::Budget::default().total,
            context: ContextMode::Repo,
            suffix_tokens: None,
            context_lines: None,
            debounce_ms: 75,
            max_tokens: 64,
            decode_budget_ms: 600,
            languages: Vec::new(),
            telemetry: true,
            telemetry_user: "email".into(),
            telemetry_salt: "moat".into(),
            telemetry_code: false,
            enabled: true,
        }
    }
}

impl Settings {
    /// Applies what `v` sets; returns a message per key that was set wrongly.
    pub fn apply(&mut self, v: &Value) -> Vec<String> {
        let v = v.get("moat").unwrap_or(v);
        let mut problems = Vec::new();
        let Some(obj) = v.as_object() else {
            if !v.is_null() {
                problems.push(format!("settings must be an object, got {v}"));
            }
            return problems;
        };
        for (key, val) in obj {
            let bad = |what: &str| format!("setting `{key}` must be {what}, got {val}");
            match key.as_str() {
                "model" => match val {
                    Value::String(s) if !s.is_empty() => self.model = Some(s.clone()),
                    Value::Null => self.model = None,
                    _ => problems.push(bad("a model name or path")),
                },
                "adapter" => match val {
                    Value::String(s) if !s.is_empty() => self.adapter = Some(s.clone()),
                    Value::Null => self.adapter = None,
                    Value::String(_) => self.adapter = None,
                    _ => problems.push(bad("an adapter name or directory")),
                },
                "adapterForce" | "adapter_force" => match val.as_bool() {
                    Some(b) => self.adapter_force = b,
                    None => problems.push(bad("true or false")),
                },
                "device" => match val.as_str() {
                    Some(s) => self.device = s.to_string(),
                    None => problems.push(bad("a string")),
                },
                "threads" => match val.as_u64() {
                    Some(n) if n > 0 => self.threads = Some(n as usize),
                    _ if val.is_null() => self.threads = None,
                    _ => problems.push(bad("a positive number")),
                },
                "contextBudget" | "context_budget" => match val.as_u64() {
                    Some(n) if (64..=32768).contains(&n) => self.context_budget = n as usize,
                    _ => problems.push(bad("a number of tokens from 64 to 32768")),
                },
                "context" => match val.as_str().and_then(ContextMode::from_name) {
                    Some(m) => self.context = m,
                    None => problems.push(bad("none, file or repo")),
                },
                "suffixTokens" | "suffix_tokens" => match val.as_u64() {
                    Some(n) if n <= 32768 => self.suffix_tokens = Some(n as usize),
                    _ if val.is_null() => self.suffix_tokens = None,
                    _ => problems.push(bad("a number of tokens")),
                },
                "contextLines" | "context_lines" => match val.as_u64() {
                    Some(n) if n <= 1000 => self.context_lines = Some(n as u32),
                    _ if val.is_null() => self.context_lines = None,
                    _ => problems.push(bad("a number of lines from 0 to 1000")),
                },
                "debounceMs" | "debounce_ms" | "debounce" => match val.as_u64() {
                    Some(n) if n <= 5000 => self.debounce_ms = n,
                    _ => problems.push(bad("milliseconds from 0 to 5000")),
                },
                "maxTokens" | "max_tokens" => match val.as_u64() {
                    Some(n) if (1..=1024).contains(&n) => self.max_tokens = n as usize,
                    _ => problems.push(bad("a number from 1 to 1024")),
                },
                "decodeBudgetMs" | "decode_budget_ms" => match val.as_u64() {
                    Some(n) if n <= 60_000 => self.decode_budget_ms = n,
                    _ => problems.push(bad("milliseconds from 0 (no limit) to 60000")),
                },
                "languages" => match val.as_array() {
                    Some(a) if a.iter().all(Value::is_string) => {
                        self.languages = a
                            .iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    }
                    _ => problems.push(bad("a list of language ids")),
                },
                "telemetry" => match val.as_bool() {
                    Some(b) => self.telemetry = b,
                    None => problems.push(bad("true or false")),
                },
                "telemetryUser" => match val.as_str() {
                    Some(u @ ("email" | "hash")) => self.telemetry_user = u.to_string(),
                    _ => problems.push(bad("email or hash")),
                },
                "telemetrySalt" => match val.as_str() {
                    Some(s) => self.telemetry_salt = s.to_string(),
                    None => problems.push(bad("a string")),
                },
                "telemetryCode" => match val.as_bool() {
                    Some(b) => self.telemetry_code = b,
                    None => problems.push(bad("true or false")),
                },
                "enabled" => match val.as_bool() {
                    Some(b) => self.enabled = b,
                    None => problems.push(bad("true or false")),
                },
                _ => {}
            }
        }
        problems
    }

    /// The adapter to serve, with the force flag (`None`: the base model alone).
    pub fn adapter_spec(&self) -> Option<(String, bool)> {
        self.adapter.clone().map(|a| (a, self.adapter_force))
    }

    /// The salt for users and line fingerprints: `Some` in hashed-user mode.
    pub fn salt(&self) -> Option<&str> {
        (self.telemetry_user == "hash").then_some(self.telemetry_salt.as_str())
    }

    /// Whether the model runs on the CPU (`auto` without a GPU included).
    fn on_cpu(&self) -> bool {
        self.device
            .trim()
            .to_ascii_lowercase()
            .parse::<moat_engine::DeviceChoice>()
            .is_ok_and(|d| d == moat_engine::DeviceChoice::Cpu)
    }

    /// Lines the repository context is kept for (see `context_lines`).
    pub fn context_lines(&self) -> u32 {
        match self.context_lines {
            Some(n) => n,
            None if self.on_cpu() => moat_context::MEMO_LINES,
            None => 0,
        }
    }

    /// The prompt budget for a completion, with the suffix's share from `suffix_tokens`.
    pub fn budget(&self) -> moat_context::Budget {
        let usual = moat_context::Budget {
            total: self.context_budget,
            ..Default::default()
        };
        let cap = match self.suffix_tokens {
            Some(n) => n,
            None if self.on_cpu() => moat_context::CPU_SUFFIX_TOKENS,
            None => return usual,
        };
        usual.suffix_capped(cap)
    }

    pub fn language_enabled(&self, language_id: &str) -> bool {
        self.languages.is_empty() || self.languages.iter().any(|l| l == language_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_apply_known_keys_and_report_bad_ones() {
        let mut s = Settings::default();
        let problems = s.apply(&json!({"moat": {
            "debounceMs": 120, "contextBudget": 2048, "languages": ["python"],
            "telemetry": false, "context": "file", "threads": "many", "unknown": 1
        }}));
        assert_eq!(s.debounce_ms, 120);
        assert_eq!(s.context_budget, 2048);
        assert_eq!(s.context, ContextMode::File);
        assert!(!s.telemetry);
        assert!(s.language_enabled("python") && !s.language_enabled("rust"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("threads"));
        assert_eq!(s.threads, None);
        assert_eq!(s.decode_budget_ms, 600);
        assert!(s.apply(&json!({"decodeBudgetMs": 0})).is_empty());
        assert_eq!(s.decode_budget_ms, 0);
        assert_eq!(s.apply(&json!({"decodeBudgetMs": -5})).len(), 1);
        assert_eq!(s.apply(&json!(3)).len(), 1);
        assert!(s.apply(&Value::Null).is_empty());
    }

    #[test]
    fn adapter_is_named_cleared_and_forced() {
        let mut s = Settings::default();
        assert_eq!(s.adapter_spec(), None);
        assert!(s.apply(&json!({"adapter": "payments"})).is_empty());
        assert_eq!(s.adapter_spec(), Some(("payments".into(), false)));
        assert!(s.apply(&json!({"adapterForce": true})).is_empty());
        assert_eq!(s.adapter_spec(), Some(("payments".into(), true)));
        assert_eq!(s.apply(&json!({"adapter": 3})).len(), 1);
        assert_eq!(
            s.adapter.as_deref(),
            Some("payments"),
            "a bad value keeps the old one"
        );
        s.apply(&json!({"adapter": ""}));
        assert_eq!(s.adapter_spec(), None);
        s.apply(&json!({"adapter": "x"}));
        s.apply(&json!({"adapter": null}));
        assert_eq!(s.adapter_spec(), None);
    }

    #[test]
    fn the_suffix_is_short_on_a_cpu_unless_set() {
        let mut s = Settings::default();
        let b = s.budget();
        assert_eq!(b.total, s.context_budget);
        let cpu = moat_context::CPU_SUFFIX_TOKENS as f32;
        assert!((b.suffix_share * b.total as f32 - cpu).abs() < 1.0);
        // `auto` is the CPU on a machine (or build) without CUDA.
        s.apply(&json!({"device": "auto"}));
        if moat_engine::DeviceChoice::Cuda(0).open().is_err() {
            assert!((s.budget().suffix_share * s.context_budget as f32 - cpu).abs() < 1.0);
        }
        s.apply(&json!({"device": "cuda"}));
        assert_eq!(
            s.budget().suffix_share,
            moat_context::Budget::default().suffix_share
        );
        s.apply(&json!({"suffixTokens": 100}));
        assert!((s.budget().suffix_share * s.context_budget as f32 - 100.0).abs() < 1.0);
    }

    #[test]
    fn the_context_is_kept_for_more_lines_on_a_cpu_unless_set() {
        let mut s = Settings::default();
        assert_eq!(s.context_lines(), moat_context::MEMO_LINES);
        s.apply(&json!({"device": "cuda"}));
        assert_eq!(s.context_lines(), 0);
        assert!(s.apply(&json!({"contextLines": -1})).len() == 1);
        assert_eq!(s.context_lines(), 0, "a wrong value keeps the old one");
        s.apply(&json!({"contextLines": 3}));
        assert_eq!(s.context_lines(), 3);
        s.apply(&json!({"device": "cpu", "contextLines": null}));
        assert_eq!(s.context_lines(), moat_context::MEMO_LINES);
    }
}
