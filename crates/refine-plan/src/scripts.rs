//! The action scripts refine runs for runtimes, wheels and repairs (`recipes/actions/`,
//! documented in `docs/actions.md`), built into the binary. Their digests are in the keys of
//! the targets they build, so that changing a script rebuilds what it made.

use sha2::{Digest as _, Sha256};

pub const RUNTIME: &str = include_str!("../../../recipes/actions/runtime.sh");
pub const WHEEL: &str = include_str!("../../../recipes/actions/wheel.sh");
pub const REPAIR: &str = include_str!("../../../recipes/actions/repair.sh");
/// A repair with `strip`: runs [`REPAIR`] (staged beside it), then strips the wheel.
pub const REPAIR_STRIP: &str = include_str!("../../../recipes/actions/repair-strip.sh");

/// `sha256:<hex>` of a script's text.
pub fn digest(script: &str) -> String {
    let hex: String = Sha256::digest(script.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}
