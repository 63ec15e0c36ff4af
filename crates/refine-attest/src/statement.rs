//! Provenance as an in-toto v1 statement (`https://in-toto.io/Statement/v1`) with the SLSA
//! provenance v1 predicate (`https://slsa.dev/provenance/v1`), built from the record refine
//! stores next to every artifact (`dev.refine.provenance`).
//!
//! Environment variables whose names suggest a secret are redacted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use refine_digest::Digest;

/// Media type (and artifact type) of an in-toto statement.
pub const INTOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance predicate type.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// refine's SLSA build type.
pub const BUILD_TYPE: &str = "https://example.invalid/refine/action/v1";

fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "TOKEN",
        "SECRET",
        "CREDENTIAL",
        "ACCESS_KEY",
        "AUTH",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// An in-toto v1 statement about artifacts (`subject`), here with the SLSA provenance v1
/// predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<ResourceDescriptor>,
    /// [`SLSA_PROVENANCE_V1`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Provenance,
}

/// in-toto's ResourceDescriptor: an artifact by name, location and digests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm to lowercase hex.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// The SLSA provenance v1 predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

/// What was built, from what, and how (SLSA `buildDefinition`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// [`BUILD_TYPE`].
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    pub internal_parameters: InternalParameters,
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// The parameters a user controls: the target and its key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalParameters {
    pub label: String,
    pub kind: String,
    pub key: String,
    /// The key's fields by name.
    pub key_fields: BTreeMap<String, String>,
}

/// The parameters refine chose: how the action ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InternalParameters {
    /// As the record holds it (an array of strings).
    pub command: Value,
    /// Secrets redacted.
    pub env: BTreeMap<String, String>,
    pub platform: String,
    /// As the record holds it (`null` when none ran).
    pub emulator: Value,
    /// The farm that ran the action (`endpoint`, `worker`, `action` digest), when not the
    /// builder's own machine.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub executor: Value,
    pub exit: String,
}

/// Who built it, when, and what else came out (SLSA `runDetails`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunDetails {
    pub builder: Builder,
    pub metadata: BuildMetadata,
    pub byproducts: Vec<ResourceDescriptor>,
}

/// The builder's identity and version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Builder {
    pub id: String,
    pub version: BTreeMap<String, String>,
}

/// One run of the build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    pub invocation_id: String,
    pub started_on: String,
    pub finished_on: String,
}

/// A digest set from `sha256:…` or `blake3:…` (a bare value is taken as sha256 hex).
fn digest_set(d: &str) -> BTreeMap<String, String> {
    let (alg, hex) = d.split_once(':').unwrap_or(("sha256", d));
    BTreeMap::from([(alg.to_string(), hex.to_string())])
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some((
                        p.get(0)?.as_str()?.to_string(),
                        p.get(1)?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// RFC 3339 (UTC, whole seconds) for a Unix time.
pub fn rfc3339(unix: f64) -> String {
    let secs = unix.max(0.0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A resolved dependency: an input's value is a digest (`sha256:…`), a location pinned by one
/// (`oci://host/repo@sha256:…`, `vendor/img@sha256:…`), or a location alone (a mirror URL).
fn dependency(name: &str, value: &str) -> ResourceDescriptor {
    let (uri, digest) = match value.rsplit_once('@') {
        Some((uri, digest)) if digest.starts_with("sha256:") => (Some(uri), digest_set(digest)),
        _ if value.contains("://") => (Some(value), BTreeMap::new()),
        _ => (None, digest_set(value)),
    };
    ResourceDescriptor {
        name: Some(name.to_string()),
        uri: uri.map(str::to_string),
        digest,
        media_type: None,
    }
}

impl Statement {
    /// The statement for the artifact `subject` (its manifest digest), from refine's
    /// provenance record (the JSON blob `dev.refine.provenance` names). Fields the record
    /// lacks are empty, never an error: the record is refine's own, and old ones had fewer.
    pub fn from_record(subject: &Digest, record: &Value) -> Statement {
        let s = |k: &str| {
            record
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Statement {
            type_: STATEMENT_TYPE.into(),
            subject: vec![ResourceDescriptor {
                name: Some(s("label")),
                digest: BTreeMap::from([("sha256".to_string(), subject.hex())]),
                ..ResourceDescriptor::default()
            }],
            predicate_type: SLSA_PROVENANCE_V1.into(),
            predicate: Provenance {
                build_definition: BuildDefinition {
                    build_type: BUILD_TYPE.into(),
                    external_parameters: ExternalParameters {
                        label: s("label"),
                        kind: s("kind"),
                        key: s("key"),
                        key_fields: pairs(&record["key_fields"]).into_iter().collect(),
                    },
                    internal_parameters: InternalParameters {
                        command: record["command"].clone(),
                        env: redacted_env(record),
                        platform: s("platform"),
                        emulator: record["emulator"].clone(),
                        executor: record["executor"].clone(),
                        exit: s("exit"),
                    },
                    resolved_dependencies: pairs(&record["inputs"])
                        .iter()
                        .map(|(name, value)| dependency(name, value))
                        .collect(),
                },
                run_details: run_details(record, s("key"), s("refine_version")),
            },
        }
    }

    /// The statement as a JSON value (objects with sorted keys: the bytes refine pushes).
    pub fn to_value(&self) -> Value {
        // Infallible: string-keyed maps, plain strings and JSON values only.
        serde_json::to_value(self).expect("a statement serialises")
    }
}

fn redacted_env(record: &Value) -> BTreeMap<String, String> {
    pairs(&record["env"])
        .into_iter()
        .map(|(k, v)| {
            let v = if is_secret_name(&k) {
                "[redacted]".to_string()
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

fn run_details(record: &Value, key: String, version: String) -> RunDetails {
    let started = record["started_unix"].as_f64().unwrap_or(0.0);
    let finished = started + record["seconds"].as_f64().unwrap_or(0.0);
    let byproducts = record["log"]
        .as_str()
        .map(|log| ResourceDescriptor {
            name: Some("log".into()),
            digest: digest_set(log),
            media_type: Some("text/plain".into()),
            ..ResourceDescriptor::default()
        })
        .into_iter()
        .collect();
    RunDetails {
        builder: Builder {
            id: "https://example.invalid/refine".into(),
            version: BTreeMap::from([("refine".to_string(), version)]),
        },
        metadata: BuildMetadata {
            invocation_id: key,
            started_on: rfc3339(started),
            finished_on: rfc3339(finished),
        },
        byproducts,
    }
}

/// [`Statement::from_record`], as JSON.
pub fn statement(subject: &Digest, record: &Value) -> Value {
    Statement::from_record(subject, record).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({
            "label": "//packs:a", "kind": "pack", "key": "k",
            "key_fields": [["recipe", "sha256:ab"], ["env", "sha256:cd"]],
            "inputs": [
                ["//bases:tiny", "sha256:cd"],
                ["//bases:img", "oci://127.0.0.1:5000/mirror/busybox@sha256:ee"],
                ["mirror", "https://mirror.example/simple"],
                ["bare", "0123"]
            ],
            "command": ["sh", "-c", "x"],
            "env": [["PATH", "/bin"], ["API_TOKEN", "hunter2"]],
            "platform": "x86_64", "emulator": null,
            "started_unix": 1_700_000_000.0, "seconds": 61.5, "exit": "Exited(0)",
            "log": "sha256:ef", "refine_version": "0.1.0"
        })
    }

    /// The statement, field for field, as refine has always written it (tests/it/remote.rs and
    /// other tools read it).
    #[test]
    fn statements_serialise_as_slsa_provenance_v1() {
        let subject = Digest::EMPTY_JSON;
        let expected = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{ "name": "//packs:a", "digest": { "sha256": subject.hex() } }],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": "https://example.invalid/refine/action/v1",
                    "externalParameters": {
                        "label": "//packs:a", "kind": "pack", "key": "k",
                        "keyFields": { "env": "sha256:cd", "recipe": "sha256:ab" },
                    },
                    "internalParameters": {
                        "command": ["sh", "-c", "x"],
                        "env": { "API_TOKEN": "[redacted]", "PATH": "/bin" },
                        "platform": "x86_64",
                        "emulator": null,
                        "exit": "Exited(0)",
                    },
                    "resolvedDependencies": [
                        { "name": "//bases:tiny", "digest": { "sha256": "cd" } },
                        { "name": "//bases:img", "uri": "oci://127.0.0.1:5000/mirror/busybox", "digest": { "sha256": "ee" } },
                        { "name": "mirror", "uri": "https://mirror.example/simple" },
                        { "name": "bare", "digest": { "sha256": "0123" } },
                    ],
                },
                "runDetails": {
                    "builder": { "id": "https://example.invalid/refine", "version": { "refine": "0.1.0" } },
                    "metadata": {
                        "invocationId": "k",
                        "startedOn": "2023-11-14T22:13:20Z",
                        "finishedOn": "2023-11-14T22:14:21Z",
                    },
                    "byproducts": [{ "name": "log", "digest": { "sha256": "ef" }, "mediaType": "text/plain" }],
                },
            },
        });
        let st = Statement::from_record(&subject, &record());
        assert_eq!(st.to_value(), expected);
        assert_eq!(statement(&subject, &record()), expected);
        // And back: the typed statement reads what it wrote.
        let back: Statement = serde_json::from_value(expected).unwrap();
        assert_eq!(back, st);
    }

    #[test]
    fn a_sparse_record_gives_empty_fields_not_errors() {
        let st = statement(&Digest::EMPTY_JSON, &json!({}));
        assert_eq!(st["subject"][0]["name"], "");
        assert_eq!(
            st["predicate"]["buildDefinition"]["internalParameters"]["command"],
            Value::Null
        );
        assert_eq!(
            st["predicate"]["buildDefinition"]["resolvedDependencies"],
            json!([])
        );
        assert_eq!(st["predicate"]["runDetails"]["byproducts"], json!([]));
        assert_eq!(
            st["predicate"]["runDetails"]["metadata"]["startedOn"],
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000.5), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn statement_redacts_secrets() {
        let record = json!({
            "label": "//packs:a", "kind": "pack", "key": "k",
            "key_fields": [["recipe", "sha256:ab"]],
            "inputs": [["//bases:tiny", "sha256:cd"]],
            "command": ["sh", "-c", "x"],
            "env": [["PATH", "/bin"], ["API_TOKEN", "hunter2"]],
            "platform": "x86_64", "emulator": null,
            "started_unix": 0.0, "seconds": 1.0, "exit": "Exited(0)", "log": "sha256:ef",
            "refine_version": "0.1.0"
        });
        let st = statement(&Digest::EMPTY_JSON, &record);
        let text = st.to_string();
        assert!(!text.contains("hunter2"));
        assert_eq!(st["predicateType"], SLSA_PROVENANCE_V1);
        assert_eq!(
            st["subject"][0]["digest"]["sha256"],
            Digest::EMPTY_JSON.hex()
        );
        assert_eq!(
            st["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"],
            "cd"
        );
    }
}
