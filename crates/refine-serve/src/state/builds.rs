//! Builds, the queue, their nodes and their events.

use rusqlite::{OptionalExtension, params};

use super::{State, StateError, now};

/// Where a build is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BuildState {
    /// Waiting for a free slot.
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Cancelled by `DELETE` before or while it ran.
    Cancelled,
    /// It was running when the server stopped; `POST /v1/builds/{id}/requeue` runs it again.
    Interrupted,
}

impl BuildState {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::Queued => "queued",
            BuildState::Running => "running",
            BuildState::Succeeded => "succeeded",
            BuildState::Failed => "failed",
            BuildState::Cancelled => "cancelled",
            BuildState::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Result<BuildState, StateError> {
        Ok(match s {
            "queued" => BuildState::Queued,
            "running" => BuildState::Running,
            "succeeded" => BuildState::Succeeded,
            "failed" => BuildState::Failed,
            "cancelled" => BuildState::Cancelled,
            "interrupted" => BuildState::Interrupted,
            other => return Err(StateError::Corrupt(format!("build state `{other}`"))),
        })
    }

    /// Whether the build is over.
    pub fn is_final(self) -> bool {
        !matches!(self, BuildState::Queued | BuildState::Running)
    }
}

/// A build as asked for.
#[derive(Clone, Debug)]
pub struct NewBuild {
    pub patterns: Vec<String>,
    pub keep_going: bool,
    pub jobs: Option<usize>,
    pub requeue_of: Option<i64>,
}

/// A build as stored.
#[derive(Clone, Debug)]
pub struct BuildRow {
    pub id: i64,
    pub patterns: Vec<String>,
    pub keep_going: bool,
    pub jobs: Option<usize>,
    pub state: BuildState,
    pub created: f64,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    /// Why the build could not run, as a JSON diagnostic.
    pub error: Option<serde_json::Value>,
    /// The build's counts and times (the `build-finish` event's fields).
    pub summary: Option<serde_json::Value>,
    pub requeue_of: Option<i64>,
}

/// A node of a build, as it stands.
#[derive(Clone, Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct NodeRow {
    pub label: String,
    pub kind: String,
    /// What the plan said before the build ran: `cached`, `build` or `pending`.
    pub planned: String,
    /// `waiting`, `running`, `built`, `cached`, `failed` or `skipped`.
    pub state: String,
    pub key: Option<String>,
    /// The artifact's manifest digest.
    pub digest: Option<String>,
    /// For a cached node: `local` or `remote`.
    #[serde(rename = "where")]
    pub location: Option<String>,
    pub seconds: Option<f64>,
    pub action_seconds: Option<f64>,
    pub overhead_seconds: Option<f64>,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// A failed action's log (`sha256:…`): `GET /v1/logs/{digest}` sends it.
    pub log: Option<String>,
    /// Its direct dependencies (the build graph's edges), as the build planned them.
    pub deps: Vec<String>,
}

/// A node as the plan of a build names it.
#[derive(Debug)]
pub struct PlannedRow {
    pub label: String,
    pub kind: String,
    /// `cached`, `build` or `pending`.
    pub planned: String,
    pub key: Option<String>,
    pub deps: Vec<String>,
}

/// A change the build's observer records; applied in batches.
#[derive(Debug)]
pub enum Record {
    /// The plan: every node, waiting.
    Planned { build: i64, nodes: Vec<PlannedRow> },
    /// A node changed; `None` fields keep their value.
    Node { build: i64, node: Box<NodeRow> },
    /// An event, as JSON.
    Event { build: i64, seq: i64, body: String },
}

/// The columns [`node_row`] reads, in its order.
const NODE_COLUMNS: &str = "label, kind, planned, state, key, digest, location, seconds, \
     action_seconds, overhead_seconds, reason, log, deps";

/// A node from [`NODE_COLUMNS`] starting at column `at`.
fn node_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<NodeRow> {
    let deps: Option<String> = r.get(at + 12)?;
    Ok(NodeRow {
        label: r.get(at)?,
        kind: r.get(at + 1)?,
        planned: r.get(at + 2)?,
        state: r.get(at + 3)?,
        key: r.get(at + 4)?,
        digest: r.get(at + 5)?,
        location: r.get(at + 6)?,
        seconds: r.get(at + 7)?,
        action_seconds: r.get(at + 8)?,
        overhead_seconds: r.get(at + 9)?,
        reason: r.get(at + 10)?,
        log: r.get(at + 11)?,
        deps: deps
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or_default(),
    })
}

const BUILD_COLUMNS: &str =
    "id, patterns, keep_going, jobs, state, created, started, finished, error, summary, requeue_of";

fn build_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(BuildRow, String)> {
    let json = |i: usize| -> rusqlite::Result<Option<serde_json::Value>> {
        let text: Option<String> = r.get(i)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    };
    let patterns: String = r.get(1)?;
    let jobs: Option<i64> = r.get(3)?;
    Ok((
        BuildRow {
            id: r.get(0)?,
            patterns: serde_json::from_str(&patterns).unwrap_or_default(),
            keep_going: r.get(2)?,
            jobs: jobs.and_then(|j| usize::try_from(j).ok()),
            state: BuildState::Queued,
            created: r.get(5)?,
            started: r.get(6)?,
            finished: r.get(7)?,
            error: json(8)?,
            summary: json(9)?,
            requeue_of: r.get(10)?,
        },
        r.get(4)?,
    ))
}

fn with_state((mut row, state): (BuildRow, String)) -> Result<BuildRow, StateError> {
    row.state = BuildState::parse(&state)?;
    Ok(row)
}

impl State {
    /// Queues a build.
    pub fn insert_build(&self, new: &NewBuild) -> Result<BuildRow, StateError> {
        let conn = self.conn();
        let patterns = serde_json::to_string(&new.patterns).unwrap_or_default();
        let id = conn.query_row(
            "INSERT INTO builds (patterns, keep_going, jobs, state, created, requeue_of)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5) RETURNING id",
            params![
                patterns,
                new.keep_going,
                new.jobs.map(|j| j as i64),
                now(),
                new.requeue_of
            ],
            |r| r.get::<_, i64>(0),
        )?;
        drop(conn);
        self.build(id)?
            .ok_or_else(|| StateError::Corrupt(format!("build {id} vanished")))
    }

    /// One build.
    pub fn build(&self, id: i64) -> Result<Option<BuildRow>, StateError> {
        self.conn()
            .query_row(
                &format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id = ?1"),
                [id],
                build_row,
            )
            .optional()?
            .map(with_state)
            .transpose()
    }

    /// The newest builds first.
    pub fn builds(&self, limit: usize) -> Result<Vec<BuildRow>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {BUILD_COLUMNS} FROM builds ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], build_row)?;
        rows.map(|r| with_state(r?)).collect()
    }

    /// Takes the oldest queued build and marks it running.
    pub fn claim_next(&self) -> Result<Option<BuildRow>, StateError> {
        let id: Option<i64> = self
            .conn()
            .query_row(
                "UPDATE builds SET state = 'running', started = ?1
                 WHERE id = (SELECT id FROM builds WHERE state = 'queued' ORDER BY id LIMIT 1)
                 RETURNING id",
                [now()],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => self.build(id),
            None => Ok(None),
        }
    }

    /// Ends a build.
    pub fn finish_build(
        &self,
        id: i64,
        state: BuildState,
        summary: Option<&serde_json::Value>,
        error: Option<&serde_json::Value>,
    ) -> Result<(), StateError> {
        self.conn().execute(
            "UPDATE builds SET state = ?2, finished = ?3, summary = ?4, error = ?5 WHERE id = ?1",
            params![
                id,
                state.as_str(),
                now(),
                summary.map(ToString::to_string),
                error.map(ToString::to_string)
            ],
        )?;
        Ok(())
    }

    /// Cancels a build that has not started; false if it is not queued.
    pub fn cancel_queued(&self, id: i64) -> Result<bool, StateError> {
        let n = self.conn().execute(
            "UPDATE builds SET state = 'cancelled', finished = ?2 WHERE id = ?1 AND state = 'queued'",
            params![id, now()],
        )?;
        Ok(n == 1)
    }

    /// Marks the builds that were running when the server stopped as interrupted, and ends
    /// each one's events with the final `build-state` the server could not send (so that a
    /// follower of its events gets an end).
    pub fn interrupt_running(&self) -> Result<usize, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let ids: Vec<i64> = tx
            .prepare("SELECT id FROM builds WHERE state = 'running'")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &ids {
            tx.execute(
                "UPDATE builds SET state = 'interrupted', finished = ?2 WHERE id = ?1",
                params![id, now()],
            )?;
            let body = serde_json::json!({
                "event": "build-state",
                "state": BuildState::Interrupted,
                "build": id,
            });
            tx.execute(
                "INSERT INTO events (build, seq, body)
                 SELECT ?1, coalesce(max(seq) + 1, 0), ?2 FROM events WHERE build = ?1",
                params![id, body.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(ids.len())
    }

    /// Builds waiting for a slot.
    pub fn queue_length(&self) -> Result<i64, StateError> {
        Ok(self.conn().query_row(
            "SELECT count(*) FROM builds WHERE state = 'queued'",
            [],
            |r| r.get(0),
        )?)
    }

    /// A build's nodes, in plan order.
    pub fn nodes(&self, build: i64) -> Result<Vec<NodeRow>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes WHERE build = ?1 ORDER BY rowid"
        ))?;
        let rows = stmt.query_map([build], |r| node_row(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Nodes of any build whose label contains `text`, or whose key or digest starts with it:
    /// the newest first, one per (label, key).
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<(i64, NodeRow)>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT build, {NODE_COLUMNS} FROM nodes
             WHERE instr(label, ?1) > 0 OR key LIKE ?2 ESCAPE '\\' OR digest LIKE ?2 ESCAPE '\\'
                   OR digest LIKE ?3 ESCAPE '\\'
             ORDER BY build DESC LIMIT ?4"
        ))?;
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let rows = stmt.query_map(
            params![
                text,
                format!("{escaped}%"),
                format!("sha256:{escaped}%"),
                limit as i64 * 4
            ],
            |r| Ok((r.get::<_, i64>(0)?, node_row(r, 1)?)),
        )?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for row in rows {
            let (build, node) = row?;
            if seen.insert((node.label.clone(), node.key.clone())) {
                out.push((build, node));
            }
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// A build's events, in order.
    pub fn events(&self, build: i64) -> Result<Vec<(i64, String)>, StateError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT seq, body FROM events WHERE build = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([build], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Applies a batch of records in one transaction.
    pub fn apply(&self, records: &[Record]) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for record in records {
            match record {
                Record::Planned { build, nodes } => {
                    let mut stmt = tx.prepare_cached(
                        "INSERT OR REPLACE INTO nodes (build, label, kind, planned, state, key, deps)
                         VALUES (?1, ?2, ?3, ?4, 'waiting', ?5, ?6)",
                    )?;
                    for n in nodes {
                        let deps = serde_json::to_string(&n.deps).unwrap_or_default();
                        stmt.execute(params![build, n.label, n.kind, n.planned, n.key, deps])?;
                    }
                }
                Record::Node { build, node } => {
                    tx.prepare_cached(
                        "UPDATE nodes SET state = ?3,
                            key = coalesce(?4, key), digest = coalesce(?5, digest),
                            location = coalesce(?6, location), seconds = coalesce(?7, seconds),
                            action_seconds = coalesce(?8, action_seconds),
                            overhead_seconds = coalesce(?9, overhead_seconds),
                            reason = coalesce(?10, reason), started = coalesce(started, ?11),
                            log = coalesce(?12, log)
                         WHERE build = ?1 AND label = ?2",
                    )?
                    .execute(params![
                        build,
                        node.label,
                        node.state,
                        node.key,
                        node.digest,
                        node.location,
                        node.seconds,
                        node.action_seconds,
                        node.overhead_seconds,
                        node.reason,
                        (node.state == "running").then(now),
                        node.log,
                    ])?;
                }
                Record::Event { build, seq, body } => {
                    tx.prepare_cached("INSERT INTO events (build, seq, body) VALUES (?1, ?2, ?3)")?
                        .execute(params![build, seq, body])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}
