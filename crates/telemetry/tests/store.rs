//! The store on disk: records written through the recorder come back in reports; schema
//! versions; merged databases; a read-only open never creates anything.

use moat_telemetry::{
    Completion, Dimension, Event, EventKind, Format, Loaded, Record, Recorder, Report, Store,
};

fn completion(id: &str, t: i64, user: &str, lang: &str, chars: u32) -> Record {
    Record::Completion(Box::new(Completion {
        id: id.into(),
        time_ms: t,
        user: user.into(),
        editor: "vscode".into(),
        language: lang.into(),
        model: "qwen".into(),
        chars,
        lines: 1,
        latency_ms: 200.0,
        ..Default::default()
    }))
}

fn event(id: &str, t: i64, kind: EventKind, chars: Option<u32>) -> Record {
    Record::Event(Event {
        completion: id.into(),
        time_ms: t,
        kind,
        chars,
        visible_ms: None,
    })
}

const DAY: i64 = 86_400_000;

#[test]
fn recorded_events_make_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/telemetry.db");
    let rec = Recorder::start(Store::open(&path).unwrap());
    let t0 = 20_000 * DAY;
    rec.record(completion("a", t0, "ann", "python", 40));
    rec.record(event("a", t0 + 10, EventKind::Shown, None));
    rec.record(event("a", t0 + 2000, EventKind::Accepted, None));
    rec.record(completion("b", t0 + DAY, "bob", "rust", 100));
    rec.record(event("b", t0 + DAY + 10, EventKind::Shown, None));
    rec.record(event("b", t0 + DAY + 1000, EventKind::Partial, Some(50)));
    rec.record(completion("c", t0 + DAY, "bob", "rust", 10));
    rec.record(event("c", t0 + DAY + 10, EventKind::Shown, None));
    rec.record(event("c", t0 + DAY + 100, EventKind::Hidden, None));
    rec.close();

    let store = Store::open_read_only(&path).unwrap();
    let data = store.load(t0, t0 + 2 * DAY).unwrap();
    assert_eq!(data.completions.len(), 3);
    assert_eq!(data.events.len(), 6);
    let r = Report::build(&data, t0, t0 + 2 * DAY, Some(Dimension::User), None);
    assert_eq!(r.total.shown, 2, "c was visible 90 ms");
    assert_eq!(r.total.acceptance_rate, Some(0.75));
    assert_eq!(r.total.char_acceptance_rate, Some(90.0 / 140.0));
    let keys: Vec<&str> = r.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["ann", "bob"]);
    assert_eq!(r.groups[1].summary.acceptance_rate, Some(0.5));
    let json: serde_json::Value = serde_json::from_str(&r.render(Format::Json)).unwrap();
    assert_eq!(json["total"]["shown"], 2);
    assert_eq!(json["groups"][0]["key"], "ann");
    let by_day = Report::build(&data, t0, t0 + 2 * DAY, Some(Dimension::Day), None);
    assert_eq!(by_day.groups.len(), 2);
    let csv = r.render(Format::Csv);
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.lines()
            .last()
            .unwrap()
            .starts_with("total,3,2,1.50,0.7500,"),
        "{csv}"
    );
    let table = r.render(Format::Table);
    assert!(table.contains("75.0%"), "{table}");
    // The range is honoured.
    assert_eq!(
        store
            .load(t0 + DAY, t0 + 2 * DAY)
            .unwrap()
            .completions
            .len(),
        2
    );
}

#[test]
fn a_missing_database_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing.db");
    let err = Store::open_read_only(&path).err().unwrap().to_string();
    assert!(err.contains("does not exist"), "{err}");
    assert!(!path.exists());
}

#[test]
fn a_newer_schema_is_refused_and_reopening_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut s = Store::open(&path).unwrap();
    s.write(&[completion("a", 1, "u", "go", 5)]).unwrap();
    drop(s);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.load(0, 10).unwrap().completions.len(), 1);
    drop(s);
    claim_newer_schema(&path);
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(err.contains("newer"), "{err}");
}

/// Marks the file as written by a future schema: SQLite keeps `user_version` in bytes 60..64
/// of the database header.
fn claim_newer_schema(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn several_databases_merge_into_one_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut merged = Loaded::default();
    for (i, user) in ["ann", "bob"].iter().enumerate() {
        let path = dir.path().join(format!("{user}.db"));
        let mut s = Store::open(&path).unwrap();
        let id = format!("{user}-1");
        s.write(&[
            completion(&id, 5, user, "python", 10),
            event(&id, 6, EventKind::Shown, None),
            event(&id, 6 + 1000 * i as i64 + 800, EventKind::Accepted, None),
        ])
        .unwrap();
        merged.extend(Store::open_read_only(&path).unwrap().load(0, 100).unwrap());
    }
    let r = Report::build(&merged, 0, 100, Some(Dimension::User), None);
    assert_eq!(r.total.shown, 2);
    assert_eq!(r.total.acceptance_rate, Some(1.0));
    assert_eq!(r.groups.len(), 2);
}
