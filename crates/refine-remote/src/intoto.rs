//! Provenance as an in-toto v1 statement (`https://in-toto.io/Statement/v1`) with the SLSA
//! provenance v1 predicate (`https://slsa.dev/provenance/v1`), built from the record refine
//! stores next to every artifact (`dev.refine.provenance`), and the OCI referrer manifest that
//! attaches it to the artifact (image-spec 1.1 `subject`).
//!
//! Environment variables whose names suggest a secret are redacted.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::store::{Descriptor, Digest, MANIFEST_MEDIA_TYPE, Manifest, annotations};

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

/// A `(algorithm, hex)` pair from `sha256:…` or `blake3:…`.
fn digest_set(d: &str) -> Value {
    match d.split_once(':') {
        Some((alg, hex)) => json!({ alg: hex }),
        None => json!({ "sha256": d }),
    }
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

/// The statement for the artifact `subject` (its manifest digest), from refine's provenance
/// record (the JSON blob `dev.refine.provenance` names).
/// A resolved dependency: an input's value is a digest (`sha256:…`), a location pinned by one
/// (`oci://host/repo@sha256:…`, `vendor/img@sha256:…`), or a location alone (a mirror URL).
fn dependency(name: &str, value: &str) -> Value {
    match value.rsplit_once('@') {
        Some((uri, digest)) if digest.starts_with("sha256:") => {
            json!({ "name": name, "uri": uri, "digest": digest_set(digest) })
        }
        _ if value.contains("://") => json!({ "name": name, "uri": value }),
        _ => json!({ "name": name, "digest": digest_set(value) }),
    }
}

pub fn statement(subject: &Digest, record: &Value) -> Value {
    let s = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default();
    let env: BTreeMap<String, String> = pairs(&record["env"])
        .into_iter()
        .map(|(k, v)| {
            let v = if is_secret_name(&k) {
                "[redacted]".to_string()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    let fields: BTreeMap<String, String> = pairs(&record["key_fields"]).into_iter().collect();
    let deps: Vec<Value> = pairs(&record["inputs"])
        .into_iter()
        .map(|(name, value)| dependency(&name, &value))
        .collect();
    let started = record["started_unix"].as_f64().unwrap_or(0.0);
    let finished = started + record["seconds"].as_f64().unwrap_or(0.0);
    let mut byproducts = Vec::new();
    if let Some(log) = record["log"].as_str() {
        byproducts
            .push(json!({ "name": "log", "digest": digest_set(log), "mediaType": "text/plain" }));
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{ "name": s("label"), "digest": { "sha256": subject.hex() } }],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "label": s("label"),
                    "kind": s("kind"),
                    "key": s("key"),
                    "keyFields": fields,
                },
                "internalParameters": {
                    "command": record["command"].clone(),
                    "env": env,
                    "platform": s("platform"),
                    "emulator": record["emulator"].clone(),
                    "exit": s("exit"),
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": "https://example.invalid/refine",
                    "version": { "refine": s("refine_version") },
                },
                "metadata": {
                    "invocationId": s("key"),
                    "startedOn": rfc3339(started),
                    "finishedOn": rfc3339(finished),
                },
                "byproducts": byproducts,
            },
        },
    })
}

/// The referrer manifest attaching the statement blob (`statement`, `size`) to `subject`.
pub fn referrer_manifest(
    subject: &Digest,
    subject_size: u64,
    statement: &Digest,
    size: u64,
    key: &str,
) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(INTOTO_MEDIA_TYPE.into()),
        config: Descriptor::empty(),
        layers: vec![Descriptor {
            media_type: INTOTO_MEDIA_TYPE.into(),
            digest: *statement,
            size,
            artifact_type: None,
            annotations: None,
        }],
        subject: Some(Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: *subject,
            size: subject_size,
            artifact_type: None,
            annotations: None,
        }),
        annotations: Some(BTreeMap::from([
            (
                "in-toto.io/predicate-type".to_string(),
                SLSA_PROVENANCE_V1.to_string(),
            ),
            (annotations::KEY.to_string(), key.to_string()),
        ])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
