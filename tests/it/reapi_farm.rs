//! The REAPI test farm itself (tests/it/common/buildgrid.rs): a real BuildGrid server over a
//! real PostgreSQL (`.ci/setup.d/reapi.sh` installs both), checked with BuildGrid's own client
//! `bgd` before refine's REAPI client and worker are tested against it.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::buildgrid::Farm;

/// The root digest `bgd cas upload-dir DIR` reports: its last line
/// `Success: Pushed path=[DIR] with digest=[HASH/SIZE]`.
fn pushed_root(out: &str, dir: &Path) -> String {
    let prefix = format!("Success: Pushed path=[{}] with digest=[", dir.display());
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no root digest in bgd's output:\n{out}"));
    line.trim_end_matches(']').to_string()
}

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

#[test]
fn farm_starts_and_serves_capabilities() {
    let mut farm = Farm::start();
    assert_eq!(farm.instance(), "main");
    assert_eq!(farm.grpc_url(), format!("grpc://127.0.0.1:{}", farm.port));

    // Capabilities: execution enabled, SHA-256 for the CAS and for execution.
    let out = farm.bgd_ok("capabilities", &[]);
    let caps: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("capabilities are not JSON ({e}):\n{out}"));
    assert_eq!(
        caps["executionCapabilities"]["execEnabled"], true,
        "{caps:#}"
    );
    assert_eq!(
        caps["executionCapabilities"]["digestFunction"], "SHA256",
        "{caps:#}"
    );
    assert_eq!(
        caps["cacheCapabilities"]["digestFunctions"],
        serde_json::json!(["SHA256"]),
        "{caps:#}"
    );
    assert_eq!(
        caps["cacheCapabilities"]["actionCacheUpdateCapabilities"]["updateEnabled"], true,
        "{caps:#}"
    );

    // A directory into the CAS and back out, with its executable bit.
    let scratch = tempfile::tempdir().unwrap();
    let input = scratch.path().join("input");
    fs_err::create_dir_all(input.join("sub")).unwrap();
    fs_err::write(input.join("run.sh"), "#!/bin/sh\necho hello\n").unwrap();
    fs_err::set_permissions(input.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    fs_err::write(input.join("sub/data.txt"), "world\n").unwrap();
    let out = farm.bgd_ok("cas", &["upload-dir", input.to_str().unwrap()]);
    let root = pushed_root(&out, &input);

    let check_download = |farm: &Farm, to: &Path| {
        farm.bgd_ok("cas", &["download-dir", &root, to.to_str().unwrap()]);
        assert_eq!(
            fs_err::read_to_string(to.join("run.sh")).unwrap(),
            "#!/bin/sh\necho hello\n"
        );
        assert_eq!(
            fs_err::read_to_string(to.join("sub/data.txt")).unwrap(),
            "world\n"
        );
        let mode = fs_err::metadata(to.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_ne!(mode & 0o100, 0, "run.sh lost its executable bit: {mode:o}");
    };
    check_download(&farm, &scratch.path().join("out1"));

    // A digest the CAS does not hold is reported missing.
    let missing = format!("{}/158", "0".repeat(64));
    let out = farm.bgd(
        "cas",
        &[
            "download-dir",
            &missing,
            scratch.path().join("none").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A crashed server comes back on the same port with the same CAS (and database).
    let first = farm.server_pid().unwrap();
    farm.crash_and_restart_server();
    assert_ne!(farm.server_pid(), Some(first));
    check_download(&farm, &scratch.path().join("out2"));
    assert_eq!(farm.bot_sessions(), 0);

    // Dropped: both servers are gone and their ports closed.
    let (port, pg_port) = (farm.port, farm.postgres().port);
    let pids = [farm.server_pid().unwrap(), farm.postgres().pid().unwrap()];
    assert!(port_open(port) && port_open(pg_port));
    drop(farm);
    assert!(!port_open(port), "BuildGrid still listens on {port}");
    assert!(!port_open(pg_port), "PostgreSQL still listens on {pg_port}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived the farm");
    }
}
