//! What a failed registry call means. `oci-client` reports the same condition in several
//! shapes (a typed error, a bare HTTP status, or a distribution-spec error envelope); every
//! user of this crate asks [`classify`] instead of matching them itself.

use oci_client::errors::{OciDistributionError as E, OciErrorCode as Code};

/// The meaning of a registry error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The repository, tag, manifest or blob does not exist.
    NotFound,
    /// The registry refused the credentials (or wants some).
    Unauthorized,
    /// No connection (refused, DNS, TLS handshake) or no answer in time.
    Unreachable,
    /// The connection broke off during a request or its body.
    Interrupted,
    /// Too many requests (HTTP 429, `TOOMANYREQUESTS`).
    Throttled,
    /// The registry failed (HTTP 5xx).
    ServerFault,
    /// What the registry sent does not match its digest.
    Corrupt,
    /// Anything else: a request refine should not repeat.
    Other,
}

impl ErrorClass {
    /// Whether the same request may succeed if sent again a little later.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorClass::Unreachable
                | ErrorClass::Interrupted
                | ErrorClass::Throttled
                | ErrorClass::ServerFault
        )
    }
}

/// What `e` means.
pub fn classify(e: &E) -> ErrorClass {
    match e {
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => ErrorClass::Unauthorized,
        E::ImageManifestNotFoundError(_) => ErrorClass::NotFound,
        E::DigestError(_) => ErrorClass::Corrupt,
        E::ServerError { code, .. } => from_status(*code),
        E::RegistryError { envelope, .. } => {
            let codes: Vec<&Code> = envelope.errors.iter().map(|x| &x.code).collect();
            from_codes(&codes)
        }
        E::RequestError(r) if r.is_connect() || r.is_timeout() => ErrorClass::Unreachable,
        E::RequestError(r) if r.is_body() || r.is_request() => ErrorClass::Interrupted,
        E::RequestError(r) => r
            .status()
            .map_or(ErrorClass::Other, |s| from_status(s.as_u16())),
        _ => ErrorClass::Other,
    }
}

fn from_status(code: u16) -> ErrorClass {
    match code {
        401 | 403 => ErrorClass::Unauthorized,
        404 => ErrorClass::NotFound,
        429 => ErrorClass::Throttled,
        500..=599 => ErrorClass::ServerFault,
        _ => ErrorClass::Other,
    }
}

fn from_codes(codes: &[&Code]) -> ErrorClass {
    let any = |f: fn(&Code) -> bool| codes.iter().any(|c| f(c));
    if any(|c| matches!(c, Code::Unauthorized | Code::Denied)) {
        ErrorClass::Unauthorized
    } else if any(|c| {
        matches!(
            c,
            Code::ManifestUnknown | Code::NameUnknown | Code::NotFound | Code::BlobUnknown
        )
    }) {
        ErrorClass::NotFound
    } else if any(|c| matches!(c, Code::Toomanyrequests)) {
        ErrorClass::Throttled
    } else {
        ErrorClass::Other
    }
}

/// `e` and its causes, `: `-separated: a request error's own text says little ("error
/// sending request"), its causes say why (`Connection refused`).
pub fn describe(e: &E) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(inner) = cause {
        let more = inner.to_string();
        // `#[error(transparent)]` variants repeat their source's text.
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::OciEnvelope;

    fn envelope(json: &str) -> E {
        E::RegistryError {
            envelope: serde_json::from_str::<OciEnvelope>(json).unwrap(),
            url: "http://r/v2/x".into(),
        }
    }

    fn status(code: u16) -> E {
        E::ServerError {
            code,
            url: "http://r/v2/x".into(),
            message: String::new(),
        }
    }

    #[test]
    fn statuses_and_envelopes_mean_the_same() {
        assert_eq!(classify(&status(404)), ErrorClass::NotFound);
        assert_eq!(classify(&status(401)), ErrorClass::Unauthorized);
        assert_eq!(classify(&status(403)), ErrorClass::Unauthorized);
        assert_eq!(classify(&status(429)), ErrorClass::Throttled);
        assert_eq!(classify(&status(503)), ErrorClass::ServerFault);
        assert_eq!(classify(&status(400)), ErrorClass::Other);
        let unknown = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        assert_eq!(classify(&envelope(unknown)), ErrorClass::NotFound);
        let denied = r#"{"errors":[{"code":"DENIED","message":"no"},{"code":"NAME_UNKNOWN"}]}"#;
        assert_eq!(classify(&envelope(denied)), ErrorClass::Unauthorized);
        let slow = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull limit"}]}"#;
        assert_eq!(classify(&envelope(slow)), ErrorClass::Throttled);
        let odd = r#"{"errors":[{"code":"ARTIFACT_LOCKED","message":"locked"}]}"#;
        assert_eq!(classify(&envelope(odd)), ErrorClass::Other);
        assert_eq!(
            classify(&E::UnauthorizedError { url: "u".into() }),
            ErrorClass::Unauthorized
        );
        assert_eq!(
            classify(&E::ImageManifestNotFoundError("x".into())),
            ErrorClass::NotFound
        );
    }

    #[test]
    fn only_passing_troubles_are_transient() {
        assert!(classify(&status(503)).is_transient());
        assert!(classify(&status(429)).is_transient());
        assert!(!classify(&status(404)).is_transient());
        assert!(!classify(&status(401)).is_transient());
        assert!(!ErrorClass::Corrupt.is_transient());
    }

    #[test]
    fn a_refused_connection_is_unreachable_and_named() {
        // A port nothing listens on: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = crate::client::client(true);
        let r =
            oci_client::Reference::with_tag(format!("127.0.0.1:{port}"), "x".into(), "1".into());
        let e = crate::block_on(
            client.fetch_manifest_digest(&r, &oci_client::secrets::RegistryAuth::Anonymous),
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(classify(&e), ErrorClass::Unreachable);
        assert!(describe(&e).contains("refused"), "{}", describe(&e));
    }
}
