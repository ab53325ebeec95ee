//! Prometheus metrics, rendered with `prometheus-client` at each scrape from
//! the agent's counters and the sync and membership snapshots.

use std::sync::atomic::Ordering;

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{agent::Shared, record::Status};

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
pub fn render(shared: &Shared) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    let s = &shared.stats;

    let checks: Family<Labels, Counter> = Family::default();
    checks
        .get_or_create(&vec![("result".into(), "ok".into())])
        .inc_by(s.checks_ok.load(Ordering::Relaxed));
    checks
        .get_or_create(&vec![("result".into(), "failed".into())])
        .inc_by(s.checks_failed.load(Ordering::Relaxed));
    registry.register(
        "healthcheck_checks",
        "Checks run by this agent, by result",
        checks,
    );

    let owned: Gauge = Gauge::default();
    owned.set(s.owned.load(Ordering::Relaxed) as i64);
    registry.register(
        "healthcheck_owned_origins",
        "Origins this agent checks now",
        owned,
    );
    counter(
        &mut registry,
        "healthcheck_takeovers",
        "Origins taken over from a silent higher-ranked agent",
        s.takeovers.load(Ordering::Relaxed),
    );
    counter(
        &mut registry,
        "healthcheck_records_written",
        "Health records written by this agent",
        s.records_written.load(Ordering::Relaxed),
    );

    if let Some(api) = shared.api_connections.get() {
        let c = api.get();
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
    let d = &shared.descriptors;
    gauge_family(
        &mut registry,
        "healthcheck_descriptor_budget",
        "How the descriptor limit is shared (see the descriptors module)",
        "part",
        &[
            ("limit", i64::try_from(d.limit).unwrap_or(i64::MAX)),
            ("reserved", i64::try_from(d.reserved).unwrap_or(i64::MAX)),
            ("api", i64::try_from(d.api).unwrap_or(i64::MAX)),
            (
                "checks_in_flight",
                i64::try_from(d.checks_in_flight).unwrap_or(i64::MAX),
            ),
            (
                "checks_idle",
                i64::try_from(d.checks_idle).unwrap_or(i64::MAX),
            ),
        ],
    );

    let health = shared.all_health();
    let (mut up, mut down, mut unknown) = (0i64, 0i64, 0i64);
    for (id, _) in shared.origins() {
        match health.get(&id).map(|r| r.status) {
            Some(Status::Up) => up += 1,
            Some(Status::Down) => down += 1,
            _ => unknown += 1,
        }
    }
    gauge_family(
        &mut registry,
        "healthcheck_origins",
        "Registered origins by visible status",
        "status",
        &[("up", up), ("down", down), ("unknown", unknown)],
    );

    let m = shared.node.metrics();
    counter(
        &mut registry,
        "sync_rounds",
        "Anti-entropy pull rounds",
        m.rounds,
    );
    counter(
        &mut registry,
        "sync_bytes_sent",
        "Sync bytes sent (frames, all replicas)",
        m.bytes_sent(),
    );
    counter(
        &mut registry,
        "sync_bytes_received",
        "Sync bytes received (frames, all replicas)",
        m.bytes_received(),
    );
    counter(
        &mut registry,
        "sync_deltas_applied",
        "Answers with a delta joined",
        m.deltas_applied,
    );
    counter(
        &mut registry,
        "sync_full_state_answers",
        "Full-state answers sent (peer behind a purge)",
        m.full_state_answers_sent,
    );
    counter(
        &mut registry,
        "sync_notifies_sent",
        "Notifications sent",
        m.notifies_sent,
    );
    counter(
        &mut registry,
        "sync_rejections",
        "Sync connections refused",
        m.rejections,
    );
    counter(
        &mut registry,
        "sync_errors",
        "Sync connection errors, timeouts and malformed frames",
        m.errors,
    );

    let rejected: Family<Labels, Counter> = Family::default();
    for (transport, counts) in [
        ("sync", shared.node.rejections()),
        ("swim", shared.swim_rejections.snapshot()),
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
    keys.set(shared.keyring.as_ref().map_or(0, |k| k.ids().len() as i64));
    registry.register(
        "cluster_keys",
        "Keys in the cluster keyring (0: cluster traffic is plaintext)",
        keys,
    );

    let members = shared.members();
    let count =
        |st: membership::MemberState| members.iter().filter(|x| x.state == st).count() as i64;
    gauge_family(
        &mut registry,
        "membership_members",
        "Members known to SWIM (this agent included), by state",
        "state",
        &[
            ("alive", count(membership::MemberState::Alive)),
            ("suspect", count(membership::MemberState::Suspect)),
            ("down", count(membership::MemberState::Down)),
        ],
    );

    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}
