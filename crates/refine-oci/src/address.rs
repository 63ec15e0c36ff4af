//! Registry addresses: `[SCHEME://]HOST[:PORT][/PATH]`, as the remote store (`oci://…`) and
//! `REFINE_IMAGE_REGISTRY` write them. The scheme decides the transport: `oci://` is HTTPS,
//! except for a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`), which is spoken to in
//! plain HTTP; `oci+http://` forces plain HTTP (configure it knowingly), `oci+https://` forces
//! HTTPS. Hosts are checked with the URL standard's host parser (`url::Host`), never by
//! splitting strings.

use std::net::IpAddr;

/// Which schemes an address may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schemes {
    /// `oci://`, `oci+http://` or `oci+https://`, required (the remote store's URL).
    Oci,
    /// As [`Schemes::Oci`], or none (`oci://` is meant), or `http://` / `https://` (a registry
    /// to pull images from).
    OciOrHttp,
}

/// Why an address was refused; callers put it after their own "`…` is not a …:".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("it has no `oci://` scheme")]
    NoScheme,
    #[error("the scheme `{0}` is not `oci`, `oci+http` or `oci+https`")]
    Scheme(String),
    #[error("it names no host")]
    NoHost,
    #[error(
        "credentials do not belong in the URL; use `REFINE_REGISTRY_USER` and `REFINE_REGISTRY_PASSWORD` or `docker login`"
    )]
    Credentials,
    #[error("`{host}` is not `HOST[:PORT]`: {reason}")]
    BadHost {
        host: String,
        reason: ::url::ParseError,
    },
}

/// A parsed registry address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryUrl {
    /// `HOST[:PORT]`, as written (it names the registry in references and credentials).
    pub registry: String,
    /// What follows the host, without leading or trailing `/` (may be empty).
    pub path: String,
    /// Plain HTTP rather than HTTPS.
    pub plain_http: bool,
}

impl RegistryUrl {
    /// Parses `input` with the given schemes.
    pub fn parse(input: &str, schemes: Schemes) -> Result<RegistryUrl, UrlError> {
        let (scheme, rest) = match (input.split_once("://"), schemes) {
            (Some((scheme, rest)), _) => (scheme, rest),
            (None, Schemes::Oci) => return Err(UrlError::NoScheme),
            (None, Schemes::OciOrHttp) => ("oci", input),
        };
        let (registry, path) = rest.split_once('/').unwrap_or((rest, ""));
        if registry.is_empty() {
            return Err(UrlError::NoHost);
        }
        if registry.contains('@') {
            return Err(UrlError::Credentials);
        }
        let host = parse_host(registry).map_err(|reason| UrlError::BadHost {
            host: registry.to_string(),
            reason,
        })?;
        let plain_http = match (scheme, schemes) {
            ("oci", _) => host_is_loopback(&host),
            ("oci+http", _) | ("http", Schemes::OciOrHttp) => true,
            ("oci+https", _) | ("https", Schemes::OciOrHttp) => false,
            (other, _) => return Err(UrlError::Scheme(other.to_string())),
        };
        Ok(RegistryUrl {
            registry: registry.to_string(),
            path: path.trim_matches('/').to_string(),
            plain_http,
        })
    }
}

/// The host of `HOST[:PORT]`, by the URL standard's rules (IPv6 in brackets, a numeric port).
fn parse_host(registry: &str) -> Result<::url::Host, ::url::ParseError> {
    let url = ::url::Url::parse(&format!("http://{registry}/"))?;
    // `?` or `#` inside the host part would leave a path, query or fragment behind.
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(::url::ParseError::InvalidDomainCharacter);
    }
    url.host()
        .map(|h| h.to_owned())
        .ok_or(::url::ParseError::EmptyHost)
}

fn host_is_loopback(host: &::url::Host) -> bool {
    match host {
        ::url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        ::url::Host::Ipv4(a) => IpAddr::V4(*a).is_loopback(),
        ::url::Host::Ipv6(a) => IpAddr::V6(*a).is_loopback(),
    }
}

/// Whether `registry` (`HOST[:PORT]`) is a loopback address, spoken to in plain HTTP.
pub fn is_loopback(registry: &str) -> bool {
    parse_host(registry).is_ok_and(|h| host_is_loopback(&h))
}

/// Whether `path` is a repository path the distribution-spec allows: `/`-separated components
/// of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn is_repository_path(path: &str) -> bool {
    path.split('/').all(is_component)
}

fn is_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    alnum(first)
        && alnum(last)
        && b.iter()
            .all(|x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
        // Separators: one `.`, one or two `_`, any run of `-`; never mixed.
        && b.split(alnum).filter(|s| !s.is_empty()).all(|sep| {
            matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|x| *x == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(s: &str) -> Result<RegistryUrl, UrlError> {
        RegistryUrl::parse(s, Schemes::Oci)
    }

    fn image(s: &str) -> Result<RegistryUrl, UrlError> {
        RegistryUrl::parse(s, Schemes::OciOrHttp)
    }

    #[test]
    fn schemes_decide_the_transport() {
        let u = oci("oci://127.0.0.1:5000/ci/cache/").unwrap();
        assert_eq!(
            u,
            RegistryUrl {
                registry: "127.0.0.1:5000".into(),
                path: "ci/cache".into(),
                plain_http: true
            }
        );
        assert!(!oci("oci://zot.example.com").unwrap().plain_http);
        assert_eq!(oci("oci://zot.example.com").unwrap().path, "");
        assert!(oci("oci+http://zot:8080/x").unwrap().plain_http);
        assert!(!oci("oci+https://localhost:8080/x").unwrap().plain_http);
        assert!(oci("oci://[::1]:5000/x").unwrap().plain_http);
        assert!(oci("oci://LocalHost/x").unwrap().plain_http);
        // Bare names and web schemes only where images are pulled from.
        assert_eq!(oci("zot/x"), Err(UrlError::NoScheme));
        assert_eq!(oci("http://zot/x"), Err(UrlError::Scheme("http".into())));
        assert!(image("http://zot/x").unwrap().plain_http);
        assert!(!image("https://localhost/x").unwrap().plain_http);
        let bare = image("127.0.0.1:5000/mirror").unwrap();
        assert!(bare.plain_http);
        assert_eq!(bare.path, "mirror");
        assert!(!image("quay.io").unwrap().plain_http);
        assert_eq!(image("ftp://x"), Err(UrlError::Scheme("ftp".into())));
    }

    #[test]
    fn bad_hosts_are_refused() {
        assert_eq!(oci("oci:///x"), Err(UrlError::NoHost));
        assert_eq!(oci("oci://u:p@zot/x"), Err(UrlError::Credentials));
        assert_eq!(image("u@zot"), Err(UrlError::Credentials));
        for bad in [
            "oci://zot:port/x",
            "oci://::1/x",
            "oci://a b/x",
            "oci://zot?x/y",
        ] {
            assert!(
                matches!(oci(bad), Err(UrlError::BadHost { .. })),
                "{bad}: {:?}",
                oci(bad)
            );
        }
    }

    #[test]
    fn loopback_by_address_not_by_text() {
        for yes in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.3.2.1:80",
            "[::1]",
            "[::1]:5000",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "zot",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:5000",
            "128.0.0.1",
            "::1",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn repository_paths_follow_the_distribution_spec() {
        for yes in ["artifacts", "ci/cache", "a.b", "a__b", "a---b", "x9/y-z"] {
            assert!(is_repository_path(yes), "{yes}");
        }
        for no in [
            "", "Upper", "a/", "-a", "a.", "a..b", "a___b", "a._b", "a/b c",
        ] {
            assert!(!is_repository_path(no), "{no}");
        }
    }
}
