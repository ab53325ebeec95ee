//! The status page: members and origins, refreshing itself every 2 s.

use std::fmt::Write;

use crate::{record::Status, snapshot::Snapshot};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ago(ms: u64, now: u64) -> String {
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// The page's HTML, from `snapshot` alone.
pub fn render(snapshot: &Snapshot) -> String {
    let node = &snapshot.node;
    let now = snapshot.now_ms;
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=2>\
         <title>healthcheck · {id}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}}\
         .up{{color:#080;font-weight:600}}.down{{color:#c00;font-weight:600}}.unknown{{color:#888}}\
         .alive{{color:#080}}.suspect{{color:#b70}}</style></head><body>\
         <h1>healthcheck · {id}</h1><p>{owned} origins checked here of {origins}; \
         {checks} checks ({failed} failed); {alive} members alive; actor {actor:016x}; up {uptime} s.</p>",
        id = escape(&node.id),
        owned = node.owned_origins,
        origins = node.origins,
        checks = node.checks_total,
        failed = node.checks_failed,
        alive = node.members_alive,
        actor = node.actor,
        uptime = node.uptime_s,
    );
    h.push_str(
        "<h2>Members</h2><table><tr><th>id</th><th>gossip</th><th>sync</th><th>state</th></tr>",
    );
    for m in &snapshot.members {
        let state = match m.state {
            membership::MemberState::Alive => "alive",
            membership::MemberState::Suspect => "suspect",
            membership::MemberState::Down => "down",
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class={state}>{state}</td></tr>",
            escape(m.id.as_str()),
            m.gossip_addr,
            m.sync_addr
        );
    }
    h.push_str("</table><h2>Origins</h2><table><tr><th>id</th><th>address</th><th>kind</th><th>status</th><th>since</th><th>checked by</th><th>checked</th><th>latency</th><th>reason</th></tr>");
    for (id, spec) in &snapshot.origins {
        let r = snapshot.health.get(id);
        let status = r.map_or(Status::Unknown, |r| r.status).as_str();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class={status}>{status}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(id),
            escape(&spec.address),
            spec.kind,
            r.map_or(String::new(), |r| ago(r.since_ms, now)),
            r.map_or(String::new(), |r| escape(&r.checked_by)),
            r.map_or(String::new(), |r| ago(r.checked_at_ms, now)),
            r.and_then(|r| r.latency_ms)
                .map_or(String::new(), |l| format!("{l} ms")),
            r.and_then(|r| r.reason.as_deref())
                .map_or(String::new(), escape),
        );
    }
    h.push_str("</table></body></html>");
    h
}
