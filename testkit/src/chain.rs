//! An error and its causes as one line.

use std::error::Error;

/// `err` and every `source()` below it, joined with `": "`, as the binaries
/// print a chain (`anyhow`'s `{:#}`): what a test asserts about when it
/// checks that a message names a file or says its cause once.
pub fn error_chain(err: &dyn Error) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        chain.push_str(": ");
        chain.push_str(&e.to_string());
        source = e.source();
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("reading x.toml")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_chain_says_each_cause_once_in_order() {
        let err = Outer(std::io::Error::other("denied"));
        assert_eq!(error_chain(&err), "reading x.toml: denied");
    }
}
