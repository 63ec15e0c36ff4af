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
        let mut row = self.reserve_plan(patterns)?;
        self.store_plan_body(row.id, &body)?;
        row.body = body;
        Ok(row)
    }

    /// A plan's row and id, its body to follow ([`State::store_plan_body`]).
    pub fn reserve_plan(&self, patterns: &[String]) -> Result<PlanRow, StateError> {
        let created = now();
        let id = self.conn().query_row(
            "INSERT INTO plans (created, patterns, body) VALUES (?1, ?2, '') RETURNING id",
            params![created, serde_json::to_string(patterns).unwrap_or_default()],
            |r| r.get(0),
        )?;
        Ok(PlanRow {
            id,
            created,
            patterns: patterns.to_vec(),
            body: String::new(),
        })
    }

    /// Stores a reserved plan's body, compressed: a 10,000-node plan is some 9 MB of JSON, an
    /// eighth of that compressed (keys and digests do not compress).
    pub fn store_plan_body(&self, id: i64, body: &str) -> Result<(), StateError> {
        let packed = zstd::bulk::compress(body.as_bytes(), 1)
            .map_err(|e| StateError::Corrupt(format!("cannot compress plan {id}: {e}")))?;
        self.conn().execute(
            "UPDATE plans SET body_zstd = ?2 WHERE id = ?1",
            params![id, packed],
        )?;
        Ok(())
    }

    /// One stored plan.
    pub fn plan(&self, id: i64) -> Result<Option<PlanRow>, StateError> {
        let row = self
            .conn()
            .query_row(
                "SELECT id, created, patterns, body, body_zstd FROM plans WHERE id = ?1",
                [id],
                |r| {
                    let patterns: String = r.get(2)?;
                    let packed: Option<Vec<u8>> = r.get(4)?;
                    Ok((
                        PlanRow {
                            id: r.get(0)?,
                            created: r.get(1)?,
                            patterns: serde_json::from_str(&patterns).unwrap_or_default(),
                            body: r.get(3)?,
                        },
                        packed,
                    ))
                },
            )
            .optional()?;
        let Some((mut row, packed)) = row else {
            return Ok(None);
        };
        // Plans stored before schema 3 keep their body as text.
        if let Some(packed) = packed {
            let bytes = zstd::stream::decode_all(packed.as_slice())
                .map_err(|e| StateError::Corrupt(format!("plan {id}: {e}")))?;
            row.body = String::from_utf8(bytes)
                .map_err(|e| StateError::Corrupt(format!("plan {id}: {e}")))?;
        }
        Ok(Some(row))
    }
}
