//! Benchmarks and simulation binaries; see `BENCHMARKS.md` for the figures
//! and the commands that produced them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
