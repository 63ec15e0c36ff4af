//! The plans asked for through `POST /v1/plans`, kept so that `GET /v1/plans/{id}` returns the
//! same document later.

use rusqlite::{OptionalExtension, params};

use super::{State, StateError, now};

/// A stored plan: its nodes are kept as the JSON the API returned.
#[derive(Clone, Debug)]
pub struct PlanRow {
    pub id: i64,
    pub created: f64,
    pub patterns: Vec<String>,
    /// The plan's nodes, as JSON text.
    pub body: String,
}

impl State {
    /// Stores a plan and returns it with its id.
    pub fn insert_plan(&self, patterns: &[String], body: String) -> Result<PlanRow, StateError> {
        let created = now();
        let id = self.conn().query_row(
            "INSERT INTO plans (created, patterns, body) VALUES (?1, ?2, ?3) RETURNING id",
            params![
                created,
                serde_json::to_string(patterns).unwrap_or_default(),
                body
            ],
            |r| r.get(0),
        )?;
        Ok(PlanRow {
            id,
            created,
            patterns: patterns.to_vec(),
            body,
        })
    }

    /// One stored plan.
    pub fn plan(&self, id: i64) -> Result<Option<PlanRow>, StateError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, created, patterns, body FROM plans WHERE id = ?1",
                [id],
                |r| {
                    let patterns: String = r.get(2)?;
                    Ok(PlanRow {
                        id: r.get(0)?,
                        created: r.get(1)?,
                        patterns: serde_json::from_str(&patterns).unwrap_or_default(),
                        body: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }
}
