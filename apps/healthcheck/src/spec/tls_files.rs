//! The TLS files of an HTTPS check (`tls_ca`, `tls_client_cert`,
//! `tls_client_key`): names in the agent's `checks.tls_dir`, and their
//! loading.
//!
//! A spec names files, never paths: the same spec is replicated to every
//! agent, and each reads the files from its own `checks.tls_dir` (deploy
//! the same files to every agent, as HAProxy's `ca-file` and `crt` are).
//! Names are `A-Z a-z 0-9 . _ -`, not starting with a dot, so that an API
//! client can make an agent read nothing outside that directory; an agent
//! without a `tls_dir` refuses a spec that names a file. The agent that
//! takes a `PUT` loads the files ([`TlsDir::check`]): a file that is
//! missing or does not parse, or a key that does not fit its certificate,
//! is a `400` naming the field. Checks read the files again when they
//! change on disk (their size or modification time), so a rotated
//! certificate is used from the next check on.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::{Kind, OriginSpec, SpecError};

/// Longest file name, in bytes.
pub const MAX_FILE_NAME: usize = 255;

/// Checks the names of a spec's TLS files and how they combine (no file:
/// nothing to check).
pub(super) fn validate_names(spec: &OriginSpec) -> Result<(), SpecError> {
    let named = [
        ("tls_ca", &spec.tls_ca),
        ("tls_client_cert", &spec.tls_client_cert),
        ("tls_client_key", &spec.tls_client_key),
    ];
    for (field, name) in named {
        let Some(name) = name else { continue };
        if spec.kind != Kind::Https {
            return Err(SpecError::new(field, "applies to kind \"https\" only"));
        }
        validate_name(name).map_err(|m| SpecError::new(field, m))?;
    }
    match (&spec.tls_client_cert, &spec.tls_client_key) {
        (Some(_), None) => {
            return Err(SpecError::new(
                "tls_client_key",
                "tls_client_cert needs its private key: name the key file here",
            ));
        }
        (None, Some(_)) => {
            return Err(SpecError::new(
                "tls_client_cert",
                "tls_client_key is given without the certificate it belongs to",
            ));
        }
        _ => {}
    }
    if spec.tls_ca.is_some() && !spec.tls_verify {
        return Err(SpecError::new(
            "tls_ca",
            "tls_verify is false, so no CA would be consulted: drop one of them",
        ));
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_FILE_NAME {
        return Err(format!("must be a file name of 1-{MAX_FILE_NAME} bytes"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!(
            "{c:?} is not allowed: name a file in the agent's checks.tls_dir (A-Z a-z 0-9 . _ -), \
             not a path"
        ));
    }
    if name.starts_with('.') {
        return Err("must not start with a dot".into());
    }
    Ok(())
}

/// The TLS material of one check, read from its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The CA certificates (DER), if the spec names a CA file.
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// The client certificate chain and key as one PEM document (what
    /// reqwest's `Identity::from_pem` reads), if the spec names them.
    pub identity_pem: Option<Vec<u8>>,
}

/// What identifies the files of a check as they are on disk now: each
/// file's name, size and modification time. Equal stamps, same material.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsStamp(Vec<(String, u64, Option<SystemTime>)>);

impl TlsStamp {
    /// A stamp of one file `name` of `len` bytes (for tests).
    #[cfg(test)]
    pub(crate) fn of(name: &str, len: u64) -> TlsStamp {
        TlsStamp(vec![(name.to_owned(), len, None)])
    }
}

/// The agent's directory of TLS files for checks (`checks.tls_dir`), or
/// none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsDir {
    dir: Option<PathBuf>,
}

impl TlsDir {
    /// Files are read from `dir`; `None`: a spec that names a file is
    /// refused.
    pub fn new(dir: Option<PathBuf>) -> Self {
        TlsDir { dir }
    }

    /// The directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Loads the files `spec` names, as a `PUT` does: the error names the
    /// field whose file is missing, does not parse or (the key) does not fit
    /// its certificate.
    pub fn check(&self, spec: &OriginSpec) -> Result<(), SpecError> {
        self.load(spec).map(|_| ())
    }

    /// The stamp of the files `spec` names (`None` if it names none); an
    /// error names the field of a file that cannot be looked at.
    pub fn stamp(&self, spec: &OriginSpec) -> Result<Option<TlsStamp>, SpecError> {
        let mut stamp = Vec::new();
        for (field, name) in files(spec) {
            let path = self.path(field, name)?;
            let meta = std::fs::metadata(&path).map_err(|e| unreadable(field, &path, &e))?;
            stamp.push((name.to_owned(), meta.len(), meta.modified().ok()));
        }
        Ok((!stamp.is_empty()).then_some(TlsStamp(stamp)))
    }

    /// Reads and parses the files `spec` names (`None` if it names none).
    pub fn load(&self, spec: &OriginSpec) -> Result<Option<TlsMaterial>, SpecError> {
        if files(spec).next().is_none() {
            return Ok(None);
        }
        let ca = match &spec.tls_ca {
            Some(name) => {
                let path = self.path("tls_ca", name)?;
                let certs = read_certs("tls_ca", &path)?;
                Some(certs)
            }
            None => None,
        };
        let identity_pem = match (&spec.tls_client_cert, &spec.tls_client_key) {
            (Some(cert), Some(key)) => {
                let cert_path = self.path("tls_client_cert", cert)?;
                let key_path = self.path("tls_client_key", key)?;
                Some(read_identity(&cert_path, &key_path)?)
            }
            _ => None,
        };
        Ok(Some(TlsMaterial { ca, identity_pem }))
    }

    fn path(&self, field: &str, name: &str) -> Result<PathBuf, SpecError> {
        let Some(dir) = &self.dir else {
            return Err(SpecError::new(
                field,
                "this agent has no checks.tls_dir configured, so it reads no TLS file for checks",
            ));
        };
        validate_name(name).map_err(|m| SpecError::new(field, m))?;
        Ok(dir.join(name))
    }
}

/// The (field, file name) pairs a spec names.
fn files(spec: &OriginSpec) -> impl Iterator<Item = (&'static str, &str)> {
    [
        ("tls_ca", spec.tls_ca.as_deref()),
        ("tls_client_cert", spec.tls_client_cert.as_deref()),
        ("tls_client_key", spec.tls_client_key.as_deref()),
    ]
    .into_iter()
    .filter_map(|(field, name)| name.map(|n| (field, n)))
}

fn unreadable(field: &str, path: &Path, e: &std::io::Error) -> SpecError {
    SpecError::new(field, format!("cannot read {}: {e}", path.display()))
}

fn read_certs(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, SpecError> {
    let bad = |e: rustls::pki_types::pem::Error| match e {
        rustls::pki_types::pem::Error::Io(io) => unreadable(field, path, &io),
        other => SpecError::new(
            field,
            format!("{} is not PEM certificates: {other}", path.display()),
        ),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(bad)?
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    if certs.is_empty() {
        return Err(SpecError::new(
            field,
            format!(
                "{} holds no certificate (PEM `CERTIFICATE` blocks)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// The client certificate chain and its key, checked to fit, as one PEM
/// document.
fn read_identity(cert: &Path, key: &Path) -> Result<Vec<u8>, SpecError> {
    let chain = read_certs("tls_client_cert", cert)?;
    let bad_key = |e: rustls::pki_types::pem::Error| match e {
        rustls::pki_types::pem::Error::Io(io) => unreadable("tls_client_key", key, &io),
        other => SpecError::new(
            "tls_client_key",
            format!("{} is not a PEM private key: {other}", key.display()),
        ),
    };
    let private = PrivateKeyDer::from_pem_file(key).map_err(bad_key)?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
        SpecError::new(
            "tls_client_key",
            format!(
                "{} does not fit the certificate in {}: {e}",
                key.display(),
                cert.display()
            ),
        )
    })?;
    let read =
        |field: &str, path: &Path| std::fs::read(path).map_err(|e| unreadable(field, path, &e));
    let mut pem = read("tls_client_cert", cert)?;
    pem.push(b'\n');
    pem.extend(read("tls_client_key", key)?);
    Ok(pem)
}
