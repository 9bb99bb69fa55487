//! TLS to PostgreSQL, against real servers: the one at `FUNCTIONS_TEST_POSTGRES_TLS` accepts
//! TCP clients over TLS only (`scripts/postgres.sh`'s `pg_start --tls`: a throwaway CA in
//! `FUNCTIONS_TEST_POSTGRES_TLS_CERTS`, a certificate for localhost and 127.0.0.1, `hostssl`
//! rules only), the one at `FUNCTIONS_TEST_POSTGRES` offers no TLS at all. Without the
//! variables these tests skip, except under `CI=true`.

use std::path::PathBuf;
use std::time::Duration;

use store::postgres::CodeEvent;
use store::{CertificateProblem, KvPutOptions, Quota, Store, StoreError, TlsFailure};

use crate::backend::{self, Fixture};
use crate::shared::next_event;

const TLS_ENV: &str = "FUNCTIONS_TEST_POSTGRES_TLS";
const CERTS_ENV: &str = "FUNCTIONS_TEST_POSTGRES_TLS_CERTS";

/// The TLS-only server: its URL (no TLS parameters) and the directory of certificates.
struct TlsServer {
    url: String,
    certs: PathBuf,
}

impl TlsServer {
    fn from_env() -> Option<Self> {
        let url = backend::url_from_env(TLS_ENV, "--tls starts one")?;
        let certs = backend::url_from_env(CERTS_ENV, "--tls sets it")?;
        Some(TlsServer {
            url,
            certs: PathBuf::from(certs),
        })
    }

    fn file(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    /// The URL with these query parameters.
    fn with(&self, query: &str) -> String {
        format!("{}?{query}", self.url)
    }

    /// `verify-full` with the CA that signed the server's certificate.
    fn verify_full(&self) -> String {
        self.with(&format!(
            "sslmode=verify-full&sslrootcert={}",
            self.file("ca.crt")
        ))
    }

    /// The password in the URL, which no error may show.
    fn password(&self) -> String {
        password_of(&self.url)
    }
}

fn password_of(url: &str) -> String {
    let credentials = &url[url.find("://").expect("a URL") + 3..url.find('@').expect("a user")];
    credentials
        .split_once(':')
        .expect("a password")
        .1
        .to_owned()
}

/// The error connecting to `url` fails with (a test that expected a failure).
async fn connect_error(url: &str) -> StoreError {
    match backend::in_fresh_schema(url).await {
        Ok(f) => {
            f.cleanup().await;
            panic!("connected, but a failure was expected");
        }
        Err(e) => e,
    }
}

/// An error and its causes, as `functions serve` prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text = format!("{text}: {cause}");
        next = cause.source();
    }
    text
}

async fn connect(url: &str) -> Fixture {
    backend::in_fresh_schema(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

async fn tls_version(store: &Store) -> Option<String> {
    store
        .postgres()
        .expect("postgres")
        .tls_session()
        .await
        .expect("pg_stat_ssl")
        .map(|s| s.version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_ca_connects_encrypted_and_kv_works() {
    let Some(server) = TlsServer::from_env() else {
        return;
    };
    let f = connect(&server.verify_full()).await;
    let version = tls_version(&f.store).await;
    assert!(
        version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")),
        "the server sees an encrypted session: {version:?}"
    );
    let kv = f.store.kv();
    kv.put(
        "NS",
        "secret",
        b"over TLS".to_vec(),
        KvPutOptions::default(),
        Quota::default(),
    )
    .await
    .expect("put");
    let entry = kv.get("NS", "secret").await.expect("get");
    assert_eq!(entry.map(|e| e.value), Some(b"over TLS".to_vec()));
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_on_one_node_is_heard_by_another_listening_over_tls() {
    let Some(server) = TlsServer::from_env() else {
        return;
    };
    let f = connect(&server.verify_full()).await;
    // The other node's listener has a connection of its own; the server takes TLS only.
    let other = f.another_node().await;
    let mut events = other.postgres().expect("postgres").watch_code();
    let within = Duration::from_secs(10);
    assert_eq!(next_event(&mut events, within).await, CodeEvent::Resync);
    f.store
        .code()
        .deploy("app", b"1".to_vec(), None)
        .await
        .expect("deploy");
    assert_eq!(
        next_event(&mut events, within).await,
        CodeEvent::Changed("app".into())
    );
    drop(events);
    drop(other);
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_and_require_without_a_ca_encrypt_without_verifying() {
    let Some(server) = TlsServer::from_env() else {
        return;
    };
    // The default is prefer: TLS when the server offers it.
    for url in [server.url.clone(), server.with("sslmode=require")] {
        let f = connect(&url).await;
        assert!(tls_version(&f.store).await.is_some(), "{url}: encrypted");
        f.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_another_ca_fails_verification() {
    let Some(server) = TlsServer::from_env() else {
        return;
    };
    let other_ca = server.file("other-ca.crt");
    // require with a CA file verifies the chain too, as libpq does.
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = server.with(&format!("sslmode={mode}&sslrootcert={other_ca}"));
        let e = connect_error(&url).await;
        let message = e.to_string();
        match e {
            StoreError::Tls(TlsFailure::Certificate {
                mode: m,
                problem: CertificateProblem::UnknownIssuer { roots },
            }) => {
                assert_eq!(m, mode);
                assert!(roots.contains("other-ca.crt"), "{roots}");
            }
            other => panic!("{mode}: expected an unknown issuer, got {other:?}"),
        }
        assert!(message.contains("other-ca.crt"), "{message}");
        assert!(!message.contains(&server.password()), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_to_a_name_the_certificate_lacks_fails_but_verify_ca_connects() {
    let Some(server) = TlsServer::from_env() else {
        return;
    };
    // The same server, reached at 127.0.0.1, under a name its certificate does not have.
    let renamed = server
        .url
        .replacen("@localhost:", "@wrong-name.invalid:", 1);
    let ca = server.file("ca.crt");
    let url = format!("{renamed}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}");
    match connect_error(&url).await {
        StoreError::Tls(TlsFailure::Certificate {
            mode: "verify-full",
            problem: CertificateProblem::WrongHost { host, presented },
        }) => {
            assert_eq!(host, "wrong-name.invalid");
            assert!(presented.iter().any(|n| n == "localhost"), "{presented:?}");
        }
        other => panic!("expected a wrong host name, got {other:?}"),
    }
    let url = format!("{renamed}?hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}");
    let f = connect(&url).await;
    assert!(tls_version(&f.store).await.is_some());
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_text_to_the_tls_only_server_is_refused_by_the_server() {
    let Some(server) = TlsServer::from_env() else {
        return;
    };
    let e = connect_error(&server.with("sslmode=disable")).await;
    let message = chain(&e);
    let StoreError::Backend(source) = e else {
        panic!("expected the server's refusal, got {e:?}");
    };
    let pg = source
        .downcast_ref::<tokio_postgres::Error>()
        .expect("a PostgreSQL error");
    assert_eq!(
        pg.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    );
    // The server's own words reach the operator (`functions serve` prints the chain).
    assert!(message.contains("no encryption"), "{message}");
    assert!(!message.contains(&server.password()), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_to_a_server_without_tls_fails_saying_so_and_prefer_connects() {
    let Some(url) = backend::url_from_env(backend::POSTGRES_ENV, "starts a database") else {
        return;
    };
    let not_supported = |mode: &str, e: StoreError| {
        let message = e.to_string();
        match e {
            StoreError::Tls(TlsFailure::NotSupported { mode: m }) => assert_eq!(m, mode),
            other => panic!("{mode}: expected `does not support TLS`, got {other:?}"),
        }
        assert!(message.contains("does not support TLS"), "{message}");
        assert!(!message.contains(&password_of(&url)), "{message}");
    };
    not_supported(
        "require",
        connect_error(&format!("{url}?sslmode=require")).await,
    );
    for url in [url.clone(), format!("{url}?sslmode=prefer")] {
        let f = connect(&url).await;
        assert_eq!(tls_version(&f.store).await, None, "{url}: clear text");
        f.cleanup().await;
    }
    // verify-full needs a CA file: any will do, the server never shows a certificate.
    if let Some(server) = TlsServer::from_env() {
        let query = format!("sslmode=verify-full&sslrootcert={}", server.file("ca.crt"));
        not_supported(
            "verify-full",
            connect_error(&format!("{url}?{query}")).await,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_logs_in_the_role_it_names() {
    let Some(server) = TlsServer::from_env() else {
        return;
    };
    // `certuser` may log in with its certificate only (a `cert` rule, no password).
    let at = server.url.find('@').expect("credentials");
    let certuser = format!("postgres://certuser{}", &server.url[at..]);
    let ca = server.file("ca.crt");
    let with_cert = format!(
        "{certuser}?sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
        server.file("client.crt"),
        server.file("client.key")
    );
    let f = connect(&with_cert).await;
    assert!(tls_version(&f.store).await.is_some());
    f.cleanup().await;
    let e = connect_error(&format!("{certuser}?sslmode=verify-full&sslrootcert={ca}")).await;
    let StoreError::Backend(source) = &e else {
        panic!("expected the server's refusal, got {e:?}");
    };
    let pg = source
        .downcast_ref::<tokio_postgres::Error>()
        .expect("a PostgreSQL error");
    assert_eq!(
        pg.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{e}"
    );
}

/// The files are read before any connection, so these need no server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_empty_or_mismatched_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "just text\n").expect("write");
    let missing = dir.path().join("missing.pem");
    let url = "postgres://u:hunter2@127.0.0.1:1/db";
    for (query, parameter, path) in [
        (
            format!("sslmode=verify-full&sslrootcert={}", missing.display()),
            "sslrootcert",
            &missing,
        ),
        (
            format!("sslmode=verify-ca&sslrootcert={}", empty.display()),
            "sslrootcert",
            &empty,
        ),
        (
            format!("sslrootcert={}", not_pem.display()),
            "sslrootcert",
            &not_pem,
        ),
        (
            format!("sslcert={}&sslkey={}", missing.display(), empty.display()),
            "sslcert",
            &missing,
        ),
    ] {
        let e = match Store::connect_postgres(&format!("{url}?{query}")).await {
            Ok(_) => panic!("{query}: connected"),
            Err(e) => e,
        };
        let message = e.to_string();
        match e {
            StoreError::TlsFile {
                parameter: p,
                path: found,
                ..
            } => {
                assert_eq!(p, parameter, "{message}");
                assert_eq!(&found, path, "{message}");
            }
            other => panic!("{query}: expected a file error, got {other:?}"),
        }
        assert!(!message.contains("hunter2"), "{message}");
    }
    // A key that is not the certificate's.
    if let Some(server) = TlsServer::from_env() {
        let query = format!(
            "sslcert={}&sslkey={}",
            server.file("client.crt"),
            server.file("server.key")
        );
        match Store::connect_postgres(&format!("{url}?{query}")).await {
            Err(StoreError::TlsFile {
                parameter: "sslkey",
                ..
            }) => {}
            Err(other) => panic!("expected a key mismatch, got {other:?}"),
            Ok(_) => panic!("connected"),
        }
    }
    match Store::connect_postgres(&format!("{url}?sslmode=verify-everything")).await {
        Err(StoreError::InvalidTlsParameter { parameter, reason }) => {
            assert_eq!(parameter, "sslmode");
            assert!(reason.contains("verify-full"), "{reason}");
        }
        Err(other) => panic!("expected a bad sslmode, got {other:?}"),
        Ok(_) => panic!("connected"),
    }
}
