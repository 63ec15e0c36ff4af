//! Where the farm is and how to reach it: `reapi://HOST:PORT[/INSTANCE]`.
//!
//! Like refine's registries, plain HTTP/2 is only used on loopback or when the address asks
//! for it (`reapi+http://`); everywhere else the channel is TLS with the system's roots. A
//! bearer token, when given, goes with every call.

use std::net::IpAddr;
use std::time::Duration;

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig};

use crate::error::ReapiError;

/// A farm's address, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// The REAPI instance name; empty for the default instance.
    pub instance: String,
    pub tls: bool,
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
        let explicit_plain = match scheme {
            "reapi" | "grpcs" => false,
            "reapi+http" | "grpc" | "http" => true,
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
            tls: !(explicit_plain || loopback),
        })
    }

    fn uri(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// A channel to the farm (connected lazily: the first call reports an unreachable farm).
    pub fn channel(&self, token: Option<&str>) -> Result<AuthChannel, ReapiError> {
        let unreachable = |reason: String| ReapiError::Unreachable {
            endpoint: self.to_string(),
            reason,
        };
        let mut endpoint = tonic::transport::Endpoint::from_shared(self.uri())
            .map_err(|e| unreachable(e.to_string()))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if self.tls {
            let tls = ClientTlsConfig::new()
                .with_native_roots()
                .domain_name(self.host.clone());
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| unreachable(e.to_string()))?;
        }
        let channel = endpoint.connect_lazy();
        let header = match token {
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
