//! Arbitrary and mutated input to the openers: never a panic, never
//! accepted unless it is exactly what was sealed, and a refusal leaves the
//! session able to open the genuine next frame.

use proptest::prelude::*;
use seal::{DatagramSealer, Key, Keyring, Rejection, Role, StreamSession};

const NOW: u64 = 1_800_000_000_000;

fn keyring() -> Keyring {
    Keyring::new(Key::from_bytes([42; 32]))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut server = StreamSession::new(keyring(), "prop", Role::Server);
        prop_assert!(server.open(&bytes).is_err());
        let mut rx = DatagramSealer::new(keyring(), "prop", 30_000, 64);
        prop_assert!(rx.open(NOW, &bytes).is_err());
    }

    #[test]
    fn mutated_frames_are_refused_and_the_genuine_one_still_opens(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let keys = keyring();
        let mut client = StreamSession::new(keys.clone(), "prop", Role::Client);
        let mut server = StreamSession::new(keys.clone(), "prop", Role::Server);
        let frame = client.seal(&body).expect("seal");
        let mut bad = frame.clone();
        for (at, byte, op) in &edits {
            match op {
                0 if !bad.is_empty() => { let i = at.index(bad.len()); bad[i] ^= byte | 1; }
                1 => { let i = at.index(bad.len() + 1); bad.insert(i, *byte); }
                _ if !bad.is_empty() => { let i = at.index(bad.len()); bad.remove(i); }
                _ => {}
            }
        }
        if bad != frame {
            prop_assert!(server.open(&bad).is_err());
        }
        prop_assert_eq!(server.open(&frame).expect("genuine frame"), body.clone());

        let tx = DatagramSealer::new(keys.clone(), "prop", 30_000, 64);
        let mut rx = DatagramSealer::new(keys, "prop", 30_000, 64);
        let d = tx.seal(NOW, &body).expect("seal");
        let mut bad = d.clone();
        let (at, byte, _) = edits[0];
        let i = at.index(bad.len());
        bad[i] ^= byte | 1;
        prop_assert!(rx.open(NOW, &bad).is_err());
        prop_assert_eq!(rx.open(NOW, &d).expect("genuine datagram"), body);
        prop_assert_eq!(rx.open(NOW, &d), Err(Rejection::Replayed));
    }
}
