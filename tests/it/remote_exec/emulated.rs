//! An s390x action on a farm whose only s390x worker is an x86_64 machine running
//! `refine worker --isa s390x` under qemu-user (binfmt_misc): the action carries `ISA=s390x`,
//! the worker advertises it, and what runs is the s390x busybox of the base.

use std::path::PathBuf;

use super::{Worker, endpoint};
use crate::common::buildgrid::Farm;
use crate::common::tiny;
use crate::remote_exec::build::{provenance, refine_ok};

#[test]
fn an_s390x_action_runs_on_an_emulating_worker() {
    let busybox = PathBuf::from(
        std::env::var_os("REFINE_TEST_S390X_BUSYBOX")
            .unwrap_or_else(|| "/var/cache/refine-tests/busybox-s390x".into()),
    );
    assert!(
        busybox.is_file(),
        "The static s390x busybox `{}` is missing: run `.ci/setup.d/sandbox.sh` as root, or \
         point `REFINE_TEST_S390X_BUSYBOX` at one",
        busybox.display()
    );
    let ws = tiny(&[(
        "arch",
        "/bin/busybox uname -m > /out/machine\necho ok > /out/ran\n",
        &[],
    )]);
    // The tiny workspace, made s390x: its base and platform, and its busybox.
    let host = std::env::consts::ARCH;
    for file in ["workspace.kdl", "rules/bases.kdl"] {
        let path = ws.path().join(file);
        let text = fs_err::read_to_string(&path).unwrap();
        fs_err::write(&path, text.replace(host, "s390x")).unwrap();
    }
    let target = ws.path().join("roots/tiny/bin/busybox");
    fs_err::remove_file(&target).unwrap();
    fs_err::copy(&busybox, &target).unwrap();

    let farm = Farm::start();
    let worker = Worker::start_with(&farm, "bot-z", &["--isa", "s390x"]);
    let store = tempfile::tempdir().unwrap();
    refine_ok(
        ws.path(),
        store.path(),
        &[
            "build",
            "//packs:arch",
            "--executor",
            &endpoint(&farm),
            "--out",
            store.path().join("out").to_str().unwrap(),
        ],
    );
    let machine = fs_err::read_to_string(store.path().join("out/arch/machine")).unwrap();
    assert_eq!(machine.trim(), "s390x", "the action ran as s390x");
    let record = provenance(ws.path(), store.path(), "//packs:arch");
    let params = &record["predicate"]["buildDefinition"]["internalParameters"];
    assert_eq!(params["executor"]["worker"], "bot-z", "{record:#}");
    assert!(
        worker.log().contains("exit 0"),
        "the worker ran it:\n{}",
        worker.log()
    );
}
