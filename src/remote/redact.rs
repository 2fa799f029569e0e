//! Keeping secrets out of output.
//!
//! object_store 0.14 prints request URLs in full in its errors (user info, SAS query tokens,
//! presigned signatures), and cloud error bodies can echo headers. Everything mlv shows about a
//! remote goes through [`scrub`]: URLs lose their user info and query string, known secret
//! parameters and PEM keys are masked, and the literal values of the remote's secret options are
//! replaced wherever they appear (plain or percent-encoded).

use std::error::Error;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

/// What a hidden value is replaced with.
pub const MASK: &str = "***";

/// Parameter and header names (lowercase, with their separator) whose values are credentials.
const SECRET_PARAMS: &[&str] = &[
    "sig=",
    "signature=",
    "x-amz-signature=",
    "x-amz-security-token=",
    "x-goog-signature=",
    "accountkey=",
    "sharedaccesssignature=",
    "access_token=",
    "\"private_key\":",
    "\"access_token\":",
    "\"refresh_token\":",
    "\"client_secret\":",
    "\"secret_access_key\":",
    "authorization:",
    "x-amz-security-token:",
    "aws_secret_access_key=",
    "aws_session_token=",
];

/// Secret values shorter than this are not searched for literally (too many false hits).
const MIN_LITERAL: usize = 6;

/// A URL with its user info and query string hidden: `https://***@host/p?***`.
pub fn redact_url(url: &str) -> String {
    scrub(url, &[])
}

/// Scrubs free text (an error message, a URL) of credentials. `secrets` are literal values to
/// hide wherever they occur.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        let s = s.trim();
        if s.len() < MIN_LITERAL {
            continue;
        }
        out = out.replace(s, MASK);
        let encoded = utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        if encoded != s {
            out = out.replace(&encoded, MASK);
            out = out.replace(&encoded.to_lowercase(), MASK);
        }
    }
    out = scrub_urls(&out);
    for p in SECRET_PARAMS {
        out = mask_values_after(&out, p);
    }
    scrub_pem(&out)
}

/// The message of an error and all its sources, without repeating text a source's message
/// already contributed, scrubbed.
pub fn scrub_error(err: &(dyn Error + 'static), secrets: &[String]) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !msg.is_empty() && !text.contains(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
        source = s.source();
    }
    let mut out = scrub(text.trim(), secrets);
    if out.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(" [...]");
    }
    out
}

/// Error details longer than this (server XML bodies) are cut.
const MAX_DETAIL: usize = 1500;

fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '\\')
}

/// Removes user info and query strings from every `scheme://` URL in `text`.
fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        let end = after.find(ends_url).unwrap_or(after.len());
        let (url_tail, remainder) = after.split_at(end);
        out.push_str(&scrub_url_tail(url_tail));
        rest = remainder;
    }
    out.push_str(rest);
    out
}

/// `url_tail` is what follows `scheme://`.
fn scrub_url_tail(tail: &str) -> String {
    let auth_end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    let (authority, path_etc) = tail.split_at(auth_end);
    let mut out = String::new();
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(MASK);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    match path_etc.find('?') {
        Some(q) => {
            out.push_str(&path_etc[..q]);
            out.push('?');
            out.push_str(MASK);
            if let Some(h) = path_etc[q..].find('#') {
                out.push_str(&path_etc[q + h..]);
            }
        }
        None => out.push_str(path_etc),
    }
    out
}

/// Masks the value following each case-insensitive occurrence of `pattern` (at a word start).
fn mask_values_after(text: &str, pattern: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(pattern) {
        let start = from + found;
        let value_start = start + pattern.len();
        from = value_start;
        let at_boundary = start == 0
            || !lower[..start].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !at_boundary {
            continue;
        }
        // Skip spaces and one opening quote after `:` separators.
        let mut v = value_start;
        let bytes = text.as_bytes();
        while v < text.len() && bytes[v] == b' ' {
            v += 1;
        }
        let quoted = v < text.len() && bytes[v] == b'"';
        if quoted {
            v += 1;
        }
        let header = pattern.ends_with(':') && !pattern.starts_with('"');
        let value_end = text[v..]
            .find(|c: char| {
                if quoted {
                    c == '"'
                } else if header {
                    c == '\n' || c == '\r'
                } else {
                    c.is_whitespace() || matches!(c, '&' | ',' | ';' | '"' | '\'' | '<' | ')')
                }
            })
            .map(|i| v + i)
            .unwrap_or(text.len());
        if value_end > v {
            out.push_str(&text[last..v]);
            out.push_str(MASK);
            last = value_end;
            from = value_end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Replaces PEM blocks (`-----BEGIN ...-----` to `-----END ...-----`) with a mask.
fn scrub_pem(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(b) = rest.find("-----BEGIN") {
        out.push_str(&rest[..b]);
        let after = &rest[b..];
        let end = after
            .find("-----END")
            .and_then(|e| after[e + 8..].find("-----").map(|d| e + 8 + d + 5))
            .unwrap_or(after.len());
        out.push_str(MASK);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_userinfo_and_query() {
        assert_eq!(
            redact_url("https://user:pa55@host:9000/b/k?x=1"),
            "https://***@host:9000/b/k?***"
        );
        assert_eq!(redact_url("s3://bucket/prefix"), "s3://bucket/prefix");
        assert_eq!(redact_url("/local/path"), "/local/path");
        assert_eq!(
            redact_url("https://acct.blob.core.windows.net/c/p?sv=2022-11-02&sig=abc%2Bdef#frag"),
            "https://acct.blob.core.windows.net/c/p?***#frag"
        );
    }

    #[test]
    fn object_store_retry_error_with_sas() {
        // The shape object_store 0.14.2 prints for an Azure request signed with a SAS token.
        let e = "Generic MicrosoftAzure error: Error performing PUT \
                 https://acct.blob.core.windows.net/data/ab/abcd?sv=2022-11-02&ss=b&srt=co&sp=rwdlac\
                 &se=2030-01-01T00:00:00Z&sig=Zm9vYmFyYmF6cXV4%3D in 120ms, after 3 retries, \
                 max_retries: 3, retry_timeout: 30s  - Server returned non-2xx status code: \
                 403 Forbidden: <Error><Code>AuthenticationFailed</Code></Error>";
        let s = scrub(e, &[]);
        assert!(!s.contains("Zm9vYmFyYmF6cXV4"), "{s}");
        assert!(!s.contains("sp=rwdlac"), "{s}");
        assert!(
            s.contains("https://acct.blob.core.windows.net/data/ab/abcd?***"),
            "{s}"
        );
        assert!(s.contains("403 Forbidden"), "{s}");
    }

    #[test]
    fn object_store_error_with_userinfo_endpoint() {
        let e =
            "Generic S3 error: Error performing HEAD http://minio:minio-secret-pw@127.0.0.1:9000/b/ab/abcd \
                 in 5.1s - HTTP error: error sending request";
        let s = scrub(e, &[]);
        assert!(!s.contains("minio-secret-pw") && !s.contains("minio:"), "{s}");
        assert!(s.contains("http://***@127.0.0.1:9000/b/ab/abcd in 5.1s"), "{s}");
    }

    #[test]
    fn presigned_and_header_values() {
        let e = "request to https://b.s3.amazonaws.com/k failed; X-Amz-Signature=deadbeef00 \
                 X-Amz-Security-Token=FQoGZXIvYXdzEBY, Authorization: AWS4-HMAC-SHA256 Credential=AKID/x, Signature=cafe\n\
                 next line";
        let s = scrub(e, &[]);
        for leaked in ["deadbeef00", "FQoGZXIvYXdzEBY", "cafe", "AWS4-HMAC"] {
            assert!(!s.contains(leaked), "{leaked} in {s}");
        }
        assert!(s.ends_with("next line"), "{s}");
    }

    #[test]
    fn literal_secrets_and_encodings() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY".to_string();
        let e = format!(
            "SignatureDoesNotMatch: secret {secret} or encoded {} appears",
            utf8_percent_encode(&secret, NON_ALPHANUMERIC)
        );
        let s = scrub(&e, std::slice::from_ref(&secret));
        assert!(!s.contains("wJalrXUtnFEMI"), "{s}");
        // Short values are not searched (would mask ordinary words).
        assert_eq!(scrub("a b c", &["b".into()]), "a b c");
    }

    #[test]
    fn service_account_json_and_pem() {
        let e = r#"invalid key {"type":"service_account","private_key": "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----\n","client_email":"x@y"}"#;
        let s = scrub(e, &[]);
        assert!(!s.contains("MIIEv"), "{s}");
        assert!(s.contains("client_email"), "{s}");
        let pem = "key: -----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY----- done";
        assert_eq!(scrub(pem, &[]), "key: *** done");
    }

    #[test]
    fn error_chain_is_joined_without_repeats() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "GET https://h/p?sig=SECRETSIG failed")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(
            scrub_error(&e, &[]),
            "GET https://h/p?*** failed: connection refused"
        );
    }
}
