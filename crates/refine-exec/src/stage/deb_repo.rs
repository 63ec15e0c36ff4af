//! A local Debian repository of exactly a lock's packages, for debootstrap to bootstrap a
//! locked base from (`file://…`): the pinned `.deb` files from the store under their pool
//! paths, a `Packages` index written here from each file's own control fields (read with
//! `dpkg-deb -f`, the host tool debootstrap itself uses), and a `Release` listing it.
//!
//! Every package is listed as `Priority: required`: debootstrap then installs all of them
//! (and the `include`s and their dependencies are among them), so that the root holds the
//! lock and nothing else, whatever priorities the archive gave them. The repository is not
//! signed: its files are the store's, verified by sha256 when fetched, and debootstrap runs
//! with `--no-check-gpg`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use refine_digest::Digest;
use refine_rules::rules::DebPin;
use refine_store::LocalStore;

use super::setup::stage_blob;
use crate::error::ActionError;

/// Writes the repository for `debs` into `repo`: `pool/…`, and `dists/SUITE/main/binary-ARCH/
/// Packages` with `dists/SUITE/Release`. Returns the staged inputs (file name, digest).
pub(super) fn write(
    store: &LocalStore,
    debs: &[DebPin],
    suite: &str,
    deb_arch: &str,
    repo: &Path,
) -> Result<Vec<(String, String)>, ActionError> {
    let mut packages = String::new();
    let mut inputs = Vec::new();
    for d in debs {
        let (dir, name) = d.path.rsplit_once('/').unwrap_or(("pool", &d.path));
        let staged = stage_blob(store, &d.sha256.0, &repo.join(dir), Some(name))?;
        inputs.push(staged);
        let file = repo.join(&d.path);
        let out = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&file)
            .output()
            .map_err(|source| ActionError::Spawn {
                program: "dpkg-deb".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(ActionError::Failed {
                what: format!("`dpkg-deb -f {}`", file.display()),
                status: out.status.to_string(),
                tail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let control = String::from_utf8_lossy(&out.stdout);
        let size = fs_err::metadata(&file)
            .map_err(ActionError::io("read", &file))?
            .len();
        for line in control.lines() {
            if !line.starts_with("Priority:") && !line.trim().is_empty() {
                packages.push_str(line);
                packages.push('\n');
            }
        }
        let _ = writeln!(
            packages,
            "Priority: required\nFilename: {}\nSize: {size}\nSHA256: {}\n",
            d.path, d.sha256.0
        );
    }
    let rel = format!("main/binary-{deb_arch}/Packages");
    let dists = repo.join("dists").join(suite);
    let index = dists.join(&rel);
    if let Some(parent) = index.parent() {
        fs_err::create_dir_all(parent).map_err(ActionError::io("create", parent))?;
    }
    fs_err::write(&index, &packages).map_err(ActionError::io("write", &index))?;
    let digest = Digest::of_bytes(packages.as_bytes());
    let release = format!(
        "Origin: refine\nLabel: refine lock\nSuite: {suite}\nCodename: {suite}\nArchitectures: {deb_arch}\nComponents: main\nDescription: the packages of a lock\nSHA256:\n {} {} {rel}\n",
        digest.hex(),
        packages.len()
    );
    let release_file = dists.join("Release");
    fs_err::write(&release_file, release).map_err(ActionError::io("write", &release_file))?;
    Ok(inputs)
}
