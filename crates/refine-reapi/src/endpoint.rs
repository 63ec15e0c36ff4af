//! Where the farm is and how to reach it: `reapi://HOST:PORT[/INSTANCE]`.
//!
//! Like refine's registries, plain HTTP/2 is only used on loopback or when the address asks
//! for it (`reapi+http://`); everywhere else the channel is TLS with the system's roots (and
//! the farm's own authority, when given). A bearer token, when given, goes with every call; a
//! client certificate, when given, answers a farm that requires mutual TLS.

use std::net::IpAddr;
use std::time::Duration;

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::error::ReapiError;

/// A farm's address, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// The REAPI instance name; empty for the default instance.
    pub instance: String,
    pub tls: bool,
    /// The scheme chose the transport (`reapi+http://`, `grpc://`, `grpcs://`), so TLS
    /// material does not change it.
    explicit: bool,
}

/// How refine proves who it is to a farm, and which farms it trusts.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// A bearer token, sent as `authorization: Bearer …` with every call.
    pub token: Option<String>,
    /// PEM certificates of the authority that signs the farm's certificate, trusted besides
    /// the system's roots (a private farm's own CA).
    pub ca: Option<Vec<u8>>,
    /// A PEM client certificate (chain) and its PEM private key, for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl Credentials {
    /// A token only.
    pub fn token(token: Option<&str>) -> Credentials {
        Credentials {
            token: token.map(str::to_string),
            ..Default::default()
        }
    }

    fn wants_tls(&self) -> bool {
        self.ca.is_some() || self.identity.is_some()
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Plain HTTP/2 to loopback is what `reapi://` means there.
        let scheme = if self.tls || is_loopback(&self.host) {
            "reapi"
        } else {
            "reapi+http"
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)?;
        if !self.instance.is_empty() {
            write!(f, "/{}", self.instance)?;
        }
        Ok(())
    }
}

impl Endpoint {
    /// Parses `reapi://HOST:PORT[/INSTANCE]` or `reapi+http://…`; `grpc://` and `grpcs://`,
    /// which some farms print, are read as the plain and TLS forms.
    pub fn parse(text: &str) -> Result<Endpoint, ReapiError> {
        let bad = |reason: &str| ReapiError::BadEndpoint {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("it has no scheme"))?;
        // (TLS asked for, the scheme decides)
        let (explicit_plain, explicit) = match scheme {
            "reapi" => (false, false),
            "grpcs" => (false, true),
            "reapi+http" | "grpc" | "http" => (true, true),
            _ => return Err(bad("the scheme is not `reapi` or `reapi+http`")),
        };
        let url = url::Url::parse(&format!("http://{rest}")).map_err(|e| bad(&e.to_string()))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().ok_or_else(|| bad("it has no port"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "credentials do not belong in the address; give a token file instead",
            ));
        }
        let instance = url.path().trim_matches('/').to_string();
        let loopback = is_loopback(&host);
        Ok(Endpoint {
            host,
            port,
            instance,
            tls: !explicit_plain && (explicit || !loopback),
            explicit,
        })
    }

    fn uri(&self, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// A channel to the farm with a bearer token only.
    pub fn channel(&self, token: Option<&str>) -> Result<AuthChannel, ReapiError> {
        self.channel_with(&Credentials::token(token))
    }

    /// A channel to the farm (connected lazily: the first call reports an unreachable farm).
    /// TLS material given for a loopback `reapi://` farm turns TLS on there too.
    pub fn channel_with(&self, credentials: &Credentials) -> Result<AuthChannel, ReapiError> {
        let unreachable = |reason: String| ReapiError::Unreachable {
            endpoint: self.to_string(),
            reason,
            status: None,
        };
        let tls = self.tls || (!self.explicit && credentials.wants_tls());
        if credentials.wants_tls() && !tls {
            return Err(ReapiError::Unsupported {
                message: format!(
                    "The farm at `{self}` is asked for plain HTTP/2, and a client certificate or a CA needs TLS: write `reapi://` or `grpcs://`"
                ),
            });
        }
        let mut endpoint = tonic::transport::Endpoint::from_shared(self.uri(tls))
            .map_err(|e| unreachable(e.to_string()))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if tls {
            let mut config = ClientTlsConfig::new()
                .with_native_roots()
                .domain_name(self.host.clone());
            if let Some(ca) = &credentials.ca {
                config = config.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &credentials.identity {
                config = config.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| unreachable(e.to_string()))?;
        }
        let channel = endpoint.connect_lazy();
        let header = match &credentials.token {
            Some(t) => Some(
                format!("Bearer {}", t.trim())
                    .parse()
                    .map_err(|_| unreachable("the token is not a valid header value".into()))?,
            ),
            None => None,
        };
        Ok(InterceptedService::new(channel, Auth { header }))
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Auth {
    header: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl Interceptor for Auth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(h) = &self.header {
            request.metadata_mut().insert("authorization", h.clone());
        }
        Ok(request)
    }
}

/// The channel every client of this crate talks through.
pub type AuthChannel = InterceptedService<Channel, Auth>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_plain_and_elsewhere_is_tls() {
        let e = Endpoint::parse("reapi://127.0.0.1:8980/main").unwrap();
        assert_eq!((e.tls, e.instance.as_str(), e.port), (false, "main", 8980));
        let e = Endpoint::parse("reapi://farm.example:443").unwrap();
        assert!(e.tls);
        assert_eq!(e.instance, "");
        let e = Endpoint::parse("reapi+http://farm.example:8980/a/b").unwrap();
        assert!(!e.tls);
        assert_eq!(e.instance, "a/b");
        // `grpcs://` is TLS even on loopback; `grpc://` is plain anywhere.
        assert!(Endpoint::parse("grpcs://localhost:8980").unwrap().tls);
        assert!(!Endpoint::parse("grpc://farm.example:8980").unwrap().tls);
    }

    #[test]
    fn tls_material_for_an_explicitly_plain_farm_is_refused() {
        let credentials = Credentials {
            ca: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
            ..Default::default()
        };
        let e = Endpoint::parse("reapi+http://127.0.0.1:8980").unwrap();
        let Err(err) = e.channel_with(&credentials) else {
            panic!("a plain channel took a CA");
        };
        assert!(err.to_string().contains("needs TLS"), "{err}");
    }

    #[test]
    fn bad_addresses_say_why() {
        for (text, why) in [
            ("farm:8980", "no scheme"),
            ("https://farm:8980", "scheme"),
            ("reapi://farm", "no port"),
            ("reapi://u:p@farm:1", "credentials"),
        ] {
            let e = Endpoint::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
