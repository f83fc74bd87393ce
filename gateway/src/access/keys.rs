//! API keys: a header (or, for HTTP callers, a query parameter) holding a key the gateway knows
//! by its SHA-256 digest only.
//!
//! Keys are long random strings, so a fast digest is the right store (as for GitHub or Stripe
//! tokens): a slow password hash would only add CPU per call, and nobody guesses a 128-bit key.
//! The presented key's digest selects a candidate by its first 8 bytes, and the whole digest is
//! then compared in constant time, so response times say nothing about how much of a stored
//! digest an attacker's key matched.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One known key: its digest and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// SHA-256 of the key's bytes.
    pub digest: [u8; 32],
    /// The consumer the key identifies.
    pub consumer: String,
    /// The consumer's plan, for limits and analytics.
    pub plan: Option<String>,
}

impl ApiKey {
    /// Parses `sha256:<64 hex digits>`.
    pub fn parse_digest(text: &str) -> Result<[u8; 32], String> {
        let hex = text.strip_prefix("sha256:").ok_or_else(|| {
            "a key is stored as `sha256:<hex digest>`; compute it with `printf %s \"$KEY\" | sha256sum`"
                .to_owned()
        })?;
        if !hex.is_ascii() {
            return Err("the digest holds a character that is not a hex digit".to_owned());
        }
        if hex.len() != 64 {
            return Err(format!(
                "a SHA-256 digest has 64 hex digits; this one has {}",
                hex.len()
            ));
        }
        let not_hex = || "the digest holds a character that is not a hex digit".to_owned();
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| not_hex())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| not_hex())?;
        }
        Ok(digest)
    }
}

/// Who a key belongs to.
#[derive(Debug)]
pub(crate) struct KeyOwner {
    pub(crate) consumer: Arc<str>,
    pub(crate) plan: Option<Arc<str>>,
}

/// A stored digest and whose key it is.
type Stored = ([u8; 32], Arc<KeyOwner>);

/// The known keys.
#[derive(Debug, Default)]
pub(crate) struct KeyStore {
    /// By the first 8 bytes of the digest; each entry keeps the whole digest.
    by_prefix: HashMap<[u8; 8], Vec<Stored>>,
}

impl KeyStore {
    pub(crate) fn new(keys: &[ApiKey]) -> Self {
        let mut store = KeyStore::default();
        for key in keys {
            let owner = Arc::new(KeyOwner {
                consumer: key.consumer.as_str().into(),
                plan: key.plan.as_deref().map(Into::into),
            });
            store
                .by_prefix
                .entry(prefix(&key.digest))
                .or_default()
                .push((key.digest, owner));
        }
        store
    }

    /// The owner of `presented`, if it is a known key.
    pub(crate) fn find(&self, presented: &[u8]) -> Option<&Arc<KeyOwner>> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        self.by_prefix
            .get(&prefix(&digest))?
            .iter()
            .find(|(stored, _)| bool::from(stored.ct_eq(&digest)))
            .map(|(_, owner)| owner)
    }
}

fn prefix(digest: &[u8; 32]) -> [u8; 8] {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    prefix
}

/// `sha256:<hex>` of `key`, as the configuration stores it.
pub fn digest_of(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut text = String::with_capacity(71);
    text.push_str("sha256:");
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_digest_only() {
        let digest = ApiKey::parse_digest(&digest_of("k-123")).unwrap();
        let store = KeyStore::new(&[ApiKey {
            digest,
            consumer: "acme".into(),
            plan: Some("gold".into()),
        }]);
        let owner = store.find(b"k-123").expect("known key");
        assert_eq!(&*owner.consumer, "acme");
        assert_eq!(owner.plan.as_deref(), Some("gold"));
        assert!(store.find(b"k-124").is_none());
        assert!(store.find(b"").is_none());
        // The digest itself is not a key.
        assert!(store.find(digest_of("k-123").as_bytes()).is_none());
    }

    #[test]
    fn digests_are_checked_when_read() {
        assert!(ApiKey::parse_digest("abc").unwrap_err().contains("sha256:"));
        assert!(
            ApiKey::parse_digest("sha256:00")
                .unwrap_err()
                .contains("64 hex")
        );
        let bad = format!("sha256:{}", "g".repeat(64));
        assert!(
            ApiKey::parse_digest(&bad)
                .unwrap_err()
                .contains("hex digit")
        );
        assert_eq!(
            digest_of(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
