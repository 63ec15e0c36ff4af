//! `refine serve`: the HTTP API against a real server, a real build, a real registry and S3.
