//! `moat`: the command-line edge. Errors become `anyhow` messages here and nowhere else.

mod bench;
mod bench_index;
mod bench_lsp;
mod bench_report;
mod complete;
mod eval;
mod index;
mod lsp;
mod model;
mod progress;
mod report;
mod tune;

use clap::{Parser, Subcommand};

/// Generating a token allocates and frees hundreds of short-lived buffers (candle's tensors,
/// the 600 KB of logits); glibc's allocator spent ~10% of decoding in `free`, consolidation
/// and page faults there.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "moat",
    version,
    about = "Private code completion: a local model that knows your repository"
)]
struct Cli {
    /// CPU threads for the model (default: all available cores; never more).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Log level for stderr (error, warn, info, debug, trace); `MOAT_LOG` also works.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    /// Append the log to this file instead of stderr (for editors that hide the server's
    /// stderr; in `moat lsp` stdout is the protocol and never holds logs).
    #[arg(long, global = true)]
    log_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the completion the model proposes at FILE:LINE:COL (1-based line and column).
    Complete(complete::Args),
    /// List, fetch, verify or locate models.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Measure performance.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Build or refresh the repository index and print its statistics.
    Index(index::IndexArgs),
    /// Show the definitions of a name found by the index.
    Symbols(index::SymbolsArgs),
    /// Show the code most similar to the lines before FILE:LINE.
    Similar(index::SimilarArgs),
    /// Run the language server (stdio).
    Lsp(lsp::LspArgs),
    /// Acceptance, retention and latency from the telemetry store(s).
    Report(report::ReportArgs),
    /// Measure completion quality (exact match) on public data or a repository.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Fine-tune the model on a repository (LoRA), judged on held-out files.
    Tune(Box<tune::TuneArgs>),
}

/// Turns transparent huge pages off for this process (`MOAT_THP=1` leaves them on).
/// mimalloc asks for huge pages for its segments, and the kernel then zeroes 2 MiB at every
/// fault: indexing the cargo registry spent 9% of its samples in `clear_page_erms`. Off,
/// over four alternating runs of `moat index ~/.cargo/registry/src`: 15.0 s instead of
/// 17.5 s (system time 1.2 s instead of 2.8 s), the model loaded in 1.1 s instead of 2.6 s,
/// and `moat bench engine`'s prefill and decode speeds were unchanged (session 17).
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MOAT_THP").is_none_or(|v| v != "1") {
        // Safety: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours;
        // a kernel without it returns an error, which changes nothing.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// Gives tree-sitter's C allocations to mimalloc, the Rust side's allocator: `perf` of
/// `moat index` found ~9% of its samples in glibc's malloc and free for tree-sitter's
/// trees and stacks. Called before any tree-sitter object exists, so nothing allocated by
/// one allocator is freed by the other.
fn tree_sitter_on_mimalloc() {
    unsafe extern "C" fn zeroed(count: usize, size: usize) -> *mut std::ffi::c_void {
        match count.checked_mul(size) {
            // Safety: mi_zalloc takes any size and returns null when it cannot.
            Some(n) => unsafe { libmimalloc_sys::mi_zalloc(n) },
            None => std::ptr::null_mut(),
        }
    }
    // Safety: the four functions are one allocator's malloc, calloc, realloc and free, and
    // no tree-sitter object has been made yet (this runs first in `main`).
    unsafe {
        tree_sitter::set_allocator(
            Some(libmimalloc_sys::mi_malloc),
            Some(zeroed),
            Some(libmimalloc_sys::mi_realloc),
            Some(libmimalloc_sys::mi_free),
        );
    }
}

fn main() {
    no_huge_pages();
    tree_sitter_on_mimalloc();
    let cli = Cli::parse();
    let filter = std::env::var("MOAT_LOG").unwrap_or_else(|_| cli.log.clone());
    let logs =
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter));
    match &cli.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            match file {
                Ok(f) => logs
                    .with_writer(std::sync::Mutex::new(f))
                    .with_ansi(false)
                    .init(),
                Err(e) => {
                    eprintln!("error: cannot write the log to {}: {e}", path.display());
                    std::process::exit(1);
                }
            }
        }
        None => logs.with_writer(std::io::stderr).init(),
    }
    // Before any tensor exists: candle sizes its thread pool once.
    let threads = cli
        .threads
        .unwrap_or_else(moat_engine::device::available_cores);
    moat_engine::device::set_cpu_threads(threads);
    let result = match cli.command {
        Command::Complete(args) => complete::run(args),
        Command::Model(cmd) => model::run(cmd),
        Command::Bench(cmd) => bench::run(cmd, threads),
        Command::Index(args) => index::run_index(args),
        Command::Symbols(args) => index::run_symbols(args),
        Command::Similar(args) => index::run_similar(args),
        Command::Eval(cmd) => eval::run(cmd),
        Command::Tune(a) => tune::run(*a),
        Command::Lsp(args) => lsp::run(args, threads),
        Command::Report(args) => report::run(args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
