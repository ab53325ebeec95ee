//! [`DatagramSealer`]: sealing UDP datagrams, with replay protection.
//!
//! Layout:
//!
//! ```text
//! MAGIC(1) VERSION(1) KEY_ID(4, BE) NONCE(24) CIPHERTEXT(TIMESTAMP_MS(8, BE) ‖ PAYLOAD)‖TAG(16)
//! ```
//!
//! The nonce is random (192 bits: no coordination needed between senders
//! sharing a key). The associated data is a label, the cluster name and the
//! header. The timestamp is the sender's wall clock in milliseconds since
//! the Unix epoch; the receiver's [`ReplayGuard`] accepts it within its
//! window and each nonce once. Clocks of a cluster must agree to within the
//! window (NTP; the default window is 30 s).

use chacha20poly1305::{
    XNonce,
    aead::{Aead, OsRng, Payload, rand_core::RngCore},
};

use crate::{KeyId, Keyring, MAGIC, Rejection, ReplayGuard, SealError, VERSION, push_cluster};

const LABEL: &[u8] = b"vantage-seal/datagram/1";
const HEADER_LEN: usize = 6;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// What sealing adds to a datagram's payload.
pub const DATAGRAM_OVERHEAD: usize = HEADER_LEN + NONCE_LEN + 8 + TAG_LEN;

/// Seals outgoing and opens incoming datagrams of one socket.
#[derive(Debug)]
pub struct DatagramSealer {
    keyring: Keyring,
    aad_prefix: Vec<u8>,
    guard: ReplayGuard,
}

impl DatagramSealer {
    /// A sealer for cluster `cluster` whose receiver accepts timestamps
    /// within `window_ms` of its clock and remembers up to `capacity`
    /// nonces (see [`ReplayGuard`]).
    pub fn new(keyring: Keyring, cluster: &str, window_ms: u64, capacity: usize) -> DatagramSealer {
        let mut aad_prefix = LABEL.to_vec();
        push_cluster(&mut aad_prefix, cluster.as_bytes());
        DatagramSealer {
            keyring,
            aad_prefix,
            guard: ReplayGuard::new(window_ms, capacity),
        }
    }

    /// The keyring (shared: changes apply to this sealer at once).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn aad(&self, header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.aad_prefix.len() + HEADER_LEN);
        aad.extend_from_slice(&self.aad_prefix);
        aad.extend_from_slice(header);
        aad
    }

    /// Seals `payload`, stamped with `now_ms` (wall clock, ms since the
    /// Unix epoch), with the keyring's primary key.
    pub fn seal(&self, now_ms: u64, payload: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = self.keyring.primary();
        let mut datagram = Vec::with_capacity(DATAGRAM_OVERHEAD + payload.len());
        datagram.extend_from_slice(&[MAGIC, VERSION]);
        datagram.extend_from_slice(&key.id().0.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        datagram.extend_from_slice(&nonce);
        let mut plaintext = Vec::with_capacity(8 + payload.len());
        plaintext.extend_from_slice(&now_ms.to_be_bytes());
        plaintext.extend_from_slice(payload);
        let aad = self.aad(&datagram[..HEADER_LEN]);
        let sealed = key
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        datagram.extend_from_slice(&sealed);
        Ok(datagram)
    }

    /// Opens a datagram received at `now_ms`: authenticates it, then checks
    /// its timestamp and nonce. Nothing is remembered for a datagram that
    /// does not authenticate, so forgeries cannot fill the nonce memory.
    pub fn open(&mut self, now_ms: u64, datagram: &[u8]) -> Result<Vec<u8>, Rejection> {
        match datagram.first() {
            Some(&MAGIC) => {}
            _ => return Err(Rejection::Plaintext),
        }
        if datagram.len() < DATAGRAM_OVERHEAD || datagram[1] != VERSION {
            return Err(Rejection::Malformed);
        }
        let id = KeyId(u32::from_be_bytes([
            datagram[2],
            datagram[3],
            datagram[4],
            datagram[5],
        ]));
        let key = self.keyring.find(id).ok_or(Rejection::UnknownKey(id))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&datagram[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
        let aad = self.aad(&datagram[..HEADER_LEN]);
        let mut plaintext = key
            .cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &datagram[HEADER_LEN + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map_err(|_| Rejection::Forged)?;
        let Some(stamp) = plaintext.get(..8) else {
            return Err(Rejection::Malformed);
        };
        let mut ts = [0u8; 8];
        ts.copy_from_slice(stamp);
        self.guard.accept(now_ms, u64::from_be_bytes(ts), nonce)?;
        plaintext.drain(..8);
        Ok(plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    const NOW: u64 = 1_795_000_000_000;

    #[test]
    fn round_trip_replay_stale_and_foreign_datagrams() {
        let keys = Keyring::new(Key::generate());
        let a = DatagramSealer::new(keys.clone(), "prod", 30_000, 1024);
        let mut b = DatagramSealer::new(keys.clone(), "prod", 30_000, 1024);
        let d = a.seal(NOW, b"ping").expect("seal");
        assert_eq!(d.len(), 4 + DATAGRAM_OVERHEAD);
        assert_eq!(b.open(NOW + 5, &d).expect("open"), b"ping");
        assert_eq!(b.open(NOW + 6, &d), Err(Rejection::Replayed));
        let old = a.seal(NOW - 31_000, b"old").expect("seal");
        assert_eq!(b.open(NOW, &old), Err(Rejection::Stale));
        let future = a.seal(NOW + 31_000, b"future").expect("seal");
        assert_eq!(b.open(NOW, &future), Err(Rejection::Stale));

        let mut staging = DatagramSealer::new(keys.clone(), "staging", 30_000, 1024);
        let fresh = a.seal(NOW, b"hi").expect("seal");
        assert_eq!(staging.open(NOW, &fresh), Err(Rejection::Forged));
        let mut stranger = DatagramSealer::new(Keyring::new(Key::generate()), "prod", 30_000, 1024);
        assert_eq!(
            stranger.open(NOW, &fresh),
            Err(Rejection::UnknownKey(keys.primary_id()))
        );
        assert_eq!(b.open(NOW, b"plain swim"), Err(Rejection::Plaintext));
        assert_eq!(b.open(NOW, &fresh[..20]), Err(Rejection::Malformed));
        for i in 0..fresh.len() {
            let mut bad = fresh.clone();
            bad[i] ^= 0x80;
            assert!(
                b.open(NOW, &bad).is_err(),
                "flipping byte {i} went unnoticed"
            );
        }
        assert_eq!(b.open(NOW, &fresh).expect("still opens once"), b"hi");
    }

    #[test]
    fn forgeries_are_not_remembered() {
        let keys = Keyring::new(Key::generate());
        let mut b = DatagramSealer::new(keys.clone(), "prod", 30_000, 1024);
        let a = DatagramSealer::new(keys, "prod", 30_000, 1024);
        for _ in 0..100 {
            let mut d = a.seal(NOW, b"x").expect("seal");
            let last = d.len() - 1;
            d[last] ^= 1;
            assert_eq!(b.open(NOW, &d), Err(Rejection::Forged));
        }
        assert!(b.guard.is_empty());
    }

    #[test]
    fn rotation_loses_no_datagram() {
        let (old, new) = (Key::generate(), Key::generate());
        let ra = Keyring::new(old.clone());
        let rb = Keyring::new(old.clone());
        let a = DatagramSealer::new(ra.clone(), "prod", 30_000, 1024);
        let mut b = DatagramSealer::new(rb.clone(), "prod", 30_000, 1024);
        let mut t = NOW;
        let mut check = |a: &DatagramSealer, b: &mut DatagramSealer| {
            t += 1;
            let d = a.seal(t, b"m").expect("seal");
            assert_eq!(b.open(t, &d).expect("open"), b"m");
        };
        ra.install(new.clone());
        rb.install(new.clone());
        check(&a, &mut b);
        ra.use_primary(new.id()).expect("installed");
        check(&a, &mut b);
        rb.use_primary(new.id()).expect("installed");
        ra.remove(old.id()).expect("removed");
        rb.remove(old.id()).expect("removed");
        check(&a, &mut b);
    }
}
