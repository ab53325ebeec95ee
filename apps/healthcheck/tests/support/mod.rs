//! What the agent tests share.

pub(crate) mod sse;
