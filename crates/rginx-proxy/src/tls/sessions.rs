//! Session resumption as nginx sets it up (`ngx_ssl_session_cache`):
//! tickets sealed with a key made when the configuration is loaded (the
//! master's, so every worker forked from it opens every other's tickets,
//! as nginx's workers share the keys OpenSSL made in the master), and a
//! cache of sessions by ID; both honour `ssl_session_timeout`, which
//! rustls' own ticketer and cache do not know.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::aead::{self, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::{ProducesTickets, StoresServerSessions};

/// Seconds since the epoch, the time sessions are stamped with.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A session's stamp: when it was made (8 bytes, before its data).
const STAMP: usize = 8;

/// Prepends the time to `data`.
fn stamped(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(STAMP + data.len());
    out.extend_from_slice(&now().to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// The data of a stamped session still within `lifetime`.
fn fresh(stamped: &[u8], lifetime: u64) -> Option<&[u8]> {
    let (stamp, data) = stamped.split_first_chunk::<STAMP>()?;
    let made = u64::from_be_bytes(*stamp);
    (now().saturating_sub(made) <= lifetime).then_some(data)
}

/// Tickets sealed with ChaCha20-Poly1305: the key's name (16 bytes), a
/// nonce, then the sealed session with its time. The first key seals;
/// any opens the tickets that name it.
pub struct Tickets {
    keys: Vec<([u8; 16], LessSafeKey)>,
    lifetime: u32,
    random: SystemRandom,
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Tickets {
    /// A ticket key made now; tickets hold for `lifetime`.
    pub fn new(lifetime: Duration) -> Result<Arc<Tickets>, String> {
        let random = SystemRandom::new();
        let mut material = [0u8; 48];
        random
            .fill(&mut material)
            .map_err(|_| "no random bytes for the session ticket key".to_string())?;
        Tickets::from_files(&[material.to_vec()], lifetime)
    }

    /// Keys made from the contents of `ssl_session_ticket_key` files (48
    /// or 80 bytes each, checked by the caller): the first 16 bytes name
    /// the key, the SHA-256 of the rest is its secret.
    pub fn from_files(files: &[Vec<u8>], lifetime: Duration) -> Result<Arc<Tickets>, String> {
        let mut keys = Vec::with_capacity(files.len());
        for material in files {
            let (name, rest) = material
                .split_first_chunk::<16>()
                .ok_or_else(|| "a session ticket key is too short".to_string())?;
            let secret = ring::digest::digest(&ring::digest::SHA256, rest);
            let key = UnboundKey::new(&aead::CHACHA20_POLY1305, secret.as_ref())
                .map_err(|_| "cannot make the session ticket key".to_string())?;
            keys.push((*name, LessSafeKey::new(key)));
        }
        if keys.is_empty() {
            return Err("no session ticket key".to_string());
        }
        Ok(Arc::new(Tickets {
            keys,
            lifetime: u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX),
            random: SystemRandom::new(),
        }))
    }
}

impl ProducesTickets for Tickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let (name, key) = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut sealed = stamped(plain);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(name),
            &mut sealed,
        )
        .ok()?;
        let mut out = Vec::with_capacity(name.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(name);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let (name, rest) = ticket.split_first_chunk::<16>()?;
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
        let (name, key) = self.keys.iter().find(|(n, _)| n == name)?;
        let mut sealed = sealed.to_vec();
        let opened = key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(name),
                &mut sealed,
            )
            .ok()?;
        fresh(opened, u64::from(self.lifetime)).map(<[u8]>::to_vec)
    }
}

/// rustls' cache of sessions by ID, each kept for `ssl_session_timeout`.
#[derive(Debug)]
pub struct SessionCache {
    inner: Arc<dyn StoresServerSessions>,
    lifetime: u64,
}

impl SessionCache {
    /// A cache of up to `size` sessions, each valid for `lifetime`.
    pub fn new(size: usize, lifetime: Duration) -> Arc<SessionCache> {
        Arc::new(SessionCache {
            inner: rustls::server::ServerSessionMemoryCache::new(size),
            lifetime: lifetime.as_secs(),
        })
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.inner.put(key, stamped(&value))
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let value = self.inner.get(key)?;
        fresh(&value, self.lifetime).map(<[u8]>::to_vec)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let value = self.inner.take(key)?;
        fresh(&value, self.lifetime).map(<[u8]>::to_vec)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// `ssl_session_cache none`: a session ID is given, and forgotten (what
/// OpenSSL does with nginx's `SSL_SESS_CACHE_NO_INTERNAL_STORE`).
#[derive(Debug)]
pub struct KeepsNone;

impl StoresServerSessions for KeepsNone {
    fn put(&self, _: Vec<u8>, _: Vec<u8>) -> bool {
        true
    }

    fn get(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn take(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_only_under_its_key_and_unaltered() {
        let tickets = Tickets::new(Duration::from_secs(300)).unwrap();
        let sealed = tickets.encrypt(b"session").unwrap();
        assert_eq!(tickets.decrypt(&sealed).as_deref(), Some(&b"session"[..]));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(tickets.decrypt(&altered).is_none());
        let other = Tickets::new(Duration::from_secs(300)).unwrap();
        assert!(other.decrypt(&sealed).is_none());
        assert!(tickets.decrypt(&sealed[..20]).is_none());
        // keys from the same files open each other's tickets; a later key
        // opens what an earlier configuration sealed
        let a = vec![1u8; 48];
        let b = vec![2u8; 80];
        let old = Tickets::from_files(std::slice::from_ref(&a), Duration::from_secs(300)).unwrap();
        let new = Tickets::from_files(&[b, a], Duration::from_secs(300)).unwrap();
        let sealed = old.encrypt(b"s").unwrap();
        assert_eq!(new.decrypt(&sealed).as_deref(), Some(&b"s"[..]));
        assert!(old.decrypt(&new.encrypt(b"s").unwrap()).is_none());
    }

    #[test]
    fn sessions_past_their_lifetime_are_not_resumed() {
        let old = {
            let mut v = (now() - 301).to_be_bytes().to_vec();
            v.extend_from_slice(b"s");
            v
        };
        assert!(fresh(&old, 300).is_none());
        assert_eq!(fresh(&stamped(b"s"), 300), Some(&b"s"[..]));
        let cache = SessionCache::new(4, Duration::from_secs(300));
        assert!(cache.put(b"id".to_vec(), b"v".to_vec()));
        assert_eq!(cache.get(b"id").as_deref(), Some(&b"v"[..]));
    }
}
