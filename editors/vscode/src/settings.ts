// VS Code settings → what `moat lsp` is started with and its settings (the server's names).
// No `vscode` import: tested with node alone.

export interface Config {
  enabled: boolean;
  serverPath: string;
  serverArgs: string[];
  model: string;
  adapter: string;
  adapterForce: boolean;
  device: string;
  threads: number;
  contextBudget: number;
  debounceMs: number;
  languages: string[];
  telemetry: boolean;
}

export const DEFAULTS: Config = {
  enabled: true,
  serverPath: '',
  serverArgs: [],
  model: '',
  adapter: '',
  adapterForce: false,
  device: 'auto',
  threads: 0,
  contextBudget: 1536,
  debounceMs: 75,
  languages: [],
  telemetry: true,
};

/** The settings object sent as initializationOptions and on every change. */
export function serverSettings(c: Config): Record<string, unknown> {
  const s: Record<string, unknown> = {
    enabled: c.enabled,
    contextBudget: c.contextBudget,
    debounceMs: c.debounceMs,
    telemetry: c.telemetry,
    device: c.device,
    // Always sent: an emptied setting must switch the server back to the base model.
    adapter: c.adapter.trim() === '' ? null : c.adapter.trim(),
    adapterForce: c.adapterForce,
  };
  if (c.model.trim() !== '') {
    s.model = c.model.trim();
  }
  if (c.languages.length > 0) {
    s.languages = c.languages;
  }
  return s;
}

/** The server command: the configured binary, else the bundled one, else `moat` on PATH. */
export function serverCommand(
  c: Config,
  bundled: string | undefined,
): { command: string; args: string[] } {
  const command = c.serverPath.trim() || bundled || 'moat';
  const args = ['lsp'];
  if (c.threads > 0) {
    args.push('--threads', String(Math.floor(c.threads)));
  }
  return { command, args: args.concat(c.serverArgs) };
}

export interface Status {
  model?: { state?: string; error?: string; model?: string };
  adapter?: { state?: string; name?: string; error?: string };
  index?: { state?: string; files?: number | null };
  settings?: { enabled?: boolean };
}

/** The status bar's text and its accessible label for a `moat/status` answer. */
export function statusText(s: Status | undefined, running: boolean): { text: string; label: string } {
  if (!running || !s) {
    return { text: '$(error) moat', label: 'moat: not running' };
  }
  const model = s.model?.state;
  if (model === 'failed') {
    return { text: '$(error) moat', label: 'moat: model failed' };
  }
  if (model !== 'ready') {
    return { text: '$(sync~spin) moat', label: 'moat: loading model' };
  }
  if (s.index?.state === 'indexing') {
    const n = s.index.files ?? 0;
    return { text: `$(sync~spin) moat ${n}`, label: `moat: indexing (${n} files)` };
  }
  if (s.settings?.enabled === false) {
    return { text: '$(circle-slash) moat', label: 'moat: off' };
  }
  if (s.adapter?.state === 'failed') {
    return { text: '$(warning) moat', label: `moat: ready, adapter ${s.adapter.name} not served` };
  }
  if (s.adapter?.state === 'active') {
    return { text: `$(check) moat+${s.adapter.name}`, label: `moat: ready, adapter ${s.adapter.name}` };
  }
  return { text: '$(check) moat', label: 'moat: ready' };
}
