//! API tokens: who may read and who may change what an agent serves.
//!
//! A token file holds one token per line, after its scope:
//!
//! ```text
//! # scope  token
//! read     2uJ0z0rXbQ8Tz3yq4D1sVw
//! write    mXo0f1PqN9bB7kq2s8wE5g
//! ```
//!
//! `write` implies `read`. Blank lines and lines starting with `#` are
//! ignored. A token is at least 16 characters, printable ASCII without
//! spaces (`healthcheck token` prints a new line for the file). The agent
//! reads the file at start and again on `SIGHUP`.
//!
//! With a token file, every API route asks for a token: `GET` routes
//! (origins, members, the node, `/metrics`, the status page) need `read`,
//! `PUT` and `DELETE` need `write`. A client sends it as
//! `Authorization: Bearer <token>` (browsers may send it as the password of
//! HTTP Basic authentication, any user name). Tokens are kept only as
//! SHA-256 digests and a presented token is compared with every one of them
//! in constant time (`subtle`), so neither the answer nor its timing says
//! how close a guess was. Without a token file the API is open (see the
//! README for when an agent refuses to start that way).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read the registry, health, members, the node, metrics, the page.
    Read,
    /// Read, and change the registry.
    Write,
}

impl Scope {
    /// Whether a token of this scope may do what `needed` requires.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }

    /// The scope's name in a token file.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

/// The shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// The token file could not be used; the tokens in force are unchanged.
#[derive(Debug, Error)]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("cannot read the token file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `<scope> <token>`.
    #[error("{path}:{line}: {problem}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong (the token itself is never repeated).
        problem: &'static str,
    },
    /// The file holds no token.
    #[error("{path}: no token (lines of `read|write TOKEN`; `healthcheck token` prints one)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The agent has no `token_file` configured.
    #[error("no token_file is configured: the API is open")]
    NotConfigured,
}

/// The tokens of a token file, as digests.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenFile {
    entries: Vec<([u8; 32], Scope)>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Digests only, and not even those: a count is enough.
        f.debug_struct("TokenFile")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"vantage-api-token/1\0");
    hash.update(token.as_bytes());
    hash.finalize().into()
}

impl TokenFile {
    /// Parses token file text; `path` is used in errors.
    ///
    /// # Errors
    /// [`TokenFileError::BadLine`] naming the line, or
    /// [`TokenFileError::Empty`].
    pub fn parse(text: &str, path: &Path) -> Result<TokenFile, TokenFileError> {
        let bad = |line: usize, problem: &'static str| TokenFileError::BadLine {
            path: path.to_owned(),
            line,
            problem,
        };
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(scope), Some(token), None) = (words.next(), words.next(), words.next())
            else {
                return Err(bad(i + 1, "expected `read TOKEN` or `write TOKEN`"));
            };
            let scope = match scope {
                "read" => Scope::Read,
                "write" => Scope::Write,
                _ => return Err(bad(i + 1, "the scope must be `read` or `write`")),
            };
            if token.len() < MIN_TOKEN_LEN {
                return Err(bad(i + 1, "the token is shorter than 16 characters"));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(
                    i + 1,
                    "the token has a character that is not printable ASCII",
                ));
            }
            let d = digest(token);
            if entries.iter().any(|(e, _)| *e == d) {
                return Err(bad(i + 1, "the token is listed twice"));
            }
            entries.push((d, scope));
        }
        if entries.is_empty() {
            return Err(TokenFileError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(TokenFile { entries })
    }

    /// Reads and parses `path`.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), or [`TokenFileError::Read`].
    pub fn read(path: &Path) -> Result<TokenFile, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The scope of `presented`, if it is one of the tokens. Compares its
    /// digest with every token's in constant time.
    pub fn scope_of(&self, presented: &str) -> Option<Scope> {
        let d = digest(presented);
        let mut found = None;
        for (entry, scope) in &self.entries {
            if bool::from(entry.ct_eq(&d)) {
                found = Some(*scope);
            }
        }
        found
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no token (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A new random token (22 characters of URL-safe base64, 128 bits).
pub fn generate() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The token a request presents: `Authorization: Bearer <token>`, or the
/// password of `Authorization: Basic` (for browsers). `None` if absent or
/// malformed.
pub fn presented(authorization: Option<&str>) -> Option<String> {
    let value = authorization?.trim();
    let (kind, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if kind.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if kind.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = "r3adr3adr3adr3adr3ad";
    const WRITE: &str = "wr1tewr1tewr1tewr1te";

    fn file() -> TokenFile {
        TokenFile::parse(
            &format!("# tokens\nread {READ}\n\nwrite   {WRITE}\n"),
            Path::new("t"),
        )
        .expect("valid")
    }

    #[test]
    fn scopes_are_found_and_write_implies_read() {
        let f = file();
        assert_eq!(f.len(), 2);
        assert_eq!(f.scope_of(READ), Some(Scope::Read));
        assert_eq!(f.scope_of(WRITE), Some(Scope::Write));
        assert_eq!(f.scope_of("r3adr3adr3adr3adr3aX"), None);
        assert_eq!(f.scope_of(""), None);
        assert!(Scope::Write.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
        assert!(!format!("{f:?}").contains(READ), "Debug shows no token");
    }

    #[test]
    fn bad_lines_are_refused_naming_the_line_and_never_the_token() {
        for (text, problem) in [
            ("admin abcdefghijklmnopqrst", "scope"),
            ("read short", "shorter"),
            ("read abcdefghijklmnopqrst extra", "expected"),
            ("read", "expected"),
            ("read abcdefghijklmn\u{e9}pqrst", "printable"),
            (
                "read abcdefghijklmnopqrst\nwrite abcdefghijklmnopqrst",
                "twice",
            ),
        ] {
            let e = TokenFile::parse(&format!("# c\n{text}"), Path::new("tokens"))
                .expect_err(text)
                .to_string();
            assert!(e.starts_with("tokens:"), "{e}");
            assert!(e.contains(problem), "{text}: {e}");
            assert!(!e.contains("abcdefghijklmnopqrst"), "{e}");
        }
        assert!(matches!(
            TokenFile::parse("# nothing\n", Path::new("t")),
            Err(TokenFileError::Empty { .. })
        ));
    }

    #[test]
    fn bearer_and_basic_credentials_are_read() {
        assert_eq!(presented(Some("Bearer abc")), Some("abc".into()));
        assert_eq!(presented(Some("bearer   abc ")), Some("abc".into()));
        // "user:secret" in base64
        assert_eq!(
            presented(Some("Basic dXNlcjpzZWNyZXQ=")),
            Some("secret".into())
        );
        assert_eq!(presented(Some("Basic !!!")), None);
        assert_eq!(presented(Some("Token abc")), None);
        assert_eq!(presented(None), None);
        let t = generate();
        assert!(t.len() >= MIN_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_graphic()));
        assert_ne!(generate(), t);
    }
}
