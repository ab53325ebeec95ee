//! Prometheus metrics, rendered with `prometheus-client` at each scrape from
//! a [`Snapshot`] of the agent (its counters and the sync and membership
//! counters): a pure function of the snapshot.

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, text::encode},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::Gauge,
    },
    registry::Registry,
};

use crate::{maintenance::Shown, record::Status, snapshot::Snapshot};

type Labels = Vec<(String, String)>;

/// Where the sections write: the scrape's encoder.
struct Out<'a>(DescriptorEncoder<'a>);

impl Out<'_> {
    fn register(&mut self, name: &str, help: &str, metric: impl EncodeMetric) -> fmt::Result {
        let encoder = self
            .0
            .encode_descriptor(name, help, None, metric.metric_type())?;
        metric.encode(encoder)
    }
}

fn counter(out: &mut Out<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    out.register(name, help, ConstCounter::new(value))
}

fn gauge_family(
    out: &mut Out<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, i64)],
) -> fmt::Result {
    let family: Family<Labels, Gauge> = Family::default();
    for (l, v) in values {
        family
            .get_or_create(&vec![(label.to_owned(), (*l).to_owned())])
            .set(*v);
    }
    out.register(name, help, family)
}

/// The metrics registry, built once (at the agent's start): one collector
/// that renders, at each scrape, the snapshot the scrape hands it.
pub struct Metrics {
    registry: Registry,
    current: Arc<Mutex<Option<Snapshot>>>,
    /// One scrape at a time (the snapshot slot is shared).
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let current = Arc::new(Mutex::new(None));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector(current.clone())));
        Metrics {
            registry,
            current,
            scrape: Mutex::new(()),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// `snapshot` in the Prometheus/OpenMetrics text format.
    ///
    /// # Errors
    /// A formatting error (not expected).
    pub fn render(&self, snapshot: Snapshot) -> Result<String, fmt::Error> {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
        let mut out = String::new();
        let done = encode(&mut out, &self.registry);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
        done.map(|()| out)
    }
}

/// Renders the snapshot of the scrape in progress.
#[derive(Debug)]
struct SnapshotCollector(Arc<Mutex<Option<Snapshot>>>);

impl Collector for SnapshotCollector {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let current = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(snapshot) = current.as_ref() else {
            return Ok(());
        };
        let out = &mut Out(encoder);
        checks(out, snapshot)?;
        api(out, snapshot)?;
        descriptors(out, snapshot)?;
        origins(out, snapshot)?;
        sync(out, snapshot)?;
        per_origin(out, snapshot)?;
        cluster_key(out, snapshot)?;
        members(out, snapshot)
    }
}

/// `snapshot` in the text format, through a registry of its own (for tests
/// and one-off use; the agent renders through the one it built at start).
///
/// # Errors
/// A formatting error (not expected).
pub fn render(snapshot: &Snapshot) -> Result<String, fmt::Error> {
    Metrics::default().render(snapshot.clone())
}

/// What the check core counts.
fn checks(out: &mut Out<'_>, snapshot: &Snapshot) -> fmt::Result {
    let s = snapshot.checks;
    let checks: Family<Labels, Counter> = Family::default();
    checks
        .get_or_create(&vec![("result".into(), "ok".into())])
        .inc_by(s.checks_ok);
    checks
        .get_or_create(&vec![("result".into(), "failed".into())])
        .inc_by(s.checks_failed);
    out.register(
        "healthcheck_checks",
        "Checks run by this agent, by result",
        checks,
    )?;
    let owned: Gauge = Gauge::default();
    owned.set(i64::try_from(s.owned).unwrap_or(i64::MAX));
    out.register(
        "healthcheck_owned_origins",
        "Origins this agent checks now",
        owned,
    )?;
    counter(
        out,
        "healthcheck_takeovers",
        "Origins taken over from a silent higher-ranked agent",
        s.takeovers,
    )?;
    counter(
        out,
        "healthcheck_records_written",
        "Health records written by this agent",
        s.records_written,
    )?;
    counter(
        out,
        "healthcheck_confirm_rounds",
        "Second opinions this agent asked for (its checks turned an origin down)",
        s.rounds,
    )?;
    let outcomes: Family<Labels, Counter> = Family::default();
    for (outcome, n) in [
        ("confirmed", s.confirmed),
        ("disputed", s.disputed),
        ("no_answer", s.unanswered),
        ("alone", s.alone),
    ] {
        outcomes
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc_by(n);
    }
    out.register(
        "healthcheck_confirm_outcomes",
        "How this agent's downs were decided: confirmed or disputed by the confirmer, no answer in time, or no other agent to ask",
        outcomes,
    )?;
    counter(
        out,
        "healthcheck_confirm_checks",
        "Checks this agent ran as another agent's confirmer (the extra checks of second opinions)",
        s.confirm_checks,
    )?;
    Ok(())
}

/// The API server's connections.
fn api(out: &mut Out<'_>, snapshot: &Snapshot) -> fmt::Result {
    let Some(c) = snapshot.api_connections else {
        return Ok(());
    };
    let open: Gauge = Gauge::default();
    open.set(i64::try_from(c.open).unwrap_or(i64::MAX));
    out.register(
        "healthcheck_api_connections",
        "API connections open now",
        open,
    )?;
    let closed: Family<Labels, Counter> = Family::default();
    for (why, n) in [
        ("evicted", c.evicted),
        ("idle", c.idle_closed),
        ("refused", c.refused),
    ] {
        closed
            .get_or_create(&vec![("reason".into(), why.into())])
            .inc_by(n);
    }
    out.register(
        "healthcheck_api_connections_closed",
        "API connections closed by the agent: evicted at the cap (the longest idle), idle past the idle timeout, refused (every connection busy)",
        closed,
    )?;
    Ok(())
}

/// How the descriptor limit is shared.
fn descriptors(out: &mut Out<'_>, snapshot: &Snapshot) -> fmt::Result {
    let d = &snapshot.descriptors;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    gauge_family(
        out,
        "healthcheck_descriptor_budget",
        "How the descriptor limit is shared (see the descriptors module)",
        "part",
        &[
            ("limit", n(d.limit)),
            ("reserved", n(d.reserved)),
            ("api", n(d.api as u64)),
            ("checks_in_flight", n(d.checks_in_flight as u64)),
            ("checks_idle", n(d.checks_idle as u64)),
        ],
    )?;
    Ok(())
}

/// Registered origins by visible status.
fn origins(out: &mut Out<'_>, snapshot: &Snapshot) -> fmt::Result {
    let (mut up, mut down, mut unknown, mut maintenance) = (0i64, 0i64, 0i64, 0i64);
    for (id, _) in &snapshot.origins {
        match snapshot.shown(id) {
            Shown::Up => up += 1,
            Shown::Down => down += 1,
            Shown::Unknown => unknown += 1,
            Shown::Maintenance => maintenance += 1,
        }
    }
    gauge_family(
        out,
        "healthcheck_origins",
        "Registered origins by what they show (maintenance: not checked)",
        "status",
        &[
            ("up", up),
            ("down", down),
            ("unknown", unknown),
            ("maintenance", maintenance),
        ],
    )?;
    Ok(())
}

/// Every counter of the sync node (names as before for the first eight),
/// and the bytes per replica.
fn sync(out: &mut Out<'_>, snapshot: &Snapshot) -> fmt::Result {
    let m = &snapshot.node.sync;
    for (name, help, value) in [
        ("sync_rounds", "Anti-entropy pull rounds", m.rounds),
        (
            "sync_bytes_sent",
            "Sync bytes sent (frames, all replicas)",
            m.bytes_sent(),
        ),
        (
            "sync_bytes_received",
            "Sync bytes received (frames, all replicas)",
            m.bytes_received(),
        ),
        (
            "sync_deltas_applied",
            "Answers with a delta joined",
            m.deltas_applied,
        ),
        (
            "sync_full_state_answers",
            "Full-state answers sent (peer behind a purge)",
            m.full_state_answers_sent,
        ),
        ("sync_notifies_sent", "Notifications sent", m.notifies_sent),
        ("sync_rejections", "Sync connections refused", m.rejections),
        (
            "sync_errors",
            "Sync connection errors, timeouts and malformed frames",
            m.errors,
        ),
        ("sync_pulls_sent", "Pull requests sent", m.pulls_sent),
        (
            "sync_pulls_received",
            "Pull requests answered",
            m.pulls_received,
        ),
        (
            "sync_notifies_received",
            "Notifications received",
            m.notifies_received,
        ),
        (
            "sync_notifies_redundant",
            "Notifications received whose news this agent already had",
            m.notifies_redundant,
        ),
        (
            "sync_deltas_sent",
            "Answers sent with a delta",
            m.deltas_sent,
        ),
        (
            "sync_empty_answers_sent",
            "Answers sent with nothing (the digest covered everything)",
            m.empty_answers_sent,
        ),
        (
            "sync_frontier_answers_sent",
            "Answers sent with only the context and the purge frontier",
            m.frontier_answers_sent,
        ),
        (
            "sync_deltas_learned",
            "Answers whose join taught this agent something",
            m.deltas_learned,
        ),
        ("sync_purged", "Tombstones purged", m.purged),
        (
            "sync_pulls_parked",
            "Pulls that waited for this agent's own writes to be durable",
            m.pulls_parked,
        ),
        (
            "sync_chunks_received",
            "Chunks of large answers received",
            m.chunks_received,
        ),
        (
            "sync_answers_dropped",
            "Answers dropped (connection lost mid-answer or over the size limit)",
            m.answers_dropped,
        ),
        ("sync_commits", "Commits written to the store", m.commits),
        (
            "sync_commit_failures",
            "Commits the store refused (retried)",
            m.commit_failures,
        ),
    ] {
        counter(out, name, help, value)?;
    }
    let bytes: Family<Labels, Counter> = Family::default();
    for (replica, b) in &m.replicas {
        for (direction, n) in [("sent", b.sent), ("received", b.received)] {
            bytes
                .get_or_create(&vec![
                    ("replica".into(), replica.clone()),
                    ("direction".into(), direction.into()),
                ])
                .inc_by(n);
        }
    }
    out.register(
        "sync_replica_bytes",
        "Sync bytes by replica and direction",
        bytes,
    )?;
    Ok(())
}

/// At most this many origins get per-origin series (down ones first, then
/// by id); `healthcheck_origin_series_omitted` counts the others.
pub const PER_ORIGIN_SERIES: usize = 1000;

/// Per origin (up to [`PER_ORIGIN_SERIES`]): whether it is up, the latency
/// of its last check, when its record was written, its transitions.
fn per_origin(out: &mut Out<'_>, snapshot: &Snapshot) -> fmt::Result {
    let mut ids: Vec<(&String, Option<&crate::record::HealthRecord>)> = snapshot
        .origins
        .iter()
        .map(|(id, _)| (id, snapshot.health.get(id)))
        .collect();
    // Down first: they are what an operator pages on.
    ids.sort_by_key(|(id, r)| (r.is_none_or(|r| r.status != Status::Down), *id));
    let omitted = ids.len().saturating_sub(PER_ORIGIN_SERIES);
    ids.truncate(PER_ORIGIN_SERIES);
    let up: Family<Labels, Gauge> = Family::default();
    let latency: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>> = Family::default();
    let checked: Family<Labels, Gauge> = Family::default();
    let transitions: Family<Labels, Counter> = Family::default();
    let in_maintenance: Family<Labels, Gauge> = Family::default();
    let disputed: Family<Labels, Gauge> = Family::default();
    for (id, record) in ids {
        let labels = vec![("origin".to_owned(), id.clone())];
        let maintenance = snapshot.maintenance.contains_key(id);
        in_maintenance
            .get_or_create(&labels)
            .set(i64::from(maintenance));
        if let Some(r) = record {
            disputed
                .get_or_create(&labels)
                .set(i64::from(r.disputed() && !maintenance));
            let value = match r.status {
                _ if maintenance => None,
                Status::Up => Some(1),
                Status::Down => Some(0),
                Status::Unknown => None,
            };
            if let Some(v) = value {
                up.get_or_create(&labels).set(v);
            }
            if let Some(ms) = r.latency_ms {
                latency.get_or_create(&labels).set(ms as f64 / 1000.0);
            }
            checked
                .get_or_create(&labels)
                .set(i64::try_from(r.checked_at_ms / 1000).unwrap_or(i64::MAX));
        }
        transitions
            .get_or_create(&labels)
            .inc_by(snapshot.transitions.get(id).copied().unwrap_or(0));
    }
    out.register(
        "healthcheck_origin_up",
        "1 if the origin is up, 0 if down (absent while unknown or under maintenance)",
        up,
    )?;
    out.register(
        "healthcheck_origin_disputed",
        "1 while the origin's owner sees it down but its confirmer saw it up (the record stays up), else 0",
        disputed,
    )?;
    out.register(
        "healthcheck_origin_maintenance",
        "1 while the origin is under maintenance (not checked), else 0",
        in_maintenance,
    )?;
    out.register(
        "healthcheck_origin_latency_seconds",
        "Latency of the origin's last check that got an answer",
        latency,
    )?;
    out.register(
        "healthcheck_origin_record_timestamp_seconds",
        "When the origin's visible record was written (the writer's clock)",
        checked,
    )?;
    out.register(
        "healthcheck_origin_transitions",
        "Status changes of the origin this agent saw since it started",
        transitions,
    )?;
    let gauge: Gauge = Gauge::default();
    gauge.set(i64::try_from(omitted).unwrap_or(i64::MAX));
    out.register(
        "healthcheck_origin_series_omitted",
        "Origins without per-origin series (beyond the cap of 1000)",
        gauge,
    )?;
    Ok(())
}

/// Cluster traffic refused by the key or the cluster name, and the keys.
fn cluster_key(out: &mut Out<'_>, snapshot: &Snapshot) -> fmt::Result {
    let rejected: Family<Labels, Counter> = Family::default();
    for (transport, counts) in [
        ("sync", snapshot.sync_rejections),
        ("swim", snapshot.swim_rejections),
    ] {
        for (reason, n) in counts.by_reason() {
            rejected
                .get_or_create(&vec![
                    ("transport".into(), transport.into()),
                    ("reason".into(), reason.into()),
                ])
                .inc_by(n);
        }
    }
    out.register(
        "cluster_key_rejected",
        "Frames (sync) and datagrams (swim) refused by the cluster key or the cluster name, by reason",
        rejected,
    )?;
    let keys: Gauge = Gauge::default();
    keys.set(i64::try_from(snapshot.cluster_keys).unwrap_or(i64::MAX));
    out.register(
        "cluster_keys",
        "Keys in the cluster keyring (0: cluster traffic is plaintext)",
        keys,
    )?;
    Ok(())
}

/// Members known to SWIM, by state, and SWIM's datagram counters.
fn members(out: &mut Out<'_>, snapshot: &Snapshot) -> fmt::Result {
    let m = snapshot.membership;
    for (name, help, value) in [
        (
            "membership_datagrams_received",
            "SWIM datagrams received",
            m.datagrams_received,
        ),
        (
            "membership_datagrams_sent",
            "SWIM datagrams sent",
            m.datagrams_sent,
        ),
        (
            "membership_datagrams_rejected",
            "SWIM datagrams foca rejected or that were too large, and inputs dropped while the core was behind",
            m.datagrams_rejected,
        ),
        (
            "membership_announces",
            "Announcements to the seeds while isolated",
            m.announces,
        ),
        (
            "membership_garbage_datagrams",
            "SWIM datagrams dropped as garbage: oversize, undecodable, another cluster or refused by the cluster key",
            m.garbage_datagrams,
        ),
    ] {
        counter(out, name, help, value)?;
    }
    let count = |st: membership::MemberState| {
        snapshot.members.iter().filter(|x| x.state == st).count() as i64
    };
    gauge_family(
        out,
        "membership_members",
        "Members known to SWIM (this agent included), by state",
        "state",
        &[
            ("alive", count(membership::MemberState::Alive)),
            ("suspect", count(membership::MemberState::Suspect)),
            ("down", count(membership::MemberState::Down)),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::sample as snapshot;

    #[test]
    fn per_origin_series_are_capped_with_the_down_ones_first() {
        let text =
            render(&snapshot(PER_ORIGIN_SERIES + 2, &[PER_ORIGIN_SERIES + 1])).expect("renders");
        let up = text
            .lines()
            .filter(|l| l.starts_with("healthcheck_origin_up{"))
            .count();
        assert_eq!(up, PER_ORIGIN_SERIES);
        assert!(
            text.contains(&format!(
                "healthcheck_origin_up{{origin=\"o{:04}\"}} 0",
                PER_ORIGIN_SERIES + 1
            )),
            "the down origin is among them"
        );
        assert!(text.contains("healthcheck_origin_series_omitted 2"));
        assert!(text.contains("healthcheck_origin_transitions_total{origin=\"o0003\"} 4"));
        assert!(text.contains("healthcheck_origin_latency_seconds{origin=\"o0000\"} 0.012"));
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn every_sync_and_membership_counter_is_exported() {
        let text = render(&snapshot(1, &[])).expect("renders");
        for name in [
            "sync_rounds",
            "sync_pulls_sent",
            "sync_pulls_received",
            "sync_notifies_sent",
            "sync_notifies_received",
            "sync_notifies_redundant",
            "sync_deltas_sent",
            "sync_empty_answers_sent",
            "sync_frontier_answers_sent",
            "sync_full_state_answers",
            "sync_deltas_applied",
            "sync_deltas_learned",
            "sync_purged",
            "sync_pulls_parked",
            "sync_chunks_received",
            "sync_answers_dropped",
            "sync_commits",
            "sync_commit_failures",
            "sync_rejections",
            "sync_errors",
            "sync_bytes_sent",
            "sync_bytes_received",
            "membership_datagrams_received",
            "membership_datagrams_sent",
            "membership_datagrams_rejected",
            "membership_garbage_datagrams",
            "membership_announces",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} counter")),
                "{name} is missing"
            );
        }
    }
}
