//! `refine doctor`: what this host can do for the sandbox.

use std::time::Instant;

use refine_sandbox::host::host_report;
use refine_sandbox::{Sandbox, Spec};

use refine_engine::session::{SessionOptions, load_graph, signing_key, trusted_keys};

use super::Failure;

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {}

pub fn run(options: &SessionOptions, _args: DoctorArgs) -> Result<(), Failure> {
    let report = host_report();
    println!("kernel: {} ({})", report.kernel, report.arch);
    let namespaces: Vec<String> = report
        .namespaces
        .iter()
        .map(|(name, ok)| format!("{name} {}", if *ok { "yes" } else { "MISSING" }))
        .collect();
    println!("namespaces: {}", namespaces.join(", "));
    if let Some(max) = &report.max_user_namespaces {
        println!(
            "max_user_namespaces: {max}{}",
            if max == "0" {
                " (user namespaces are disabled: raise it with `sysctl user.max_user_namespaces=10000`)"
            } else {
                ""
            }
        );
    }

    match Sandbox::helper_beside_us() {
        Some(_) => println!(
            "sandbox helper: `{}` beside refine, built from the same sources",
            refine_sandbox::HELPER_BIN
        ),
        None => println!(
            "sandbox helper: refine itself (no `{}` built from the same sources beside it; \
             `cargo build --release` builds one, and each action then starts faster)",
            refine_sandbox::HELPER_BIN
        ),
    }
    let started = Instant::now();
    let self_test = Sandbox::new().run(&Spec::new("/", vec!["/bin/true".into()]));
    let sandbox_ok = match &self_test {
        Ok(outcome) if outcome.success() => {
            println!(
                "sandbox: ok (`/bin/true` in {:.1} ms)",
                started.elapsed().as_secs_f64() * 1000.0
            );
            true
        }
        Ok(outcome) => {
            println!("sandbox: FAILED (`/bin/true` {})", outcome.termination);
            false
        }
        Err(err) => {
            println!("sandbox: FAILED: {err}");
            false
        }
    };

    const FIX: &str = "apt-get install qemu-user-static binfmt-support; mount -t binfmt_misc \
                       binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-<arch>";
    match &report.binfmt {
        Err(problem) => println!("binfmt_misc: {problem}; foreign archs cannot run (fix: {FIX})"),
        Ok(emulators) => {
            let qemu: Vec<_> = emulators
                .iter()
                .filter(|e| e.registration.name.starts_with("qemu-"))
                .collect();
            if qemu.is_empty() {
                println!(
                    "binfmt_misc: no qemu registrations; foreign archs cannot run (fix: {FIX})"
                );
            }
            for emulator in qemu {
                let r = &emulator.registration;
                let arch = r.name.trim_start_matches("qemu-");
                let state = match (r.enabled, r.fix_binary()) {
                    (true, true) => "usable".to_owned(),
                    (false, _) => format!("DISABLED (fix: update-binfmts --enable {})", r.name),
                    (true, false) => {
                        "lacks the F flag (fix: apt-get install qemu-user-static)".to_owned()
                    }
                };
                let interpreter = r
                    .interpreter
                    .as_ref()
                    .map_or("none".to_owned(), |p| p.display().to_string());
                let version = match &emulator.version {
                    Ok(version) => version.clone(),
                    Err(err) => format!("unknown ({err})"),
                };
                let flags = if r.flags.is_empty() { "none" } else { &r.flags };
                println!(
                    "binfmt {arch}: {state}; flags {flags}; interpreter {interpreter}; {version}"
                );
            }
        }
    }
    let tools_ok = report_tools();
    report_cache(options);
    if sandbox_ok && tools_ok {
        Ok(())
    } else {
        Err(Failure::Exit(1))
    }
}

/// The host tools refine runs outside the sandbox, each with what needs it and how to get it.
const TOOLS: &[(&str, &str, &str)] = &[
    (
        "debootstrap",
        "bases made by `bootstrap \"debootstrap\"`",
        "apt-get install debootstrap",
    ),
    (
        "apt-get",
        "fetching Debian source files",
        "a Debian-based host",
    ),
    (
        "python3",
        "reading pip's configuration (index, certificates, proxy)",
        "apt-get install python3 python3-pip",
    ),
    (
        "qemu-s390x-static",
        "s390x actions on other hosts (with binfmt_misc, above)",
        "apt-get install qemu-user-static",
    ),
];

fn report_tools() -> bool {
    let mut ok = true;
    for (tool, needed_for, fix) in TOOLS {
        let found = std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()));
        if found {
            println!("tool {tool}: found");
        } else {
            ok = false;
            println!("tool {tool}: MISSING, needed for {needed_for} (fix: {fix})");
        }
    }
    ok
}

/// Whether the workspace's shared cache is authenticated, and whether this builder signs.
/// Informational: neither makes doctor fail.
fn report_cache(options: &SessionOptions) {
    match signing_key() {
        Ok(Some(key)) => println!("signing: with {}", key.public()),
        Ok(None) => println!(
            "signing: no key (artifacts are stored and pushed unsigned; set REFINE_SIGNING_KEY_FILE)"
        ),
        Err(e) => println!("signing: UNUSABLE KEY: {e}"),
    }
    let Ok(graph) = load_graph(options) else {
        println!("cache: not in a workspace whose rules load");
        return;
    };
    let remote = options
        .remote
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| graph.workspace.config.store.remote.clone());
    let Some(remote) = remote else {
        println!("cache: local store only");
        return;
    };
    match trusted_keys(&graph) {
        Ok(trust) if trust.is_empty() => println!(
            "cache: {remote} is UNAUTHENTICATED: anyone who can push to it decides what this workspace builds with (fix: `trust {{ key … }}` in workspace.kdl, see docs/security.md)"
        ),
        Ok(trust) => {
            let names: Vec<&str> = trust.keys().iter().map(|(n, _)| n.as_str()).collect();
            println!(
                "cache: {remote} is authenticated: artifacts are used only if signed by {}",
                names.join(", ")
            );
        }
        Err(e) => println!("cache: {remote}: {e}"),
    }
}
