//! DSSE (Dead Simple Signing Envelope, v1.0), the envelope of the in-toto attestation
//! framework: a payload, its type, and signatures over the pre-authentication encoding
//! `PAE(type, payload) = "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload`, so a
//! signature can never be read as one over another type. JSON with standard base64, as
//! securesystemslib and the in-toto reference implementation write and read it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::keys::{PublicKey, SigningKey};

/// The media type of a DSSE envelope as an OCI layer and referrer artifact type.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A DSSE envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Base64 of the payload.
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the Ed25519 signature over the PAE.
    pub sig: String,
}

/// The pre-authentication encoding of DSSE v1.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// An envelope around `payload` with one signature by `key`.
    pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
        let sig = key.sign(&pae(payload_type, payload));
        Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_string(),
            signatures: vec![EnvelopeSignature {
                keyid: key.public().keyid(),
                sig: STANDARD.encode(sig),
            }],
        }
    }

    /// The envelope as JSON (the bytes stored and pushed).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Infallible: strings only.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads an envelope.
    pub fn from_slice(bytes: &[u8]) -> Result<Envelope, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a DSSE envelope: {e}"))
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, String> {
        STANDARD
            .decode(&self.payload)
            .map_err(|e| format!("the payload is not base64: {e}"))
    }

    /// Whether `key` made one of the signatures (of those naming its key id, or naming none).
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        self.first_signer(std::slice::from_ref(key)).is_some()
    }

    /// The index in `keys` of the first key that made one of the signatures (of those naming
    /// its key id, or naming none); the payload is decoded once.
    pub fn first_signer(&self, keys: &[PublicKey]) -> Option<usize> {
        let payload = self.payload_bytes().ok()?;
        let message = pae(&self.payload_type, &payload);
        let sigs: Vec<(&str, Vec<u8>)> = self
            .signatures
            .iter()
            .filter_map(|s| Some((s.keyid.as_str(), STANDARD.decode(&s.sig).ok()?)))
            .collect();
        keys.iter().position(|key| {
            let keyid = key.keyid();
            sigs.iter()
                .filter(|(id, _)| id.is_empty() || *id == keyid)
                .any(|(_, sig)| key.verify(&message, sig))
        })
    }

    /// The key ids the signatures name.
    pub fn keyids(&self) -> Vec<&str> {
        self.signatures.iter().map(|s| s.keyid.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding of DSSE's own specification (`protocol.md`, "Test vectors").
    #[test]
    fn pae_is_the_specifications() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn an_envelope_verifies_with_its_key_only() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        let env = Envelope::sign("application/vnd.in-toto+json", b"{}", &a);
        let back = Envelope::from_slice(&env.to_bytes()).unwrap();
        assert!(back.signed_by(&a.public()));
        assert!(!back.signed_by(&b.public()));
        // The same signature under another payload type is not valid.
        let mut other = back.clone();
        other.payload_type = "text/plain".into();
        assert!(!other.signed_by(&a.public()));
        // Nor over another payload.
        let mut other = back;
        other.payload = STANDARD.encode(b"{ }");
        assert!(!other.signed_by(&a.public()));
    }
}
