//! refine's attestations: what an artifact's provenance says, and the proof of who said it.
//!
//! - [`statement`]: refine's provenance record as an in-toto v1 statement
//!   (`https://in-toto.io/Statement/v1`) with the SLSA provenance v1 predicate.
//! - [`dsse`]: the statement signed in a DSSE envelope (the in-toto attestation framework's
//!   signature envelope, `DSSEv1` pre-authentication encoding) with Ed25519 (RFC 8032).
//! - [`keys`]: signing keys (PKCS#8 PEM, as OpenSSL and Python's `cryptography` write them)
//!   and public keys (`ed25519:<hex>`), with securesystemslib's key ids, so that the
//!   in-toto reference implementation verifies refine's envelopes as they are.
//! - [`trust`]: the keys a workspace trusts, and the check an artifact from a shared cache
//!   must pass: an envelope that verifies with a trusted key, whose subject is the manifest
//!   that was pulled and which names the kind and key that were asked for.
//!
//! See `docs/security.md`. Uses refine-digest and no other refine crate; does no I/O but
//! reading a key file.

pub mod dsse;
pub mod keys;
pub mod statement;
pub mod trust;

pub use dsse::{DSSE_MEDIA_TYPE, Envelope};
pub use keys::{KeyError, PublicKey, SigningKey};
pub use statement::{INTOTO_MEDIA_TYPE, SLSA_PROVENANCE_V1, Statement, statement};
pub use trust::{Refusal, Signer, TrustedKeys};

use refine_digest::Digest;

/// Signs the statement refine makes of the provenance `record` of the artifact `subject`:
/// the envelope's bytes, as stored beside the artifact and pushed as its referrer.
pub fn sign_record(key: &SigningKey, subject: &Digest, record: &serde_json::Value) -> Vec<u8> {
    let payload = serde_json::to_vec(&statement(subject, record)).unwrap_or_default();
    Envelope::sign(INTOTO_MEDIA_TYPE, &payload, key).to_bytes()
}
