//! [`Ownership`]: whether this agent should check an origin now.
//!
//! The rule (sans-IO: time and the live view come in as arguments):
//! * the agent ranked first for the origin among the live members (itself
//!   included) checks it;
//! * an agent ranked r > 0 stands by while some higher-ranked live agent has
//!   written a record for the origin recently: within
//!   `record_refresh + r × takeover_grace` (an owner writes at least every
//!   `record_refresh`). Past that, it takes over. Ranks further down wait
//!   longer, so stand-ins take over one at a time, in rank order;
//! * an agent that checks because it took over stops as soon as a record
//!   from a higher-ranked live agent arrives (it was usurped).
//!
//! When an owner dies, SWIM suspects it (then declares it down); the agent
//! does not count suspected members as live, so the next agent is ranked
//! first as soon as the suspicion reaches it and checks at its next due
//! time: the gap is the time to a failed probe plus at most one interval. A
//! false suspicion costs a moment with two checkers, never a gap. The time-based takeover covers an
//! owner that is alive but not checking (stalled, or not yet aware of a new
//! origin). "Recently" is measured on this agent's clock, from when it saw
//! the record arrive, so clock skew between agents does not matter.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use smallvec::SmallVec;

use crate::rendezvous;

/// Timing of the takeover rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnershipConfig {
    /// Per rank step, how long a stand-in waits for a higher-ranked agent's
    /// record beyond `record_refresh`.
    pub takeover_grace: Duration,
    /// How often an owner rewrites an unchanged record.
    pub record_refresh: Duration,
}

/// What [`Ownership::decide`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// This agent is ranked first among the live members: check.
    Own,
    /// Ranked `rank` > 0, and no higher-ranked live agent has written in
    /// time: check in its place.
    TakeOver {
        /// This agent's rank.
        rank: usize,
    },
    /// Ranked `rank` > 0 and a higher-ranked live agent is at work: don't.
    StandBy {
        /// This agent's rank.
        rank: usize,
    },
}

impl Decision {
    /// Whether to check.
    pub fn checks(self) -> bool {
        !matches!(self, Decision::StandBy { .. })
    }
}

#[derive(Debug)]
struct Watch {
    my_weight: u64,
    /// (membership generation, my rank) when last computed.
    rank: Option<(u64, usize)>,
    /// When the current wait began: the origin was first seen, or the live
    /// view last changed.
    since: Instant,
    /// Recent writers of records for this origin, and when we saw them.
    seen: SmallVec<[(String, Instant); 2]>,
}

/// The ownership state of one agent. See the module docs.
#[derive(Debug)]
pub struct Ownership {
    me: String,
    config: OwnershipConfig,
    live: HashSet<String>,
    generation: u64,
    /// The members that joined (`true`) or left (`false`) the live view at
    /// each recent generation, oldest first: a cached rank is brought up
    /// to date from these in O(changes) instead of O(members).
    changes: std::collections::VecDeque<(u64, Vec<(String, bool)>)>,
    watches: HashMap<String, Watch>,
}

/// Generations of view changes kept for incremental rank updates.
const CHANGE_LOG: usize = 64;

impl Ownership {
    /// Ownership for agent `me`, which sees only itself so far.
    pub fn new(me: impl Into<String>, config: OwnershipConfig) -> Self {
        let me = me.into();
        Ownership {
            live: HashSet::from([me.clone()]),
            me,
            config,
            generation: 0,
            changes: std::collections::VecDeque::new(),
            watches: HashMap::new(),
        }
    }

    /// This agent's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Sets the live members (this agent is always included); returns
    /// whether the view changed.
    pub fn set_live<I: IntoIterator<Item = String>>(&mut self, members: I) -> bool {
        let mut live: HashSet<String> = members.into_iter().collect();
        live.insert(self.me.clone());
        if live != self.live {
            let mut diff: Vec<(String, bool)> = live
                .difference(&self.live)
                .map(|n| (n.clone(), true))
                .collect();
            diff.extend(self.live.difference(&live).map(|n| (n.clone(), false)));
            self.live = live;
            self.generation += 1;
            self.changes.push_back((self.generation, diff));
            if self.changes.len() > CHANGE_LOG {
                self.changes.pop_front();
            }
            true
        } else {
            false
        }
    }

    /// The live members, this agent included.
    pub fn live(&self) -> impl Iterator<Item = &str> + '_ {
        self.live.iter().map(String::as_str)
    }

    /// Records that a record for `origin` written by `writer` arrived at `now`.
    pub fn observe(&mut self, origin: &str, writer: &str, now: Instant) {
        if writer == self.me {
            return;
        }
        let watch = self.watch(origin, now);
        match watch.seen.iter_mut().find(|(w, _)| w == writer) {
            Some(entry) => entry.1 = entry.1.max(now),
            None => watch.seen.push((writer.to_owned(), now)),
        }
    }

    /// Forgets an origin that was removed from the registry.
    pub fn forget(&mut self, origin: &str) {
        self.watches.remove(origin);
    }

    /// Whether this agent should check `origin` at `now`.
    pub fn decide(&mut self, origin: &str, now: Instant) -> Decision {
        let generation = self.generation;
        let config = self.config;
        if !self.watches.contains_key(origin) {
            self.watch(origin, now);
        }
        let me = self.me.as_str();
        let live = &self.live;
        // Present: inserted just above if it was missing (no allocation on
        // the hot path, which runs once per origin per interval).
        let Some(watch) = self.watches.get_mut(origin) else {
            return Decision::StandBy { rank: usize::MAX };
        };
        let rank = match watch.rank {
            Some((g, r)) if g == generation => r,
            previous => {
                let mine = (watch.my_weight, std::cmp::Reverse(me));
                let above = |n: &str| (rendezvous::weight(n, origin), std::cmp::Reverse(n)) > mine;
                // From the change log if it reaches back to the cached
                // generation, else by counting every live member.
                let incremental = previous.and_then(|(g, r)| {
                    let first = self.changes.front()?.0;
                    (g + 1 >= first).then(|| {
                        let mut r = r as isize;
                        for (_, diff) in self.changes.iter().filter(|(cg, _)| *cg > g) {
                            for (n, joined) in diff {
                                if n != me && above(n) {
                                    r += if *joined { 1 } else { -1 };
                                }
                            }
                        }
                        r.max(0) as usize
                    })
                });
                let r = incremental.unwrap_or_else(|| {
                    live.iter()
                        .filter(|n| n.as_str() != me)
                        .filter(|n| above(n))
                        .count()
                });
                if previous.is_some() {
                    // The live view changed: higher-ranked agents (new ones,
                    // maybe) get a full wait before we take over.
                    watch.since = now;
                }
                watch.rank = Some((generation, r));
                r
            }
        };
        if rank == 0 {
            return Decision::Own;
        }
        // Forget writers that left; keep the latest sighting of a live,
        // higher-ranked one.
        watch.seen.retain(|(w, _)| live.contains(w));
        let latest_higher = watch
            .seen
            .iter()
            .filter(|(w, _)| rendezvous::outranks(w, me, origin))
            .map(|(_, at)| *at)
            .max();
        let baseline = latest_higher.map_or(watch.since, |t| t.max(watch.since));
        let patience = config.record_refresh + config.takeover_grace * rank as u32;
        if now.saturating_duration_since(baseline) > patience {
            Decision::TakeOver { rank }
        } else {
            Decision::StandBy { rank }
        }
    }

    fn watch(&mut self, origin: &str, now: Instant) -> &mut Watch {
        let me = &self.me;
        self.watches
            .entry(origin.to_owned())
            .or_insert_with(|| Watch {
                my_weight: rendezvous::weight(me, origin),
                rank: None,
                since: now,
                seen: SmallVec::new(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: OwnershipConfig = OwnershipConfig {
        takeover_grace: Duration::from_secs(2),
        record_refresh: Duration::from_secs(10),
    };

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    /// The agents ranked for "o", owner first.
    fn ranked() -> Vec<String> {
        rendezvous::rank("o", &names())
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn agent(name: &str) -> Ownership {
        let mut o = Ownership::new(name, CONFIG);
        o.set_live(names());
        o
    }

    #[test]
    fn exactly_one_live_agent_owns_each_origin() {
        let t = Instant::now();
        for origin in (0..200).map(|i| format!("origin-{i}")) {
            let owners = names()
                .iter()
                .filter(|n| agent(n).decide(&origin, t) == Decision::Own)
                .count();
            assert_eq!(owners, 1, "{origin}");
        }
    }

    #[test]
    fn a_stand_in_waits_refresh_plus_rank_times_grace_then_takes_over() {
        let t = Instant::now();
        let r = ranked();
        let mut second = agent(&r[1]);
        let mut third = agent(&r[2]);
        assert_eq!(second.decide("o", t), Decision::StandBy { rank: 1 });
        assert_eq!(third.decide("o", t), Decision::StandBy { rank: 2 });
        // the owner writes at t+5: both wait from then
        second.observe("o", &r[0], t + Duration::from_secs(5));
        third.observe("o", &r[0], t + Duration::from_secs(5));
        let at = |s| t + Duration::from_secs(s);
        assert_eq!(second.decide("o", at(17)), Decision::StandBy { rank: 1 }); // 12 s since
        assert_eq!(second.decide("o", at(18)), Decision::TakeOver { rank: 1 }); // > 12 s
        assert_eq!(third.decide("o", at(18)), Decision::StandBy { rank: 2 });
        // the second agent's records keep the third waiting
        third.observe("o", &r[1], at(18));
        assert_eq!(third.decide("o", at(31)), Decision::StandBy { rank: 2 });
        assert_eq!(third.decide("o", at(33)), Decision::TakeOver { rank: 2 });
    }

    #[test]
    fn a_stand_in_is_usurped_as_soon_as_a_higher_ranked_record_arrives() {
        let t = Instant::now();
        let r = ranked();
        let mut second = agent(&r[1]);
        second.decide("o", t);
        assert!(second.decide("o", t + Duration::from_secs(13)).checks());
        second.observe("o", &r[0], t + Duration::from_secs(14));
        assert_eq!(
            second.decide("o", t + Duration::from_secs(14)),
            Decision::StandBy { rank: 1 }
        );
        // a record from a lower-ranked agent does not count
        let mut first_as_seen = agent(&r[2]);
        first_as_seen.decide("o", t);
        first_as_seen.observe("o", &r[2], t + Duration::from_secs(1)); // itself: ignored
        assert!(
            first_as_seen
                .decide("o", t + Duration::from_secs(15))
                .checks()
        );
    }

    #[test]
    fn when_the_owner_leaves_the_view_the_next_agent_owns_at_once() {
        let t = Instant::now();
        let r = ranked();
        let mut second = agent(&r[1]);
        second.observe("o", &r[0], t);
        assert_eq!(second.decide("o", t), Decision::StandBy { rank: 1 });
        second.set_live(names().into_iter().filter(|n| *n != r[0]));
        assert_eq!(
            second.decide("o", t + Duration::from_millis(1)),
            Decision::Own
        );
        // and hands back when it returns and writes
        second.set_live(names());
        assert_eq!(
            second.decide("o", t + Duration::from_secs(1)),
            Decision::StandBy { rank: 1 }
        );
    }

    #[test]
    fn ranks_kept_up_to_date_incrementally_equal_a_full_recount() {
        let t = Instant::now();
        let all: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
        let mut incremental = Ownership::new("n0", CONFIG);
        incremental.set_live(all.clone());
        let origins: Vec<String> = (0..50).map(|i| format!("o{i}")).collect();
        for o in &origins {
            incremental.decide(o, t);
        }
        // a deterministic walk of joins and leaves, some rounds skipped by
        // some origins, and one gap longer than the change log
        let mut x = 7u64;
        for round in 0..(CHANGE_LOG as u64 + 40) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let live: Vec<String> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| (x >> (i + 3)) & 3 != 0)
                .map(|(_, n)| n.clone())
                .collect();
            incremental.set_live(live.clone());
            let mut fresh = Ownership::new("n0", CONFIG);
            fresh.set_live(live);
            for (i, o) in origins.iter().enumerate() {
                // o0..o9 sit out more generations than the log keeps
                let due = if i < 10 {
                    round > CHANGE_LOG as u64 + 30
                } else {
                    (round + i as u64).is_multiple_of(3)
                };
                if due {
                    let rank = |d: Decision| match d {
                        Decision::Own => 0,
                        Decision::TakeOver { rank } | Decision::StandBy { rank } => rank,
                    };
                    assert_eq!(
                        rank(incremental.decide(o, t)),
                        rank(fresh.decide(o, t)),
                        "round {round}, {o}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_writer_that_left_no_longer_holds_a_stand_in_back() {
        let t = Instant::now();
        let r = ranked();
        let mut third = agent(&r[2]);
        third.observe("o", &r[1], t);
        // r[1] leaves; r[0] is live but silent
        third.set_live(vec![r[0].clone(), r[2].clone()]);
        assert_eq!(third.decide("o", t), Decision::StandBy { rank: 1 });
        assert_eq!(
            third.decide("o", t + Duration::from_secs(13)),
            Decision::TakeOver { rank: 1 }
        );
    }
}
