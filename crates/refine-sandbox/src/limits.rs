//! What the action may do: resource limits, no new privileges, no capabilities.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::error::SandboxError;
use crate::spec::{Limits, SANDBOX_GID, SANDBOX_UID};
use crate::sys;

/// Applies `limits` to the calling process (the action, before `execve`). A limit above the
/// caller's hard limit is lowered to it: only the host's root may raise a hard limit.
pub(crate) fn apply(limits: &Limits) -> Result<(), SandboxError> {
    let pairs = [
        (Resource::RLIMIT_AS, limits.memory, "memory"),
        (Resource::RLIMIT_NPROC, limits.processes, "processes"),
        (Resource::RLIMIT_NOFILE, limits.open_files, "open files"),
        // Core dumps of a crashing compiler would land in /work and change nothing but size.
        (Resource::RLIMIT_CORE, Some(0), "core size"),
    ];
    for (resource, value, what) in pairs {
        let Some(value) = value else { continue };
        let (_, hard) = getrlimit(resource)
            .map_err(|err| SandboxError::setup(format!("read the {what} limit"), err))?;
        let value = value.min(hard);
        setrlimit(resource, value, value)
            .map_err(|err| SandboxError::setup(format!("set the {what} limit"), err))?;
    }
    Ok(())
}

/// Sets `PR_SET_NO_NEW_PRIVS`, switches to [`SANDBOX_UID`] if `switch_user` (from uid 0 of
/// the namespace), and drops every capability, so that neither setuid binaries nor file
/// capabilities nor the user namespace's root powers reach the action. `RLIMIT_NPROC` applies
/// to the build user once switched.
pub(crate) fn drop_privileges(switch_user: bool) -> Result<(), SandboxError> {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    nix::sys::prctl::set_no_new_privs()
        .map_err(|err| SandboxError::setup("set no_new_privs", err))?;
    sys::drop_bounding_and_ambient()
        .map_err(|err| SandboxError::setup("drop capabilities", err))?;
    if switch_user {
        let (uid, gid) = (Uid::from_raw(SANDBOX_UID), Gid::from_raw(SANDBOX_GID));
        setgroups(&[]).map_err(|err| SandboxError::setup("drop supplementary groups", err))?;
        setresgid(gid, gid, gid)
            .map_err(|err| SandboxError::setup("switch to the sandbox group", err))?;
        setresuid(uid, uid, uid)
            .map_err(|err| SandboxError::setup("switch to the sandbox user", err))?;
    }
    sys::clear_capabilities().map_err(|err| SandboxError::setup("drop capabilities", err))
}
