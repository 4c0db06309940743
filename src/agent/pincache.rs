//! The optional PIN cache: off unless configured; per (client, carrier, key); each entry bounded by
//! time and by number of uses; wiped when its carrier is removed, when its origin is revoked and
//! when the agent stops.
//!
//! Keys that demand a PIN for every signature (`always_authenticate`) are never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ukey_api::{CarrierId, ObjectId, Pin};

use crate::agent::settings::PinCacheSettings;

/// Who a cached PIN belongs to: the client (origin or program), carrier and key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// `ClientIdentity::describe()` of the client, so one page's PIN never serves another.
    pub client: String,
    /// The carrier.
    pub carrier: CarrierId,
    /// The key.
    pub key: ObjectId,
}

struct Entry {
    pin: Pin,
    expires: Instant,
    uses_left: u32,
}

/// The cache (a no-op when disabled).
pub struct PinCache {
    settings: Option<PinCacheSettings>,
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

impl PinCache {
    /// A cache with these bounds, or a disabled one for `None`.
    pub fn new(settings: Option<PinCacheSettings>) -> Self {
        PinCache { settings: settings.filter(|s| s.seconds > 0 && s.uses > 0), entries: Mutex::new(HashMap::new()) }
    }

    /// Whether caching is on.
    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    /// Takes one use of a cached PIN, if a live one exists.
    pub fn take(&self, key: &CacheKey) -> Option<Pin> {
        self.settings?;
        let mut entries = self.entries.lock().ok()?;
        let now = Instant::now();
        let live = match entries.get_mut(key) {
            Some(e) if e.expires > now && e.uses_left > 0 => {
                e.uses_left -= 1;
                Some(e.pin.clone())
            }
            _ => None,
        };
        if entries.get(key).is_some_and(|e| e.expires <= now || e.uses_left == 0) {
            entries.remove(key);
        }
        live
    }

    /// Remembers a PIN that just worked.
    pub fn store(&self, key: CacheKey, pin: &Pin) {
        let Some(s) = self.settings else { return };
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                key,
                Entry { pin: pin.clone(), expires: Instant::now() + Duration::from_secs(s.seconds), uses_left: s.uses },
            );
        }
    }

    /// Forgets a PIN that stopped working (wrong PIN, changed PIN).
    pub fn forget(&self, key: &CacheKey) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    /// Wipes every PIN of a carrier (removed, PIN changed, reset).
    pub fn wipe_carrier(&self, carrier: &CarrierId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|k, _| &k.carrier != carrier);
        }
    }

    /// Wipes every PIN cached for a client (its origin was revoked: pairing it again must not find
    /// a PIN waiting).
    pub fn wipe_client(&self, client: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|k, _| k.client != client);
        }
    }

    /// Wipes everything.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ukey_api::CarrierKind;

    fn key(client: &str) -> CacheKey {
        CacheKey { client: client.into(), carrier: CarrierId::new(CarrierKind::Soft, &["1"]), key: ObjectId(vec![1]) }
    }

    #[test]
    fn disabled_by_default() {
        let c = PinCache::new(None);
        c.store(key("a"), &Pin::new("1234").unwrap());
        assert!(c.take(&key("a")).is_none());
    }

    #[test]
    fn bounded_by_uses_and_scoped_to_client() {
        let c = PinCache::new(Some(PinCacheSettings { seconds: 60, uses: 2 }));
        c.store(key("a"), &Pin::new("1234").unwrap());
        assert!(c.take(&key("b")).is_none(), "another client never gets it");
        assert!(c.take(&key("a")).is_some());
        assert!(c.take(&key("a")).is_some());
        assert!(c.take(&key("a")).is_none(), "uses exhausted");
    }

    #[test]
    fn wiped_when_the_client_is_revoked() {
        let c = PinCache::new(Some(PinCacheSettings { seconds: 60, uses: 5 }));
        c.store(key("https://a.example"), &Pin::new("1234").unwrap());
        c.store(key("https://b.example"), &Pin::new("1234").unwrap());
        c.wipe_client("https://a.example");
        assert!(c.take(&key("https://a.example")).is_none());
        assert!(c.take(&key("https://b.example")).is_some(), "other clients keep theirs");
    }

    #[test]
    fn wiped_on_removal() {
        let c = PinCache::new(Some(PinCacheSettings { seconds: 60, uses: 5 }));
        c.store(key("a"), &Pin::new("1234").unwrap());
        c.wipe_carrier(&key("a").carrier);
        assert!(c.take(&key("a")).is_none());
    }
}
