//! The `oci-client` configuration every registry client of refine uses: the transport the
//! address implies, a bounded connect time, refine's user agent, and monolithic blob pushes
//! (one `PUT` per blob: what every registry accepts, and what streams from a file).

use std::time::Duration;

use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};

/// refine's user agent, for registries and HTTP fetches alike.
pub const USER_AGENT: &str = concat!("refine/", env!("CARGO_PKG_VERSION"));

/// How long a connection may take to open; an unreachable host fails after this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client configuration for a registry spoken to over `plain_http` or HTTPS.
pub fn config(plain_http: bool) -> ClientConfig {
    ClientConfig {
        protocol: if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        use_monolithic_push: true,
        connect_timeout: Some(CONNECT_TIMEOUT),
        user_agent: USER_AGENT,
        ..Default::default()
    }
}

/// A client for a registry spoken to over `plain_http` or HTTPS.
pub fn client(plain_http: bool) -> Client {
    Client::new(config(plain_http))
}
