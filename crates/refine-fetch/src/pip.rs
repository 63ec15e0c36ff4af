//! The parts of the user's pip configuration that decide where and how files are fetched:
//! the indexes (`index-url`, `extra-index-url`), `cert` and `proxy`.
//!
//! They are read from `python3 -m pip config list`, pip's own merge of its configuration
//! files and `PIP_*` variables. Reading the INI files directly (with an INI crate) was
//! considered and left: the syntax is the easy part; which files exist (`/etc/xdg/pip`,
//! `/etc/pip.conf`, `~/.config/pip`, `~/.pip`, the interpreter's or virtualenv's
//! `sys.prefix/pip.conf`, `PIP_CONFIG_FILE`), how `PIP_*` names map to options, and their
//! order, are pip's, and a second implementation would drift from it. The listing's format
//! is pip's documented `SECTION.KEY='VALUE'` (the value a Python string literal), parsed
//! strictly below.

use std::sync::OnceLock;

use crate::http::{Http, HttpError};

/// The index pip uses when none is configured.
pub const PYPI: &str = "https://pypi.org/simple";

/// Where and how files are fetched.
#[derive(Clone, Debug, Default)]
pub struct PipConfig {
    /// `index-url` first (PyPI when unset), then each `extra-index-url`, as pip searches.
    pub indexes: Vec<String>,
    pub cert: Option<String>,
    pub proxy: Option<String>,
    /// The HTTP client for these settings, made on first use.
    pub(crate) http: OnceLock<Http>,
}

/// The values of one key across sections, later sections winning.
#[derive(Debug, Default, PartialEq, Eq)]
struct Settings {
    index_url: Option<String>,
    extra_index_urls: Option<String>,
    cert: Option<String>,
    proxy: Option<String>,
}

/// Sections in the order pip applies them to a command that downloads: `global` first, then
/// the commands' own sections, then the environment (`:env:`), each overriding the one
/// before.
const SECTIONS: [&str; 4] = ["global", "install", "download", ":env:"];

impl PipConfig {
    /// Reads `pip config list` (which merges files and `PIP_*` variables); without pip, PyPI.
    pub fn load() -> PipConfig {
        let listed = std::process::Command::new("python3")
            .args(["-m", "pip", "config", "list"])
            .output();
        let text = match &listed {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => String::new(),
        };
        PipConfig::from_listing(&text)
    }

    /// The configuration `pip config list` printed as `listing`.
    pub fn from_listing(listing: &str) -> PipConfig {
        let s = Settings::from_listing(listing);
        let mut indexes = vec![s.index_url.unwrap_or_else(|| PYPI.to_string())];
        for extra in s.extra_index_urls.iter().flat_map(|v| v.split_whitespace()) {
            if !indexes.iter().any(|i| i == extra) {
                indexes.push(extra.to_string());
            }
        }
        PipConfig {
            indexes,
            cert: s.cert,
            proxy: s.proxy,
            http: OnceLock::new(),
        }
    }

    /// The HTTP client with these settings (made once).
    pub(crate) fn http(&self) -> Result<&Http, HttpError> {
        if let Some(h) = self.http.get() {
            return Ok(h);
        }
        let made = Http::new(
            self.cert.as_deref().map(std::path::Path::new),
            self.proxy.as_deref(),
        )?;
        Ok(self.http.get_or_init(|| made))
    }
}

impl Settings {
    fn from_listing(listing: &str) -> Settings {
        let mut entries: Vec<(usize, &str, String)> = listing
            .lines()
            .filter_map(|line| {
                let (key, literal) = line.split_once('=')?;
                let (section, name) = key.rsplit_once('.')?;
                let rank = SECTIONS.iter().position(|s| *s == section)?;
                Some((rank, name, python_string(literal.trim())?))
            })
            .collect();
        entries.sort_by_key(|(rank, ..)| *rank);
        let mut s = Settings::default();
        for (_, name, value) in entries {
            let slot = match name {
                "index-url" => &mut s.index_url,
                "extra-index-url" => &mut s.extra_index_urls,
                "cert" => &mut s.cert,
                "proxy" => &mut s.proxy,
                _ => continue,
            };
            *slot = Some(value);
        }
        s
    }
}

/// The value of a Python string literal as `repr()` writes it (`'…'` or `"…"`, backslash
/// escapes), or `None` if `literal` is not one.
fn python_string(literal: &str) -> Option<String> {
    let quote = literal.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = literal.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return None; // an unescaped quote inside: not one literal
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = match chars.next()? {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'x' => hex_char(&mut chars, 2)?,
            'u' => hex_char(&mut chars, 4)?,
            'U' => hex_char(&mut chars, 8)?,
            other => other, // `\\`, `\'`, `\"`
        };
        out.push(escaped);
    }
    Some(out)
}

fn hex_char(chars: &mut std::str::Chars<'_>, digits: usize) -> Option<char> {
    let hex: String = chars.by_ref().take(digits).collect();
    (hex.len() == digits)
        .then(|| u32::from_str_radix(&hex, 16).ok())
        .flatten()
        .and_then(char::from_u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_literals_as_repr_writes_them() {
        assert_eq!(python_string("'a b'").as_deref(), Some("a b"));
        assert_eq!(python_string(r#""it's""#).as_deref(), Some("it's"));
        assert_eq!(
            python_string(r"'a\\b\'c\x41\u00e9'").as_deref(),
            Some("a\\b'cAé")
        );
        for bad in ["a", "'a", "'a'b'", r"'\x4'", ""] {
            assert_eq!(python_string(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_environment_overrides_the_files_as_in_pip() {
        // The listing of this machine's pip (sorted by key, as pip prints it).
        let listing = "\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.default-timeout='180'
:env:.extra-index-url='https://b.example/simple https://c.example/simple'
:env:.find-links='/opt/wheels'
global.cert='/etc/pip-ca.pem'
global.index-url='https://mirror.example/simple/'
install.proxy='http://proxy.example:3128'
list.format='json'
";
        let cfg = PipConfig::from_listing(listing);
        assert_eq!(
            cfg.indexes,
            [
                "https://mirror.example/simple/",
                "https://b.example/simple",
                "https://c.example/simple"
            ]
        );
        assert_eq!(
            cfg.cert.as_deref(),
            Some("/etc/ssl/certs/ca-certificates.crt")
        );
        assert_eq!(cfg.proxy.as_deref(), Some("http://proxy.example:3128"));
    }

    #[test]
    fn pypi_is_the_index_unless_one_is_set() {
        let cfg = PipConfig::from_listing("");
        assert_eq!(cfg.indexes, [PYPI]);
        assert_eq!(cfg.cert, None);
        let cfg = PipConfig::from_listing(":env:.extra-index-url='https://x.example/simple'\n");
        assert_eq!(cfg.indexes, [PYPI, "https://x.example/simple"]);
        let cfg = PipConfig::from_listing(
            "download.index-url='https://d.example/simple'\nglobal.index-url='https://g.example/simple'\n",
        );
        assert_eq!(cfg.indexes, ["https://d.example/simple"]);
    }
}
