//! [`ListCache`]: the cached `GET /v1/origins` answer.
//!
//! Building the list costs O(origins), and under load many requests ask for
//! it at once: one build serves them all. An answer is reused for at most
//! [`LIST_MAX_AGE`], and never if a registry write made through this agent
//! came after its build started (a client sees its own writes); under a
//! stream of local writes it is rebuilt at most every [`LIST_MIN_REBUILD`].
//! The gzip form is made once per build, on the first request that accepts
//! it.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use bytes::Bytes;

/// How stale a cached answer may be.
pub const LIST_MAX_AGE: Duration = Duration::from_millis(250);

/// The shortest time between two builds.
pub const LIST_MIN_REBUILD: Duration = Duration::from_millis(100);

/// One build of the list.
struct Built {
    at: Instant,
    /// The local-write generation it was built at.
    generation: u64,
    json: Bytes,
    gzip: Option<Bytes>,
}

/// The list answer, as JSON and (if asked for and it could be made) gzip.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The JSON body.
    pub json: Bytes,
    /// The gzip-compressed body, when the request accepts gzip.
    pub gzip: Option<Bytes>,
}

/// The cache, shared by the API's handlers (see the module docs).
#[derive(Default)]
pub struct ListCache {
    slot: tokio::sync::Mutex<Option<Built>>,
    /// Bumped by every registry write through this agent.
    generation: AtomicU64,
}

impl ListCache {
    /// A registry write went through this agent: later requests get a list
    /// built after it.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The answer for a request arriving now: the cached one if it is fresh
    /// enough, else one built by `build` (the JSON body). One build at a
    /// time; requests waiting meanwhile get the fresh one.
    ///
    /// # Errors
    /// `build`'s error; nothing is cached then.
    pub async fn get<E>(
        &self,
        gzip: bool,
        build: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Listing, E> {
        // The answer must hold every write made through this agent before
        // this request arrived: a build that started after them.
        let arrived = self.generation.load(Ordering::Acquire);
        let mut slot = self.slot.lock().await;
        let fresh = slot
            .as_ref()
            .is_some_and(|b| b.generation >= arrived && b.at.elapsed() < LIST_MAX_AGE);
        let built = match slot.as_mut() {
            Some(built) if fresh => built,
            _ => {
                let mut generation = arrived;
                if let Some(age) = slot.as_ref().map(|b| b.at.elapsed())
                    && age < LIST_MIN_REBUILD
                {
                    // Waits out the rest of it (and still sees every write
                    // made before the request arrived).
                    tokio::time::sleep(LIST_MIN_REBUILD - age).await;
                    generation = self.generation.load(Ordering::Acquire);
                }
                let json = build()?;
                slot.insert(Built {
                    at: Instant::now(),
                    generation,
                    json: Bytes::from(json),
                    gzip: None,
                })
            }
        };
        if gzip && built.gzip.is_none() {
            built.gzip = compress(&built.json).map(Bytes::from);
        }
        Ok(Listing {
            json: built.json.clone(),
            gzip: if gzip { built.gzip.clone() } else { None },
        })
    }
}

fn compress(json: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 16),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut enc, json).ok()?;
    enc.finish().ok()
}
