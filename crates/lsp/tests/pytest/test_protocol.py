"""`moat lsp` driven by pytest-lsp: a client nobody here wrote. pygls and lsprotocol parse
every message against the LSP 3.18 types, and pytest-lsp checks the results against the
client's capabilities. The server is the built binary with the real default model.

Run: python3 -m pytest crates/lsp/tests/pytest (MOAT_BIN overrides the binary's path).
"""

import asyncio
import os
import pathlib
import tempfile

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = pathlib.Path(__file__).resolve().parents[4]
MOAT = os.environ.get("MOAT_BIN", str(ROOT / "target" / "debug" / "moat"))
REPO = pathlib.Path(os.environ.get("MOAT_PYTEST_REPO", "/tmp/moat-pytest-repo"))
# Telemetry of the test session goes to a throwaway database, not the user's.
TELEMETRY = pathlib.Path(tempfile.mkdtemp()) / "telemetry.db"


def field(obj, name):
    """A field of a custom method's result (pygls gives a dict or an object)."""
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[MOAT, "lsp", "--threads", "2", "--telemetry-db", str(TELEMETRY)]
    ),
)
async def client(lsp_client: LanguageClient):
    REPO.mkdir(parents=True, exist_ok=True)
    (REPO / "util.py").write_text("def scale(values, factor):\n    return [v * factor for v in values]\n")
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(
            general=types.GeneralClientCapabilities(
                position_encodings=[types.PositionEncodingKind.Utf16]
            ),
            window=types.WindowClientCapabilities(work_done_progress=True),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities()
            ),
        ),
        root_uri=REPO.as_uri(),
        initialization_options={"debounceMs": 0, "contextBudget": 512},
        client_info=types.ClientInfo(name="pytest-lsp", version="1"),
    )
    result = await lsp_client.initialize_session(params)
    lsp_client.moat_init = result
    yield
    await lsp_client.shutdown_session()


async def status(client, params=None):
    return await client.protocol.send_request_async("moat/status", params)


async def wait_ready(client):
    for _ in range(1200):
        s = await status(client, {})
        state = field(field(s, "model"), "state")
        if state == "ready":
            return s
        assert state != "failed", s
        await asyncio.sleep(0.1)
    pytest.fail("the model did not load in 120 s")


@pytest.mark.asyncio
async def test_inline_completion_accept_and_status(client: LanguageClient):
    caps = client.moat_init.capabilities
    assert caps.inline_completion_provider
    assert list(caps.execute_command_provider.commands) == ["moat.accept"]
    assert caps.position_encoding == types.PositionEncodingKind.Utf16

    await wait_ready(client)
    uri = (REPO / "main.py").as_uri()
    text = "from util import scale\n\n\ndef add(a, b):\n    return \n"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    got = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=4, character=11),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
    )
    items = got.items if isinstance(got, types.InlineCompletionList) else got
    assert items, "the default model completes `return ` in add(a, b)"
    item = items[0]
    assert "a + b" in item.insert_text or "b + a" in item.insert_text, item.insert_text
    assert item.range.start == types.Position(line=4, character=11)
    assert item.command.command == "moat.accept"

    # The client shows it, then accepts: the editor inserts the text, then runs the command.
    shown = {"insertText": item.insert_text, "command": {"arguments": item.command.arguments}}
    client.protocol.notify("textDocument/didShowCompletion", {"item": shown})
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=item.range.start, end=item.range.end),
                    text=item.insert_text,
                )
            ],
        )
    )
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
    )
    s = await status(client)  # no params at all
    counters = field(s, "counters")
    assert field(counters, "accepted") == 1, s
    assert field(counters, "shown") == 1, s
    assert field(s, "documents") == 1


@pytest.mark.asyncio
async def test_errors_are_answers_not_crashes(client: LanguageClient):
    with pytest.raises(Exception, match="not open"):
        await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=(REPO / "nowhere.py").as_uri()),
                position=types.Position(line=0, character=0),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
            )
        )
    with pytest.raises(Exception, match="unknown command"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="moat.nothing", arguments=[])
        )
    s = await status(client, {})
    assert field(s, "version")
