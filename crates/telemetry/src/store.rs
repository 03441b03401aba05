//! The event store: one SQLite file (WAL), schema versioned by `PRAGMA user_version`, and a
//! recorder thread that writes in batches so that the server never waits for the disk.

use crate::committed::Inserted;
use crate::error::{Result, TelemetryError};
use crate::record::{Completion, Event, EventKind, Retention};
use rusqlite::{params, Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Each entry brings the schema from the previous version to the next; never edited once
/// released, only appended to.
const MIGRATIONS: [&str; 2] = [
    "
    CREATE TABLE completions (
        id TEXT PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        user TEXT NOT NULL,
        editor TEXT NOT NULL,
        editor_version TEXT NOT NULL,
        repo TEXT NOT NULL,
        language TEXT NOT NULL,
        model TEXT NOT NULL,
        adapter TEXT NOT NULL,
        context TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        latency_ms REAL NOT NULL,
        chars INTEGER NOT NULL,
        lines INTEGER NOT NULL,
        text TEXT
    );
    CREATE INDEX completions_time ON completions (time_ms);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        completion TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        chars INTEGER,
        visible_ms INTEGER
    );
    CREATE INDEX events_completion ON events (completion);
    CREATE TABLE retention (
        completion TEXT NOT NULL,
        after_s INTEGER NOT NULL,
        kept REAL NOT NULL,
        PRIMARY KEY (completion, after_s)
    );
",
    // The committed-code share: the file of each completion and the fingerprints of the
    // lines moat wrote (no code).
    "
    ALTER TABLE completions ADD COLUMN path TEXT NOT NULL DEFAULT '';
    CREATE TABLE inserted (
        completion TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        fingerprint INTEGER NOT NULL
    );
    CREATE INDEX inserted_completion ON inserted (completion);
",
];

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Everything recorded in a time range.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    pub completions: Vec<Completion>,
    pub events: Vec<Event>,
    pub retention: Vec<Retention>,
    pub inserted: Vec<Inserted>,
}

impl Loaded {
    /// Adds another database's records (one per developer makes a team report).
    pub fn extend(&mut self, other: Loaded) {
        self.completions.extend(other.completions);
        self.events.extend(other.events);
        self.retention.extend(other.retention);
        self.inserted.extend(other.inserted);
    }
}

impl Store {
    /// Opens (or creates) the database at `path`, bringing its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(path).map_err(|e| db(path, e))?;
        let mut store = Self {
            conn,
            path: path.to_path_buf(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing database for reading (reports); it is never changed.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(TelemetryError::Invalid(format!(
                "{} does not exist (is telemetry on, and is this the data directory?)",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(path, read_only()).map_err(|e| db(path, e))?;
        let store = Self {
            conn,
            path: path.to_path_buf(),
        };
        let version = store.version()?;
        if version > MIGRATIONS.len() as i64 {
            return Err(store.newer(version));
        }
        Ok(store)
    }

    fn err(&self, e: rusqlite::Error) -> TelemetryError {
        db(&self.path, e)
    }

    fn newer(&self, found: i64) -> TelemetryError {
        TelemetryError::Newer {
            path: self.path.display().to_string(),
            found,
            known: MIGRATIONS.len() as i64,
        }
    }

    fn configure(&self) -> Result<()> {
        // WAL: readers (reports) never block the writer; NORMAL: a crash loses at most the
        // last transactions, never the database.
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
            )
            .map_err(|e| self.err(e))
    }

    fn version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn migrate(&mut self) -> Result<()> {
        let version = self.version()?;
        if version > MIGRATIONS.len() as i64 {
            return Err(self.newer(version));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| db(&self.path, e))?;
            tx.execute_batch(sql).map_err(|e| db(&self.path, e))?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(|e| db(&self.path, e))?;
            tx.commit().map_err(|e| db(&self.path, e))?;
        }
        Ok(())
    }

    /// SQLite's own consistency check of the whole file: `Ok` when it finds nothing wrong.
    pub fn check(&self) -> Result<()> {
        let found: Vec<String> = self
            .conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.err(e))?;
        if found == ["ok"] {
            Ok(())
        } else {
            Err(TelemetryError::Invalid(format!(
                "{} is damaged: {}",
                self.path.display(),
                found.join("; ")
            )))
        }
    }

    /// Writes records in one transaction.
    pub fn write(&mut self, records: &[Record]) -> Result<()> {
        let path = self.path.clone();
        let e = |e| db(&path, e);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut completion = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO completions (id, time_ms, user, editor,
                     editor_version, repo, language, model, adapter, context, prompt_tokens,
                     latency_ms, chars, lines, text, path) VALUES
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )
                .map_err(e)?;
            let mut event = tx
                .prepare_cached(
                    "INSERT INTO events (completion, time_ms, kind, chars, visible_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(e)?;
            let mut retention = tx
                .prepare_cached("INSERT OR REPLACE INTO retention VALUES (?1, ?2, ?3)")
                .map_err(e)?;
            let mut inserted = tx
                .prepare_cached("INSERT INTO inserted VALUES (?1, ?2, ?3)")
                .map_err(e)?;
            for r in records {
                match r {
                    Record::Completion(c) => completion.execute(params![
                        c.id,
                        c.time_ms,
                        c.user,
                        c.editor,
                        c.editor_version,
                        c.repo,
                        c.language,
                        c.model,
                        c.adapter,
                        c.context,
                        c.prompt_tokens,
                        c.latency_ms,
                        c.chars,
                        c.lines,
                        c.text,
                        c.path
                    ]),
                    Record::Event(ev) => event.execute(params![
                        ev.completion,
                        ev.time_ms,
                        ev.kind.name(),
                        ev.chars,
                        ev.visible_ms
                    ]),
                    Record::Retention(k) => {
                        retention.execute(params![k.completion, k.after_s, k.kept])
                    }
                    Record::Inserted(i) => {
                        inserted.execute(params![i.completion, i.time_ms, i.fingerprint])
                    }
                }
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Completions made in `[since, until)` (unix ms), and the events, retention checks and
    /// inserted lines that may be theirs: records of other completions are left in (the
    /// reports group records by completion and ignore them; filtering here cost a third of
    /// a second per million events). The records are read on a second connection at the
    /// same time (WAL lets readers share). The completions' text (stored only on the admin's
    /// opt-in) is not read: no report shows code.
    pub fn load(&self, since_ms: i64, until_ms: i64) -> Result<Loaded> {
        let path = self.path.as_path();
        let open = || Connection::open_with_flags(path, read_only());
        let plan = plan(&self.conn, since_ms, until_ms).map_err(|e| self.err(e))?;
        let (first, second, rest) = std::thread::scope(|s| {
            let rest = s.spawn(move || {
                let conn = open()?;
                // Events follow their completion by minutes (retention checks by up to ten):
                // a scan to a day past the range beats a join.
                let events = load_events(&conn, since_ms, until_ms.saturating_add(DAY_MS))?;
                let retention = load_retention(&conn)?;
                let inserted = load_inserted(&conn, since_ms, until_ms.saturating_add(DAY_MS))?;
                Ok::<_, rusqlite::Error>((events, retention, inserted))
            });
            // A wide range is scanned in two halves of the table at once: decoding rows is
            // the cost, and it divides.
            let second = plan.split.map(|mid| {
                s.spawn(move || {
                    load_completions(&open()?, since_ms, until_ms, &plan, mid..i64::MAX)
                })
            });
            let end = plan.split.unwrap_or(i64::MAX);
            let first = load_completions(&self.conn, since_ms, until_ms, &plan, i64::MIN..end);
            let join = "the loading threads do not panic";
            (
                first,
                second.map(|t| t.join().expect(join)),
                rest.join().expect(join),
            )
        });
        let mut completions = first.map_err(|e| self.err(e))?;
        if let Some(second) = second {
            completions.extend(second.map_err(|e| self.err(e))?);
        }
        let (events, retention, inserted) = rest.map_err(|e| self.err(e))?;
        Ok(Loaded {
            completions,
            events,
            retention,
            inserted,
        })
    }
}

fn read_only() -> OpenFlags {
    // No mutex: each connection is used by one thread (a serialized one took a lock per
    // column read, 15% of a report's time).
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// How to read the completions of a range.
#[derive(Clone, Copy)]
struct Plan {
    /// Scan the table rather than walk the time index.
    wide: bool,
    /// For a wide range: the row id that splits the table in two halves read at once.
    split: Option<i64>,
    /// The largest row id.
    rows: i64,
}

fn plan(conn: &Connection, since_ms: i64, until_ms: i64) -> rusqlite::Result<Plan> {
    // The time index pays for a narrow range; for most of the table, a scan in row order is
    // faster than an index walk that fetches each row apart (1.8× on a million rows).
    let (first, last, rows): (Option<i64>, Option<i64>, Option<i64>) = conn.query_row(
        "SELECT min(time_ms), max(time_ms), max(rowid) FROM completions",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (Some(first), Some(last), Some(rows)) = (first, last, rows) else {
        return Ok(Plan {
            wide: false,
            split: None,
            rows: 0,
        });
    };
    let covered = (until_ms.min(last + 1) - since_ms.max(first)) as f64;
    let wide = covered > 0.25 * (last + 1 - first) as f64;
    Ok(Plan {
        wide,
        split: (wide && rows > 20_000).then_some(rows / 2),
        rows,
    })
}

fn load_completions(
    conn: &Connection,
    since_ms: i64,
    until_ms: i64,
    plan: &Plan,
    rowids: std::ops::Range<i64>,
) -> rusqlite::Result<Vec<Completion>> {
    let filter = if plan.wide {
        "+time_ms >= ?1 AND +time_ms < ?2 AND rowid >= ?3 AND rowid < ?4"
    } else {
        "time_ms >= ?1 AND time_ms < ?2 AND rowid >= ?3 AND rowid < ?4"
    };
    let mut q = conn.prepare(&format!(
        "SELECT id, time_ms, user, editor, editor_version, repo, language, model, adapter,
                context, prompt_tokens, latency_ms, chars, lines, path
         FROM completions WHERE {filter}"
    ))?;
    // Completions are large (a dozen strings): growing the vector by doubling copied
    // hundreds of megabytes for a million of them.
    let capacity = if plan.wide {
        (rowids.end.min(plan.rows + 1) - rowids.start.max(1)).max(0) as usize
    } else {
        0
    };
    let mut out = Vec::with_capacity(capacity);
    let rows = q.query_map(params![since_ms, until_ms, rowids.start, rowids.end], |r| {
        Ok(Completion {
            id: r.get(0)?,
            time_ms: r.get(1)?,
            user: r.get(2)?,
            editor: r.get(3)?,
            editor_version: r.get(4)?,
            repo: r.get(5)?,
            language: r.get(6)?,
            model: r.get(7)?,
            adapter: r.get(8)?,
            context: r.get(9)?,
            prompt_tokens: r.get(10)?,
            latency_ms: r.get(11)?,
            chars: r.get(12)?,
            lines: r.get(13)?,
            text: None,
            path: r.get(14)?,
        })
    })?;
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

fn load_events(conn: &Connection, since_ms: i64, until_ms: i64) -> rusqlite::Result<Vec<Event>> {
    let mut q = conn.prepare(
        "SELECT completion, time_ms, kind, chars, visible_ms FROM events
         WHERE time_ms >= ?1 AND time_ms < ?2",
    )?;
    let rows = q.query_map(params![since_ms, until_ms], |r| {
        let kind: String = r.get(2)?;
        let Some(kind) = EventKind::from_name(&kind) else {
            return Ok(None);
        };
        Ok(Some(Event {
            completion: r.get(0)?,
            time_ms: r.get(1)?,
            kind,
            chars: r.get(3)?,
            visible_ms: r.get(4)?,
        }))
    })?;
    // An event kind this version does not know (a newer writer) is skipped.
    rows.filter_map(|r| r.transpose()).collect()
}

fn load_retention(conn: &Connection) -> rusqlite::Result<Vec<Retention>> {
    let mut q = conn.prepare("SELECT completion, after_s, kept FROM retention")?;
    let rows = q.query_map([], |r| {
        Ok(Retention {
            completion: r.get(0)?,
            after_s: r.get(1)?,
            kept: r.get(2)?,
        })
    })?;
    rows.collect()
}

fn load_inserted(
    conn: &Connection,
    since_ms: i64,
    until_ms: i64,
) -> rusqlite::Result<Vec<Inserted>> {
    let mut q = conn.prepare(
        "SELECT completion, time_ms, fingerprint FROM inserted
         WHERE time_ms >= ?1 AND time_ms < ?2",
    )?;
    let rows = q.query_map(params![since_ms, until_ms], |r| {
        Ok(Inserted {
            completion: r.get(0)?,
            time_ms: r.get(1)?,
            fingerprint: r.get(2)?,
        })
    })?;
    rows.collect()
}

fn db(path: &Path, source: rusqlite::Error) -> TelemetryError {
    TelemetryError::Db {
        path: path.display().to_string(),
        source,
    }
}

/// One thing to store.
#[derive(Debug, Clone)]
pub enum Record {
    Completion(Box<Completion>),
    Event(Event),
    Retention(Retention),
    /// A line moat wrote (a fingerprint, not the line).
    Inserted(Inserted),
}

/// Writes records on its own thread, in one transaction per batch (every `FLUSH` at most):
/// the server never waits for the disk, and a crash loses at most the last batch. A write
/// that fails (a full disk) is logged and the batch dropped; the server goes on.
pub struct Recorder {
    tx: Option<mpsc::Sender<Record>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const DAY_MS: i64 = 86_400_000;

const FLUSH: Duration = Duration::from_millis(250);
const BATCH: usize = 5000;

impl Recorder {
    pub fn start(mut store: Store) -> Self {
        let (tx, rx) = mpsc::channel::<Record>();
        let thread = std::thread::Builder::new()
            .name("moat-telemetry".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    let deadline = Instant::now() + FLUSH;
                    while batch.len() < BATCH {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = store.write(&batch) {
                        tracing::warn!("telemetry: {} records not written: {e}", batch.len());
                    }
                }
            })
            .expect("spawn the telemetry thread");
        Self {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn record(&self, r: Record) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(r);
        }
    }

    /// Writes what is queued and stops the thread.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_is_upgraded_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO completions VALUES ('a', 5, 'ann', 'vscode', '1', 'r', 'python',
                 'm', '', 'repo', 10, 100.0, 12, 1, NULL)",
                [],
            )
            .unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.version().unwrap(), MIGRATIONS.len() as i64);
        store
            .write(&[Record::Inserted(Inserted {
                completion: "a".into(),
                time_ms: 6,
                fingerprint: -42,
            })])
            .unwrap();
        let data = store.load(0, 10).unwrap();
        assert_eq!(data.completions.len(), 1);
        assert_eq!(data.completions[0].user, "ann");
        assert_eq!(
            data.completions[0].path, "",
            "rows from before the path column"
        );
        assert_eq!(data.inserted.len(), 1);
        assert_eq!(data.inserted[0].fingerprint, -42);
    }

    #[test]
    fn a_table_read_in_two_halves_loses_and_repeats_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let n = 25_000i64;
        let records: Vec<Record> = (0..n)
            .map(|i| {
                Record::Completion(Box::new(Completion {
                    id: format!("c{i}"),
                    // Times not in row order, as several servers' merged records can be.
                    time_ms: (i * 7919) % n,
                    ..Default::default()
                }))
            })
            .collect();
        store.write(&records).unwrap();
        let wide = store.load(0, n).unwrap();
        assert!(plan(&store.conn, 0, n).unwrap().split.is_some());
        let ids: std::collections::HashSet<String> =
            wide.completions.iter().map(|c| c.id.clone()).collect();
        assert_eq!(
            (wide.completions.len(), ids.len()),
            (n as usize, n as usize)
        );
        // A narrow range walks the time index: exactly the completions in it.
        let narrow = store.load(100, 200).unwrap();
        assert!(plan(&store.conn, 100, 200).unwrap().split.is_none());
        assert_eq!(narrow.completions.len(), 100);
        assert!(narrow
            .completions
            .iter()
            .all(|c| (100..200).contains(&c.time_ms)));
    }
}
