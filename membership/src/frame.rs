//! [`ClusterTag`]: the plaintext framing of SWIM datagrams in a cluster
//! without a key, so that a node of another cluster (another
//! `MembershipConfig::cluster`, the same seeds) is refused before foca sees
//! its datagrams.
//!
//! Layout (10 bytes of header, then foca's payload unchanged):
//!
//! ```text
//! MAGIC(1) = 0xC2  VERSION(1) = 1  CLUSTER_TAG(8)  PAYLOAD
//! ```
//!
//! `CLUSTER_TAG` is the first 8 bytes of
//! `SHA-256("vantage-membership/cluster/1" ‖ len(cluster) (4, BE) ‖ cluster)`,
//! computed once when the driver starts; checking a datagram is a length
//! check and two fixed-size compares. The name is length-prefixed, as
//! `seal` binds it, so the hashed input stays unambiguous if the format
//! ever appends to it. A tag of fixed size keeps the
//! overhead constant ([`PLAINTEXT_OVERHEAD`], taken out of foca's packet
//! budget like [`seal::DATAGRAM_OVERHEAD`] on the sealed path).
//!
//! `MAGIC` is not [`seal::MAGIC`] (`0xC1`), so a keyed node counts a tagged
//! plaintext datagram as [`Rejection::Plaintext`] and a keyless node counts
//! a sealed one as [`Rejection::Malformed`]. foca's datagrams begin with the
//! varint length of the sender's node name, below `0x80` for names shorter
//! than 128 bytes, so a datagram of a node that sends no header is
//! `Malformed` too, not mistaken for a tagged one.
//!
//! This is a guard against misconfiguration, not authentication: anyone
//! who knows the cluster name can tag a datagram (the tag is not secret,
//! which is also why its compare need not be constant-time). To keep
//! strangers out, give the cluster a key: sealed datagrams bind the cluster
//! name in their associated data and carry no tag. Written here rather
//! than with a codec crate because it is one fixed header of 10 bytes.

use seal::Rejection;
use sha2::{Digest, Sha256};

/// First byte of every plaintext SWIM datagram.
const MAGIC: u8 = 0xC2;
/// Version of the plaintext framing.
const VERSION: u8 = 1;
/// Domain label of the cluster tag's hash.
const LABEL: &[u8] = b"vantage-membership/cluster/1";
/// Bytes of the cluster tag.
const TAG_LEN: usize = 8;

/// What the plaintext framing adds to a datagram's payload (magic, version
/// and cluster tag).
pub const PLAINTEXT_OVERHEAD: usize = 2 + TAG_LEN;

/// The cluster-name tag that heads every plaintext SWIM datagram (see the
/// module docs for the layout). Cheap to copy; compute it once per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterTag([u8; TAG_LEN]);

impl ClusterTag {
    /// The tag of cluster `cluster`: the first 8 bytes of SHA-256 over the
    /// domain label and the length-prefixed name.
    pub fn new(cluster: &str) -> ClusterTag {
        let mut hash = Sha256::new();
        hash.update(LABEL);
        hash.update((cluster.len() as u32).to_be_bytes());
        hash.update(cluster.as_bytes());
        let digest = hash.finalize();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&digest[..TAG_LEN]);
        ClusterTag(tag)
    }

    /// The tag's bytes, as they appear on the wire.
    pub fn as_bytes(&self) -> &[u8; TAG_LEN] {
        &self.0
    }

    /// `payload` behind the header: [`PLAINTEXT_OVERHEAD`] bytes longer.
    pub fn tag_datagram(&self, payload: &[u8]) -> Vec<u8> {
        let mut datagram = Vec::with_capacity(PLAINTEXT_OVERHEAD + payload.len());
        datagram.extend_from_slice(&[MAGIC, VERSION]);
        datagram.extend_from_slice(&self.0);
        datagram.extend_from_slice(payload);
        datagram
    }

    /// The payload of a datagram tagged by [`tag_datagram`](Self::tag_datagram)
    /// with this same tag. Nothing is copied and nothing is remembered.
    ///
    /// # Errors
    /// [`Rejection::Malformed`] if the datagram is shorter than the header
    /// or does not begin with this framing's magic and version (a sealed
    /// datagram, a node without the header, junk);
    /// [`Rejection::WrongCluster`] if it is well formed but tagged with
    /// another cluster's name.
    pub fn open_datagram<'a>(&self, datagram: &'a [u8]) -> Result<&'a [u8], Rejection> {
        let Some((header, payload)) = datagram.split_first_chunk::<PLAINTEXT_OVERHEAD>() else {
            return Err(Rejection::Malformed);
        };
        let [magic, version, tag @ ..] = header;
        if (*magic, *version) != (MAGIC, VERSION) {
            return Err(Rejection::Malformed);
        }
        if *tag != self.0 {
            return Err(Rejection::WrongCluster);
        }
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_same_cluster_passes_and_the_payload_is_unchanged() {
        let tag = ClusterTag::new("prod");
        let datagram = tag.tag_datagram(b"swim");
        assert_eq!(datagram.len(), 4 + PLAINTEXT_OVERHEAD);
        assert_eq!(tag.open_datagram(&datagram), Ok(&b"swim"[..]));
        let empty = tag.tag_datagram(b"");
        assert_eq!(tag.open_datagram(&empty), Ok(&b""[..]));
    }

    #[test]
    fn another_clusters_datagram_is_refused_as_wrong_cluster() {
        let prod = ClusterTag::new("prod");
        let staging = ClusterTag::new("staging");
        assert_ne!(prod, staging);
        let datagram = staging.tag_datagram(b"swim");
        assert_eq!(prod.open_datagram(&datagram), Err(Rejection::WrongCluster));
        // near misses: empty, a trailing space, another case, a prefix
        for other in ["", "prod ", "Prod", "pro", "prodd"] {
            let datagram = ClusterTag::new(other).tag_datagram(b"swim");
            assert_eq!(
                prod.open_datagram(&datagram),
                Err(Rejection::WrongCluster),
                "{other:?}"
            );
        }
        // every single-bit change of the tag is noticed
        let good = prod.tag_datagram(b"swim");
        for byte in 2..PLAINTEXT_OVERHEAD {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                assert_eq!(prod.open_datagram(&bad), Err(Rejection::WrongCluster));
            }
        }
    }

    #[test]
    fn truncated_unframed_and_sealed_datagrams_are_malformed() {
        let tag = ClusterTag::new("prod");
        let datagram = tag.tag_datagram(b"swim");
        for len in 0..PLAINTEXT_OVERHEAD {
            assert_eq!(
                tag.open_datagram(&datagram[..len]),
                Err(Rejection::Malformed),
                "{len} bytes"
            );
        }
        // exactly a header: an empty payload (foca refuses it, not us)
        assert_eq!(
            tag.open_datagram(&datagram[..PLAINTEXT_OVERHEAD]),
            Ok(&b""[..])
        );
        let mut other_version = datagram.clone();
        other_version[1] = VERSION + 1;
        assert_eq!(tag.open_datagram(&other_version), Err(Rejection::Malformed));
        // a foca datagram sent without the header (a node name of 2 bytes)
        let unframed = [
            0x02, b'h', b'c', 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00,
        ];
        assert_eq!(tag.open_datagram(&unframed), Err(Rejection::Malformed));
        // a sealed datagram reaching a node without a key
        let mut sealed = vec![seal::MAGIC, seal::VERSION];
        sealed.extend_from_slice(&[0u8; seal::DATAGRAM_OVERHEAD]);
        assert_ne!(MAGIC, seal::MAGIC);
        assert_eq!(tag.open_datagram(&sealed), Err(Rejection::Malformed));
    }

    /// Golden vector: the wire format is pinned. Changing it needs a new
    /// `VERSION` (nodes of the old format count the new one as malformed).
    #[test]
    fn golden_plaintext_layout() {
        let tag = ClusterTag::new("vantage");
        assert_eq!(hex(tag.as_bytes()), "e6c0b45f6431c0cf");
        assert_eq!(
            hex(&tag.tag_datagram(&[0xde, 0xad, 0xbe, 0xef])),
            "c201e6c0b45f6431c0cfdeadbeef"
        );
        assert_eq!(hex(ClusterTag::new("it").as_bytes()), "ffe5a5a50f2f63eb");
        assert_eq!(PLAINTEXT_OVERHEAD, 10);
    }
}
