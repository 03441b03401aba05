//! One completion, exactly as the server makes it: render, generate greedily, stop when
//! post-processing says the hole is filled, trim.

use crate::Result;
use moat_context::post::Post;
use moat_engine::{AvoidLine, CancelFlag, Engine, FimPrompt, Flow, GenerateParams, Timings};
use moat_index::Lang;

pub struct Completer<'a> {
    pub engine: &'a mut Engine,
    pub max_tokens: usize,
    /// Decode with the first-line guard (`AvoidLine`), as the server does.
    pub avoid_repeats: bool,
}

#[derive(Debug, Clone)]
pub struct Completion {
    /// What the model said (up to where generation stopped).
    pub raw: String,
    /// After post-processing: what the user would see.
    pub text: String,
    pub timings: Timings,
}

impl Completer<'_> {
    /// Generates greedily until `done` says the output so far is enough. `one_line`: only
    /// the first written line will be kept (`AvoidLine::one_line`).
    pub fn generate(
        &mut self,
        prompt: &FimPrompt,
        one_line: bool,
        done: &dyn Fn(&str) -> bool,
    ) -> Result<(String, Timings)> {
        let tokens = self.engine.render_fim(prompt)?;
        let params = GenerateParams {
            max_tokens: self.max_tokens,
            avoid: match (self.avoid_repeats, one_line) {
                (false, _) => None,
                (true, true) => Some(AvoidLine::one_line(&prompt.prefix, &prompt.suffix)),
                (true, false) => AvoidLine::after(&prompt.prefix, &prompt.suffix),
            },
            ..Default::default()
        };
        let gen = self
            .engine
            .generate(&tokens, &params, &CancelFlag::new(), &mut |t| {
                if done(t) {
                    Flow::StopAt(t.len())
                } else {
                    Flow::Continue
                }
            })?;
        Ok((gen.text, gen.timings))
    }

    /// A completion of the prompt's hole, post-processed for `lang` by the in-file window
    /// `(prefix, suffix)` around the cursor.
    pub fn complete(
        &mut self,
        prompt: &FimPrompt,
        window: (&str, &str),
        lang: Option<Lang>,
    ) -> Result<Completion> {
        let post = Post::new(lang, window.0, window.1);
        let (raw, timings) = self.generate(prompt, false, &|t| post.end(t).is_some())?;
        Ok(Completion {
            text: post.finish(&raw),
            raw,
            timings,
        })
    }
}
