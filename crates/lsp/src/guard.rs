//! A framing guard between the editor and the protocol library. tower-lsp-server stops
//! reading its input after the first message it cannot decode, which would leave the editor
//! talking to a server that never answers again. The guard reads the frames itself, passes
//! on the well-formed ones, answers each malformed one with a JSON-RPC parse error, and
//! finds the next frame after a wrong `Content-Length`.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Larger messages are refused (a 20 MB document is fine).
const MAX_MESSAGE: usize = 128 << 20;

enum Frame {
    Message(Vec<u8>),
    Bad(String),
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Reads one frame; `None` at the end of the input.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<Frame> {
    let mut len: Option<usize> = None;
    let mut bad_header = false;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if len.is_some() {
                break;
            }
            continue; // blank lines between frames, or after garbage
        }
        // After a wrong length, the next header may follow the rest of a body on its line.
        let header = match text.find("Content-Length:") {
            Some(i) => {
                if i > 0 {
                    bad_header = true;
                }
                &text[i..]
            }
            None => text,
        };
        match header.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                match value.trim().parse::<usize>() {
                    Ok(n) => len = Some(n),
                    Err(_) => bad_header = true,
                }
            }
            Some((name, _)) if name.eq_ignore_ascii_case("content-type") => {}
            _ => bad_header = true,
        }
    }
    let n = len?;
    if n > MAX_MESSAGE {
        // Skip the body without keeping it.
        let mut left = n;
        let mut buf = vec![0u8; 1 << 16];
        while left > 0 {
            let k = r.read(&mut buf[..left.min(1 << 16)]).await.ok()?;
            if k == 0 {
                return None;
            }
            left -= k;
        }
        return Some(Frame::Bad(format!(
            "message of {n} bytes is over the limit of {MAX_MESSAGE}"
        )));
    }
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).await.ok()?;
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return Some(Frame::Bad(format!("the message is not JSON: {e}")));
    }
    if bad_header {
        tracing::warn!("skipped bytes that were not a header before a message");
    }
    Some(Frame::Message(body))
}

fn parse_error(reason: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": format!("Parse error: {reason}")},
    });
    frame(body.to_string().as_bytes())
}

/// Runs the guard between `input`/`output` (the editor) and the returned pair (the
/// server's input and output).
pub fn start<R, W>(input: R, output: W) -> (tokio::io::DuplexStream, tokio::io::DuplexStream)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (server_in, mut to_server) = tokio::io::duplex(1 << 20);
    let (from_server, server_out) = tokio::io::duplex(1 << 20);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    // The one writer of the editor's side: whole frames, never interleaved.
    tokio::spawn(async move {
        let mut output = output;
        while let Some(bytes) = rx.recv().await {
            if output.write_all(&bytes).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let to_editor = tx.clone();
    tokio::spawn(async move {
        let mut r = BufReader::new(from_server);
        while let Some(f) = read_frame(&mut r).await {
            let bytes = match f {
                Frame::Message(body) => frame(&body),
                Frame::Bad(why) => {
                    tracing::error!("the server wrote a bad frame: {why}");
                    continue;
                }
            };
            if to_editor.send(bytes).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut r = BufReader::new(input);
        while let Some(f) = read_frame(&mut r).await {
            match f {
                Frame::Message(body) => {
                    if to_server.write_all(&frame(&body)).await.is_err() {
                        break;
                    }
                }
                Frame::Bad(why) => {
                    tracing::warn!("malformed message from the editor: {why}");
                    if tx.send(parse_error(&why)).await.is_err() {
                        break;
                    }
                }
            }
        }
        // End of input: the server sees it too and stops.
        let _ = to_server.shutdown().await;
    });
    (server_in, server_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8]) -> Vec<Result<String, String>> {
        let mut r = BufReader::new(input);
        let mut v = Vec::new();
        while let Some(f) = read_frame(&mut r).await {
            v.push(match f {
                Frame::Message(b) => Ok(String::from_utf8(b).unwrap()),
                Frame::Bad(w) => Err(w),
            });
        }
        v
    }

    #[tokio::test]
    async fn good_bad_and_misframed_messages() {
        let input = b"Content-Length: 2\r\n\r\n{}\
Content-Length: 12\r\n\r\n{not json!!}\
Content-Length: 5\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n[1,2]\
Content-Length: 3\r\n\r\n{\"a\": 1}Content-Length: 4\r\n\r\nnull";
        let got = frames(input).await;
        assert_eq!(got[0], Ok("{}".into()));
        assert!(got[1].as_ref().unwrap_err().contains("not JSON"));
        assert_eq!(got[2], Ok("[1,2]".into()));
        // A length too short: the cut body is an error, then the next frame is found.
        assert!(got[3].is_err());
        assert_eq!(got[4], Ok("null".into()));
        assert_eq!(got.len(), 5);
    }
}
