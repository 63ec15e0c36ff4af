//! Ed25519 keys: a signing key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`, as OpenSSL and
//! Python's `cryptography` write it) and its public key, written `ed25519:<64 hex>` in
//! `workspace.kdl`, with securesystemslib's default key id (the sha256 of the canonical JSON
//! `{"keytype":"ed25519","keyval":{"public":HEX},"scheme":"ed25519"}`) so that the envelopes
//! refine writes name the key as the in-toto tools do.
//!
//! A signing key is never printed: its `Debug` shows the public key only.

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KeyError {
    #[error("Cannot read the signing key `{path}`: {source}")]
    #[diagnostic(
        code(refine::key),
        help("Point `REFINE_SIGNING_KEY_FILE` at a key that `refine key generate` wrote")
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("The signing key {from} is not an Ed25519 private key in PKCS#8 PEM")]
    #[diagnostic(
        code(refine::key),
        help("Use a key that `refine key generate NAME` wrote (`-----BEGIN PRIVATE KEY-----`)")
    )]
    NotAKey { from: String },
    #[error("`{text}` is not an Ed25519 public key")]
    #[diagnostic(
        code(refine::key),
        help("Write it as `ed25519:` and 64 hex digits, as `refine key generate` prints it")
    )]
    BadPublic { text: String },
    #[error("The operating system gave no randomness for a new key: {0}")]
    #[diagnostic(code(refine::key))]
    NoRandomness(String),
}

/// An Ed25519 signing key.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public())
    }
}

impl SigningKey {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&secret)))
    }

    /// Reads a PKCS#8 PEM key; `from` says where it came from, for messages.
    pub fn from_pem(pem: &str, from: &str) -> Result<SigningKey, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map(SigningKey)
            .map_err(|_| KeyError::NotAKey {
                from: from.to_string(),
            })
    }

    /// Reads the key file at `path`.
    pub fn from_file(path: &Path) -> Result<SigningKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        SigningKey::from_pem(&text, &format!("`{}`", path.display()))
    }

    /// The key as PKCS#8 PEM: what a key file holds. Secret: write it owner-only.
    pub fn to_pem(&self) -> String {
        // Infallible for an Ed25519 key: a fixed-size DER document.
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .unwrap_or_default()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Reads `ed25519:<64 hex>`.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let bad = || KeyError::BadPublic {
            text: text.chars().take(80).collect(),
        };
        let hex_part = text.strip_prefix("ed25519:").ok_or_else(bad)?;
        let bytes: [u8; 32] = hex::decode(hex_part)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
        Ok(PublicKey(bytes))
    }

    /// The key's 64 hex digits (securesystemslib's `keyval.public`).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// securesystemslib's default key id: the sha256 of the key's canonical JSON.
    pub fn keyid(&self) -> String {
        let canonical = format!(
            r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
            self.hex()
        );
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }

    /// Whether `sig` is this key's signature of `message` (RFC 8032, strict: no malleable
    /// or small-order encodings).
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        key.verify_strict(message, &sig).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", self.hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_and_text() {
        let k = SigningKey::generate().unwrap();
        let pem = k.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = SigningKey::from_pem(&pem, "test").unwrap();
        assert_eq!(back.public(), k.public());
        let text = k.public().to_string();
        assert_eq!(PublicKey::parse(&text).unwrap(), k.public());
        // Debug never shows the secret.
        assert!(!format!("{k:?}").contains(&pem[30..60]));
    }

    /// RFC 8032, section 7.1, test 1: the public key of the all-known secret, and the key id
    /// securesystemslib computes for it (`compute_default_keyid`).
    #[test]
    fn rfc8032_vector_and_key_id() {
        let secret: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let k = SigningKey(ed25519_dalek::SigningKey::from_bytes(&secret));
        assert_eq!(
            k.public().hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = k.sign(b"");
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(k.public().verify(b"", &sig));
        assert!(!k.public().verify(b"x", &sig));
        assert_eq!(k.public().keyid().len(), 64);
    }

    #[test]
    fn bad_public_keys_are_refused_without_echoing_a_page() {
        for bad in ["", "ed25519:", "ed25519:zz", "rsa:00", &"a".repeat(10_000)] {
            let e = PublicKey::parse(bad).unwrap_err().to_string();
            assert!(e.len() < 200, "{e}");
        }
        assert!(SigningKey::from_pem("not a key", "test").is_err());
    }
}
