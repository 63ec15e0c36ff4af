//! `refine serve`: the control plane for a team — plans, a build queue, artifacts with their
//! links, build events, a web view and Prometheus metrics, over HTTP (docs/api.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use refine_serve::{ServeOptions, Token};

use super::Failure;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine serve --token-file /etc/refine/token
  refine serve --listen 0.0.0.0:8765 --public-reads --slots 2

Without `--token-file` or `REFINE_SERVE_TOKEN`, the server makes a token and keeps it in
`<store>/serve/token` (readable by its owner only). The web view is at `/`, the API under
`/v1` (its OpenAPI document at `/openapi.json`), metrics at `/metrics`.")]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,
    /// A file holding the bearer token that `POST` and `DELETE` requests need (and reads,
    /// without `--public-reads`); else `REFINE_SERVE_TOKEN`.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Answer `GET` requests without a token.
    #[arg(long)]
    pub public_reads: bool,
    /// The server's SQLite database [default: `<store>/serve/state.sqlite`].
    #[arg(long, value_name = "FILE")]
    pub database: Option<PathBuf>,
    /// Builds that run at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub slots: usize,
    /// Actions per build, unless a build asks [default: the number of cores].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
}

pub fn run(
    options: &refine_engine::session::SessionOptions,
    args: ServeArgs,
) -> Result<(), Failure> {
    if args.slots == 0 || args.jobs == Some(0) {
        return Err(Failure::bad_input(miette::miette!(
            help = "Give `--slots 1` and `-j 1` or more",
            "`0` slots or jobs runs nothing"
        )));
    }
    let token = match &args.token_file {
        Some(path) => Some(Token::from_file(path).map_err(Failure::bad_input)?),
        None => Token::from_env(),
    };
    let options = ServeOptions {
        session: options.clone(),
        listen: args.listen,
        token,
        public_reads: args.public_reads,
        database: args.database,
        slots: args.slots,
        jobs: args.jobs,
    };
    refine_serve::serve(options, |ready| {
        eprintln!("refine serve: listening on http://{}/", ready.addr);
        if let Some(file) = &ready.token_file {
            eprintln!("refine serve: the token is in `{}`", file.display());
        }
    })
    .map_err(Failure::failed)
}
