//! The OCI image-spec 1.1 types refine reads and writes: descriptors, image manifests (used as
//! artifact manifests) and image indexes (`index.json`).
//!
//! Serialisation is canonical: fields in the declared order, annotations sorted (`BTreeMap`),
//! absent options omitted, compact JSON. The same manifest always has the same bytes, hence
//! the same digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Digest, EMPTY_MEDIA_TYPE, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, annotations};

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// The empty descriptor: `application/vnd.oci.empty.v1+json`, 2 bytes `{}`.
    pub fn empty() -> Self {
        Descriptor {
            media_type: EMPTY_MEDIA_TYPE.into(),
            digest: Digest::EMPTY_JSON,
            size: 2,
            artifact_type: None,
            annotations: None,
        }
    }

    /// The value of an annotation, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// An OCI image manifest (`application/vnd.oci.image.manifest.v1+json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }

    /// The value of an annotation, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// The digest of the artifact's content: sha256 over one line per layer (media type,
    /// digest, size, title), so not over the key or label the manifest also records. Keys
    /// name dependencies by it: an artifact rebuilt bit for bit leaves every key downstream
    /// unchanged. Its bytes must never change (the golden key vectors pin them).
    pub fn content_digest(&self) -> Digest {
        let mut h = Sha256::new();
        for layer in &self.layers {
            let title = layer.annotation(annotations::TITLE).unwrap_or("");
            h.update(format!(
                "{} {} {} {title}\n",
                layer.media_type, layer.digest, layer.size
            ));
        }
        Digest::from_sha256_bytes(h.finalize().into())
    }

    /// Parses and checks the media type and schema version.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, String> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if m.schema_version != 2 {
            return Err(format!("`schemaVersion` is {}, not 2", m.schema_version));
        }
        if m.media_type != MANIFEST_MEDIA_TYPE {
            return Err(format!(
                "`mediaType` is `{}`, not `{MANIFEST_MEDIA_TYPE}`",
                m.media_type
            ));
        }
        Ok(m)
    }
}

/// An OCI image index (`application/vnd.oci.image.index.v1+json`), as in `index.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    /// An index listing `manifests`.
    pub fn new(manifests: Vec<Descriptor>) -> Self {
        Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.into()),
            manifests,
            annotations: None,
        }
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an index always serialises")
    }
}
