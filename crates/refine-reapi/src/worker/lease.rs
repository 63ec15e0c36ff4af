//! One lease, start to end: the action and command read from the CAS, the input root staged,
//! the command run chrooted into it in refine's namespace sandbox, the outputs uploaded and
//! the `ActionResult` made.
//!
//! The sandbox's root is the staged input root, read-only; `/work` and `/tmp` are the staged
//! `work` and `tmp` folders (copies, writable), `/out` a fresh folder. Output paths must lie
//! under `out/`, `work/` or `tmp/` of the root (relative to the working directory); others
//! are refused with `INVALID_ARGUMENT`.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use prost::Message;
use std::sync::Mutex;

use refine_sandbox::{Canceller, Sandbox, Spec, Writable};
use tokio_util::sync::CancellationToken;

use crate::cas::Cas;
use crate::digest::{ReDigest, digest_of};
use crate::endpoint::{AuthChannel, Endpoint};
use crate::error::ReapiError;
use crate::proto::protobuf::Timestamp;
use crate::proto::re::{
    Action, ActionResult, Command, ExecutedActionMetadata, OutputDirectory, OutputFile,
};
use crate::proto::{self, unpack_any};
use crate::tree::{MerkleTree, Source};
use crate::worker::stage::{LocalCas, Staged};

/// What a worker lends a lease.
pub struct LeaseContext<'a> {
    pub cas: &'a Cas,
    pub local: &'a LocalCas,
    pub channel: &'a AuthChannel,
    pub endpoint: &'a Endpoint,
    pub sandbox: &'a Sandbox,
    pub bot_id: &'a str,
    /// The architecture this worker runs (natively or under qemu).
    pub isa: &'a str,
}

/// How a lease ended, for the log.
pub struct LeaseOutcome {
    pub result: ActionResult,
    pub staged: Staged,
    /// The last lines of a failed action's log, for the worker's own log.
    pub tail: String,
}

/// The action a lease's payload holds: BuildGrid 0.4 packs the whole `Action`; a `Digest`
/// of one (older rows, other servers) is accepted too.
pub fn action_of(payload: &proto::protobuf::Any) -> Result<Payload, ReapiError> {
    if payload.type_url.ends_with(proto::DIGEST) {
        let d = unpack_any::<proto::re::Digest>(payload, proto::DIGEST)?;
        Ok(Payload::Digest(ReDigest::from_proto(&d)?))
    } else {
        Ok(Payload::Action(Box::new(unpack_any::<Action>(
            payload,
            proto::ACTION,
        )?)))
    }
}

pub enum Payload {
    Digest(ReDigest),
    Action(Box<Action>),
}

/// How a lease is stopped, whatever it is doing: reading the action or staging stops at once;
/// a sandbox is killed now or as soon as it starts, and the lease's task waits for it to end
/// before it removes the lease's folder.
#[derive(Default)]
pub struct Kill {
    killed: CancellationToken,
    sandbox: Mutex<Option<Canceller>>,
}

impl Kill {
    fn sandbox(&self) -> std::sync::MutexGuard<'_, Option<Canceller>> {
        self.sandbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sandbox started; killed at once if the lease was.
    fn started(&self, c: Canceller) {
        let mut s = self.sandbox();
        if self.killed.is_cancelled() {
            c.cancel();
        }
        *s = Some(c);
    }

    /// Stops the lease.
    pub fn kill(&self) {
        let s = self.sandbox();
        self.killed.cancel();
        if let Some(c) = s.as_ref() {
            c.cancel();
        }
    }
}

/// Runs a lease until it ends or `kill` stops it.
pub async fn run(
    ctx: &LeaseContext<'_>,
    payload: Payload,
    kill: &Kill,
) -> Result<LeaseOutcome, ReapiError> {
    let exec = ctx.local.exec_dir()?;
    // Nothing that reading and staging start outlives them in the lease's folder, so they
    // may stop at any await.
    let prepared = tokio::select! {
        p = prepare(ctx, payload, exec.path()) => p?,
        () = kill.killed.cancelled() => return Err(ReapiError::Cancelled),
    };
    let (spec, command, staged) = prepared;
    if kill.killed.is_cancelled() {
        return Err(ReapiError::Cancelled);
    }
    let root = exec.path().join("root");
    let out = exec.path().join("out");
    let log = exec.path().join("log");
    let cwd = spec.cwd.clone();
    let started = SystemTime::now();
    let sandbox = ctx.sandbox.clone();
    let running = sandbox.spawn(&spec).map_err(|e| ReapiError::Unsupported {
        message: format!("Cannot start the sandbox: {e}"),
    })?;
    kill.started(running.canceller());
    let outcome = tokio::task::spawn_blocking(move || running.wait())
        .await
        .map_err(|e| ReapiError::Unsupported {
            message: format!("The sandbox waiter stopped: {e}"),
        })?
        .map_err(|e| ReapiError::Unsupported {
            message: format!("The sandbox failed: {e}"),
        })?;
    if outcome.cancelled {
        return Err(ReapiError::Cancelled);
    }
    let completed = SystemTime::now();
    let exit_code = match outcome.termination {
        refine_sandbox::Termination::Exited(c) => c,
        refine_sandbox::Termination::Signaled(s) => 128 + s,
    };

    // Outputs, each under the folder it was written in.
    let mut blobs: Vec<(ReDigest, Source)> = Vec::new();
    let mut result = ActionResult {
        exit_code,
        ..ActionResult::default()
    };
    #[allow(deprecated)]
    let paths: Vec<String> = if command.output_paths.is_empty() {
        command
            .output_files
            .iter()
            .chain(&command.output_directories)
            .cloned()
            .collect()
    } else {
        command.output_paths.clone()
    };
    for p in paths {
        let host = host_path(&cwd, &p, &root, &out)?;
        let Ok(meta) = fs_err::symlink_metadata(&host) else {
            continue;
        };
        if meta.is_dir() {
            let tree = MerkleTree::of_dir(&host)?;
            let tree_msg = tree.to_tree().encode_to_vec();
            let tree_digest = digest_of(&tree_msg);
            blobs.extend(tree.blobs());
            blobs.push((tree_digest.clone(), Source::Bytes(tree_msg)));
            result.output_directories.push(OutputDirectory {
                path: p,
                tree_digest: Some(tree_digest.proto()),
                is_topologically_sorted: false,
                root_directory_digest: Some(tree.root.proto()),
            });
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let d = ReDigest::of_file(&host)?;
            blobs.push((d.clone(), Source::File(host.clone())));
            result.output_files.push(OutputFile {
                path: p,
                digest: Some(d.proto()),
                is_executable: meta.permissions().mode() & 0o111 != 0,
                contents: Vec::new(),
                node_properties: None,
            });
        }
    }
    let log_digest = ReDigest::of_file(&log).unwrap_or_else(|_| digest_of(&[]));
    if log.exists() {
        blobs.push((log_digest.clone(), Source::File(log.clone())));
    }
    result.stdout_digest = Some(log_digest.proto());
    ctx.cas.ensure(blobs).await?;
    result.execution_metadata = Some(ExecutedActionMetadata {
        worker: ctx.bot_id.to_string(),
        execution_start_timestamp: Some(timestamp(started)),
        execution_completed_timestamp: Some(timestamp(completed)),
        ..ExecutedActionMetadata::default()
    });
    let tail = if exit_code == 0 {
        String::new()
    } else {
        let text = fs_err::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    Ok(LeaseOutcome {
        result,
        staged,
        tail,
    })
}

/// Reads the action and its command and stages its input root in the lease's folder `dir`:
/// the sandbox's spec.
async fn prepare(
    ctx: &LeaseContext<'_>,
    payload: Payload,
    dir: &Path,
) -> Result<(Spec, Command, Staged), ReapiError> {
    let action = match payload {
        Payload::Action(a) => *a,
        Payload::Digest(d) => decode::<Action>(&ctx.cas.read_bytes(&d).await?, "Action")?,
    };
    let command_digest = ReDigest::from_field(&action.command_digest)?;
    let command = decode::<Command>(&ctx.cas.read_bytes(&command_digest).await?, "Command")?;
    let root_digest = ReDigest::from_field(&action.input_root_digest)?;
    let arch = platform_isa(&action, &command).unwrap_or_else(|| ctx.isa.to_string());
    if refine_sandbox::binfmt::normalize_arch(&arch)
        != refine_sandbox::binfmt::normalize_arch(ctx.isa)
    {
        return Err(ReapiError::Unsupported {
            message: format!("This worker runs `{}` actions, not `{arch}`", ctx.isa),
        });
    }
    let root = dir.join("root");
    let out = dir.join("out");
    fs_err::create_dir_all(&out).map_err(ReapiError::io("create", &out))?;
    let staged = ctx
        .local
        .stage(ctx.cas, ctx.channel, ctx.endpoint, &root_digest, &root)
        .await?;
    let mut spec = Spec::new(&root, command.arguments.clone());
    spec.binds = staged.binds.clone();
    spec.env = command
        .environment_variables
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    spec.work = Writable::Host(root.join("work"));
    spec.out = Writable::Host(out);
    spec.cwd = Path::new("/").join(&command.working_directory);
    spec.arch = refine_sandbox::binfmt::is_foreign(&arch).then(|| arch.clone());
    spec.timeout = action
        .timeout
        .as_ref()
        .map(|t| Duration::from_secs(t.seconds.max(0) as u64));
    spec.log = Some(dir.join("log"));
    Ok((spec, command, staged))
}

/// The host path of an output path: relative to the working directory, under `/out`,
/// `/work` or `/tmp` of the sandbox.
fn host_path(cwd: &Path, p: &str, root: &Path, out: &Path) -> Result<PathBuf, ReapiError> {
    let refused = || ReapiError::Unsupported {
        message: format!(
            "Output path `{p}` is not under `out/`, `work/` or `tmp/` of the input root, the folders this worker lets an action write"
        ),
    };
    let mut abs = PathBuf::from("/");
    for c in cwd.join(p).components() {
        match c {
            Component::Normal(n) => abs.push(n),
            Component::ParentDir => {
                abs.pop();
            }
            _ => {}
        }
    }
    let mut parts = abs.components().skip(1);
    let top = parts.next().ok_or_else(refused)?;
    let rest: PathBuf = parts.collect();
    match top.as_os_str().to_str() {
        Some("out") => Ok(out.join(rest)),
        Some(d @ ("work" | "tmp")) => Ok(root.join(d).join(rest)),
        _ => Err(refused()),
    }
}

fn platform_isa(action: &Action, command: &Command) -> Option<String> {
    #[allow(deprecated)]
    let platforms = action.platform.iter().chain(command.platform.iter());
    platforms
        .flat_map(|p| &p.properties)
        .find(|p| p.name == "ISA")
        .map(|p| p.value.clone())
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, ReapiError> {
    M::decode(bytes).map_err(|e| ReapiError::BadReply {
        what: format!("a `{what}`"),
        reason: e.to_string(),
    })
}

fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}
