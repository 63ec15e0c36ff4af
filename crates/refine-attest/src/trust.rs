//! The keys a workspace trusts (`trust { key NAME "ed25519:…" }` in `workspace.kdl`) and the
//! check an artifact must pass before refine uses it from a shared cache: one of its
//! envelopes verifies with a trusted key, its statement's subject is the manifest that was
//! pulled, and the statement names the kind and key that were asked for, so a valid signature
//! cannot be replayed under another key or onto other bytes.

use std::fmt;

use refine_digest::Digest;
use serde_json::Value;

use crate::dsse::Envelope;
use crate::keys::PublicKey;
use crate::statement::INTOTO_MEDIA_TYPE;

/// The trusted keys, by name.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, PublicKey)>,
}

/// Who signed an artifact: a trusted key's name and its key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    pub name: String,
    pub keyid: String,
}

/// Why an artifact is not accepted, worst news last.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// No envelope at all.
    Unsigned,
    /// Envelopes that cannot be read.
    Malformed(String),
    /// Signed, but by none of the trusted keys (the key ids it names).
    UntrustedKeys(Vec<String>),
    /// An envelope names a trusted key, and its signature does not verify.
    BadSignature { name: String },
    /// Validly signed by a trusted key, about another artifact.
    WrongSubject { name: String },
    /// Validly signed by a trusted key, for another kind or key.
    WrongTarget {
        name: String,
        kind: String,
        key: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unsigned => f.write_str("it carries no signed provenance"),
            Refusal::Malformed(why) => write!(f, "its signed provenance is unreadable ({why})"),
            Refusal::UntrustedKeys(ids) => {
                let ids: Vec<String> = ids
                    .iter()
                    .map(|i| format!("`{}`", i.chars().take(16).collect::<String>()))
                    .collect();
                write!(
                    f,
                    "it is signed only by keys this workspace does not trust (key id {})",
                    ids.join(", ")
                )
            }
            Refusal::BadSignature { name } => {
                write!(f, "its signature by `{name}` does not verify")
            }
            Refusal::WrongSubject { name } => write!(
                f,
                "its provenance, signed by `{name}`, is about another artifact"
            ),
            Refusal::WrongTarget { name, kind, key } => write!(
                f,
                "its provenance, signed by `{name}`, is for `{kind}` key `{}…`",
                key.chars().take(16).collect::<String>()
            ),
        }
    }
}

impl TrustedKeys {
    /// The trusted keys: `(name, key)`.
    pub fn new(keys: Vec<(String, PublicKey)>) -> TrustedKeys {
        TrustedKeys { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[(String, PublicKey)] {
        &self.keys
    }

    /// The first envelope of `envelopes` that a trusted key signed for the artifact `subject`
    /// of `(kind, key)`, or the most telling reason none is acceptable.
    pub fn check(
        &self,
        envelopes: &[Vec<u8>],
        subject: &Digest,
        kind: &str,
        key: &str,
    ) -> Result<Signer, Refusal> {
        self.accept(envelopes, subject, kind, key)
            .map(|(_, signer)| signer)
    }

    /// [`TrustedKeys::check`], with the index in `envelopes` of the envelope accepted.
    pub fn accept(
        &self,
        envelopes: &[Vec<u8>],
        subject: &Digest,
        kind: &str,
        key: &str,
    ) -> Result<(usize, Signer), Refusal> {
        let mut worst = Refusal::Unsigned;
        for (i, bytes) in envelopes.iter().enumerate() {
            match self.check_one(bytes, subject, kind, key) {
                Ok(signer) => return Ok((i, signer)),
                Err(r) => worst = worst.max(r),
            }
        }
        Err(worst)
    }

    fn check_one(
        &self,
        bytes: &[u8],
        subject: &Digest,
        kind: &str,
        key: &str,
    ) -> Result<Signer, Refusal> {
        let env = Envelope::from_slice(bytes).map_err(Refusal::Malformed)?;
        let publics: Vec<PublicKey> = self.keys.iter().map(|(_, k)| *k).collect();
        let Some((name, public)) = env.first_signer(&publics).map(|i| &self.keys[i]) else {
            let named = self
                .keys
                .iter()
                .find(|(_, k)| env.keyids().contains(&k.keyid().as_str()));
            return Err(match named {
                Some((name, _)) => Refusal::BadSignature { name: name.clone() },
                None => {
                    Refusal::UntrustedKeys(env.keyids().iter().map(ToString::to_string).collect())
                }
            });
        };
        let name = name.clone();
        if env.payload_type != INTOTO_MEDIA_TYPE {
            return Err(Refusal::Malformed(format!(
                "payload type `{}`",
                env.payload_type.chars().take(60).collect::<String>()
            )));
        }
        let payload = env.payload_bytes().map_err(Refusal::Malformed)?;
        let statement: Value = serde_json::from_slice(&payload)
            .map_err(|e| Refusal::Malformed(format!("the statement is not JSON: {e}")))?;
        let about_subject = statement["subject"].as_array().is_some_and(|subjects| {
            subjects
                .iter()
                .any(|s| s["digest"]["sha256"].as_str() == Some(subject.hex().as_str()))
        });
        if !about_subject {
            return Err(Refusal::WrongSubject { name });
        }
        let params = &statement["predicate"]["buildDefinition"]["externalParameters"];
        let (skind, skey) = (
            params["kind"].as_str().unwrap_or_default(),
            params["key"].as_str().unwrap_or_default(),
        );
        if skind != kind || skey != key {
            return Err(Refusal::WrongTarget {
                name,
                kind: skind.to_string(),
                key: skey.to_string(),
            });
        }
        Ok(Signer {
            name,
            keyid: public.keyid(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SigningKey, sign_record};
    use serde_json::json;

    fn record(kind: &str, key: &str) -> Value {
        json!({"label": "//wheels:a", "kind": kind, "key": key})
    }

    fn digest(b: &[u8]) -> Digest {
        Digest::of_bytes(b)
    }

    #[test]
    fn a_trusted_signature_for_the_right_artifact_is_accepted() {
        let ci = SigningKey::generate().unwrap();
        let trust = TrustedKeys::new(vec![("ci".into(), ci.public())]);
        let m = digest(b"manifest");
        let env = sign_record(&ci, &m, &record("wheel", "k1"));
        let who = trust.check(&[env], &m, "wheel", "k1").unwrap();
        assert_eq!(who.name, "ci");
        assert_eq!(who.keyid, ci.public().keyid());
    }

    #[test]
    fn everything_else_is_refused_with_its_reason() {
        let ci = SigningKey::generate().unwrap();
        let laptop = SigningKey::generate().unwrap();
        let trust = TrustedKeys::new(vec![("ci".into(), ci.public())]);
        let m = digest(b"manifest");
        assert_eq!(trust.check(&[], &m, "wheel", "k1"), Err(Refusal::Unsigned));
        let untrusted = sign_record(&laptop, &m, &record("wheel", "k1"));
        assert!(matches!(
            trust.check(std::slice::from_ref(&untrusted), &m, "wheel", "k1"),
            Err(Refusal::UntrustedKeys(ids)) if ids == vec![laptop.public().keyid()]
        ));
        // Signed for other bytes.
        let other = sign_record(&ci, &digest(b"other"), &record("wheel", "k1"));
        assert!(matches!(
            trust.check(&[other], &m, "wheel", "k1"),
            Err(Refusal::WrongSubject { .. })
        ));
        // Replayed under another key.
        let replay = sign_record(&ci, &m, &record("wheel", "k1"));
        assert!(matches!(
            trust.check(std::slice::from_ref(&replay), &m, "wheel", "k2"),
            Err(Refusal::WrongTarget { key, .. }) if key == "k1"
        ));
        assert!(matches!(
            trust.check(&[replay], &m, "repair", "k1"),
            Err(Refusal::WrongTarget { .. })
        ));
        // A tampered envelope: a trusted key id, a signature over other bytes.
        let mut env = Envelope::from_slice(&sign_record(&ci, &m, &record("wheel", "k1"))).unwrap();
        let laptop_sig = Envelope::from_slice(&untrusted).unwrap().signatures[0]
            .sig
            .clone();
        env.signatures[0].sig = laptop_sig;
        assert_eq!(
            trust.check(&[env.to_bytes()], &m, "wheel", "k1"),
            Err(Refusal::BadSignature { name: "ci".into() })
        );
        assert!(matches!(
            trust.check(&[b"{".to_vec()], &m, "wheel", "k1"),
            Err(Refusal::Malformed(_))
        ));
        // One good envelope among bad ones is enough.
        let good = sign_record(&ci, &m, &record("wheel", "k1"));
        assert!(trust.check(&[untrusted, good], &m, "wheel", "k1").is_ok());
    }

    #[test]
    fn a_removed_key_is_refused_at_once() {
        let old = SigningKey::generate().unwrap();
        let new = SigningKey::generate().unwrap();
        let m = digest(b"manifest");
        let env = sign_record(&old, &m, &record("wheel", "k"));
        let both = TrustedKeys::new(vec![
            ("old".into(), old.public()),
            ("new".into(), new.public()),
        ]);
        assert_eq!(
            both.check(std::slice::from_ref(&env), &m, "wheel", "k")
                .unwrap()
                .name,
            "old"
        );
        let rotated = TrustedKeys::new(vec![("new".into(), new.public())]);
        assert!(rotated.check(&[env], &m, "wheel", "k").is_err());
    }
}
