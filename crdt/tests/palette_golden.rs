//! Golden vectors: the exact bytes (rmp-serde, as `sync` sends and stores
//! them) of a state and a delta of every palette type. A change of any
//! encoding fails here; if it is intended, regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p crdt --test palette_golden`, and say in
//! the README that the format changed (stores and peers of the old format
//! would no longer decode).

use std::path::Path;

use crdt::{
    AWSet, ActorId, Count, DWFlag, DeltaCrdt, EWFlag, GCounter, LwwReg, MVReg, Map, MapOf, MapOp,
    PNCounter, PosNeg, SetOf, SetOp,
};
use serde::{Serialize, de::DeserializeOwned};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Checks `value`'s encoding against `tests/golden/{name}.hex`, and that the
/// golden bytes decode back to `value`.
fn pin<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(name: &str, value: &T) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.hex"));
    let encoded = hex(&rmp_serde::to_vec(value).expect("encode"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, format!("{encoded}\n")).expect("write golden file");
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 once)", path.display()));
    assert_eq!(encoded, golden.trim(), "the encoding of {name} changed");
    let decoded: T = rmp_serde::from_slice(&unhex(golden.trim())).expect("decode");
    assert_eq!(&decoded, value, "{name}");
}

/// Two replicas with concurrent writes, joined: a state with two actors, and
/// the answer the second gives the first.
fn both<T: DeltaCrdt + crdt::Lattice + Clone>(
    mut a: T,
    mut b: T,
    write: impl Fn(&mut T, u64),
) -> (T, Option<T::Delta>) {
    write(&mut a, 1);
    write(&mut b, 2);
    let answer = b.delta_since(&a.digest());
    a.join(&b);
    (a, answer)
}

#[test]
fn golden_vectors_pin_every_palette_type() {
    let (a, b) = (ActorId(1), ActorId(2));
    let (s, d) = both(GCounter::new(a), GCounter::new(b), |c, n| {
        c.increment(n);
    });
    pin("gcounter", &s);
    pin("gcounter_delta", &d);
    let (s, d) = both(PNCounter::new(a), PNCounter::new(b), |c, n| {
        c.increment(10 * n);
        c.decrement(n);
    });
    pin("pncounter", &s);
    pin("pncounter_delta", &d);
    let (mut s, d) = both(AWSet::<String>::new(a), AWSet::new(b), |x, n| {
        x.insert(format!("e{n}"));
        x.insert("both".into());
    });
    s.remove(&"e2".to_string());
    pin("awset", &s);
    pin("awset_delta", &d);
    let (s, d) = both(EWFlag::new(a), EWFlag::new(b), |f, n| {
        if n == 1 {
            f.enable()
        } else {
            f.disable()
        };
    });
    pin("ewflag", &s);
    pin("ewflag_delta", &d);
    let (s, d) = both(DWFlag::new(a), DWFlag::new(b), |f, n| {
        if n == 1 {
            f.enable()
        } else {
            f.disable()
        };
    });
    pin("dwflag", &s);
    pin("dwflag_delta", &d);
    let (s, d) = both(MVReg::<String>::new(a), MVReg::new(b), |r, n| {
        r.write(format!("v{n}"));
    });
    pin("mvreg", &s);
    pin("mvreg_delta", &d);
    let (s, d) = both(LwwReg::<u64>::new(a), LwwReg::new(b), |r, n| {
        r.write(n);
    });
    pin("lwwreg", &s);
    pin("lwwreg_delta", &d);
    type Nested = Map<String, MapOf<String, SetOf<String>>>;
    let (mut s, d) = both(Nested::new(a), Nested::new(b), |m, n| {
        m.apply(
            "acme".into(),
            MapOp::Update("/login".into(), SetOp::Add(format!("s{n}"))),
        );
        m.apply(
            format!("t{n}"),
            MapOp::Update("/".into(), SetOp::Add("x".into())),
        );
    });
    s.remove(&"t2".to_string());
    let stable = s.digest();
    s.purge(&stable);
    pin("map_of_maps_of_sets", &s);
    pin("map_of_maps_of_sets_delta", &d);
    let (s, d) = both(Map::<String, PosNeg>::new(a), Map::new(b), |m, n| {
        m.apply("acme".into(), Count::Up(100 * n));
        m.apply("acme".into(), Count::Down(n));
    });
    pin("map_of_pncounters", &s);
    pin("map_of_pncounters_delta", &d);
}
