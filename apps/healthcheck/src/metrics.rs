//! Prometheus metrics, rendered with `prometheus-client` at each scrape from
//! a [`Snapshot`] of the agent (its counters and the sync and membership
//! counters): a pure function of the snapshot.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{record::Status, snapshot::Snapshot};

type Labels = Vec<(String, String)>;

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn gauge_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, i64)],
) {
    let family: Family<Labels, Gauge> = Family::default();
    for (l, v) in values {
        family
            .get_or_create(&vec![(label.to_owned(), (*l).to_owned())])
            .set(*v);
    }
    registry.register(name, help, family);
}

/// The metrics in the Prometheus/OpenMetrics text format.
///
/// # Errors
/// A formatting error (not expected).
pub fn render(snapshot: &Snapshot) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    checks(&mut registry, snapshot);
    api(&mut registry, snapshot);
    descriptors(&mut registry, snapshot);
    origins(&mut registry, snapshot);
    sync(&mut registry, snapshot);
    cluster_key(&mut registry, snapshot);
    members(&mut registry, snapshot);
    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

/// What the check core counts.
fn checks(registry: &mut Registry, snapshot: &Snapshot) {
    let s = snapshot.checks;
    let checks: Family<Labels, Counter> = Family::default();
    checks
        .get_or_create(&vec![("result".into(), "ok".into())])
        .inc_by(s.checks_ok);
    checks
        .get_or_create(&vec![("result".into(), "failed".into())])
        .inc_by(s.checks_failed);
    registry.register(
        "healthcheck_checks",
        "Checks run by this agent, by result",
        checks,
    );
    let owned: Gauge = Gauge::default();
    owned.set(i64::try_from(s.owned).unwrap_or(i64::MAX));
    registry.register(
        "healthcheck_owned_origins",
        "Origins this agent checks now",
        owned,
    );
    counter(
        registry,
        "healthcheck_takeovers",
        "Origins taken over from a silent higher-ranked agent",
        s.takeovers,
    );
    counter(
        registry,
        "healthcheck_records_written",
        "Health records written by this agent",
        s.records_written,
    );
}

/// The API server's connections.
fn api(registry: &mut Registry, snapshot: &Snapshot) {
    let Some(c) = snapshot.api_connections else {
        return;
    };
    let open: Gauge = Gauge::default();
    open.set(i64::try_from(c.open).unwrap_or(i64::MAX));
    registry.register(
        "healthcheck_api_connections",
        "API connections open now",
        open,
    );
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
    registry.register(
        "healthcheck_api_connections_closed",
        "API connections closed by the agent: evicted at the cap (the longest idle), idle past the idle timeout, refused (every connection busy)",
        closed,
    );
}

/// How the descriptor limit is shared.
fn descriptors(registry: &mut Registry, snapshot: &Snapshot) {
    let d = &snapshot.descriptors;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    gauge_family(
        registry,
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
    );
}

/// Registered origins by visible status.
fn origins(registry: &mut Registry, snapshot: &Snapshot) {
    let (mut up, mut down, mut unknown) = (0i64, 0i64, 0i64);
    for (id, _) in &snapshot.origins {
        match snapshot.health.get(id).map(|r| r.status) {
            Some(Status::Up) => up += 1,
            Some(Status::Down) => down += 1,
            _ => unknown += 1,
        }
    }
    gauge_family(
        registry,
        "healthcheck_origins",
        "Registered origins by visible status",
        "status",
        &[("up", up), ("down", down), ("unknown", unknown)],
    );
}

/// The sync node's counters.
fn sync(registry: &mut Registry, snapshot: &Snapshot) {
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
    ] {
        counter(registry, name, help, value);
    }
}

/// Cluster traffic refused by the key or the cluster name, and the keys.
fn cluster_key(registry: &mut Registry, snapshot: &Snapshot) {
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
    registry.register(
        "cluster_key_rejected",
        "Frames (sync) and datagrams (swim) refused by the cluster key or the cluster name, by reason",
        rejected,
    );
    let keys: Gauge = Gauge::default();
    keys.set(i64::try_from(snapshot.cluster_keys).unwrap_or(i64::MAX));
    registry.register(
        "cluster_keys",
        "Keys in the cluster keyring (0: cluster traffic is plaintext)",
        keys,
    );
}

/// Members known to SWIM, by state, and SWIM's datagram counters.
fn members(registry: &mut Registry, snapshot: &Snapshot) {
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
            "membership_garbage_datagrams",
            "SWIM datagrams dropped as garbage: oversize, undecodable, another cluster or refused by the cluster key",
            m.garbage_datagrams,
        ),
    ] {
        counter(registry, name, help, value);
    }
    let count = |st: membership::MemberState| {
        snapshot.members.iter().filter(|x| x.state == st).count() as i64
    };
    gauge_family(
        registry,
        "membership_members",
        "Members known to SWIM (this agent included), by state",
        "state",
        &[
            ("alive", count(membership::MemberState::Alive)),
            ("suspect", count(membership::MemberState::Suspect)),
            ("down", count(membership::MemberState::Down)),
        ],
    );
}
