//! The retry policy for network calls: a request that failed for a passing reason (no
//! connection, a connection that broke off, HTTP 429, HTTP 5xx; the caller's classifier
//! decides) is sent again after an exponentially growing pause, up to a cap, a few times;
//! anything else (not found, refused credentials, a corrupt answer) fails at once.
//!
//! [`RetryPolicy::DEFAULT`]: 3 retries after 250 ms, 500 ms and 1 s (the cap, 4 s, bounds
//! longer policies), so a registry that is down costs under 2 s more before refine says so,
//! and a registry or index that hiccups does not fail a build. There is no jitter: refine is
//! one client, not a fleet that must not retry in step. Only idempotent requests are retried:
//! reads, and pushes of content-addressed blobs and manifests.

use std::future::Future;
use std::time::Duration;

use oci_client::errors::OciDistributionError;

use crate::error::classify;

/// How often and how long to wait before sending a failed request again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// The pause before the first retry; each further pause doubles it.
    pub first_delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::DEFAULT
    }
}

impl RetryPolicy {
    /// The policy every network call of refine uses (see the module's doc).
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        retries: 3,
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(4),
    };

    /// No retries at all.
    pub const NEVER: RetryPolicy = RetryPolicy {
        retries: 0,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// The pause before retry number `retry` (0 for the first).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.first_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// Runs `attempt` until it succeeds, fails for good (`transient` says no), or the retries
    /// are spent; returns the last outcome. `attempt` builds a fresh request each time.
    pub async fn run<T, E, F, Fut>(
        &self,
        mut attempt: F,
        transient: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut retry = 0;
        loop {
            match attempt().await {
                Err(e) if retry < self.retries && transient(&e) => {
                    tokio::time::sleep(self.delay(retry)).await;
                    retry += 1;
                }
                outcome => return outcome,
            }
        }
    }
}

/// Sends the registry call `attempt` again, under [`RetryPolicy::DEFAULT`], while it fails for
/// a passing reason ([`crate::error::classify`]).
pub async fn retried<T, Fut>(attempt: impl FnMut() -> Fut) -> Result<T, OciDistributionError>
where
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    RetryPolicy::DEFAULT
        .run(attempt, |e| classify(e).is_transient())
        .await
}

/// One attempt's failure when an attempt also does local work (writing what it receives):
/// the local side's, which is final, or the registry's, which may pass.
#[derive(Debug)]
pub enum Attempt<L> {
    Local(L),
    Registry(OciDistributionError),
}

/// [`retried`] for attempts that also do local work: only the registry's failures are retried.
pub async fn retried_attempt<T, L, Fut>(attempt: impl FnMut() -> Fut) -> Result<T, Attempt<L>>
where
    Fut: Future<Output = Result<T, Attempt<L>>>,
{
    RetryPolicy::DEFAULT
        .run(
            attempt,
            |e| matches!(e, Attempt::Registry(e) if classify(e).is_transient()),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    use crate::testing::{Reply, TestServer};

    #[test]
    fn pauses_double_up_to_the_cap() {
        let p = RetryPolicy::DEFAULT;
        let ms = |r| p.delay(r).as_millis();
        assert_eq!(
            [ms(0), ms(1), ms(2), ms(3), ms(4), ms(40)],
            [250, 500, 1000, 2000, 4000, 4000]
        );
        let total: Duration = (0..p.retries).map(|r| p.delay(r)).sum();
        assert!(total < Duration::from_secs(2), "{total:?}");
    }

    fn quick(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    #[test]
    fn transient_failures_are_retried_until_the_budget_is_spent() {
        let calls = AtomicU32::new(0);
        let run = |policy: RetryPolicy, fail_first: u32, transient: bool| {
            calls.store(0, Ordering::SeqCst);
            crate::block_on(policy.run(
                || async {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    if n < fail_first { Err(n) } else { Ok(n) }
                },
                |_| transient,
            ))
            .unwrap()
        };
        assert_eq!(run(quick(3), 2, true), Ok(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(run(quick(3), 9, true), Err(3), "1 attempt + 3 retries");
        assert_eq!(
            run(quick(3), 9, false),
            Err(0),
            "a lasting failure fails at once"
        );
        assert_eq!(run(RetryPolicy::NEVER, 9, true), Err(0));
    }

    /// A real registry call against a real (scripted) server that fails twice with 503 and
    /// then serves the manifest: the policy carries the call through.
    #[test]
    fn a_registry_call_survives_two_503s() {
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let manifest_calls = std::sync::Arc::new(AtomicU32::new(0));
        let seen = manifest_calls.clone();
        let server = TestServer::start(move |req| {
            if !req.path.contains("/manifests/") {
                return Reply::status(200).body("{}");
            }
            if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                return Reply::status(503).body("busy");
            }
            Reply::status(200)
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest.as_slice())
        });
        let client = crate::client::client(true);
        let r = oci_client::Reference::with_tag(server.host(), "x/y".into(), "1".into());
        let auth = oci_client::secrets::RegistryAuth::Anonymous;
        let pulled = crate::block_on(quick(3).run(
            || client.pull_manifest_raw(&r, &auth, &["application/vnd.oci.image.manifest.v1+json"]),
            |e| crate::classify(e).is_transient(),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(pulled.0.as_ref(), manifest.as_slice());
        assert_eq!(manifest_calls.load(Ordering::SeqCst), 3);

        // Without retries the first 503 is the answer, classified as a server fault.
        manifest_calls.store(0, Ordering::SeqCst);
        let e = crate::block_on(RetryPolicy::NEVER.run(
            || client.pull_manifest_raw(&r, &auth, &["application/vnd.oci.image.manifest.v1+json"]),
            |e| crate::classify(e).is_transient(),
        ))
        .unwrap()
        .unwrap_err();
        assert_eq!(crate::classify(&e), crate::ErrorClass::ServerFault);
    }
}
