//! `refine worker` checked by BuildGrid's own client, `bgd execute`.

use std::time::Duration;

use super::{Worker, busybox_root};
use crate::common::buildgrid::Farm;

/// A third party's action runs on refine's worker: chrooted into its input root, its output
/// file uploaded and downloaded by `bgd`, and the farm's operation reports exit code 0.
#[test]
fn bgd_execute_runs_a_command_on_refine_worker() {
    let farm = Farm::start();
    let worker = Worker::start(&farm, "bot-a");
    let input = tempfile::tempdir().unwrap();
    busybox_root(input.path());
    let dir = input.path().to_str().unwrap();
    let out = farm.bgd_ok(
        "execute",
        &[
            "command",
            "--output-file",
            "out/hello.txt",
            // `-c` is also an option of `bgd execute command`.
            "--",
            dir,
            "/bin/sh",
            "-c",
            "echo hello from $(cat /proc/sys/kernel/hostname) > /out/hello.txt",
        ],
    );
    worker.wait_for("exit 0", Duration::from_secs(60));
    let fetched = walk_for(&farm.work_dir(), "hello.txt")
        .unwrap_or_else(|| panic!("bgd downloaded no hello.txt:\n{out}\n{}", worker.log()));
    assert_eq!(
        fs_err::read_to_string(fetched).unwrap(),
        "hello from refine\n",
        "the command ran in refine's sandbox (its host name)"
    );
}

fn walk_for(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in fs_err::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(found) = walk_for(&p, name) {
                return Some(found);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}
