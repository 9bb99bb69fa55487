//! TLS to PostgreSQL: the rustls client configuration for a connection string's TLS
//! parameters (see `sslparams`), the connector tokio-postgres and the pool use, and the
//! translation of a failed connection into a [`TlsFailure`].
//!
//! rustls runs on the `ring` provider, passed explicitly (no process-wide default is
//! installed). What each `sslmode` checks is in the module docs of `postgres`; over a Unix
//! socket TLS is never used (PostgreSQL does not offer it there; libpq ignores `sslmode` for
//! sockets too).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pg_error;
use super::sslparams::{RootCerts, SslMode, TlsParams};
use crate::error::{CertificateProblem, StoreError, TlsFailure};

/// The ALPN protocol PostgreSQL 17 asks for (required with `sslnegotiation=direct`, accepted
/// by older servers).
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// How one database is connected to: the mode and the rustls configuration for it.
#[derive(Clone)]
pub(crate) struct Tls {
    mode: SslMode,
    connector: MakeRustlsConnect,
    /// Where the trusted roots came from, for error messages.
    roots: String,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

/// A connection's stream: TLS over TCP, or the socket itself.
pub(crate) type TlsStream = <Connector as MakeTlsConnect<Socket>>::Stream;

impl Tls {
    /// Reads the files `params` names and builds the configuration; sets `config`'s
    /// `sslmode` for tokio-postgres.
    pub(crate) fn new(
        params: &TlsParams,
        config: &mut tokio_postgres::Config,
    ) -> Result<Self, StoreError> {
        let only_sockets = !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|h| !matches!(h, Host::Tcp(_)));
        config.ssl_mode(match params.mode {
            _ if only_sockets => tokio_postgres::config::SslMode::Disable,
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        if config.get_ssl_negotiation() == tokio_postgres::config::SslNegotiation::Direct
            && matches!(params.mode, SslMode::Disable | SslMode::Prefer)
        {
            return Err(StoreError::InvalidTlsParameter {
                parameter: "sslmode".to_owned(),
                reason: format!(
                    "sslmode={} may not be used with sslnegotiation=direct (use require, \
                     verify-ca or verify-full)",
                    params.mode.as_str()
                ),
            });
        }
        // rustls 0.23.48 deprecates ring's provider because ring has no post-quantum key
        // exchange (X25519MLKEM768); aws-lc-rs has it but builds C with cmake. Classic X25519
        // and the P-curves are what PostgreSQL servers on OpenSSL < 3.5 offer anyway.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (roots, described) = match &params.roots {
            Some(RootCerts::File(path)) => (
                Some(roots_from_file(path)?),
                format!("sslrootcert file {path:?}"),
            ),
            Some(RootCerts::System) => (
                Some(system_roots()?),
                "the platform's root certificates".to_owned(),
            ),
            None => (None, "no sslrootcert".to_owned()),
        };
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Config(format!("cannot set up TLS: {e}")))?;
        let builder = match (params.mode, roots) {
            // Not used, but a connector is needed all the same.
            (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(Arc::clone(&provider)))),
            (SslMode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots),
            (SslMode::VerifyFull | SslMode::VerifyCa, None) => {
                return Err(StoreError::Config(
                    "sslmode=verify-ca and verify-full need sslrootcert".to_owned(),
                ))
            }
            (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(roots)) => {
                let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| StoreError::Config(format!("cannot set up TLS: {e}")))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
            }
        };
        let mut client = match &params.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates_from_file("sslcert", cert)?;
                let key_pem = read("sslkey", key)?;
                let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    file_error(
                        "sslkey",
                        key,
                        format!(
                            "no usable PEM private key (PKCS#8, PKCS#1 or SEC1, unencrypted): {e}"
                        ),
                    )
                })?;
                builder.with_client_auth_cert(chain, private).map_err(|e| {
                    file_error("sslkey", key, format!("it does not go with sslcert: {e}"))
                })?
            }
        };
        client.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        Ok(Tls {
            mode: params.mode,
            connector: MakeRustlsConnect::new(client),
            roots: described,
        })
    }

    /// The connector for the pool (failures are told apart on the first connection, made
    /// with [`Tls::connect`]).
    pub(crate) fn connector(&self) -> Connector {
        Connector {
            inner: self.connector.clone(),
            probe: Arc::new(Probe::default()),
        }
    }

    /// One connection, its failure classified: a TLS failure is a [`StoreError::Tls`] that
    /// says what to change, anything else as [`pg_error`] has it.
    pub(crate) async fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<Socket, TlsStream>,
        ),
        StoreError,
    > {
        let connector = self.connector();
        let probe = Arc::clone(&connector.probe);
        config
            .connect(connector)
            .await
            .map_err(|e| self.classify(e, probe.stage()))
    }

    fn classify(&self, e: tokio_postgres::Error, stage: u8) -> StoreError {
        let mode = self.mode.as_str();
        if let Some(error) = rustls_error(&e) {
            return StoreError::Tls(match error {
                rustls::Error::InvalidCertificate(problem) => TlsFailure::Certificate {
                    mode,
                    problem: self.certificate_problem(problem),
                },
                other => TlsFailure::Handshake {
                    reason: other.to_string(),
                },
            });
        }
        // The socket connected (the connector was made) and the handshake never started: with
        // TLS required, tokio-postgres stops there only when the server answered the TLS
        // request with "no" (an I/O failure carries an `io::Error`, a refusal a `DbError`).
        let requires_tls = !matches!(self.mode, SslMode::Disable | SslMode::Prefer);
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if requires_tls && stage == Probe::CONNECTED && e.as_db_error().is_none() && !io {
            return StoreError::Tls(TlsFailure::NotSupported { mode });
        }
        pg_error(e)
    }

    fn certificate_problem(&self, problem: &CertificateError) -> CertificateProblem {
        match problem {
            CertificateError::UnknownIssuer => CertificateProblem::UnknownIssuer {
                roots: self.roots.clone(),
            },
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => CertificateProblem::WrongHost {
                host: expected.to_str().into_owned(),
                presented: presented.iter().map(|n| plain_name(n)).collect(),
            },
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                CertificateProblem::Expired(problem.to_string())
            }
            other => CertificateProblem::Other(other.to_string()),
        }
    }
}

/// A name as webpki presents it (`DnsName("db.example.com")`, `IpAddress(10.0.0.1)`) as the
/// name alone.
fn plain_name(presented: &str) -> String {
    let inner = presented
        .strip_prefix("DnsName(")
        .or_else(|| presented.strip_prefix("IpAddress("))
        .and_then(|rest| rest.strip_suffix(')'));
    match inner {
        Some(inner) => inner.trim_matches('"').to_owned(),
        None => presented.to_owned(),
    }
}

/// The rustls error behind a failed connection: tokio-rustls reports it inside an
/// `io::Error`, which tokio-postgres wraps.
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next = std::error::Error::source(e);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if let Some(found) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(found);
            }
        }
        next = error.source();
    }
    None
}

fn file_error(parameter: &'static str, path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::TlsFile {
        parameter,
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Reads a certificate or key file (small, at startup: a blocking read is fine).
fn read(parameter: &'static str, path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| file_error(parameter, path, e.to_string()))
}

fn certificates_from_file(
    parameter: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let pem = read(parameter, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(parameter, path, format!("it is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            parameter,
            path,
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, StoreError> {
    let certs = certificates_from_file("sslrootcert", path)?;
    let count = certs.len();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(file_error(
            "sslrootcert",
            path,
            format!("none of its {count} certificates can be used as a trust anchor"),
        ));
    }
    Ok(roots)
}

/// The platform's trust store (on Linux the OpenSSL files: `/etc/ssl/certs`, or
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`), as libpq's `sslrootcert=system` uses OpenSSL's.
fn system_roots() -> Result<RootCertStore, StoreError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(StoreError::InvalidTlsParameter {
            parameter: "sslrootcert".to_owned(),
            reason: format!(
                "sslrootcert=system found no root certificates on this machine (install the \
                 ca-certificates package, set SSL_CERT_FILE, or name a CA file){}",
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(": {}", errors.join("; "))
                }
            ),
        });
    }
    Ok(roots)
}

/// `prefer` and `require` without `sslrootcert`: any certificate, as libpq (the session is
/// encrypted but not authenticated). Handshake signatures are still checked.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` (and `prefer`/`require` with a CA file): the chain, validity and key usage as
/// webpki checks them, the host name not. webpki checks the name last, so a name mismatch
/// means everything before it passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// How far the last connection attempt got, as the connector saw it.
#[derive(Debug, Default)]
struct Probe(AtomicU8);

impl Probe {
    /// The socket connected (tokio-postgres makes the connector right after).
    const CONNECTED: u8 = 1;
    /// The server agreed to TLS and the handshake started.
    const HANDSHAKE: u8 = 2;

    fn set(&self, stage: u8) {
        self.0.store(stage, Ordering::SeqCst);
    }

    fn stage(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

/// tokio-rustls's connector for tokio-postgres, noting in a [`Probe`] how far each attempt
/// got.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: MakeRustlsConnect,
    probe: Arc<Probe>,
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = ProbedConnect<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        self.probe.set(Probe::CONNECTED);
        Ok(ProbedConnect {
            inner: MakeTlsConnect::<S>::make_tls_connect(&mut self.inner, domain)?,
            probe: Arc::clone(&self.probe),
        })
    }
}

/// One attempt's handshake.
pub(crate) struct ProbedConnect<T> {
    inner: T,
    probe: Arc<Probe>,
}

impl<S, T: TlsConnect<S>> TlsConnect<S> for ProbedConnect<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = T::Future;

    fn connect(self, stream: S) -> Self::Future {
        self.probe.set(Probe::HANDSHAKE);
        self.inner.connect(stream)
    }
}
