//! What the processes of a sandbox tell each other: length-prefixed JSON frames between the
//! caller and the helper (over the helper's stdin, a Unix socket), and JSON lines from PID 1 to
//! the helper (over a pipe).

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;
use crate::outcome::Termination;

/// The first argument that turns an executable into the sandbox helper.
pub const HELPER_ARG: &str = "__refine-sandbox-helper";

/// The first argument that asks a helper whether it was built from these sources; the second
/// is the caller's [`FINGERPRINT`]. The helper exits 0 when they match.
pub const PROBE_ARG: &str = "__refine-sandbox-probe";

/// A hash of this crate's sources (`build.rs`): the protocol both ends must share.
pub const FINGERPRINT: &str = env!("REFINE_SANDBOX_FINGERPRINT");

/// A frame larger than this is a protocol error, not a spec.
const MAX_FRAME: u32 = 64 << 20;

/// From PID 1 (or the action, before `execve`) to the helper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    Failed(SandboxError),
    Status(Termination),
}

pub(crate) fn write_frame(mut to: impl Write, value: &impl Serialize) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    let len = u32::try_from(bytes.len()).map_err(io::Error::other)?;
    to.write_all(&len.to_le_bytes())?;
    to.write_all(&bytes)?;
    to.flush()
}

pub(crate) fn read_frame<T: DeserializeOwned>(mut from: impl Read) -> io::Result<T> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut bytes = vec![0; len as usize];
    from.read_exact(&mut bytes)?;
    serde_json::from_slice(&bytes).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    #[test]
    fn frames_round_trip() {
        let value: Result<Outcome, SandboxError> = Err(SandboxError::InvalidSpec {
            message: "x".into(),
        });
        let mut buf = Vec::new();
        write_frame(&mut buf, &value).expect("write");
        let back: Result<Outcome, SandboxError> = read_frame(buf.as_slice()).expect("read");
        assert_eq!(back, value);
        assert!(read_frame::<Report>(&buf[..3]).is_err());
    }
}
