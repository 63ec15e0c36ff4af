//! An sdist's PEP 517 build system, read from its `pyproject.toml` without running anything:
//! `[build-system].requires` and `build-backend`, with PEP 517's defaults for an sdist that
//! has none (`setuptools>=40.8.0` and the legacy setuptools backend; pip adds `wheel`).

use std::io::Read;

use refine_fetch::{Fetchable, PipConfig};
use refine_rules::rules::request::LockedFile;
use refine_store::LocalStore;

use crate::ops::OpError;

pub struct BuildSystem {
    pub requires: Vec<String>,
    pub backend: String,
}

#[derive(serde::Deserialize)]
struct Pyproject {
    #[serde(rename = "build-system")]
    build_system: Option<Section>,
}

#[derive(serde::Deserialize)]
struct Section {
    requires: Option<Vec<String>>,
    #[serde(rename = "build-backend")]
    build_backend: Option<String>,
}

/// Fetches the sdist (verified by sha256) and reads its build system.
pub fn build_system(
    store: &LocalStore,
    pip: &PipConfig,
    name: &str,
    version: &str,
    sdist: &LockedFile,
) -> Result<BuildSystem, OpError> {
    let item = Fetchable::Pypi {
        project: name.to_string(),
        version: version.to_string(),
        sha256: sdist.sha256.0.clone(),
    };
    let (digest, _) = refine_fetch::fetch(store, &item, pip, &store.tmp_dir())?;
    let path = store.existing_blob_path(&digest)?;
    let bad = |reason: String| OpError::BadSdist {
        file: sdist.file.clone(),
        reason,
    };
    let text = pyproject_text(&path, &sdist.file).map_err(bad)?;
    let section = match text {
        Some(text) => {
            toml::from_str::<Pyproject>(&text)
                .map_err(|e| bad(format!("its pyproject.toml is not valid TOML: {e}")))?
                .build_system
        }
        None => None,
    };
    let (requires, backend) = match section {
        Some(s) => (
            s.requires
                .unwrap_or_else(|| vec!["setuptools>=40.8.0".into(), "wheel".into()]),
            s.build_backend
                .unwrap_or_else(|| "setuptools.build_meta:__legacy__".into()),
        ),
        None => (
            vec!["setuptools>=40.8.0".into(), "wheel".into()],
            "setuptools.build_meta:__legacy__".into(),
        ),
    };
    Ok(BuildSystem { requires, backend })
}

/// The text of `<top>/pyproject.toml` in a `.tar.gz` or `.zip` sdist, if it has one.
fn pyproject_text(path: &std::path::Path, file: &str) -> Result<Option<String>, String> {
    let is_top_pyproject = |p: &str| {
        let parts: Vec<&str> = p.trim_start_matches("./").split('/').collect();
        parts.len() == 2 && parts[1] == "pyproject.toml"
    };
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if file.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(f).map_err(|e| e.to_string())?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
            if entry.name().is_ok_and(|n| is_top_pyproject(&n)) {
                let mut text = String::new();
                entry.read_to_string(&mut text).map_err(|e| e.to_string())?;
                return Ok(Some(text));
            }
        }
        return Ok(None);
    }
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for entry in tar.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let p = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .to_string();
        if is_top_pyproject(&p) {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(|e| e.to_string())?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}
