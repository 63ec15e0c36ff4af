//! refine's command-line integration tests: one test binary (one link) for every area, each
//! area a module. Run one area with `cargo test --test it -- rules::`, one test by its path
//! (`cargo test --test it -- --ignored refinery::s390x_numpy`). The long end-to-end flows are
//! in `acceptance` (see there why the name).

mod common;

mod acceptance;
mod build;
mod fetch;
mod images;
mod layers;
mod lock;
mod mirror;
mod plan;
mod reapi_farm;
mod remote;
mod remote_exec;
mod rules;
mod sandbox;
mod serve;
mod serve_cli;
mod serve_web;
mod signing;
mod store;
mod wheel;
