//! TLS for the API (rustls): a certificate chain and its private key from
//! PEM files, swapped in place on reload (`SIGHUP`) so that new connections
//! get the new certificate while open ones keep theirs.
//!
//! Handshakes run in each connection's own task, bounded in time and
//! counted against the API's connection cap (see [`crate::api_server`]).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use thiserror::Error;
use tokio_rustls::TlsAcceptor;

/// The certificate or key could not be used; what is in force is unchanged.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read or is not PEM of the expected kind.
    #[error("cannot use {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{path}: no certificate (PEM `CERTIFICATE` blocks, the server's first)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key does not belong to the certificate, or rustls refuses it.
    #[error("{key} does not fit {cert}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// Building the TLS configuration failed (a bug or an unusable
    /// provider).
    #[error("tls configuration")]
    Config(#[source] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a certificate chain and its key and checks they fit.
fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let file = |path: &Path, source| TlsError::File {
        path: path.to_owned(),
        source,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file(cert, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| file(key, e))?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|e| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source: e,
    })
}

/// The certificate in force, for rustls.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.0.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        })
    }
}

/// The API's TLS: its files, the certificate in force and an acceptor.
pub struct ApiTls {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl ApiTls {
    /// Loads `cert` (PEM chain, the server's certificate first) and `key`
    /// (PEM private key).
    ///
    /// # Errors
    /// [`TlsError`] naming the file and what is wrong.
    pub fn load(cert: &Path, key: &Path) -> Result<ApiTls, TlsError> {
        let current = Arc::new(Current(RwLock::new(Arc::new(load(cert, key)?))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ApiTls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Re-reads the files; new connections get the new certificate.
    ///
    /// # Errors
    /// [`TlsError`]; the certificate in force is kept.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load(&self.cert, &self.key)?);
        match self.current.0.write() {
            Ok(mut c) => *c = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        Ok(())
    }

    /// The acceptor for new connections (the certificate in force at each
    /// handshake).
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}
