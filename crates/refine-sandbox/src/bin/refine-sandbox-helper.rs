//! The sandbox helper alone, for programs that cannot call `run_if_helper` first in `main`
//! (test harnesses, for one): `Sandbox::with_helper(path_to_this_binary)`.

// A binary of its own: its one message goes to stderr.
#[allow(clippy::print_stderr)]
fn main() -> std::process::ExitCode {
    match refine_sandbox::helper::run_if_helper() {
        Some(code) => std::process::ExitCode::from(code),
        None => {
            eprintln!(
                "refine-sandbox-helper is started by refine's sandbox, not by hand; use \
                 `refine sandbox run` instead"
            );
            std::process::ExitCode::from(2)
        }
    }
}
