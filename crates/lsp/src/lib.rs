//! `moat lsp`: inline completion over the Language Server Protocol.
//!
//! Architecture Invariant: the protocol types are used through `protocol` only; the engine,
//! the index and the context crate know nothing of LSP. The model runs on its own thread
//! (`worker`), never on the runtime that reads the editor's messages, so the server always
//! answers. Nothing here opens a network connection (`--listen` binds to loopback for
//! debugging only).

pub mod client;
mod documents;
mod events;
mod guard;
mod inflight;
pub mod protocol;
mod server;
mod settings;
mod typing;
mod worker;

pub use server::{Backend, ModelLocator, ServerOptions};
pub use settings::Settings;
pub use worker::{AdapterLoader, AdapterState};

use protocol::{LspService, Server};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_lsp_server::jsonrpc::{Request, Response};

/// Requests handled at once. A burst of keystrokes sends many completion requests; each
/// must start (and learn that a newer one supersedes it) without waiting for a slot.
const CONCURRENCY: usize = 128;

/// Methods that take no parameters but must accept `{}` as well as none.
const NO_PARAMS: [&str; 1] = ["moat/status"];

/// Gives `{}` to parameterless methods sent without params or with `null`, so that every
/// form works.
#[derive(Clone)]
struct NormalizeParams<S>(S);

impl<S> tower::Service<Request> for NormalizeParams<S>
where
    S: tower::Service<Request, Response = Option<Response>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if NO_PARAMS.contains(&req.method()) && req.params().is_none_or(|p| p.is_null()) {
            let (method, id, _) = req.into_parts();
            let mut b = Request::build(method).params(serde_json::json!({}));
            if let Some(id) = id {
                b = b.id(id);
            }
            return self.0.call(b.finish());
        }
        self.0.call(req)
    }
}

fn service(opts: ServerOptions) -> (LspService<Backend>, tower_lsp_server::ClientSocket) {
    let opts = Arc::new(opts);
    LspService::build(move |client| Backend::new(client, opts.clone()))
        .custom_method("textDocument/inlineCompletion", Backend::inline_completion)
        .custom_method("textDocument/didShowCompletion", Backend::did_show)
        .custom_method(
            "textDocument/didPartiallyAcceptCompletion",
            Backend::did_partially_accept,
        )
        .custom_method("moat/didDismissCompletion", Backend::did_dismiss)
        .custom_method("moat/status", Backend::status)
        .finish()
}

/// Serves one client over stdin/stdout until it exits.
pub async fn serve_stdio(opts: ServerOptions) {
    let (svc, socket) = service(opts);
    let (input, output) = guard::start(tokio::io::stdin(), tokio::io::stdout());
    Server::new(input, output, socket)
        .concurrency_level(CONCURRENCY)
        .serve(NormalizeParams(svc))
        .await;
}

/// Serves one client that connects to `addr` (loopback, for debugging).
pub async fn serve_tcp(opts: ServerOptions, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("listening on {}", listener.local_addr()?);
    let (stream, _) = listener.accept().await?;
    let (read, write) = tokio::io::split(stream);
    let (svc, socket) = service(opts);
    let (input, output) = guard::start(read, write);
    Server::new(input, output, socket)
        .concurrency_level(CONCURRENCY)
        .serve(NormalizeParams(svc))
        .await;
    Ok(())
}
