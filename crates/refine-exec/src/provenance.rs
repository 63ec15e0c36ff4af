//! The record of how an artifact was made: key fields, inputs' digests, command, environment,
//! platform, emulator, host, timings, exit status and log digest. Stored next to the artifact
//! (never in its content, so that rebuilding bit for bit keeps its content digest).

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    pub label: String,
    pub kind: String,
    pub key: String,
    pub key_fields: Vec<(String, String)>,
    /// Digests of what went in: sources by file name, dependencies by label.
    pub inputs: Vec<(String, String)>,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The architecture the action ran for.
    pub platform: String,
    /// `qemu-<arch> (binfmt_misc)` when the platform is not the host's.
    pub emulator: Option<String>,
    /// The farm that ran the action, when it was not run here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorRecord>,
    pub host: Host,
    pub started_unix: f64,
    pub seconds: f64,
    pub exit: String,
    pub log: Option<String>,
    pub refine_version: String,
}

/// Where on a farm an action ran: enough to find it in the farm's own records.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutorRecord {
    /// `reapi://HOST:PORT/INSTANCE`.
    pub endpoint: String,
    /// The worker the farm names.
    pub worker: String,
    /// The REAPI `Action` digest (`HASH/SIZE`).
    pub action: String,
    /// The farm's action cache answered without running it.
    pub cached: bool,
    /// `--executor-verify`: the worker whose cached result this run matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_against: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Host {
    pub arch: String,
    pub kernel: String,
    pub hostname: String,
}

impl Host {
    pub fn current() -> Host {
        let read = |p: &str| {
            fs_err::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        Host {
            arch: std::env::consts::ARCH.to_string(),
            kernel: read("/proc/sys/kernel/osrelease"),
            hostname: read("/proc/sys/kernel/hostname"),
        }
    }
}
