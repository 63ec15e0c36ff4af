//! The six kinds of node (docs/architecture.md, "Keys"): one enum for the rules that declare them,
//! the keys that name them and the stores that keep their artifacts.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The six kinds of target, and of artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Base,
    Toolchain,
    Runtime,
    Pack,
    Wheel,
    Repair,
}

impl Kind {
    /// Every kind, in graph order.
    pub const ALL: [Kind; 6] = [
        Kind::Base,
        Kind::Toolchain,
        Kind::Runtime,
        Kind::Pack,
        Kind::Wheel,
        Kind::Repair,
    ];

    /// `base`, `toolchain`, `runtime`, `pack`, `wheel` or `repair`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Base => "base",
            Kind::Toolchain => "toolchain",
            Kind::Runtime => "runtime",
            Kind::Pack => "pack",
            Kind::Wheel => "wheel",
            Kind::Repair => "repair",
        }
    }

    /// Parses [`Kind::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kinds' names, for help texts.
    pub fn names() -> String {
        Kind::ALL
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The OCI `artifactType` of this kind's artifacts: `application/vnd.refine.<kind>.v1`.
    pub fn artifact_type(self) -> String {
        format!("application/vnd.refine.{}.v1", self.as_str())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
