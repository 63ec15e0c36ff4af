//! The acceptance tests: whole flows that build real wheels from PyPI sdists on the repo's
//! bookworm bases (s390x under qemu, x86_64 natively), repair them and install them with pip,
//! as users do. They are most of the suite's time (minutes each; the s390x request the
//! longest), and libtest starts tests in the order of their names: named `acceptance::`, they
//! start first (the build requests, with the longest flow, before the rest), so the two cores
//! share them and the short tests fill in around them, instead of one long flow running alone
//! at the end.

mod build_requests;
mod platforms;
mod policy;
mod refinery;
