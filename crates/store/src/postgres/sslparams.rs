//! libpq's TLS parameters, taken out of a connection string before tokio-postgres parses the
//! rest.
//!
//! People paste URLs from their provider: `?sslmode=verify-full&sslrootcert=global-bundle.pem`.
//! tokio-postgres knows `sslmode=disable|prefer|require` only, and rejects `sslrootcert`,
//! `sslcert` and `sslkey` as unknown options, so [`split`] removes those four parameters
//! (from a `postgres://` URL's query or from the `key=value` form), checks them and returns
//! the rest of the string for tokio-postgres, which handles everything else (`channel_binding`,
//! `sslnegotiation`, `hostaddr`, ...).
//!
//! The rules are libpq's: `sslmode` defaults to `prefer`; `allow` is accepted and treated as
//! `prefer` (both connect with or without TLS, `prefer` tries TLS first); `verify-ca` and
//! `verify-full` need `sslrootcert` (libpq's default file `~/.postgresql/root.crt` is not read);
//! `sslrootcert=system` means the platform's roots and then `sslmode` must be `verify-full`
//! (its default then); `sslcert` and `sslkey` go together.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

use crate::error::{excerpt, StoreError};

/// How much protection a connection asks for, as libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Clear text only.
    Disable,
    /// TLS when the server offers it, else clear text (`allow` too).
    Prefer,
    /// TLS or fail; the certificate is checked only when `sslrootcert` is given.
    Require,
    /// TLS, and the certificate chains to `sslrootcert`.
    VerifyCa,
    /// TLS, the certificate chains to `sslrootcert` and names the host.
    VerifyFull,
}

impl SslMode {
    /// The parameter value (as the user would write it back).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted certificate authorities come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RootCerts {
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
    /// The platform's trust store (`sslrootcert=system`).
    System,
}

/// The TLS parameters of one connection string, checked against each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub(crate) mode: SslMode,
    pub(crate) roots: Option<RootCerts>,
    /// The client certificate (PEM, chain first) and its private key (PEM).
    pub(crate) client: Option<(PathBuf, PathBuf)>,
}

/// The parameters this module takes out of the string.
const OURS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Splits `url` into the connection string for tokio-postgres (without the TLS parameters)
/// and the TLS parameters. A string this module cannot tokenize is returned whole, for
/// tokio-postgres to report what is wrong with it.
pub(crate) fn split(url: &str) -> Result<(String, TlsParams), StoreError> {
    let (rest, found) = match url_prefix_len(url) {
        Some(prefix) => split_url(url, prefix)?,
        None => split_key_values(url),
    };
    Ok((rest, TlsParams::check(found)?))
}

fn url_prefix_len(url: &str) -> Option<usize> {
    ["postgres://", "postgresql://"]
        .into_iter()
        .find(|p| url.starts_with(p))
        .map(str::len)
}

/// A URL: the parameters are the query's `key=value` pairs, percent-encoded. As in
/// tokio-postgres, the credentials end at the first `@` and the query starts at the first `?`
/// after them.
fn split_url(url: &str, prefix: usize) -> Result<(String, Vec<(String, String)>), StoreError> {
    let after_credentials = url[prefix..].find('@').map_or(prefix, |at| prefix + at + 1);
    let Some(q) = url[after_credentials..].find('?') else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let head = &url[..after_credentials + q];
    let query = &url[after_credentials + q + 1..];
    let mut kept = Vec::new();
    let mut found = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let ours = pair.split_once('=').and_then(|(key, value)| {
            let key = percent_decode_str(key).decode_utf8().ok()?;
            OURS.contains(&key.as_ref())
                .then(|| (key.into_owned(), value))
        });
        match ours {
            Some((key, value)) => {
                let value = percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|_| invalid(&key, "the value is not UTF-8 once percent-decoded"))?;
                found.push((key, value.into_owned()));
            }
            None => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((rest, found))
}

/// The `key=value key2='quoted value'` form, tokenized as tokio-postgres does; the string is
/// rebuilt from the pairs that are not ours, every value quoted.
fn split_key_values(s: &str) -> (String, Vec<(String, String)>) {
    let Some(pairs) = key_values(s) else {
        return (s.to_owned(), Vec::new());
    };
    if !pairs.iter().any(|(k, _)| OURS.contains(&k.as_str())) {
        return (s.to_owned(), Vec::new());
    }
    let mut kept = Vec::new();
    let mut found = Vec::new();
    for (key, value) in pairs {
        if OURS.contains(&key.as_str()) {
            found.push((key, value));
        } else {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    (kept.join(" "), found)
}

/// Tokenizes the `key=value` form; `None` when it is malformed.
fn key_values(s: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.peek().is_none() {
            return Some(pairs);
        }
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if key.is_empty() || it.next() != Some('=') {
            return None;
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next()? {
                    '\'' => break,
                    '\\' => value.push(it.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(escaped) = it.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return None;
            }
        }
        pairs.push((key, value));
    }
}

fn invalid(parameter: &str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidTlsParameter {
        parameter: parameter.to_owned(),
        reason: reason.into(),
    }
}

impl TlsParams {
    /// Checks the parameters found (the last of a repeated one wins, as in libpq).
    fn check(found: Vec<(String, String)>) -> Result<Self, StoreError> {
        let mut mode = None;
        let mut roots = None;
        let mut cert = None;
        let mut key = None;
        for (name, value) in found {
            match name.as_str() {
                "sslmode" => {
                    mode = Some(match value.as_str() {
                        "disable" => SslMode::Disable,
                        "allow" | "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(invalid(
                                "sslmode",
                                format!(
                                    "{:?} is not one of disable, allow, prefer, require, \
                                     verify-ca, verify-full",
                                    excerpt(other)
                                ),
                            ))
                        }
                    })
                }
                "sslrootcert" => roots = Some(value),
                "sslcert" => cert = Some(value),
                _ => key = Some(value),
            }
        }
        let roots = match roots.as_deref() {
            None => None,
            Some("") => {
                return Err(invalid(
                    "sslrootcert",
                    "it is empty: name a PEM file of CA certificates, or `system`",
                ))
            }
            Some("system") => Some(RootCerts::System),
            Some(path) => Some(RootCerts::File(PathBuf::from(path))),
        };
        let mode = match (mode, &roots) {
            (None, Some(RootCerts::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
            (Some(mode), Some(RootCerts::System)) if mode != SslMode::VerifyFull => {
                return Err(invalid(
                    "sslmode",
                    format!(
                        "sslmode={} may not be used with sslrootcert=system: use verify-full \
                         (the platform's roots vouch for host names, so the name is always checked)",
                        mode.as_str()
                    ),
                ))
            }
            (Some(mode), _) => mode,
        };
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && roots.is_none() {
            return Err(invalid(
                "sslrootcert",
                format!(
                    "sslmode={} needs sslrootcert: the path of a PEM file of the certificate \
                     authorities to trust (your provider's CA bundle), or sslrootcert=system for \
                     the platform's roots",
                    mode.as_str()
                ),
            ));
        }
        let client = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => {
                Some((PathBuf::from(cert), PathBuf::from(key)))
            }
            (Some(_), _) => {
                return Err(invalid(
                    "sslkey",
                    "sslcert needs sslkey: the PEM file of the certificate's private key",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "sslcert",
                    "sslkey needs sslcert: the PEM file of the client certificate",
                ))
            }
        };
        Ok(TlsParams {
            mode,
            roots,
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (String, TlsParams) {
        split(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn parameter_of(url: &str) -> String {
        match split(url) {
            Err(StoreError::InvalidTlsParameter { parameter, .. }) => parameter,
            other => panic!("{url}: expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn without_parameters_the_url_is_untouched_and_the_mode_is_prefer() {
        for url in [
            "postgres://u:p@db:5432/app",
            "postgres://u:p@db/app?application_name=x",
            "host=db user=u",
        ] {
            let (rest, params) = ok(url);
            assert_eq!(rest, url);
            assert_eq!(params.mode, SslMode::Prefer);
            assert_eq!(params.roots, None);
            assert_eq!(params.client, None);
        }
    }

    #[test]
    fn url_parameters_are_taken_out_and_the_others_kept_in_order() {
        let (rest, params) = ok(
            "postgresql://u:p%3F@db:5432/app?application_name=a&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca%20bundle.pem&connect_timeout=3&sslcert=c.pem&sslkey=k.pem",
        );
        assert_eq!(
            rest,
            "postgresql://u:p%3F@db:5432/app?application_name=a&connect_timeout=3"
        );
        assert_eq!(params.mode, SslMode::VerifyFull);
        assert_eq!(
            params.roots,
            Some(RootCerts::File("/etc/ca bundle.pem".into()))
        );
        assert_eq!(params.client, Some(("c.pem".into(), "k.pem".into())));
        let (rest, params) = ok("postgres://db/app?sslmode=require");
        assert_eq!(rest, "postgres://db/app");
        assert_eq!(params.mode, SslMode::Require);
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        let (rest, params) = ok("postgres://u:pa?ss@db/app?sslmode=disable");
        assert_eq!(rest, "postgres://u:pa?ss@db/app");
        assert_eq!(params.mode, SslMode::Disable);
    }

    #[test]
    fn key_value_parameters_are_taken_out_and_the_rest_requoted() {
        let (rest, params) = ok(
            "host=db password='it''s' user = u sslmode=verify-ca sslrootcert='/a b/ca.pem' dbname=a\\ b",
        );
        // `'it'` then `'s'` would be malformed; tokenizing fails and tokio-postgres reports it.
        assert_eq!(params.mode, SslMode::Prefer);
        assert!(rest.contains("sslmode"));
        let (rest, params) = ok(
            "host=db password='it\\'s' user = u sslmode=verify-ca sslrootcert='/a b/ca.pem' dbname=a\\ b",
        );
        assert_eq!(rest, "host='db' password='it\\'s' user='u' dbname='a b'");
        assert_eq!(params.mode, SslMode::VerifyCa);
        assert_eq!(params.roots, Some(RootCerts::File("/a b/ca.pem".into())));
        let config: tokio_postgres::Config = rest.parse().expect("tokio-postgres parses the rest");
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert_eq!(config.get_dbname(), Some("a b"));
    }

    #[test]
    fn the_last_of_a_repeated_parameter_wins_and_allow_is_prefer() {
        assert_eq!(
            ok("postgres://db/?sslmode=require&sslmode=allow").1.mode,
            SslMode::Prefer
        );
    }

    #[test]
    fn bad_values_name_the_parameter() {
        assert_eq!(parameter_of("postgres://db/?sslmode=strict"), "sslmode");
        assert_eq!(
            parameter_of("postgres://db/?sslmode=verify-full"),
            "sslrootcert"
        );
        assert_eq!(parameter_of("sslmode=verify-ca host=db"), "sslrootcert");
        assert_eq!(parameter_of("postgres://db/?sslrootcert="), "sslrootcert");
        assert_eq!(
            parameter_of("postgres://db/?sslmode=require&sslrootcert=system"),
            "sslmode"
        );
        assert_eq!(parameter_of("postgres://db/?sslcert=c.pem"), "sslkey");
        assert_eq!(parameter_of("postgres://db/?sslkey=k.pem"), "sslcert");
        assert_eq!(parameter_of("postgres://db/?sslmode=%FF"), "sslmode");
        let message = split("postgres://u:secret@db/?sslmode=strict")
            .expect_err("bad mode")
            .to_string();
        assert!(message.contains("sslmode"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn system_roots_default_to_verify_full() {
        let (_, params) = ok("postgres://db/?sslrootcert=system");
        assert_eq!(params.mode, SslMode::VerifyFull);
        assert_eq!(params.roots, Some(RootCerts::System));
        // A CA file with require verifies the chain (libpq's rule), so require stays require.
        let (_, params) = ok("postgres://db/?sslmode=require&sslrootcert=ca.pem");
        assert_eq!(params.mode, SslMode::Require);
    }
}
