//! `refine key generate NAME`: a new Ed25519 key pair for signing artifacts. The private key
//! goes to `NAME.key`, owner-only (0600), never over an existing file and never printed; the
//! public key to `NAME.pub` as the `ed25519:<hex>` text `workspace.kdl`'s `trust` lists.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use refine_attest::{PublicKey, SigningKey};

use super::OpError;

/// A key pair written to disk.
#[derive(Debug)]
pub struct GeneratedKey {
    pub private: PathBuf,
    pub public_file: PathBuf,
    pub public: PublicKey,
}

/// The folder keys go to by default: `$XDG_CONFIG_HOME/refine/keys`, else
/// `~/.config/refine/keys` (outside any workspace, so that no one commits a private key).
pub fn default_key_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
        .map(|c| c.join("refine").join("keys"))
}

/// Writes a new key pair named `name` into `dir`.
pub fn generate(dir: &Path, name: &str) -> Result<GeneratedKey, OpError> {
    let usable = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !usable {
        return Err(OpError::BadKeyName {
            name: name.chars().take(80).collect(),
        });
    }
    let key = SigningKey::generate()?;
    fs_err::create_dir_all(dir).map_err(|error| OpError::Io {
        action: "create the folder",
        path: dir.to_path_buf(),
        error,
    })?;
    let private = dir.join(format!("{name}.key"));
    let public_file = dir.join(format!("{name}.pub"));
    if public_file.exists() {
        return Err(OpError::KeyExists { path: public_file });
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => OpError::KeyExists {
                path: private.clone(),
            },
            _ => OpError::Io {
                action: "create",
                path: private.clone(),
                error,
            },
        })?;
    file.write_all(key.to_pem().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| OpError::Io {
            action: "write",
            path: private.clone(),
            error,
        })?;
    fs_err::write(&public_file, format!("{}\n", key.public())).map_err(|error| OpError::Io {
        action: "write",
        path: public_file.clone(),
        error,
    })?;
    Ok(GeneratedKey {
        private,
        public_file,
        public: key.public(),
    })
}
