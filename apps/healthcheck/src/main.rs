//! The `healthcheck` command (being built).

fn main() {}
