//! The parts of a `pylock.toml` (PEP 751) that uv writes and a request lock keeps: each
//! package's version, its sdist and the wheels that fit the platform uv resolved for.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct PyLock {
    #[serde(default)]
    pub packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    name: Option<String>,
    url: Option<String>,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
}

/// A file of the index: its name and sha256.
#[derive(Clone, Debug)]
pub struct File {
    pub file: String,
    pub sha256: String,
}

impl TryFrom<RawFile> for File {
    type Error = String;
    fn try_from(raw: RawFile) -> Result<File, String> {
        let file = raw
            .name
            .or_else(|| {
                raw.url
                    .as_deref()
                    .and_then(|u| u.rsplit('/').next())
                    .map(|n| n.split(['#', '?']).next().unwrap_or(n).to_string())
            })
            .ok_or("a file without a name or URL")?;
        let sha256 = raw
            .hashes
            .get("sha256")
            .cloned()
            .ok_or_else(|| format!("`{file}` has no sha256"))?;
        Ok(File { file, sha256 })
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "RawPackage")]
pub struct Package {
    pub name: String,
    pub version: String,
    pub sdist: Option<File>,
    pub wheels: Vec<File>,
}

#[derive(Debug, Deserialize)]
struct RawPackage {
    name: String,
    version: Option<String>,
    sdist: Option<RawFile>,
    #[serde(default)]
    wheels: Vec<RawFile>,
}

impl TryFrom<RawPackage> for Package {
    type Error = String;
    fn try_from(raw: RawPackage) -> Result<Package, String> {
        let version = raw
            .version
            .ok_or_else(|| format!("`{}` has no version (a URL or path requirement?)", raw.name))?;
        Ok(Package {
            sdist: raw.sdist.map(File::try_from).transpose()?,
            wheels: raw
                .wheels
                .into_iter()
                .map(File::try_from)
                .collect::<Result<_, _>>()?,
            name: raw.name,
            version,
        })
    }
}

pub fn parse(text: &str) -> Result<PyLock, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// How specific a wheel's tags are: the interpreter's own ABI first, then the stable ABI,
/// then a platform wheel without an ABI, then pure Python. uv lists only the wheels that fit
/// the platform and Python version it resolved for.
fn rank(file: &str) -> u8 {
    let stem = file.strip_suffix(".whl").unwrap_or(file);
    let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
    let (plat, abi) = match parts.as_slice() {
        [plat, abi, ..] => (*plat, *abi),
        _ => return 0,
    };
    match (abi, plat) {
        ("none", "any") => 0,
        ("none", _) => 1,
        ("abi3", _) => 2,
        _ => 3,
    }
}

/// The most specific of the wheels uv found for the platform.
pub fn best_wheel(wheels: &[File]) -> Option<&File> {
    wheels
        .iter()
        .max_by_key(|w| (rank(&w.file), std::cmp::Reverse(w.file.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> File {
        File {
            file: name.into(),
            sha256: "0".repeat(64),
        }
    }

    #[test]
    fn the_interpreters_own_abi_wins_over_abi3_and_pure_python() {
        let wheels = [
            f("charset_normalizer-3.5.3-py3-none-any.whl"),
            f("charset_normalizer-3.5.3-cp37-abi3-manylinux2014_s390x.manylinux_2_17_s390x.whl"),
            f("charset_normalizer-3.5.3-cp311-cp311-manylinux2014_s390x.manylinux_2_17_s390x.whl"),
        ];
        assert_eq!(
            best_wheel(&wheels).unwrap().file,
            "charset_normalizer-3.5.3-cp311-cp311-manylinux2014_s390x.manylinux_2_17_s390x.whl"
        );
        assert_eq!(best_wheel(&wheels[..2]).unwrap().file, wheels[1].file);
        assert!(best_wheel(&[]).is_none());
    }

    #[test]
    fn a_pylock_from_uv_reads_with_its_files() {
        let lock = parse(
            r#"lock-version = "1.0"
[[packages]]
name = "attrs"
version = "26.1.0"
sdist = { url = "https://files.example/p/attrs-26.1.0.tar.gz", size = 1, hashes = { sha256 = "aa" } }
wheels = [{ url = "https://files.example/p/attrs-26.1.0-py3-none-any.whl", hashes = { sha256 = "bb" } }]
"#,
        )
        .unwrap();
        let p = &lock.packages[0];
        assert_eq!(p.sdist.as_ref().unwrap().file, "attrs-26.1.0.tar.gz");
        assert_eq!(p.wheels[0].file, "attrs-26.1.0-py3-none-any.whl");
        assert_eq!(p.wheels[0].sha256, "bb");
    }
}
