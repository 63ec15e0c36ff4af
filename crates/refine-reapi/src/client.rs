//! One sandbox [`Spec`] executed on the farm: its whole filesystem as the input root, its
//! command and environment as a `Command`, its platform as properties; waited for through the
//! operation stream (reconnecting with `WaitExecution` when the stream breaks, executing again
//! when the server forgot the operation), cancelled on the farm when the build stops, and its
//! `/out` brought back into the host folder the local path would have filled.
//!
//! How a spec maps onto REAPI (docs/remote-execution.md, "The input root"):
//! - the input root is the spec's root with every bind grafted at its target, and empty `work`
//!   and `tmp` folders; `/out` is the one output directory, `out`;
//! - the working directory is the input root: the command runs as
//!   `/bin/sh -c 'cd "$1" && shift && exec "$@"' refine-action CWD COMMAND…`, since REAPI
//!   output paths are relative to the working directory and `/out` is not under `/work`;
//! - platform properties `ISA` (the spec's architecture) and `OSFamily=linux`, sorted, plus the
//!   configured extras (`container-image`, pools);
//! - no timeout: the farm's own limit applies;
//! - the workers must run the command chrooted into the input root, as refine's own worker
//!   and Buildbarn's runner with `chrootIntoInputRoot` do.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use refine_sandbox::{Spec, Writable};
use refine_store::LocalStore;

use crate::cas::Cas;
use crate::digest::{ReDigest, digest_of};
use crate::endpoint::{AuthChannel, Credentials, Endpoint};
use crate::error::ReapiError;
use crate::proto::longrunning::operations_client::OperationsClient;
use crate::proto::longrunning::{CancelOperationRequest, Operation, operation};
use crate::proto::re::execution_client::ExecutionClient;
use crate::proto::re::{
    Action, ActionResult, Command, ExecuteOperationMetadata, ExecuteRequest, ExecuteResponse,
    Platform, WaitExecutionRequest, command, execution_stage, platform,
};
use crate::proto::{self, unpack_any};
use crate::tree::{Graft, MerkleTree, Source, of_folder};

/// How refine talks to one farm.
pub struct Executor {
    endpoint: Endpoint,
    channel: AuthChannel,
    cas: Cas,
    runtime: tokio::runtime::Runtime,
    properties: Vec<(String, String)>,
    queue_timeout: Duration,
    verify: bool,
}

/// What executing one spec needs besides the spec.
pub struct RemoteAction<'a> {
    pub store: &'a LocalStore,
    pub spec: &'a Spec,
    /// The host folder that receives the action's `/out`.
    pub out: &'a Path,
    /// The host file that receives its stdout, then its stderr.
    pub log: &'a Path,
    /// Set when the build stops: the operation is cancelled on the farm.
    pub stop: &'a AtomicBool,
}

/// How the farm ran it.
#[derive(Clone, Debug)]
pub struct RemoteRun {
    pub exit_code: i32,
    pub action_digest: ReDigest,
    /// The worker the farm names in the result's metadata.
    pub worker: String,
    /// The farm's action cache answered: nothing ran.
    pub cached: bool,
    /// With `--executor-verify`, the worker of the farm's cached result that this run was
    /// compared with, and matched.
    pub verified_against: Option<String>,
    /// The worker's execution time, when it says.
    pub seconds: Option<f64>,
    /// Bytes sent to and received from the farm for this action.
    pub uploaded: u64,
    pub downloaded: u64,
}

/// How long the client keeps re-opening a broken stream (with `WaitExecution`, or a new
/// `Execute`) before giving up: long enough for a farm's server to restart on a busy machine.
const RECONNECT_WINDOW: Duration = Duration::from_secs(300);

impl Executor {
    /// A client for the farm at `endpoint` (nothing is sent until the first action).
    pub fn new(
        endpoint: Endpoint,
        credentials: &Credentials,
        properties: Vec<(String, String)>,
        queue_timeout: Duration,
    ) -> Result<Executor, ReapiError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("refine-reapi")
            .enable_all()
            .build()
            .map_err(|e| ReapiError::Unreachable {
                endpoint: endpoint.to_string(),
                reason: format!("cannot start the network runtime: {e}"),
                status: None,
            })?;
        // tonic's lazy channel needs a runtime to be created in.
        let channel = {
            let _guard = runtime.enter();
            endpoint.channel_with(credentials)?
        };
        Ok(Executor {
            cas: Cas::new(endpoint.clone(), channel.clone()),
            endpoint,
            channel,
            runtime,
            properties,
            queue_timeout,
            verify: false,
        })
    }

    /// Runs every action the farm's action cache answers for once more and compares the two
    /// results (see [`crate::verify`]).
    pub fn verifying(mut self, verify: bool) -> Executor {
        self.verify = verify;
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Runs `action` on the farm and fills its `out` folder and log.
    pub fn execute(&self, action: &RemoteAction<'_>) -> Result<RemoteRun, ReapiError> {
        let (up0, down0) = self.cas.traffic();
        let (input, command, mut act) = self.prepare(action)?;
        let action_digest = digest_of(&act.encode_to_vec());
        let cached = match self.verify {
            true => self.runtime.block_on(crate::verify::cached_result(
                &self.channel,
                &self.endpoint,
                &action_digest,
            ))?,
            false => None,
        };
        // The second run of a verified action is another `Action` (the farm's cache keeps its
        // first answer) that the farm must run, not look up.
        act.do_not_cache = cached.is_some();
        let action_bytes = act.encode_to_vec();
        let run_digest = digest_of(&action_bytes);
        let command_bytes = command.encode_to_vec();
        let mut blobs: Vec<(ReDigest, Source)> = input.blobs().collect();
        blobs.push((digest_of(&command_bytes), Source::Bytes(command_bytes)));
        blobs.push((run_digest.clone(), Source::Bytes(action_bytes)));
        let platform = describe(&act.platform);
        let result = self.runtime.block_on(async {
            self.cas.ensure(blobs.clone()).await?;
            let mut retried = false;
            loop {
                match self
                    .run_operation(&run_digest, &platform, cached.is_some(), action.stop)
                    .await
                {
                    Err(e) if is_missing_inputs(&e) && !retried => {
                        // The farm lost blobs it said it had (evicted, or restarted with an
                        // in-memory CAS): send everything it lacks again, once.
                        retried = true;
                        self.cas.forget();
                        self.cas.ensure(blobs.clone()).await?;
                    }
                    other => return other,
                }
            }
        })?;
        let response = result;
        let result = response
            .result
            .clone()
            .ok_or_else(|| ReapiError::BadReply {
                what: "an `ExecuteResponse`".into(),
                reason: "it has no result".into(),
            })?;
        if let Some(cached) = &cached {
            self.runtime.block_on(crate::verify::compare(
                &self.cas,
                &self.endpoint,
                &action_digest,
                cached,
                &result,
            ))?;
        }
        self.runtime.block_on(self.fetch_outputs(&result, action))?;
        let (up1, down1) = self.cas.traffic();
        let meta = result.execution_metadata.clone().unwrap_or_default();
        let seconds = match (
            &meta.execution_start_timestamp,
            &meta.execution_completed_timestamp,
        ) {
            (Some(a), Some(b)) => {
                Some((b.seconds - a.seconds) as f64 + f64::from(b.nanos - a.nanos) / 1e9)
            }
            _ => None,
        };
        Ok(RemoteRun {
            exit_code: result.exit_code,
            action_digest,
            worker: meta.worker,
            cached: response.cached_result,
            verified_against: cached.and_then(|c| c.execution_metadata).map(|m| m.worker),
            seconds,
            uploaded: up1 - up0,
            downloaded: down1 - down0,
        })
    }

    /// The input root, the command and the action of a spec.
    fn prepare(
        &self,
        action: &RemoteAction<'_>,
    ) -> Result<(MerkleTree, Command, Action), ReapiError> {
        let spec = action.spec;
        let mut input = of_folder(action.store, &spec.root)?;
        for bind in &spec.binds {
            let meta = fs_err::metadata(&bind.source)
                .map_err(ReapiError::io("read the metadata of", &bind.source))?;
            let graft = if meta.is_dir() {
                Graft::Tree(of_folder(action.store, &bind.source)?)
            } else {
                Graft::File {
                    digest: ReDigest::of_file(&bind.source)?,
                    executable: meta.permissions().mode() & 0o111 != 0,
                    source: Source::File(bind.source.clone()),
                }
            };
            input.graft(&bind.target, graft)?;
        }
        match &spec.work {
            Writable::Host(dir) => {
                input.graft(Path::new("work"), Graft::Tree(MerkleTree::of_dir(dir)?))?;
            }
            Writable::Tmpfs => input.graft(Path::new("work"), Graft::EmptyDir)?,
        }
        input.graft(Path::new("tmp"), Graft::EmptyDir)?;

        let arch = spec
            .arch
            .clone()
            .unwrap_or_else(|| refine_sandbox::binfmt::host_arch().to_string());
        let mut props: BTreeMap<String, String> = BTreeMap::new();
        props.insert("ISA".into(), arch);
        props.insert("OSFamily".into(), "linux".into());
        for (k, v) in &self.properties {
            props.insert(k.clone(), v.clone());
        }
        let platform = Platform {
            properties: props
                .into_iter()
                .map(|(name, value)| platform::Property { name, value })
                .collect(),
        };
        let env: BTreeMap<&str, &str> = spec
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let cwd = spec.cwd.to_string_lossy().into_owned();
        let mut arguments = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            "cd \"$1\" && shift && exec \"$@\"".into(),
            "refine-action".into(),
            cwd,
        ];
        arguments.extend(spec.command.iter().cloned());
        #[allow(deprecated)]
        let command = Command {
            arguments,
            environment_variables: env
                .into_iter()
                .map(|(name, value)| command::EnvironmentVariable {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            output_files: Vec::new(),
            output_directories: vec!["out".into()],
            output_paths: vec!["out".into()],
            platform: Some(platform.clone()),
            working_directory: String::new(),
            output_node_properties: Vec::new(),
            output_directory_format: 0,
        };
        let action = Action {
            command_digest: Some(digest_of(&command.encode_to_vec()).proto()),
            input_root_digest: Some(input.root.proto()),
            // The farm's own limit applies: farms refuse an action whose timeout is above their
            // maximum, and refine's (12 hours) is above most.
            timeout: None,
            do_not_cache: false,
            salt: Vec::new(),
            platform: Some(platform),
        };
        Ok((input, command, action))
    }

    /// Executes and waits, re-opening a broken stream; the farm's final response.
    async fn run_operation(
        &self,
        action_digest: &ReDigest,
        platform: &str,
        skip_cache_lookup: bool,
        stop: &AtomicBool,
    ) -> Result<ExecuteResponse, ReapiError> {
        let mut client = ExecutionClient::new(self.channel.clone());
        let mut name: Option<String> = None;
        let mut queued_since = Instant::now();
        let mut failures = 0;
        // Since when the farm has not answered, if it has not.
        let mut away_since: Option<Instant> = None;
        loop {
            let opened = match &name {
                None => client
                    .execute(ExecuteRequest {
                        instance_name: self.endpoint.instance.clone(),
                        skip_cache_lookup,
                        action_digest: Some(action_digest.proto()),
                        execution_policy: None,
                        results_cache_policy: None,
                        digest_function: 0,
                        inline_stdout: false,
                        inline_stderr: false,
                        inline_output_files: Vec::new(),
                    })
                    .await
                    .map_err(ReapiError::call(&self.endpoint, "Execute")),
                Some(n) => client
                    .wait_execution(WaitExecutionRequest { name: n.clone() })
                    .await
                    .map_err(ReapiError::call(&self.endpoint, "WaitExecution")),
            };
            let mut stream = match opened {
                Ok(s) => s.into_inner(),
                Err(e) => {
                    match e.code() {
                        // The server forgot the operation (restarted): execute again.
                        Some(tonic::Code::NotFound) if name.is_some() => name = None,
                        Some(
                            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal,
                        ) if (name.is_some()
                            && away_since.is_none_or(|t| t.elapsed() < RECONNECT_WINDOW))
                            || failures < 3 => {}
                        _ => return Err(e),
                    }
                    if stop.load(Ordering::SeqCst) {
                        return Err(ReapiError::Cancelled);
                    }
                    failures += 1;
                    away_since.get_or_insert_with(Instant::now);
                    tokio::time::sleep(backoff(failures)).await;
                    continue;
                }
            };
            let mut poll = tokio::time::interval(Duration::from_millis(100));
            loop {
                let next = tokio::select! {
                    m = stream.message() => Some(m),
                    _ = poll.tick() => None,
                };
                let Some(next) = next else {
                    if stop.load(Ordering::SeqCst) {
                        if let Some(n) = &name {
                            self.cancel(n).await;
                        }
                        return Err(ReapiError::Cancelled);
                    }
                    if queued_since.elapsed() > self.queue_timeout {
                        if let Some(n) = &name {
                            self.cancel(n).await;
                        }
                        return Err(ReapiError::NoWorker {
                            endpoint: self.endpoint.to_string(),
                            platform: platform.to_string(),
                            seconds: self.queue_timeout.as_secs(),
                        });
                    }
                    continue;
                };
                match next {
                    Ok(Some(op)) => {
                        failures = 0;
                        away_since = None;
                        name = Some(op.name.clone());
                        if let Some(done) = finished(&op, &self.endpoint)? {
                            return Ok(done);
                        }
                        if !still_queued(&op) {
                            queued_since = Instant::now() + Duration::from_secs(365 * 24 * 3600);
                        }
                    }
                    // The stream ended or broke before the operation was done: wait on it
                    // again under its name.
                    Ok(None) | Err(_) => {
                        failures += 1;
                        let away = *away_since.get_or_insert_with(Instant::now);
                        if away.elapsed() > RECONNECT_WINDOW {
                            return Err(ReapiError::Unreachable {
                                endpoint: self.endpoint.to_string(),
                                reason: "the operation stream kept breaking; run the build again to resume from what is stored".into(),
                                status: None,
                            });
                        }
                        tokio::time::sleep(backoff(failures)).await;
                        break;
                    }
                }
            }
        }
    }

    async fn cancel(&self, name: &str) {
        let mut ops = OperationsClient::new(self.channel.clone());
        // Best effort: the build stops either way, and the farm drops the work when its
        // operation has no watchers.
        let _ = ops
            .cancel_operation(CancelOperationRequest {
                name: name.to_string(),
            })
            .await;
    }

    /// Writes the log and materialises `/out`.
    async fn fetch_outputs(
        &self,
        result: &ActionResult,
        action: &RemoteAction<'_>,
    ) -> Result<(), ReapiError> {
        let mut log = Vec::new();
        for (raw, digest) in [
            (&result.stdout_raw, &result.stdout_digest),
            (&result.stderr_raw, &result.stderr_digest),
        ] {
            if !raw.is_empty() {
                log.extend_from_slice(raw);
            } else if let Some(d) = digest {
                let d = ReDigest::from_proto(d)?;
                log.extend(self.cas.read_bytes(&d).await?);
            }
        }
        crate::cas::write_whole(action.log, &log)?;
        let mut files: Vec<(ReDigest, PathBuf, bool)> = Vec::new();
        for dir in &result.output_directories {
            let Some(rel) = under_out(&dir.path) else {
                continue;
            };
            let tree = self.cas.read_output_tree(dir).await?;
            let host = action.out.join(rel);
            lay_out(&tree, &tree.root.clone(), &host, &mut files)?;
        }
        for f in &result.output_files {
            let Some(rel) = under_out(&f.path) else {
                continue;
            };
            let host = action.out.join(rel);
            if let Some(parent) = host.parent() {
                fs_err::create_dir_all(parent).map_err(ReapiError::io("create", parent))?;
            }
            files.push((ReDigest::from_field(&f.digest)?, host, f.is_executable));
        }
        #[allow(deprecated)]
        let links = result
            .output_symlinks
            .iter()
            .chain(&result.output_file_symlinks);
        for l in links {
            let Some(rel) = under_out(&l.path) else {
                continue;
            };
            let host = action.out.join(rel);
            std::os::unix::fs::symlink(&l.target, &host)
                .map_err(ReapiError::io("create the link", &host))?;
        }
        fetch_files(&self.cas, files).await
    }
}

/// Downloads each distinct content once and links (or copies) it to its other places.
pub(crate) async fn fetch_files(
    cas: &Cas,
    files: Vec<(ReDigest, PathBuf, bool)>,
) -> Result<(), ReapiError> {
    let mut first: HashMap<ReDigest, PathBuf> = HashMap::new();
    let mut wanted = Vec::new();
    let mut copies = Vec::new();
    for (digest, path, exec) in files {
        match first.get(&digest) {
            Some(p) => copies.push((p.clone(), path, exec)),
            None => {
                first.insert(digest.clone(), path.clone());
                if digest.size == 0 {
                    fs_err::write(&path, b"").map_err(ReapiError::io("write", &path))?;
                } else {
                    wanted.push((digest, path.clone()));
                }
                copies.push((path.clone(), path, exec));
            }
        }
    }
    cas.download(wanted).await?;
    for (from, to, exec) in copies {
        if from != to {
            fs_err::copy(&from, &to).map_err(ReapiError::io("copy to", &to))?;
        }
        let mode = if exec { 0o755 } else { 0o644 };
        fs_err::set_permissions(&to, std::fs::Permissions::from_mode(mode))
            .map_err(ReapiError::io("set the mode of", &to))?;
    }
    Ok(())
}

/// Creates the folders and links of `dir` under `host` and lists its files to fetch.
pub(crate) fn lay_out(
    tree: &MerkleTree,
    dir: &ReDigest,
    host: &Path,
    files: &mut Vec<(ReDigest, PathBuf, bool)>,
) -> Result<(), ReapiError> {
    let d = tree.dir(dir).cloned().ok_or_else(|| ReapiError::BadReply {
        what: format!("directory `{dir}`"),
        reason: "the tree does not hold it".into(),
    })?;
    fs_err::create_dir_all(host).map_err(ReapiError::io("create", host))?;
    for f in &d.files {
        safe_name(&f.name)?;
        files.push((
            ReDigest::from_field(&f.digest)?,
            host.join(&f.name),
            f.is_executable,
        ));
    }
    for l in &d.symlinks {
        safe_name(&l.name)?;
        let at = host.join(&l.name);
        std::os::unix::fs::symlink(&l.target, &at)
            .map_err(ReapiError::io("create the link", &at))?;
    }
    for sub in &d.directories {
        safe_name(&sub.name)?;
        let digest = ReDigest::from_field(&sub.digest)?;
        lay_out(tree, &digest, &host.join(&sub.name), files)?;
    }
    Ok(())
}

/// A node name must be one path component: a farm cannot write outside the folder.
fn safe_name(name: &str) -> Result<(), ReapiError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(ReapiError::BadReply {
            what: format!("node name `{name}`"),
            reason: "a name must be one path component".into(),
        });
    }
    Ok(())
}

/// The part of an output path under `out`, if it is there.
fn under_out(path: &str) -> Option<&str> {
    if path == "out" {
        Some("")
    } else {
        path.strip_prefix("out/")
            .filter(|r| !r.split('/').any(|c| c == ".." || c.is_empty()))
    }
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(200 * u64::from(failures.min(10)))
}

/// The final response of a done operation, or `None` while it runs.
fn finished(op: &Operation, endpoint: &Endpoint) -> Result<Option<ExecuteResponse>, ReapiError> {
    if !op.done {
        return Ok(None);
    }
    let response = match &op.result {
        Some(operation::Result::Response(any)) => {
            unpack_any::<ExecuteResponse>(any, proto::EXECUTE_RESPONSE)?
        }
        Some(operation::Result::Error(status)) => return Err(refused(endpoint, status)),
        None => {
            return Err(ReapiError::BadReply {
                what: format!("operation `{}`", op.name),
                reason: "it is done but has no result".into(),
            });
        }
    };
    if let Some(status) = &response.status
        && status.code != 0
    {
        return Err(refused(endpoint, status));
    }
    Ok(Some(response))
}

/// An execution the farm ended with a `google.rpc.Status`: the blobs it names missing, when it
/// does (`FAILED_PRECONDITION` with a `PreconditionFailure`), else the status.
fn refused(endpoint: &Endpoint, status: &crate::proto::rpc::Status) -> ReapiError {
    let missing = crate::proto::missing_blobs_of(status);
    if status.code == tonic::Code::FailedPrecondition as i32 && !missing.is_empty() {
        return ReapiError::MissingBlobs {
            endpoint: endpoint.to_string(),
            digests: missing,
        };
    }
    ReapiError::Call {
        endpoint: endpoint.to_string(),
        call: "Execute",
        status: Box::new(tonic::Status::new(
            tonic::Code::from(status.code),
            status.message.clone(),
        )),
    }
}

fn still_queued(op: &Operation) -> bool {
    op.metadata
        .as_ref()
        .and_then(|m| unpack_any::<ExecuteOperationMetadata>(m, proto::EXECUTE_METADATA).ok())
        .is_none_or(|m| {
            m.stage == execution_stage::Value::Queued as i32
                || m.stage == execution_stage::Value::CacheCheck as i32
        })
}

/// The farm lacks some of the action's inputs: a `PreconditionFailure` naming them, or a bare
/// `FAILED_PRECONDITION` (BuildGrid's `Execute` says so when the action or command is gone).
fn is_missing_inputs(e: &ReapiError) -> bool {
    matches!(e, ReapiError::MissingBlobs { .. })
        || e.code() == Some(tonic::Code::FailedPrecondition)
}

/// `ISA=s390x, OSFamily=linux`.
fn describe(platform: &Option<Platform>) -> String {
    platform
        .iter()
        .flat_map(|p| &p.properties)
        .map(|p| format!("{}={}", p.name, p.value))
        .collect::<Vec<_>>()
        .join(", ")
}
