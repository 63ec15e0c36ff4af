//! What can go wrong talking to a farm or running its work.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum ReapiError {
    #[error("`{url}` is not a remote execution address: {reason}")]
    #[diagnostic(
        code(refine::reapi::bad_endpoint),
        help(
            "Write `reapi://HOST:PORT` or `reapi://HOST:PORT/INSTANCE`; plain HTTP/2 is used on \
             loopback or with `reapi+http://`, TLS everywhere else."
        )
    )]
    BadEndpoint { url: String, reason: String },

    #[error("Cannot connect to the farm at `{endpoint}`: {reason}")]
    #[diagnostic(
        code(refine::reapi::unreachable),
        help(
            "Check that the server runs and listens there, and that it accepts this client (a farm \
             that requires mutual TLS needs `--executor-tls-cert` and `--executor-tls-key`), or \
             build here with `--executor local`."
        )
    )]
    Unreachable {
        endpoint: String,
        reason: String,
        /// The status a failed call came back with (retried like it), if a call failed.
        status: Option<Box<tonic::Status>>,
    },

    #[error("The farm at `{endpoint}` refused `{call}`: {status}")]
    #[diagnostic(code(refine::reapi::call))]
    Call {
        endpoint: String,
        call: &'static str,
        status: Box<tonic::Status>,
    },

    #[error("The farm sent `{what}`, which is not valid: {reason}")]
    #[diagnostic(
        code(refine::reapi::bad_reply),
        help(
            "The server or worker does not follow the Remote Execution API v2; report it to its operators."
        )
    )]
    BadReply { what: String, reason: String },

    #[error("Blob `{digest}` from the farm does not match its digest")]
    #[diagnostic(
        code(refine::reapi::corrupt_blob),
        help("The farm's CAS holds damaged content; nothing of it was kept.")
    )]
    CorruptBlob { digest: String },

    #[error(
        "The farm's CAS at `{endpoint}` no longer holds {} blob(s): {}",
        digests.len(),
        blob_list(digests)
    )]
    #[diagnostic(
        code(refine::reapi::missing_blobs),
        help(
            "The farm evicted or lost them. When they are an action's inputs, refine sends what is \
             missing again and executes once more by itself; if this keeps happening, give the \
             farm's CAS more room."
        )
    )]
    MissingBlobs {
        endpoint: String,
        digests: Vec<crate::ReDigest>,
    },

    #[error("Cannot {action} `{path}`")]
    #[diagnostic(code(refine::reapi::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("The action was cancelled")]
    #[diagnostic(code(refine::reapi::cancelled))]
    Cancelled,

    #[error(
        "No worker of the farm at `{endpoint}` offers platform {platform}: the action waited {seconds} s"
    )]
    #[diagnostic(
        code(refine::reapi::no_worker),
        help(
            "Start a worker for that platform (`refine worker --bots URL --isa ARCH`), or build those targets locally."
        )
    )]
    NoWorker {
        endpoint: String,
        platform: String,
        seconds: u64,
    },

    #[error(
        "Action `{action}` gave other outputs on `{second}` than the farm's cached result from `{first}`: {}",
        differences.join(", ")
    )]
    #[diagnostic(
        code(refine::reapi::outputs_differ),
        help(
            "The action is not reproducible (or one of the workers is broken): nothing was stored, \
             and the farm at `{endpoint}` keeps its first result. Make the recipe deterministic \
             (no times, random names or machine details in its outputs; `SOURCE_DATE_EPOCH` is \
             set), or check both workers."
        )
    )]
    OutputsDiffer {
        endpoint: String,
        action: String,
        first: String,
        second: String,
        differences: Vec<String>,
    },

    #[error("{message}")]
    #[diagnostic(code(refine::reapi::unsupported))]
    Unsupported { message: String },
}

/// `blobs/<hash>/<size>`, the first few of them.
fn blob_list(digests: &[crate::ReDigest]) -> String {
    const SHOWN: usize = 4;
    let mut list: Vec<String> = digests
        .iter()
        .take(SHOWN)
        .map(|d| format!("`blobs/{d}`"))
        .collect();
    if digests.len() > SHOWN {
        list.push(format!("and {} more", digests.len() - SHOWN));
    }
    list.join(", ")
}

impl ReapiError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ReapiError {
        let path = path.into();
        move |source| ReapiError::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn call(
        endpoint: &crate::Endpoint,
        call: &'static str,
    ) -> impl FnOnce(tonic::Status) -> ReapiError {
        let endpoint = endpoint.to_string();
        move |status| {
            // A connection that failed or closed (refused, a TLS handshake the farm ended)
            // comes back as a status with the transport error as its source.
            let mut cause = std::error::Error::source(&status);
            let mut causes = Vec::new();
            while let Some(c) = cause {
                causes.push(c.to_string());
                cause = c.source();
            }
            match causes.last() {
                Some(root)
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown
                    ) =>
                {
                    ReapiError::Unreachable {
                        endpoint,
                        reason: format!("`{call}` failed: {root}"),
                        status: Some(Box::new(status)),
                    }
                }
                _ => ReapiError::Call {
                    endpoint,
                    call,
                    status: Box::new(status),
                },
            }
        }
    }

    /// The gRPC status code, for a failed call.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ReapiError::Call { status, .. } => Some(status.code()),
            ReapiError::Unreachable {
                status: Some(status),
                ..
            } => Some(status.code()),
            _ => None,
        }
    }
}
