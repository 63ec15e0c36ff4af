//! The server's state in SQLite: builds, their nodes, their events, the queue (builds in state
//! `queued`) and the plans asked for. Versioned by `PRAGMA user_version`: each migration
//! moves the schema one version up in one transaction; a database from a newer refine is
//! refused, never reset.

mod builds;
mod plans;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use builds::{BuildRow, BuildState, NewBuild, NodeRow, PlannedRow, Record};
pub use plans::PlanRow;

/// Why the state database cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("Cannot open the server's database `{path}`: {source}")]
    #[diagnostic(help("Check the folder exists and is writable, or pass `--database FILE`"))]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "The server's database `{path}` has schema version {found}; this refine knows up to {known}"
    )]
    #[diagnostic(help(
        "A newer refine wrote it: run that version, or pass `--database FILE` for a new database"
    ))]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("The server's database failed: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("The server's database holds a record it cannot read: {0}")]
    Corrupt(String),
}

/// Each migration takes the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: builds, nodes, events, plans.
    "CREATE TABLE builds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        patterns TEXT NOT NULL,
        keep_going INTEGER NOT NULL,
        jobs INTEGER,
        state TEXT NOT NULL,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        error TEXT,
        summary TEXT,
        requeue_of INTEGER
    );
    CREATE INDEX builds_state ON builds(state, id);
    CREATE TABLE nodes (
        build INTEGER NOT NULL REFERENCES builds(id),
        label TEXT NOT NULL,
        kind TEXT NOT NULL,
        planned TEXT NOT NULL,
        state TEXT NOT NULL,
        key TEXT,
        digest TEXT,
        location TEXT,
        started REAL,
        seconds REAL,
        action_seconds REAL,
        overhead_seconds REAL,
        reason TEXT,
        log TEXT,
        PRIMARY KEY (build, label)
    );
    CREATE INDEX nodes_key ON nodes(key);
    CREATE INDEX nodes_digest ON nodes(digest);
    CREATE TABLE events (
        build INTEGER NOT NULL REFERENCES builds(id),
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (build, seq)
    );
    CREATE TABLE plans (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created REAL NOT NULL,
        patterns TEXT NOT NULL,
        body TEXT NOT NULL
    );",
    // 2: each node's direct dependencies (a JSON list of labels), so that a build's graph is
    // drawn as it was built.
    "ALTER TABLE nodes ADD COLUMN deps TEXT;",
    // 3: plans' bodies compressed (zstd); `body` stays for plans stored before.
    "ALTER TABLE plans ADD COLUMN body_zstd BLOB;",
];

/// The schema version this refine writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The database, one connection behind a lock (SQLite serialises writers anyway; reads are
/// short).
pub struct State {
    conn: Mutex<rusqlite::Connection>,
    path: PathBuf,
}

impl State {
    /// Opens (creating) the database at `path` and migrates it to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<State, StateError> {
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(|e| StateError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let open = |source| StateError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = rusqlite::Connection::open(path).map_err(open)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open)?;
        // Before any pragma that writes (the journal mode is kept in the file).
        refuse_newer(&conn, path)?;
        // WAL: readers never wait on the build's writes. NORMAL: a power cut may lose the last
        // events, never corrupt the database.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open)?;
        migrate(&mut conn, path)?;
        Ok(State {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Refuses a database a newer refine wrote; its schema version otherwise.
fn refuse_newer(conn: &rusqlite::Connection, path: &Path) -> Result<i64, StateError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

fn migrate(conn: &mut rusqlite::Connection, path: &Path) -> Result<(), StateError> {
    let found = refuse_newer(conn, path)?;
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Seconds since the Unix epoch, as stored.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A stored time, as RFC 3339 with milliseconds.
pub fn rfc3339(unix: f64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(unix.max(0.0));
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests;
