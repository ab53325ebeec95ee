//! [`StreamSession`]: sealing the frames of one TCP connection.
//!
//! Frame layout (the body of one length-delimited frame):
//!
//! ```text
//! MAGIC(1) VERSION(1) FLAGS(1) KEY_ID(4, BE) [SALT(16) if FIRST] CIPHERTEXT‖TAG(16)
//! ```
//!
//! - `FIRST` (bit 0): the sender's first frame; it carries the sender's
//!   random session salt.
//! - `BOUND` (bit 1): the sender knew the receiver's salt; every frame after
//!   a sender's first must be bound.
//!
//! The nonce is `sender salt ‖ sequence (u64 BE)` and is never sent; each
//! direction counts its frames from 0. The associated data is a label, the
//! cluster name, the direction, the sequence number, the header, and both
//! salts (the receiver's as zeros if not `BOUND`). So a frame opens only on
//! the connection, in the direction and at the position it was sealed for:
//! replayed, reordered, dropped-then-resent or spliced frames fail
//! authentication. Only a side's first frame can be replayed to start a new
//! connection, and the replayer cannot read the answer nor send the second.

use chacha20poly1305::{
    XNonce,
    aead::{Aead, OsRng, Payload, rand_core::RngCore},
};

use crate::{Key, KeyId, Keyring, MAGIC, Rejection, SealError, VERSION, push_cluster};

const LABEL: &[u8] = b"vantage-seal/stream/1";
const SALT_LEN: usize = 16;
const HEADER_LEN: usize = 7;
const TAG_LEN: usize = 16;
const FIRST: u8 = 1;
const BOUND: u8 = 2;

/// The most a sealed frame adds to its plaintext (a first frame).
pub const STREAM_OVERHEAD: usize = HEADER_LEN + SALT_LEN + TAG_LEN;

/// Which end of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that connected.
    Client,
    /// The end that accepted.
    Server,
}

/// The sealing state of one connection, for one end. Seal every outgoing
/// frame and open every incoming one, in order; after any
/// [`Rejection`] the connection must be closed.
#[derive(Debug)]
pub struct StreamSession {
    keyring: Keyring,
    cluster: Vec<u8>,
    role: Role,
    my_salt: [u8; SALT_LEN],
    peer_salt: Option<[u8; SALT_LEN]>,
    sent: u64,
    received: u64,
}

impl StreamSession {
    /// A session for one end of a new connection of cluster `cluster`, with
    /// a fresh random salt.
    pub fn new(keyring: Keyring, cluster: &str, role: Role) -> StreamSession {
        let mut my_salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut my_salt);
        StreamSession {
            keyring,
            cluster: cluster.as_bytes().to_vec(),
            role,
            my_salt,
            peer_salt: None,
            sent: 0,
            received: 0,
        }
    }

    /// Frames sealed so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Frames opened so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Seals `plaintext` as this end's next frame, with the keyring's
    /// primary key.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        if self.sent == u64::MAX {
            return Err(SealError::Exhausted);
        }
        let first = self.sent == 0;
        if !first && self.peer_salt.is_none() {
            return Err(SealError::AwaitingPeer);
        }
        let flags =
            if first { FIRST } else { 0 } | if self.peer_salt.is_some() { BOUND } else { 0 };
        let key = self.keyring.primary();
        let mut frame = Vec::with_capacity(STREAM_OVERHEAD + plaintext.len());
        frame.extend_from_slice(&[MAGIC, VERSION, flags]);
        frame.extend_from_slice(&key.id().0.to_be_bytes());
        if first {
            frame.extend_from_slice(&self.my_salt);
        }
        let sender = self.role;
        let aad = self.aad(sender, self.sent, &frame[..HEADER_LEN], flags & BOUND != 0);
        let nonce = nonce(&self.my_salt, self.sent);
        let sealed = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        frame.extend_from_slice(&sealed);
        self.sent += 1;
        Ok(frame)
    }

    /// Opens the peer's next frame. On a rejection nothing changes (and the
    /// connection should be closed).
    pub fn open(&mut self, frame: &[u8]) -> Result<Vec<u8>, Rejection> {
        let Some(&magic) = frame.first() else {
            return Err(Rejection::Plaintext);
        };
        if magic != MAGIC {
            return Err(Rejection::Plaintext);
        }
        if frame.len() < HEADER_LEN + TAG_LEN || frame[1] != VERSION {
            return Err(Rejection::Malformed);
        }
        let flags = frame[2];
        let first = self.received == 0;
        // The first frame carries the salt; later ones do not and must be bound.
        if flags & !(FIRST | BOUND) != 0
            || (flags & FIRST != 0) != first
            || (!first && flags & BOUND == 0)
            || (first && frame.len() < HEADER_LEN + SALT_LEN + TAG_LEN)
        {
            return Err(Rejection::Malformed);
        }
        let id = KeyId(u32::from_be_bytes([frame[3], frame[4], frame[5], frame[6]]));
        let key: Key = self.keyring.find(id).ok_or(Rejection::UnknownKey(id))?;
        let (peer_salt, body) = if first {
            let mut salt = [0u8; SALT_LEN];
            salt.copy_from_slice(&frame[HEADER_LEN..HEADER_LEN + SALT_LEN]);
            (salt, &frame[HEADER_LEN + SALT_LEN..])
        } else {
            (self.peer_salt.unwrap_or_default(), &frame[HEADER_LEN..])
        };
        let sender = match self.role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let aad = self.aad_with(
            sender,
            self.received,
            &frame[..HEADER_LEN],
            flags & BOUND != 0,
            &peer_salt,
        );
        let plaintext = key
            .cipher()
            .decrypt(
                &nonce(&peer_salt, self.received),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| Rejection::Forged)?;
        self.peer_salt = Some(peer_salt);
        self.received += 1;
        Ok(plaintext)
    }

    /// Associated data of a frame this end seals.
    fn aad(&self, sender: Role, seq: u64, header: &[u8], bound: bool) -> Vec<u8> {
        let peer = self.peer_salt.unwrap_or_default();
        self.aad_with(sender, seq, header, bound, &peer)
    }

    /// Associated data of a frame sent by `sender`; `peer` is the salt of
    /// the end that is not this one.
    fn aad_with(
        &self,
        sender: Role,
        seq: u64,
        header: &[u8],
        bound: bool,
        peer: &[u8; SALT_LEN],
    ) -> Vec<u8> {
        let (client, server) = match self.role {
            Role::Client => (&self.my_salt, peer),
            Role::Server => (peer, &self.my_salt),
        };
        let zero = [0u8; SALT_LEN];
        // The receiver's salt counts only if the sender knew it.
        let (client, server) = match (sender, bound) {
            (_, true) => (client, server),
            (Role::Client, false) => (client, &zero),
            (Role::Server, false) => (&zero, server),
        };
        let mut aad = Vec::with_capacity(LABEL.len() + 4 + self.cluster.len() + 1 + 8 + 7 + 32);
        aad.extend_from_slice(LABEL);
        push_cluster(&mut aad, &self.cluster);
        aad.push(match sender {
            Role::Client => 0,
            Role::Server => 1,
        });
        aad.extend_from_slice(&seq.to_be_bytes());
        aad.extend_from_slice(header);
        aad.extend_from_slice(client);
        aad.extend_from_slice(server);
        aad
    }
}

fn nonce(salt: &[u8; SALT_LEN], seq: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..SALT_LEN].copy_from_slice(salt);
    n[SALT_LEN..].copy_from_slice(&seq.to_be_bytes());
    XNonce::from(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(cluster: &str, keys: &Keyring) -> (StreamSession, StreamSession) {
        (
            StreamSession::new(keys.clone(), cluster, Role::Client),
            StreamSession::new(keys.clone(), cluster, Role::Server),
        )
    }

    /// A hello and its answer, so both ends know both salts.
    fn handshake(c: &mut StreamSession, s: &mut StreamSession) {
        let hello = c.seal(b"hello").expect("seal");
        assert_eq!(s.open(&hello).expect("open"), b"hello");
        let ok = s.seal(b"ok").expect("seal");
        assert_eq!(c.open(&ok).expect("open"), b"ok");
    }

    #[test]
    fn a_conversation_opens_in_order_both_ways() {
        let keys = Keyring::new(Key::generate());
        let (mut c, mut s) = pair("prod", &keys);
        handshake(&mut c, &mut s);
        for i in 0..10u8 {
            let f = c.seal(&[i; 40]).expect("seal");
            assert_eq!(f.len(), 40 + HEADER_LEN + TAG_LEN);
            assert_eq!(s.open(&f).expect("open"), vec![i; 40]);
            let g = s.seal(&[i]).expect("seal");
            assert_eq!(c.open(&g).expect("open"), vec![i]);
        }
        assert_eq!(
            (c.sent(), c.received(), s.sent(), s.received()),
            (11, 11, 11, 11)
        );
    }

    #[test]
    fn a_client_waits_for_the_servers_salt_before_its_second_frame() {
        let keys = Keyring::new(Key::generate());
        let (mut c, _) = pair("prod", &keys);
        c.seal(b"hello").expect("first");
        assert_eq!(c.seal(b"too early"), Err(SealError::AwaitingPeer));
    }

    #[test]
    fn replayed_reordered_and_spliced_frames_are_forged() {
        let keys = Keyring::new(Key::generate());
        let (mut c, mut s) = pair("prod", &keys);
        handshake(&mut c, &mut s);
        let one = c.seal(b"one").expect("seal");
        let two = c.seal(b"two").expect("seal");
        assert_eq!(s.open(&two), Err(Rejection::Forged), "reordered");
        assert_eq!(s.open(&one).expect("in order"), b"one");
        assert_eq!(s.open(&one), Err(Rejection::Forged), "replayed");
        assert_eq!(s.open(&two).expect("in order"), b"two");

        // A frame of another connection of the same cluster and key.
        let (mut c2, mut s2) = pair("prod", &keys);
        handshake(&mut c2, &mut s2);
        let other = c2.seal(b"other").expect("seal");
        assert_eq!(s.open(&other), Err(Rejection::Forged), "spliced");

        // A whole recorded client replayed to a fresh server: the hello
        // opens (it is a first frame) but the next frame is bound to the
        // original server's salt.
        let keys = Keyring::new(Key::generate());
        let (mut c, mut s) = pair("prod", &keys);
        let hello = c.seal(b"hello").expect("seal");
        s.open(&hello).expect("open");
        c.open(&s.seal(b"ok").expect("seal")).expect("open");
        let pull = c.seal(b"pull").expect("seal");
        let mut fresh = StreamSession::new(keys.clone(), "prod", Role::Server);
        fresh.open(&hello).expect("a hello replays");
        fresh.seal(b"ok").expect("answer");
        assert_eq!(fresh.open(&pull), Err(Rejection::Forged));
    }

    #[test]
    fn wrong_cluster_wrong_key_plaintext_and_tampering_are_rejected() {
        let keys = Keyring::new(Key::generate());
        let mut c = StreamSession::new(keys.clone(), "prod", Role::Client);
        let hello = c.seal(b"hello").expect("seal");

        let mut other_cluster = StreamSession::new(keys.clone(), "staging", Role::Server);
        assert_eq!(other_cluster.open(&hello), Err(Rejection::Forged));

        let other_key = Keyring::new(Key::generate());
        let mut s = StreamSession::new(other_key, "prod", Role::Server);
        assert_eq!(
            s.open(&hello),
            Err(Rejection::UnknownKey(keys.primary_id()))
        );

        let mut s = StreamSession::new(keys.clone(), "prod", Role::Server);
        assert_eq!(s.open(b"\x94\xa5hello"), Err(Rejection::Plaintext));
        assert_eq!(s.open(b""), Err(Rejection::Plaintext));
        assert_eq!(s.open(&hello[..10]), Err(Rejection::Malformed));
        for i in 0..hello.len() {
            let mut bad = hello.clone();
            bad[i] ^= 0x01;
            assert!(s.open(&bad).is_err(), "flipping byte {i} went unnoticed");
        }
        assert_eq!(s.open(&hello).expect("the original still opens"), b"hello");
    }

    #[test]
    fn rotation_on_a_live_connection_loses_nothing() {
        let (old, new) = (Key::generate(), Key::generate());
        let client_ring = Keyring::new(old.clone());
        let server_ring = Keyring::new(old.clone());
        let mut c = StreamSession::new(client_ring.clone(), "prod", Role::Client);
        let mut s = StreamSession::new(server_ring.clone(), "prod", Role::Server);
        handshake(&mut c, &mut s);
        let exchange = |c: &mut StreamSession, s: &mut StreamSession| {
            let f = c.seal(b"ping").expect("seal");
            assert_eq!(s.open(&f).expect("open"), b"ping");
            let g = s.seal(b"pong").expect("seal");
            assert_eq!(c.open(&g).expect("open"), b"pong");
        };
        client_ring.install(new.clone());
        exchange(&mut c, &mut s);
        server_ring.install(new.clone());
        exchange(&mut c, &mut s);
        client_ring.use_primary(new.id()).expect("installed");
        exchange(&mut c, &mut s);
        server_ring.use_primary(new.id()).expect("installed");
        exchange(&mut c, &mut s);
        client_ring.remove(old.id()).expect("not primary");
        server_ring.remove(old.id()).expect("not primary");
        exchange(&mut c, &mut s);
        // and the old key no longer opens anything
        let stale = StreamSession::new(Keyring::new(old.clone()), "prod", Role::Client)
            .seal(b"hello")
            .expect("seal");
        let mut s2 = StreamSession::new(server_ring, "prod", Role::Server);
        assert_eq!(s2.open(&stale), Err(Rejection::UnknownKey(old.id())));
    }
}
