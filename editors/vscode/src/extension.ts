// moat for VS Code: starts `moat lsp` through vscode-languageclient (which shows its inline
// completions as ghost text and runs an item's command when Tab accepts it), reports what
// became of each completion (tracker.ts), and shows the server's state in the status bar.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFile } from 'child_process';
import * as vscode from 'vscode';
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { Config, DEFAULTS, serverCommand, serverSettings, Status, statusText } from './settings';
import { Tracker } from './tracker';

const ACCEPT = 'moat.accept';
/** An offered item still applicable this long after is taken as shown. */
const SHOWN_AFTER_MS = 150;

let client: LanguageClient | undefined;
let tracker: Tracker;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
let poller: NodeJS.Timeout | undefined;
let extensionPath = '';

function config(): Config {
  const c = vscode.workspace.getConfiguration('moat');
  return {
    enabled: c.get('enabled', DEFAULTS.enabled),
    serverPath: c.get('serverPath', DEFAULTS.serverPath),
    serverArgs: c.get('serverArgs', DEFAULTS.serverArgs),
    model: c.get('model', DEFAULTS.model),
    adapter: c.get('adapter', DEFAULTS.adapter),
    adapterForce: c.get('adapterForce', DEFAULTS.adapterForce),
    device: c.get('device', DEFAULTS.device),
    threads: c.get('threads', DEFAULTS.threads),
    contextBudget: c.get('contextBudget', DEFAULTS.contextBudget),
    debounceMs: c.get('debounceMs', DEFAULTS.debounceMs),
    languages: c.get('languages', DEFAULTS.languages),
    telemetry: c.get('telemetry', DEFAULTS.telemetry),
  };
}

function bundledServer(): string | undefined {
  const p = path.join(extensionPath, 'bin', process.platform === 'win32' ? 'moat.exe' : 'moat');
  if (!fs.existsSync(p)) {
    return undefined;
  }
  try {
    fs.accessSync(p, fs.constants.X_OK);
  } catch {
    fs.chmodSync(p, 0o755); // a .vsix does not always keep the executable bit
  }
  return p;
}

function notify(method: string, params: unknown): void {
  if (client && client.state === State.Running) {
    client.sendNotification(method, params).catch((e) => output.appendLine(`${method}: ${e}`));
  }
}

function setStatus(s: Status | undefined): void {
  const { text, label } = statusText(s, client?.state === State.Running);
  statusItem.text = text;
  const why = s?.model?.error ? `: ${s.model.error}` : '';
  statusItem.tooltip = `${label}${why} (click for details)`;
  statusItem.accessibilityInformation = { label };
}

async function status(): Promise<Status | undefined> {
  if (!client || client.state !== State.Running) {
    return undefined;
  }
  return client.sendRequest<Status>('moat/status', {});
}

function poll(): void {
  if (poller) {
    clearTimeout(poller);
  }
  const tick = async () => {
    let s: Status | undefined;
    try {
      s = await status();
    } catch {
      s = undefined;
    }
    setStatus(s);
    const settled = s?.model?.state === 'ready' && s?.index?.state !== 'indexing';
    poller = setTimeout(tick, settled ? 5000 : 500);
  };
  void tick();
}

/** The first item of an answer, remembered so the tracker can tell when it is shown. */
function offered(
  document: vscode.TextDocument,
  position: vscode.Position,
  result: vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined,
): void {
  const items = Array.isArray(result) ? result : result?.items;
  const first = items?.[0];
  const id = first?.command?.arguments?.[0];
  if (!first || typeof id !== 'string') {
    return;
  }
  const text = typeof first.insertText === 'string' ? first.insertText : first.insertText.value;
  const start = first.range?.start ?? position;
  const typed = document.getText(new vscode.Range(start, position));
  const ghost = text.startsWith(typed) ? text.slice(typed.length) : text;
  const item = {
    insertText: text,
    command: { title: 'Accept', command: ACCEPT, arguments: [id] },
  };
  const uri = document.uri.toString();
  tracker.offer({
    id,
    uri,
    version: document.version,
    line: position.line,
    character: position.character,
    text: ghost,
    item,
  });
  setTimeout(() => {
    if (vscode.window.activeTextEditor?.document === document) {
      tracker.confirm(uri, id);
    }
  }, SHOWN_AFTER_MS);
}

async function start(): Promise<void> {
  const c = config();
  const { command, args } = serverCommand(c, bundledServer());
  output.appendLine(`starting ${command} ${args.join(' ')}`);
  const serverOptions: ServerOptions = { command, args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: serverSettings(c),
    outputChannel: output,
    middleware: {
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        const result = await next(document, position, context, token);
        if (!token.isCancellationRequested) {
          offered(document, position, result);
        }
        return result;
      },
      executeCommand: async (cmd, args, next) => {
        if (cmd === ACCEPT && typeof args[0] === 'string') {
          tracker.accepted(args[0]);
        }
        return next(cmd, args);
      },
    },
  };
  client = new LanguageClient('moat', 'moat', serverOptions, clientOptions);
  try {
    await client.start();
  } catch (e) {
    output.appendLine(`moat did not start: ${e}`);
    void vscode.window.showErrorMessage(
      `moat: the server did not start (${command}): ${e}. Set moat.serverPath?`,
    );
  }
  poll();
}

async function restart(): Promise<void> {
  const old = client;
  client = undefined;
  if (old) {
    await old.stop().catch(() => undefined);
  }
  await start();
}

async function showStatus(): Promise<void> {
  let s: Status | undefined;
  try {
    s = await status();
  } catch (e) {
    output.appendLine(`moat/status: ${e}`);
  }
  setStatus(s);
  if (!s) {
    void vscode.window.showWarningMessage('moat is not running (see the moat output).');
    output.show(true);
    return;
  }
  output.appendLine(JSON.stringify(s, null, 2));
  output.show(true);
  const { label } = statusText(s, true);
  void vscode.window.showInformationMessage(`${label}; model ${s.model?.model ?? s.model?.state}`);
}

async function openReport(): Promise<void> {
  const { command } = serverCommand(config(), bundledServer());
  const out = path.join(os.tmpdir(), `moat-report-${process.pid}.html`);
  const err = await new Promise<Error | null>((resolve) =>
    execFile(command, ['report', '--since', '30d', '--by', 'user', '--format', 'html', '--out', out], (e) =>
      resolve(e),
    ),
  );
  if (err) {
    void vscode.window.showErrorMessage(`moat report failed: ${err.message}`);
    return;
  }
  const panel = vscode.window.createWebviewPanel('moat.report', 'moat: acceptance report', vscode.ViewColumn.Active, {
    enableScripts: false,
  });
  panel.webview.html = fs.readFileSync(out, 'utf8');
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  extensionPath = context.extensionPath;
  output = vscode.window.createOutputChannel('moat', { log: true });
  statusItem = vscode.window.createStatusBarItem('moat.status', vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'moat';
  statusItem.command = 'moat.showStatus';
  setStatus(undefined);
  statusItem.show();
  tracker = new Tracker({
    shown: (item) => notify('textDocument/didShowCompletion', { item }),
    partiallyAccepted: (item, acceptedLength) =>
      notify('textDocument/didPartiallyAcceptCompletion', { item, acceptedLength }),
    dismissed: (item) => notify('moat/didDismissCompletion', { item }),
  });
  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand('moat.toggle', async () => {
      const c = vscode.workspace.getConfiguration('moat');
      await c.update('enabled', !c.get('enabled', true), vscode.ConfigurationTarget.Global);
    }),
    vscode.commands.registerCommand('moat.showStatus', showStatus),
    vscode.commands.registerCommand('moat.openReport', openReport),
    vscode.workspace.onDidChangeTextDocument((e) =>
      tracker.changed(
        e.document.uri.toString(),
        e.contentChanges.map((c) => ({
          line: c.range.start.line,
          character: c.range.start.character,
          rangeLength: c.rangeLength,
          text: c.text,
        })),
      ),
    ),
    vscode.window.onDidChangeTextEditorSelection((e) => {
      const at = e.selections[0]?.active;
      if (at) {
        tracker.moved(e.textEditor.document.uri.toString(), at.line, at.character);
      }
    }),
    vscode.workspace.onDidCloseTextDocument((d) => tracker.closed(d.uri.toString())),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration('moat')) {
        return;
      }
      const restartOn = ['serverPath', 'serverArgs', 'threads', 'model', 'device'];
      if (restartOn.some((k) => e.affectsConfiguration(`moat.${k}`))) {
        await restart();
      } else {
        notify('workspace/didChangeConfiguration', { settings: { moat: serverSettings(config()) } });
        poll();
      }
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  if (poller) {
    clearTimeout(poller);
  }
  await client?.stop();
}
