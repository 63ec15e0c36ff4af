//! Cache keys: BLAKE3 over a canonical, versioned encoding of each kind's key fields.
//!
//! A key is what refine looks up in a store before building a target. It is computed from
//! the target's *meaning* only: the rule's fields that affect the output, and the artifact
//! digests of its dependencies (never their keys, so that a dependency rebuilt bit for bit
//! causes no rebuild downstream). Labels, file names, formatting, the order of rules and the
//! workspace's location never enter a key.
//!
//! Encoding (version 1): the domain tag `refine-key-v1/<kind>`, then each field in the
//! kind's fixed order as its name and value. Strings are length-prefixed (u64 little endian)
//! so that no two different field lists encode alike; lists whose order carries no meaning
//! are sorted before encoding. Golden vectors in the tests pin the bytes: changing them is a
//! deliberate, versioned act (bump [`KEY_VERSION`]).

mod kinds;

use std::fmt;

use serde::Serialize;

pub use kinds::{KeyInputs, MissingInput, REPAIR_CHECK, key_fields};

/// The version of the key encoding. Bumping it changes every key.
pub const KEY_VERSION: u32 = 1;

/// A 32-byte BLAKE3 key, shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl Key {
    pub fn hex(&self) -> String {
        refine_digest::hex32(&self.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

/// One field's value, in the form `refine explain` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    Text(String),
    /// A list; sorted when built with [`KeyFields::set`].
    List(Vec<String>),
    /// Named entries, sorted by name (for example `packs[openblas]`).
    Map(Vec<(String, String)>),
}

/// A kind's key fields, in the kind's fixed order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyFields {
    pub kind: &'static str,
    pub fields: Vec<(&'static str, FieldValue)>,
}

impl KeyFields {
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            fields: Vec::new(),
        }
    }

    pub fn text(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.fields.push((name, FieldValue::Text(value.into())));
        self
    }

    /// A list whose order matters (configure flags).
    pub fn seq(
        &mut self,
        name: &'static str,
        values: impl IntoIterator<Item = String>,
    ) -> &mut Self {
        self.fields
            .push((name, FieldValue::List(values.into_iter().collect())));
        self
    }

    /// A list whose order carries no meaning: sorted and deduplicated.
    pub fn set(
        &mut self,
        name: &'static str,
        values: impl IntoIterator<Item = String>,
    ) -> &mut Self {
        let mut v: Vec<String> = values.into_iter().collect();
        v.sort();
        v.dedup();
        self.fields.push((name, FieldValue::List(v)));
        self
    }

    /// Named entries: sorted by name, then value.
    pub fn map(
        &mut self,
        name: &'static str,
        entries: impl IntoIterator<Item = (String, String)>,
    ) -> &mut Self {
        let mut v: Vec<(String, String)> = entries.into_iter().collect();
        v.sort();
        v.dedup();
        self.fields.push((name, FieldValue::Map(v)));
        self
    }

    /// The canonical bytes the key hashes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        put(
            &mut out,
            format!("refine-key-v{KEY_VERSION}/{}", self.kind).as_bytes(),
        );
        for (name, value) in &self.fields {
            put(&mut out, name.as_bytes());
            match value {
                FieldValue::Text(s) => {
                    out.push(b's');
                    put(&mut out, s.as_bytes());
                }
                FieldValue::List(items) => {
                    out.push(b'l');
                    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for i in items {
                        put(&mut out, i.as_bytes());
                    }
                }
                FieldValue::Map(entries) => {
                    out.push(b'm');
                    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
                    for (k, v) in entries {
                        put(&mut out, k.as_bytes());
                        put(&mut out, v.as_bytes());
                    }
                }
            }
        }
        out
    }

    pub fn key(&self) -> Key {
        Key(*blake3::hash(&self.encode()).as_bytes())
    }

    /// Each field flattened to `name` or `name[entry]` with its shown value, for diffs.
    pub fn flat(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, value) in &self.fields {
            match value {
                FieldValue::Text(s) => out.push((name.to_string(), s.clone())),
                FieldValue::List(items) => {
                    out.push((name.to_string(), format!("[{}]", items.join(", "))));
                }
                FieldValue::Map(entries) => {
                    if entries.is_empty() {
                        out.push((name.to_string(), "{}".into()));
                    }
                    for (k, v) in entries {
                        out.push((format!("{name}[{k}]"), v.clone()));
                    }
                }
            }
        }
        out
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}
