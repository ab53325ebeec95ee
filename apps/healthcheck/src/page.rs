//! The status page, for a cluster of any size: a summary, the members, and
//! one page of [`PAGE_ROWS`] origins at a time, down ones first, then the
//! most recently changed; filtered by text (`q`, in the id or the address)
//! and by status, paged with `page`. Long values are cut with an ellipsis
//! and shown whole on hover. "Last check" is when this agent last checked
//! the origin if it checks it, else the time of the visible record (which
//! its owner rewrites only on a change or the refresh), marked so. The page
//! reloads itself every [`REFRESH_S`] seconds; at 10,000 origins it stays
//! about the size of one page of rows.
//!
//! A pure function of a [`Snapshot`] and the [`PageQuery`].

use std::fmt::Write;

use crate::{
    confirm::{Confirmation, Unconfirmed},
    maintenance::Shown,
    snapshot::Snapshot,
};

/// Origins per page.
pub const PAGE_ROWS: usize = 100;

/// Seconds between reloads.
pub const REFRESH_S: u32 = 5;

/// What the page is asked to show (`/?q=…&status=…&page=…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// Text to find in the id or the address (case-insensitive).
    pub q: String,
    /// Only origins that show this.
    pub status: Option<Shown>,
    /// The page, from 0.
    pub page: usize,
}

impl PageQuery {
    /// Reads `q`, `status` (`up`, `down`, `unknown`, `maintenance`;
    /// anything else: all)
    /// and `page` from a URL query; what it cannot read it leaves at the
    /// default.
    pub fn parse(query: Option<&str>) -> Self {
        let mut out = PageQuery::default();
        for pair in query.unwrap_or("").split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            match key {
                "q" => out.q = value.trim().to_owned(),
                "status" => {
                    out.status = match value.as_str() {
                        "up" => Some(Shown::Up),
                        "down" => Some(Shown::Down),
                        "unknown" => Some(Shown::Unknown),
                        "maintenance" => Some(Shown::Maintenance),
                        _ => None,
                    }
                }
                "page" => out.page = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        out
    }

    /// The query of this view at another page.
    fn at(&self, page: usize) -> String {
        let mut q = format!("?page={page}");
        if !self.q.is_empty() {
            q.push_str("&q=");
            q.push_str(&encode(&self.q));
        }
        if let Some(s) = self.status {
            q.push_str("&status=");
            q.push_str(s.as_str());
        }
        q
    }
}

/// Percent-decoding of a form value (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

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

/// How long until `ms`, as the page writes it.
fn until(ms: u64, now: u64) -> String {
    let s = ms.saturating_sub(now) / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

/// A cell cut to its column, whole on hover.
fn cell(text: &str, class: &str) -> String {
    let t = escape(text);
    format!("<td class=\"{class}\" title=\"{t}\">{t}</td>")
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.8em 0;table-layout:fixed;width:100%}\
td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left;\
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}\
th{background:#f4f4f4}.id{width:16%}.addr{width:16%}.kind{width:5%}.st{width:7%}\
.t{width:9%}.by{width:9%}.lat{width:6%}.reason{width:23%}\
.up{color:#080;font-weight:600}.down{color:#c00;font-weight:600}.unknown{color:#888}\
.maintenance{color:#36c}\
.alive{color:#080}.suspect{color:#b70}.note{color:#888;font-size:90%}\
form{margin:.8em 0}input,select{font:inherit}.members td{width:auto}";

/// The page's HTML, from `snapshot` alone, as `query` asks.
pub fn render(snapshot: &Snapshot, query: &PageQuery) -> String {
    let node = &snapshot.node;
    let now = snapshot.now_ms;
    let mut h = String::with_capacity(64 * 1024);
    let count = |st: Shown| {
        snapshot
            .origins
            .iter()
            .filter(|(id, _)| snapshot.shown(id) == st)
            .count()
    };
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=utf-8>\
         <meta http-equiv=refresh content={REFRESH_S}>\
         <title>healthcheck · {id}</title><style>{STYLE}</style></head><body>\
         <h1>healthcheck · {id}</h1><p>{origins} origins: <span class=down>{down} down</span>, \
         <span class=up>{up} up</span>, <span class=unknown>{unknown} unknown</span>, \
         <span class=maintenance>{maintenance} in maintenance</span>; \
         {owned} checked here; {checks} checks ({failed} failed); {alive} members alive; \
         actor {actor:016x}; up {uptime} s.</p>",
        id = escape(&node.id),
        origins = node.origins,
        down = count(Shown::Down),
        up = count(Shown::Up),
        unknown = count(Shown::Unknown),
        maintenance = count(Shown::Maintenance),
        owned = node.owned_origins,
        checks = node.checks_total,
        failed = node.checks_failed,
        alive = node.members_alive,
        actor = node.actor,
        uptime = node.uptime_s,
    );
    members(&mut h, snapshot);
    origins(&mut h, snapshot, query, now);
    h.push_str("</body></html>");
    h
}

fn members(h: &mut String, snapshot: &Snapshot) {
    h.push_str(
        "<details><summary>Members</summary><table class=members>\
         <tr><th>id</th><th>gossip</th><th>sync</th><th>state</th></tr>",
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
    h.push_str("</table></details>");
}

fn origins(h: &mut String, snapshot: &Snapshot, query: &PageQuery, now: u64) {
    let needle = query.q.to_lowercase();
    let mut rows: Vec<_> = snapshot
        .origins
        .iter()
        .map(|(id, spec)| (id, spec, snapshot.health.get(id), snapshot.shown(id)))
        .filter(|(id, spec, _, _)| {
            needle.is_empty()
                || id.to_lowercase().contains(&needle)
                || spec.address.to_lowercase().contains(&needle)
        })
        .filter(|(_, _, _, shown)| query.status.is_none_or(|s| *shown == s))
        .collect();
    // Down first, then unknown, in maintenance, up; the most recently
    // changed first.
    let rank = |s: Shown| match s {
        Shown::Down => 0,
        Shown::Unknown => 1,
        Shown::Maintenance => 2,
        Shown::Up => 3,
    };
    rows.sort_by_key(|(id, _, r, shown)| {
        (
            rank(*shown),
            std::cmp::Reverse(r.map_or(0, |r| r.since_ms)),
            (*id).clone(),
        )
    });
    let pages = rows.len().div_ceil(PAGE_ROWS).max(1);
    let page = query.page.min(pages - 1);
    let first = page * PAGE_ROWS;
    let shown = &rows[first.min(rows.len())..(first + PAGE_ROWS).min(rows.len())];
    let selected = |s: Option<Shown>| if query.status == s { " selected" } else { "" };
    let _ = write!(
        h,
        "<h2>Origins</h2><form method=get>\
         <input name=q placeholder=\"id or address\" value=\"{q}\" size=30> \
         <select name=status><option value=\"\"{all}>all</option>\
         <option value=down{down}>down</option><option value=up{up}>up</option>\
         <option value=unknown{unknown}>unknown</option>\
         <option value=maintenance{maintenance}>maintenance</option></select> \
         <button>filter</button></form>",
        q = escape(&query.q),
        all = selected(None),
        down = selected(Some(Shown::Down)),
        up = selected(Some(Shown::Up)),
        unknown = selected(Some(Shown::Unknown)),
        maintenance = selected(Some(Shown::Maintenance)),
    );
    pager(h, query, page, pages, first, shown.len(), rows.len());
    h.push_str(
        "<table><tr><th class=id>id</th><th class=addr>address</th><th class=kind>kind</th>\
         <th class=st>status</th><th class=t>since</th><th class=by>checked by</th>\
         <th class=t>last check</th><th class=lat>latency</th><th class=reason>reason</th></tr>",
    );
    for (id, spec, r, status) in shown {
        let status = status.as_str();
        // Under maintenance, the reason column says why and until when.
        let reason = match snapshot.maintenance.get(*id) {
            Some(m) => format!(
                "{} (by {}, ends in {})",
                m.reason,
                m.set_by,
                until(m.until_ms, now)
            ),
            None => {
                let reason = r.and_then(|r| r.reason.as_deref()).unwrap_or("");
                // How a second opinion went, after the owner's reason.
                match r.and_then(|r| r.confirmation.as_ref()) {
                    Some(Confirmation::Disputed { by }) => {
                        format!("disputed: {by} saw it up; {reason}")
                    }
                    Some(Confirmation::Confirmed { by }) => format!("{reason} (confirmed by {by})"),
                    Some(Confirmation::Unconfirmed { why }) => format!(
                        "{reason} ({})",
                        match why {
                            Unconfirmed::NoAnswer => "unconfirmed: no answer",
                            Unconfirmed::Alone => "unconfirmed: alone",
                        }
                    ),
                    None => reason.to_owned(),
                }
            }
        };
        let last = match (snapshot.last_checks.get(*id), r) {
            (Some(at), _) => ago(*at, now),
            (None, Some(r)) => format!("{} (record)", ago(r.checked_at_ms, now)),
            (None, None) => String::new(),
        };
        let _ = write!(
            h,
            "<tr>{}{}<td class=kind>{}</td><td class=\"st {status}\">{status}</td>\
             <td class=t>{}</td>{}<td class=t>{}</td><td class=lat>{}</td>{}</tr>",
            cell(id, "id"),
            cell(&spec.address, "addr"),
            spec.kind,
            r.map_or(String::new(), |r| ago(r.since_ms, now)),
            cell(r.map_or("", |r| r.checked_by.as_str()), "by"),
            escape(&last),
            r.and_then(|r| r.latency_ms)
                .map_or(String::new(), |l| format!("{l} ms")),
            cell(&reason, "reason"),
        );
    }
    h.push_str("</table>");
    pager(h, query, page, pages, first, shown.len(), rows.len());
}

fn pager(
    h: &mut String,
    query: &PageQuery,
    page: usize,
    pages: usize,
    first: usize,
    shown: usize,
    total: usize,
) {
    let _ = write!(
        h,
        "<p class=note>{} of {total} (page {} of {pages}) ",
        if shown == 0 {
            "none".to_owned()
        } else {
            format!("{}–{}", first + 1, first + shown)
        },
        page + 1
    );
    if page > 0 {
        let _ = write!(
            h,
            "<a href=\"{}\">← previous</a> ",
            escape(&query.at(page - 1))
        );
    }
    if page + 1 < pages {
        let _ = write!(h, "<a href=\"{}\">next →</a>", escape(&query.at(page + 1)));
    }
    h.push_str("</p>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{record::Status, snapshot::sample};

    #[test]
    fn ten_thousand_origins_make_one_page_of_rows_down_ones_first() {
        let mut snap = sample(10_000, &[42, 9_000]);
        if let Some(r) = snap.health.get_mut("o9000") {
            r.reason = Some(format!("the server's certificate {}", "x".repeat(300)));
        }
        snap.last_checks.insert("o0042".into(), snap.now_ms);
        let html = render(&snap, &PageQuery::default());
        assert!(html.len() < 64 * 1024, "{} bytes", html.len());
        let rows = html.matches("<tr><td class=\"id\"").count();
        assert_eq!(rows, PAGE_ROWS);
        let first = html.find("title=\"o9000\"").expect("o9000 is shown");
        let second = html.find("title=\"o0042\"").expect("o0042 is shown");
        let up = html.find("title=\"o0000\"").expect("o0000 is shown");
        assert!(first < up && second < up, "down ones first");
        assert!(html.contains("1–100 of 10000 (page 1 of 100)"));
        assert!(html.contains("href=\"?page=1\""), "a next page");
        // the long reason whole on hover, cut by the column
        assert!(
            html.contains(&format!(
                "title=\"the server&#x27;s certificate {}\"",
                "x".repeat(300)
            )) || html.contains(&format!(
                "title=\"the server's certificate {}\"",
                "x".repeat(300)
            ))
        );
        assert!(html.contains("<span class=down>2 down</span>"));
        // last check: this agent's own, else the record's, marked
        assert!(html.contains("0 s ago</td>"));
        assert!(html.contains("(record)"));
    }

    #[test]
    fn the_filter_and_the_pages_narrow_the_rows() {
        let snap = sample(250, &[7]);
        let only_down = render(
            &snap,
            &PageQuery {
                status: Some(Shown::Down),
                ..PageQuery::default()
            },
        );
        assert_eq!(only_down.matches("<tr><td class=\"id\"").count(), 1);
        assert!(only_down.contains("title=\"o0007\""));
        let text = render(
            &snap,
            &PageQuery {
                q: "O012".into(),
                ..PageQuery::default()
            },
        );
        assert_eq!(
            text.matches("<tr><td class=\"id\"").count(),
            10,
            "o0120..o0129"
        );
        let last = render(
            &snap,
            &PageQuery {
                page: 99,
                ..PageQuery::default()
            },
        );
        assert!(
            last.contains("201–250 of 250 (page 3 of 3)"),
            "a page past the end is the last"
        );
        assert!(last.contains("← previous") && !last.contains("next →"));
    }

    #[test]
    fn a_second_opinion_is_shown_with_the_reason() {
        let mut snap = sample(3, &[1]);
        if let Some(r) = snap.health.get_mut("o0000") {
            r.reason = Some("timeout".into());
            r.confirmation = Some(Confirmation::Disputed { by: "hc-2".into() });
        }
        if let Some(r) = snap.health.get_mut("o0001") {
            r.reason = Some("refused".into());
            r.confirmation = Some(Confirmation::Confirmed { by: "hc-3".into() });
        }
        if let Some(r) = snap.health.get_mut("o0002") {
            r.status = Status::Down;
            r.reason = Some("refused".into());
            r.confirmation = Some(Confirmation::Unconfirmed {
                why: Unconfirmed::NoAnswer,
            });
        }
        let html = render(&snap, &PageQuery::default());
        assert!(html.contains("disputed: hc-2 saw it up; timeout"), "{html}");
        assert!(html.contains("refused (confirmed by hc-3)"));
        assert!(html.contains("refused (unconfirmed: no answer)"));
    }

    #[test]
    fn a_query_is_read_and_written_back() {
        let q = PageQuery::parse(Some("q=web+1%2Fa&status=down&page=3"));
        assert_eq!(q.q, "web 1/a");
        assert_eq!(q.status, Some(Shown::Down));
        assert_eq!(q.page, 3);
        assert_eq!(q.at(4), "?page=4&q=web%201%2Fa&status=down");
        assert_eq!(PageQuery::parse(None), PageQuery::default());
        assert_eq!(
            PageQuery::parse(Some("page=x&status=all")),
            PageQuery::default()
        );
    }
}
