//! Registry credentials: `REFINE_REGISTRY_USER` / `REFINE_REGISTRY_PASSWORD`, else the Docker
//! CLI's `config.json` (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: `auths`,
//! `credHelpers`, `credsStore`), else anonymous. Secrets stay inside [`Credentials`], whose
//! `Debug` redacts them; no message refine prints contains one.

use std::fmt;

use oci_client::secrets::RegistryAuth;

use crate::RegistryError as RemoteError;

/// Where credentials came from, and what they are.
#[derive(Clone)]
pub enum Credentials {
    Anonymous,
    Basic {
        user: String,
        password: String,
        source: &'static str,
    },
    Token {
        token: String,
        source: &'static str,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Credentials {
    /// For messages: the user and the source, never the secret.
    pub fn describe(&self) -> String {
        match self {
            Credentials::Anonymous => "anonymous".into(),
            Credentials::Basic { user, source, .. } => format!("user `{user}` from {source}"),
            Credentials::Token { source, .. } => format!("a token from {source}"),
        }
    }

    pub fn registry_auth(&self) -> RegistryAuth {
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { user, password, .. } => {
                RegistryAuth::Basic(user.clone(), password.clone())
            }
            Credentials::Token { token, .. } => RegistryAuth::Bearer(token.clone()),
        }
    }

    /// Credentials for `registry` (`HOST[:PORT]`).
    pub fn resolve(registry: &str) -> Result<Credentials, RemoteError> {
        let var = |n| std::env::var(n).ok().filter(|v| !v.is_empty());
        match (var("REFINE_REGISTRY_USER"), var("REFINE_REGISTRY_PASSWORD")) {
            (Some(user), Some(password)) => {
                return Ok(Credentials::Basic {
                    user,
                    password,
                    source: "`REFINE_REGISTRY_USER`",
                });
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(RemoteError::new(
                    "Only one of `REFINE_REGISTRY_USER` and `REFINE_REGISTRY_PASSWORD` is set",
                    "Set both, or neither to use `~/.docker/config.json`",
                ));
            }
            (None, None) => {}
        }
        use docker_credential::{CredentialRetrievalError as E, DockerCredential};
        let config = std::env::var_os("DOCKER_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))
            .map(|d| d.join("config.json"));
        if !config.is_some_and(|c| c.exists()) {
            return Ok(Credentials::Anonymous);
        }
        match docker_credential::get_credential(registry) {
            Ok(DockerCredential::UsernamePassword(user, password)) => Ok(Credentials::Basic {
                user,
                password,
                source: "the Docker config",
            }),
            Ok(DockerCredential::IdentityToken(token)) => Ok(Credentials::Token {
                token,
                source: "the Docker config",
            }),
            Err(E::NoCredentialConfigured | E::ConfigNotFound) => Ok(Credentials::Anonymous),
            // The helper's output may hold the secret: name the helper only.
            Err(E::HelperFailure { helper, .. }) => Err(RemoteError::new(
                format!("The Docker credential helper `{helper}` failed for `{registry}`"),
                format!(
                    "Run `docker-credential-{helper} get` by hand to see why, or set `REFINE_REGISTRY_USER` and `REFINE_REGISTRY_PASSWORD`"
                ),
            )),
            Err(e) => Err(RemoteError::new(
                format!("Cannot read the credentials for `{registry}` from the Docker config: {e}"),
                "Check `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`), or set `REFINE_REGISTRY_USER` and `REFINE_REGISTRY_PASSWORD`",
            )),
        }
    }
}
