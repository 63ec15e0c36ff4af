//! OCI content digests (image-spec 1.1, "Digests"): `sha256:<64 lowercase hex>`.
//!
//! Only the `sha256` algorithm is supported: it is the one every OCI implementation must
//! accept, and the one refine writes.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::DigestError;

/// An OCI digest using sha256, e.g. `sha256:44136fa3…`.
///
/// `Display` and serde use the `sha256:<hex>` form; [`Digest::parse`] rejects anything else
/// with a [`DigestError::BadDigest`] that says why.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of the OCI empty descriptor's content, the two bytes `{}`.
    pub const EMPTY_JSON: Digest = Digest([
        0x44, 0x13, 0x6f, 0xa3, 0x55, 0xb3, 0x67, 0x8a, 0x11, 0x46, 0xad, 0x16, 0xf7, 0xe8, 0x64,
        0x9e, 0x94, 0xfb, 0x4f, 0xc2, 0x1f, 0xe7, 0x7e, 0x83, 0x10, 0xc0, 0x60, 0xf6, 0x1c, 0xaa,
        0xff, 0x8a,
    ]);

    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(input: &str) -> Result<Self, DigestError> {
        let bad = |reason| DigestError::BadDigest {
            input: input.to_owned(),
            reason,
        };
        let (algorithm, hex) = input
            .split_once(':')
            .ok_or_else(|| bad("it lacks the `sha256:` algorithm prefix"))?;
        if algorithm != "sha256" {
            return Err(bad("only the `sha256` algorithm is supported"));
        }
        Self::from_hex(hex)
            .ok_or_else(|| bad("the part after `sha256:` is not 64 lowercase hexadecimal digits"))
    }

    /// Parses a bare 64-digit lowercase hex sha256 (as `sha256sum` prints it).
    pub fn from_hex(hex: &str) -> Option<Self> {
        // Lowercase only: a digest has one spelling (it names files and keys).
        if hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).ok()?;
        Some(Digest(out))
    }

    /// Wraps raw sha256 output.
    pub fn from_sha256_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    /// The sha256 of `data`.
    pub fn of_bytes(data: &[u8]) -> Self {
        Digest(Sha256::digest(data).into())
    }

    /// The sha256 of everything `reader` yields.
    pub fn of_reader(mut reader: impl Read) -> io::Result<(Self, u64)> {
        let mut writer = HashingWriter::new(io::sink());
        io::copy(&mut reader, &mut writer)?;
        let (_, digest, size) = writer.finish();
        Ok((digest, size))
    }

    /// The 64 lowercase hex digits, without the algorithm.
    pub fn hex(&self) -> String {
        hex32(&self.0)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// 32 bytes as 64 lowercase hex digits. Through `encode_to_slice` (a table per byte): `hex::encode`
/// goes a `char` at a time, and keys and digests are spelled out once per node of every build.
pub fn hex32(bytes: &[u8; 32]) -> String {
    let mut out = [0u8; 64];
    // Cannot fail: the output is exactly twice the input.
    let _ = hex::encode_to_slice(bytes, &mut out);
    // Hex digits are ASCII, so this is always `Ok`.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A writer that computes the sha256 and size of what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the digest and the number of bytes written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest(self.hasher.finalize().into()), self.size)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_constant_is_sha256_of_braces() {
        assert_eq!(Digest::of_bytes(b"{}"), Digest::EMPTY_JSON);
        assert_eq!(
            Digest::EMPTY_JSON.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_bad_input() {
        let s = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert_eq!(Digest::parse(s).unwrap().to_string(), s);
        let json = serde_json::to_string(&Digest::EMPTY_JSON).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(
            serde_json::from_str::<Digest>(&json).unwrap(),
            Digest::EMPTY_JSON
        );
        for bad in [
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "sha512:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "sha256:44136FA355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "sha256:44136f",
        ] {
            let err = Digest::parse(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("`{bad}` is not an OCI digest")),
                "{err}"
            );
        }
    }
}
