// What became of each completion on screen, for the server's telemetry. VS Code's stable API
// says when an item is accepted (its command runs) but not when one is shown, partly
// accepted or dropped, so these are inferred:
// - shown: the editor still has the document version and cursor the item was offered for,
//   a moment after it was offered (VS Code draws a matching item at once);
// - partly accepted: an edit inserts at least two characters at the ghost text's place
//   that are a beginning of it (accept word / line; typing inserts one at a time);
// - dismissed: another completion is shown in the document, an edit disagrees with it, the
//   cursor leaves its line, or the document is closed, before it was accepted.
// No `vscode` import: the rules are tested with node alone.

export interface Offered {
  id: string;
  uri: string;
  version: number;
  line: number;
  character: number;
  /** The ghost text: what accepting it inserts at (line, character). */
  text: string;
  /** The LSP item as the server sent it (its command holds the id). */
  item: unknown;
}

export interface Sink {
  shown(item: unknown): void;
  partiallyAccepted(item: unknown, acceptedLength: number): void;
  dismissed(item: unknown): void;
}

export interface Change {
  line: number;
  character: number;
  /** Characters replaced (0 for an insertion). */
  rangeLength: number;
  text: string;
}

interface OnScreen extends Offered {
  /** Characters of `text` taken so far (typed through or partly accepted). */
  taken: number;
  accepted: number;
}

export class Tracker {
  private screen = new Map<string, OnScreen>();
  private reported = new Set<string>();
  private done = new Set<string>();

  constructor(private sink: Sink) {}

  /** The item is on screen (see `confirm`'s caller for when that is believed). */
  shown(o: Offered): void {
    const before = this.screen.get(o.uri);
    if (before && before.id === o.id) {
      return; // the same completion, typed through
    }
    if (before) {
      this.drop(o.uri);
    }
    this.screen.set(o.uri, { ...o, taken: 0, accepted: 0 });
    if (!this.reported.has(o.id)) {
      this.reported.add(o.id);
      this.sink.shown(o.item);
    }
  }

  /** Its command ran: accepted whole. */
  accepted(id: string): void {
    this.done.add(id);
    for (const [uri, s] of this.screen) {
      if (s.id === id) {
        this.screen.delete(uri);
      }
    }
  }

  /** An edit of a document. */
  changed(uri: string, changes: Change[]): void {
    const s = this.screen.get(uri);
    if (!s || changes.length === 0) {
      return;
    }
    if (this.done.has(s.id)) {
      this.screen.delete(uri);
      return;
    }
    const c = changes[0];
    const rest = s.text.slice(s.taken);
    const at = position(s, s.text.slice(0, s.taken));
    const fits =
      changes.length === 1 &&
      c.rangeLength === 0 &&
      c.line === at.line &&
      c.character === at.character &&
      c.text.length > 0 &&
      rest.startsWith(c.text);
    if (!fits) {
      this.drop(uri);
      return;
    }
    s.taken += c.text.length;
    if (c.text.length >= 2 && s.taken < s.text.length) {
      s.accepted = s.taken;
      this.sink.partiallyAccepted(s.item, s.accepted);
    }
    if (s.taken >= s.text.length) {
      // All of it is in: by Tab (its command follows) or typed; nothing left on screen.
      this.screen.delete(uri);
    }
  }

  /** The cursor moved in a document (selection change). */
  moved(uri: string, line: number, character: number): void {
    const s = this.screen.get(uri);
    if (!s) {
      return;
    }
    const at = position(s, s.text.slice(0, s.taken));
    if (line !== at.line || character !== at.character) {
      this.drop(uri);
    }
  }

  closed(uri: string): void {
    this.drop(uri);
  }

  private drop(uri: string): void {
    const s = this.screen.get(uri);
    this.screen.delete(uri);
    if (s && !this.done.has(s.id) && s.accepted === 0) {
      this.done.add(s.id);
      this.sink.dismissed(s.item);
    }
  }
}

/** Where the cursor is after `typed` was inserted at the item's place. */
function position(o: Offered, typed: string): { line: number; character: number } {
  const lines = typed.split('\n');
  if (lines.length === 1) {
    // JavaScript strings count UTF-16 units, as VS Code positions do.
    return { line: o.line, character: o.character + typed.length };
  }
  return { line: o.line + lines.length - 1, character: lines[lines.length - 1].length };
}
