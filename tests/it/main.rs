//! refine's command-line integration tests: one test binary (one link) for every area, each
//! area a module. Run one area with `cargo test --test it -- rules::`, one test by its path
//! (`cargo test --test it -- --ignored refinery::s390x_numpy`).

mod common;

mod build;
mod fetch;
mod images;
mod layers;
mod lock;
mod mirror;
mod plan;
mod platforms;
mod policy;
mod reapi_farm;
mod refinery;
mod remote;
mod remote_exec;
mod requests;
mod rules;
mod sandbox;
mod serve;
mod serve_cli;
mod serve_web;
mod signing;
mod store;
mod wheel;
