#!/usr/bin/env python3
"""Break the ORMap, the Replicated core and the palette types in known ways,
one at a time, and list the tests that catch each.

Run from the repository root: python3 scripts/mutants.py [NAME-SUBSTRING...]
Each variant patches one or a few lines of crdt/src, runs
`cargo test -p crdt -p proofs`, records the failing tests and restores the
files (also on Ctrl-C). A variant that no test catches is reported as
SURVIVED and makes the script exit 1. With arguments, only the variants whose
name contains one of them run.
Proptest may write *.proptest-regressions files for the mutants' failures;
they are removed afterwards, since the seeds only fail on broken code.
"""
import glob, os, re, subprocess, sys

VARIANTS = {
    "join ignores the other side's context": (
        "crdt/src/ormap/join.rs",
        "                if !their_context.contains(a.dot) {\n                    out.push(a.clone());\n                }",
        "                let _ = their_context;\n                out.push(a.clone());",
    ),
    "delta_since ships only the unseen siblings of a key": (
        "crdt/src/ormap/delta.rs",
        "            .filter_map(|k| self.entries.get(k).map(|s| (k.clone(), s.clone())))",
        "            .filter_map(|k| self.entries.get(k).map(|s| (k.clone(), "
        "s.iter().filter(|s| !digest.contains(s.dot)).cloned().collect())))",
    ),
    "purge frontier ignored (no full-state answer)": (
        "crdt/src/ormap/delta.rs",
        "        if !digest.covers(&self.frontier) {",
        "        if false && !digest.covers(&self.frontier) {",
    ),
    "frontier joined only from full states": (
        "crdt/src/ormap/join.rs",
        "        self.frontier.join(frontier);\n        self.context.join(context);",
        "        if full { self.frontier.join(frontier); }\n        self.context.join(context);",
    ),
    "remove mints no dot (drops the key, no tombstone)": (
        "crdt/src/ormap/mod.rs",
        "        (has_live && !self.exhausted()).then(|| self.write(key.clone(), None))",
        "        (has_live && !self.exhausted()).then(|| { let old = self.entries.remove(key); "
        "self.reindex(key, old.as_ref(), None); let mut c = CausalContext::new(); "
        "c.extend(old.iter().flatten().map(|s| s.dot)); "
        "Delta::new(BTreeMap::new(), c, VersionVector::new(), false) })",
    ),
    # --- the Replicated core (crdt/src/replicated) ---
    "Replicated: the join ignores the other side's context": (
        "crdt/src/replicated/join.rs",
        "        new.join(&self.context, theirs, context);",
        "        new.join(&self.context, theirs, &CausalContext::new());",
    ),
    "Replicated: a join does not learn the responder's purge frontier": (
        "crdt/src/replicated/join.rs",
        "        joined_frontier.join(frontier);",
        "        let _ = frontier;",
    ),
    "Replicated: the frontier not applied in join_state (covered tombs kept)": [
        (
            "crdt/src/replicated/join.rs",
            "        if new.tombs.iter().any(|d| frontier.contains(d)) {",
            "        if false && new.tombs.iter().any(|d| frontier.contains(d)) {",
        ),
        (
            "crdt/src/replicated/join.rs",
            "            for key in self.drop_covered_tombs(&before, []) {",
            "            let _ = before;\n            for key in Vec::<K>::new() {",
        ),
    ],
    "Replicated: a full-state join keeps the local keys it does not ship": (
        "crdt/src/replicated/join.rs",
        "        if full {",
        "        if false && full {",
    ),
    "Replicated: delta_since ships only the unseen dots of a key": (
        "crdt/src/replicated/delta.rs",
        "            .filter_map(|k| self.entries.get(k).map(|e| (k.clone(), e.clone())))",
        "            .filter_map(|k| self.entries.get(k).map(|e| { let mut p = e.clone(); "
        "p.join(&CausalContext::new(), &Entry::default(), digest); (k.clone(), p) }))",
    ),
    "Replicated: no full state below the purge frontier": (
        "crdt/src/replicated/delta.rs",
        "        if !digest.covers(&self.frontier) {",
        "        if false && !digest.covers(&self.frontier) {",
    ),
    "Replicated: a removal mints no tomb dot": (
        "crdt/src/replicated/mod.rs",
        "                tombs: [dot].into_iter().collect(),",
        "                tombs: Tombs::default(),",
    ),
    "Replicated: no frontier-only answer to a digest that has every dot": (
        "crdt/src/replicated/mod.rs",
        "        (!self.frontier.is_empty()).then(|| {",
        "        (false && !self.frontier.is_empty()).then(|| {",
    ),
    "Replicated: purge drops tomb dots that are not stable": (
        "crdt/src/replicated/purge.rs",
        "            .filter(|(d, _)| stable.contains(**d))",
        "            .filter(|(d, _)| stable.contains(**d) || d.counter() > 0)",
    ),
    # --- the palette (crdt/src/types) ---
    "GCounter: an increment keeps the actor's old entry (counts twice)": (
        "crdt/src/types/counter.rs",
        "        let total = total.copied().unwrap_or(0).saturating_add(by);\n"
        "        Effect {\n            add: [(dot, total)].into_iter().collect(),\n            removes,",
        "        let total = total.copied().unwrap_or(0).saturating_add(by);\n"
        "        Effect {\n            add: [(dot, total)].into_iter().collect(),\n"
        "            removes: { let _ = removes; Vec::new() },",
    ),
    "PNCounter: an increment keeps the actor's old entry (counts twice)": (
        "crdt/src/types/counter.rs",
        "            add: [(dot, totals)].into_iter().collect(),\n            removes,",
        "            add: [(dot, totals)].into_iter().collect(),\n"
        "            removes: { let _ = removes; Vec::new() },",
    ),
    "AWSet: an add keeps the observed dots": (
        "crdt/src/types/set.rs",
        "            removes: store.iter().collect(),",
        "            removes: Vec::new(),",
    ),
    "SetOf: a remove removes nothing": (
        "crdt/src/types/set.rs",
        "        if !add {\n            return Effect {\n                add: DotMap::new(),\n"
        "                removes,",
        "        if !add {\n            return Effect {\n                add: DotMap::new(),\n"
        "                removes: { let _ = removes; Vec::new() },",
    ),
    "EWFlag: read as disable-wins": (
        "crdt/src/types/flag.rs",
        "        store.values().any(|v| *v)",
        "        !store.is_empty() && store.values().all(|v| *v)",
    ),
    "DWFlag: read as enable-wins": (
        "crdt/src/types/flag.rs",
        "        !store.is_empty() && store.values().all(|v| *v)",
        "        store.values().any(|v| *v)",
    ),
    "MVReg: a write does not replace the observed writes": (
        "crdt/src/types/register.rs",
        "    fn effect(store: &DotFun<V>, _: ActorId, dot: Dot, value: V) -> Effect<DotFun<V>> {\n"
        "        write(store, dot, value)\n    }\n}\n\n/// A last-writer-wins",
        "    fn effect(store: &DotFun<V>, _: ActorId, dot: Dot, value: V) -> Effect<DotFun<V>> {\n"
        "        let _ = store; Effect { add: [(dot, value)].into_iter().collect(), removes: Vec::new() }\n"
        "    }\n}\n\n/// A last-writer-wins",
    ),
    "LwwReg: the read ignores the tiebreak (dot order only)": (
        "crdt/src/types/register.rs",
        "    let tiebreak = B::default();",
        "    let tiebreak = ActorOrder;",
    ),
    "MapOf: Remove removes nothing nested": (
        "crdt/src/types/map.rs",
        "                    s.dots(&mut |d| removes.push(d));",
        "                    s.dots(&mut |_| {});",
    ),
    "MapOf: an update drops the removals of the nested operation": (
        "crdt/src/types/map.rs",
        "                    removes: inner.removes,",
        "                    removes: { let _ = inner.removes; Vec::new() },",
    ),
}


def failures(text):
    """The failed tests, each named with its test target (`palette_laws::x`)."""
    out, target = [], "?"
    for line in text.splitlines():
        m = re.match(r"\s*Running .*\((?:.*/)?([^/()]+?)-[0-9a-f]+\)", line)
        if m:
            target = m.group(1)
        elif line.strip().startswith("Doc-tests"):
            target = "doctest"
        m = re.match(r"^test (.+?) \.\.\. FAILED", line)
        if m:
            out.append(f"{target}: {m.group(1)}")
    return out


def main():
    before = set(glob.glob("proofs/tests/*.proptest-regressions"))
    saved = {p: open(p).read() for p in before}
    survived = []
    only = sys.argv[1:]
    for name, patches in VARIANTS.items():
        if only and not any(o in name for o in only):
            continue
        if isinstance(patches, tuple):
            patches = [patches]
        originals = {}
        for path, old, new in patches:
            originals.setdefault(path, open(path).read())
            current = open(path).read()
            if current.count(old) != 1:
                for p, text in originals.items():
                    open(p, "w").write(text)
                sys.exit(f"variant '{name}': the line to patch is not in {path} exactly once; "
                         "update this script")
            open(path, "w").write(current.replace(old, new))
        try:
            out = subprocess.run(
                ["cargo", "test", "-p", "crdt", "-p", "proofs", "--no-fail-fast"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
        finally:
            for path, text in originals.items():
                open(path, "w").write(text)
        text = out.stdout
        if "error[" in text:
            sys.exit(f"variant '{name}' does not compile:\n{text[:2000]}")
        failed = failures(text)
        print(f"== {name}: caught by {len(failed)} tests")
        for f in failed:
            print(f"   {f}")
        if not failed:
            survived.append(name)
    for p in set(glob.glob("proofs/tests/*.proptest-regressions")) - before:
        os.remove(p)
    for p, text in saved.items():
        open(p, "w").write(text)
    if survived:
        print("SURVIVED:", ", ".join(survived))
        sys.exit(1)


if __name__ == "__main__":
    main()
