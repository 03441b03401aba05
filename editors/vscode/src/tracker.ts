// What became of each completion on screen, for the server's telemetry. VS Code's stable API
// says when an item is accepted (its command runs) but not when one is shown, partly
// accepted or dropped, so these are inferred:
// - shown: an offered item is still applicable a moment later (`confirm`): no edit that
//   disagrees with it and no cursor move away from it since (VS Code draws a matching
//   item at once, and keeps drawing it while the user types it through);
// - partly accepted: an edit inserts at least two characters at the ghost text's place
//   that are a beginning of it (accept word / line; typing inserts one at a time);
// - dismissed: another completion is shown in the document, an edit disagrees with it, the
//   cursor leaves it, or the document is closed, before it was accepted.
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
  /** Offered, not yet confirmed as shown (per document). */
  private offered = new Map<string, OnScreen>();
  private screen = new Map<string, OnScreen>();
  private reported = new Set<string>();
  private done = new Set<string>();

  constructor(private sink: Sink) {}

  /** The server offered an item; `confirm` later says whether it is still drawn. */
  offer(o: Offered): void {
    const on = this.screen.get(o.uri);
    if (on && on.id === o.id) {
      return; // the same completion's rest, asked again while typing it through
    }
    this.offered.set(o.uri, { ...o, taken: 0, accepted: 0 });
  }

  /** A moment after `offer`: the item is on screen if nothing contradicted it since. */
  confirm(uri: string, id: string): void {
    const o = this.offered.get(uri);
    if (!o || o.id !== id) {
      return;
    }
    this.offered.delete(uri);
    this.show(o);
  }

  /** The item is on screen. */
  shown(o: Offered): void {
    this.show({ ...o, taken: 0, accepted: 0 });
  }

  private show(o: OnScreen): void {
    const before = this.screen.get(o.uri);
    if (before && before.id === o.id) {
      return; // the same completion, typed through
    }
    if (before) {
      this.drop(o.uri);
    }
    this.screen.set(o.uri, o);
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
    if (changes.length === 0) {
      return;
    }
    const o = this.offered.get(uri);
    if (o && (!typedThrough(o, changes) || o.taken >= o.text.length)) {
      this.offered.delete(uri); // never drawn, or gone already: nothing to report
    }
    const s = this.screen.get(uri);
    if (!s) {
      return;
    }
    if (this.done.has(s.id)) {
      this.screen.delete(uri);
      return;
    }
    const c = changes[0];
    if (!typedThrough(s, changes)) {
      this.drop(uri);
      return;
    }
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
    const o = this.offered.get(uri);
    if (o && !at(o, line, character)) {
      this.offered.delete(uri);
    }
    const s = this.screen.get(uri);
    if (!s) {
      return;
    }
    if (!at(s, line, character)) {
      this.drop(uri);
    }
  }

  closed(uri: string): void {
    this.offered.delete(uri);
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

/** Whether `changes` type the next characters of `s` (and if so, counts them taken). */
function typedThrough(s: OnScreen, changes: Change[]): boolean {
  const c = changes[0];
  const here = position(s, s.text.slice(0, s.taken));
  const fits =
    changes.length === 1 &&
    c.rangeLength === 0 &&
    c.line === here.line &&
    c.character === here.character &&
    c.text.length > 0 &&
    s.text.slice(s.taken).startsWith(c.text);
  if (fits) {
    s.taken += c.text.length;
  }
  return fits;
}

/** Whether the cursor at (line, character) is where `s` continues. */
function at(s: OnScreen, line: number, character: number): boolean {
  const p = position(s, s.text.slice(0, s.taken));
  return p.line === line && p.character === character;
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
