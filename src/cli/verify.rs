//! `refine verify PATTERN...`: who signed each artifact of the targets, locally and in the
//! remote store, against the keys `workspace.kdl` trusts. Exits 1 if any is not trusted.

use refine_engine::ops::verify::verify;
use refine_engine::session::{RemoteNeed, SessionOptions, Targets};

use super::Failure;
use super::common::open_session;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine verify //wheels:pyyaml-repaired-py311
  refine verify //...")]
pub struct VerifyArgs {
    /// Target patterns.
    #[arg(required = true)]
    pub patterns: Vec<String>,
}

pub fn run(options: &SessionOptions, args: VerifyArgs) -> Result<(), Failure> {
    let session = open_session(
        options,
        Targets::Patterns(&args.patterns),
        RemoteNeed::IfConfigured,
    )?;
    let verdicts = verify(&session)?;
    let mut refused = 0;
    for v in &verdicts {
        let what = match &v.signer {
            Ok(s) => format!(
                "signed by `{}` (key id {})",
                s.name,
                &s.keyid[..s.keyid.len().min(16)]
            ),
            Err(why) => {
                refused += 1;
                format!("NOT TRUSTED: {why}")
            }
        };
        println!("{} {} {} {}: {what}", v.label, v.kind, v.place, v.digest);
    }
    if verdicts.is_empty() {
        println!("No artifact of these targets is stored locally or in the remote store.");
    }
    if refused > 0 {
        eprintln!(
            "error: {refused} of {} artifact(s) are not signed by a trusted key",
            verdicts.len()
        );
        return Err(Failure::Exit(1));
    }
    Ok(())
}
