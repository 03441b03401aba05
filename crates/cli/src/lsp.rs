//! `moat lsp`: the language server on stdio (or one loopback TCP client, for debugging).

use anyhow::{bail, Context, Result};
use clap::Args;
use moat_lsp::ServerOptions;

#[derive(Args)]
pub struct LspArgs {
    /// Serve one client on this loopback address instead of stdio (e.g. 127.0.0.1:9257).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Accepted for editors that pass it; stdio is the default.
    #[arg(long)]
    stdio: bool,
    /// The telemetry database (default: telemetry.db in the data directory). The
    /// `telemetry` setting turns recording off.
    #[arg(long)]
    telemetry_db: Option<std::path::PathBuf>,
    /// When to check that accepted completions are still in the document, in seconds after
    /// the accept (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = moat_telemetry::retention::CHECKPOINTS)]
    retention_after: Vec<u32>,
}

pub fn run(args: LspArgs, threads: usize) -> Result<()> {
    if let Some(addr) = args.listen {
        if !addr.ip().is_loopback() {
            bail!("--listen takes a loopback address (127.0.0.1 or ::1), got {addr}");
        }
    }
    let opts = ServerOptions {
        locate_model: Box::new(crate::model::locate_offline),
        load_adapter: std::sync::Arc::new(crate::tune::load_for_serving),
        index_cache: Some(moat_models::Store::from_env().root().join("index")),
        threads,
        telemetry_db: Some(args.telemetry_db.unwrap_or_else(crate::report::default_db)),
        retention_after: args.retention_after,
    };
    // The model has its own thread; two runtime threads keep the protocol responsive.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = rt.block_on(async {
        match args.listen {
            Some(addr) => moat_lsp::serve_tcp(opts, addr).await,
            None => {
                moat_lsp::serve_stdio(opts).await;
                Ok(())
            }
        }
    });
    // After `exit`, a read of stdin may still be pending on a blocking thread: do not wait
    // for it (nor for the model thread); the process ends here.
    rt.shutdown_background();
    served.context("serving")?;
    Ok(())
}
