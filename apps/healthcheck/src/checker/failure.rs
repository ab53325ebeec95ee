//! [`Failure`]: why a check failed, in a fixed vocabulary, and how the
//! errors of a check (reqwest, hyper, rustls, I/O) are classified into it.
//!
//! Pure: it only reads error chains and formats messages.

use std::{error::Error as StdError, fmt, io};

/// Longest `detail` kept in a reason, in bytes.
const MAX_DETAIL: usize = 120;

/// How deep an error chain is walked when classifying it.
const MAX_CHAIN: usize = 16;

/// Why a check failed. Its [`Display`](fmt::Display) is the `reason` of a
/// [`CheckOutcome`](super::CheckOutcome) and of a replicated
/// [`HealthRecord`](crate::record::HealthRecord).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `timeout`: no complete answer within `timeout_ms`.
    Timeout,
    /// `refused`: the connection was refused (nothing listens on the port).
    Refused,
    /// `status NNN`: a response whose status is not expected.
    Status(u16),
    /// `tls: <detail>`: the TLS handshake or the certificate failed (or the
    /// spec's TLS files could not be used).
    Tls(String),
    /// `header: <detail>`: a header of `expect_headers` is missing or has
    /// another value.
    Header(String),
    /// `body: <detail>`: the body does not match `expect_body` or
    /// `expect_body_regex`.
    Body(String),
    /// `connect: <detail>`: the connection failed otherwise (DNS, route,
    /// reset during connect).
    Connect(String),
    /// `denied: <detail>`: the target, or an address its name resolved to,
    /// is denied by the [`TargetPolicy`](crate::targets::TargetPolicy); the
    /// detail is the [`Denied`](crate::targets::Denied) text (address and
    /// rule). No connection was opened.
    Denied(String),
    /// `io: <detail>`: anything else (connection lost mid-response, an
    /// invalid method or header in the spec).
    Io(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("timeout"),
            Failure::Refused => f.write_str("refused"),
            Failure::Status(code) => write!(f, "status {code}"),
            Failure::Tls(detail) => write!(f, "tls: {detail}"),
            Failure::Header(detail) => write!(f, "header: {detail}"),
            Failure::Body(detail) => write!(f, "body: {detail}"),
            Failure::Connect(detail) => write!(f, "connect: {detail}"),
            Failure::Denied(detail) => write!(f, "denied: {detail}"),
            Failure::Io(detail) => write!(f, "io: {detail}"),
        }
    }
}

impl Failure {
    /// Classifies an error of a check. `connecting` says the error happened
    /// while opening the connection (it makes an unrecognised error
    /// `connect: …` rather than `io: …`); a [`reqwest::Error`] anywhere in
    /// the chain that says it is a connect error does the same.
    ///
    /// The chain is walked through [`StdError::source`] and through the
    /// error wrapped in an [`io::Error`] (whose `source` skips it). In order:
    /// a timed-out error is [`Failure::Timeout`]; a [`rustls::Error`] is
    /// [`Failure::Tls`] with its message; a refused connection is
    /// [`Failure::Refused`]; a message that mentions a certificate, TLS or a
    /// handshake is [`Failure::Tls`] (the message of a [`reqwest::Error`]
    /// itself is not read: it quotes the URL); then connect or I/O with the
    /// message of the innermost error, shortened.
    pub fn classify(err: &(dyn StdError + 'static), connecting: bool) -> Failure {
        let mut tls: Option<String> = None;
        let mut refused = false;
        let mut timed_out = false;
        let mut connect = connecting;
        let mut mentions_tls = false;
        let mut root = err;
        for e in chain(err) {
            root = e;
            if let Some(r) = e.downcast_ref::<rustls::Error>() {
                tls.get_or_insert_with(|| readable_tls(r));
            }
            if let Some(io) = e.downcast_ref::<io::Error>() {
                match io.kind() {
                    io::ErrorKind::ConnectionRefused => refused = true,
                    io::ErrorKind::TimedOut => timed_out = true,
                    _ => {}
                }
            }
            if let Some(r) = e.downcast_ref::<reqwest::Error>() {
                connect |= r.is_connect();
                timed_out |= r.is_timeout();
                // Its message holds the URL, which may mention anything.
                continue;
            }
            let message = e.to_string().to_ascii_lowercase();
            mentions_tls |= ["certificate", "tls", "handshake"]
                .iter()
                .any(|w| message.contains(w));
        }
        let detail = || short(&root.to_string());
        if timed_out {
            Failure::Timeout
        } else if let Some(t) = tls {
            Failure::Tls(short(&t))
        } else if refused {
            Failure::Refused
        } else if mentions_tls {
            Failure::Tls(detail())
        } else if connect {
            Failure::Connect(detail())
        } else {
            Failure::Io(detail())
        }
    }
}

/// A TLS error as an operator reads it: rustls prints certificate errors
/// as Rust debug text (`invalid peer certificate:
/// Other(OtherError(CaUsedAsEndEntity))`); this says what is wrong with the
/// certificate in words, keeping the name of the cause at the end.
pub(super) fn readable_tls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = e else {
        return e.to_string();
    };
    let what = match c {
        C::Expired | C::ExpiredContext { .. } => "has expired".to_owned(),
        C::NotValidYet | C::NotValidYetContext { .. } => "is not valid yet".to_owned(),
        C::UnknownIssuer => {
            "is not signed by a trusted CA (unknown issuer; set tls_verify = false only for a test origin)"
                .to_owned()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "is not valid for this host name (set `host` to a name it covers)".to_owned()
        }
        C::Revoked => "has been revoked".to_owned(),
        C::BadSignature => "has a bad signature".to_owned(),
        C::BadEncoding => "cannot be decoded".to_owned(),
        other => {
            let name = innermost_name(&format!("{other:?}"));
            match name.as_str() {
                "CaUsedAsEndEntity" => {
                    "is a CA certificate, not a server's (CaUsedAsEndEntity)".to_owned()
                }
                "UnsupportedCertVersion" => "has an unsupported version".to_owned(),
                _ => format!("is refused ({})", words(&name)),
            }
        }
    };
    format!("the server's certificate {what}")
}

/// The innermost identifier of a debug text such as
/// `Other(OtherError(CaUsedAsEndEntity))`.
fn innermost_name(debug: &str) -> String {
    debug
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .rfind(|w| !w.is_empty())
        .unwrap_or(debug)
        .to_owned()
}

/// `CamelCase` as lower-case words (`unknown revocation status`).
fn words(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The errors of a chain, outermost first, looking inside [`io::Error`]s.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<io::Error>() {
            // io::Error::source() is the wrapped error's source: step into
            // the wrapped error itself so that it is seen too.
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => current.source(),
            },
            None => current.source(),
        };
        Some(current)
    })
    .take(MAX_CHAIN)
}

/// Whether a connection was closed or reset before any answer came: what a
/// request sent on a stale pooled connection sees.
pub(super) fn closed_before_answer(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| {
        e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
            || e.downcast_ref::<io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                )
            })
    })
}

/// One line of at most [`MAX_DETAIL`] bytes: what a `detail` of a
/// [`Failure`] holds.
pub(super) fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    if line.len() <= MAX_DETAIL {
        return line.to_owned();
    }
    let mut end = MAX_DETAIL;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct CaUsedAsEndEntity;

    impl std::fmt::Display for CaUsedAsEndEntity {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("CaUsedAsEndEntity")
        }
    }

    impl std::error::Error for CaUsedAsEndEntity {}

    #[test]
    fn tls_certificate_errors_read_as_words() {
        use rustls::{CertificateError, Error, OtherError};
        let cases = [
            (
                Error::InvalidCertificate(CertificateError::Other(OtherError(
                    std::sync::Arc::new(CaUsedAsEndEntity),
                ))),
                "the server's certificate is a CA certificate, not a server's (CaUsedAsEndEntity)",
            ),
            (
                Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "the server's certificate is not signed by a trusted CA",
            ),
            (
                Error::InvalidCertificate(CertificateError::Expired),
                "the server's certificate has expired",
            ),
            (
                Error::InvalidCertificate(CertificateError::UnknownRevocationStatus),
                "the server's certificate is refused (unknown revocation status)",
            ),
        ];
        for (e, want) in cases {
            let got = readable_tls(&e);
            assert!(got.starts_with(want), "{got}");
            assert!(!got.contains("OtherError("), "{got}");
        }
    }

    /// An error with a message and a source, like the layers of reqwest.
    #[derive(Debug)]
    struct Layer(&'static str, Box<dyn StdError + Send + Sync>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Layer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.1)
        }
    }

    fn classify(e: impl StdError + 'static, connecting: bool) -> Failure {
        Failure::classify(&e, connecting)
    }

    #[test]
    fn reasons_render_in_the_documented_shapes() {
        assert_eq!(Failure::Timeout.to_string(), "timeout");
        assert_eq!(Failure::Refused.to_string(), "refused");
        assert_eq!(Failure::Status(503).to_string(), "status 503");
        assert_eq!(Failure::Tls("bad cert".into()).to_string(), "tls: bad cert");
        assert_eq!(Failure::Connect("dns".into()).to_string(), "connect: dns");
        assert_eq!(
            Failure::Denied("10.0.0.1:80 is not in checks.allow".into()).to_string(),
            "denied: 10.0.0.1:80 is not in checks.allow"
        );
        assert_eq!(Failure::Io("reset".into()).to_string(), "io: reset");
    }

    #[test]
    fn a_refused_connection_is_found_under_layers() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let err = Layer(
            "client error (Connect)",
            Box::new(Layer("tcp connect error", Box::new(refused))),
        );
        assert_eq!(classify(err, false), Failure::Refused);
    }

    #[test]
    fn a_rustls_error_inside_an_io_error_is_tls() {
        // tokio-rustls reports handshake failures as io::Error(InvalidData,
        // rustls::Error); io::Error::source() skips the rustls error.
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = io::Error::new(io::ErrorKind::InvalidData, cert);
        let err = Layer("error sending request", Box::new(io));
        assert_eq!(
            classify(err, false),
            Failure::Tls(readable_tls(&rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            )))
        );
    }

    #[test]
    fn a_message_about_certificates_is_tls() {
        let err = Layer(
            "handshake",
            Box::new(io::Error::other("certificate expired")),
        );
        assert_eq!(
            classify(err, true),
            Failure::Tls("certificate expired".into())
        );
    }

    #[test]
    fn timeouts_win_over_everything() {
        let err = Layer(
            "tls handshake",
            Box::new(io::Error::from(io::ErrorKind::TimedOut)),
        );
        assert_eq!(classify(err, true), Failure::Timeout);
    }

    #[test]
    fn other_errors_are_connect_or_io_with_the_innermost_message() {
        let dns = || {
            Layer(
                "dns error",
                Box::new(io::Error::other("failed to lookup address")),
            )
        };
        assert_eq!(
            classify(dns(), true),
            Failure::Connect("failed to lookup address".into())
        );
        assert_eq!(
            classify(dns(), false),
            Failure::Io("failed to lookup address".into())
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(classify(reset, false), Failure::Io(_)));
    }

    #[test]
    fn stale_connections_are_recognised() {
        let reset = Layer(
            "client error",
            Box::new(io::Error::from(io::ErrorKind::ConnectionReset)),
        );
        assert!(closed_before_answer(&reset));
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(!closed_before_answer(&refused));
    }

    #[test]
    fn details_are_one_short_line() {
        assert_eq!(short("a\nb"), "a");
        let long = "é".repeat(100);
        let s = short(&long);
        assert!(s.len() <= MAX_DETAIL + "…".len(), "{}", s.len());
        assert!(s.ends_with('…'));
    }
}
