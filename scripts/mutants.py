#!/usr/bin/env python3
"""Break the ORMap in known ways, one at a time, and list the tests that catch each.

Run from the repository root: python3 scripts/mutants.py
Each variant patches one line of crdt/src, runs `cargo test -p crdt -p proofs`,
records the failing tests and restores the file (also on Ctrl-C). A variant
that no test catches is reported as SURVIVED and makes the script exit 1.
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
        "        has_live.then(|| self.write(key.clone(), None))",
        "        has_live.then(|| { let old = self.entries.remove(key); "
        "self.reindex(key, old.as_ref(), None); let mut c = CausalContext::new(); "
        "c.extend(old.iter().flatten().map(|s| s.dot)); "
        "Delta::new(BTreeMap::new(), c, VersionVector::new(), false) })",
    ),
}


def main():
    before = set(glob.glob("proofs/tests/*.proptest-regressions"))
    saved = {p: open(p).read() for p in before}
    survived = []
    for name, (path, old, new) in VARIANTS.items():
        src = open(path).read()
        if old not in src:
            sys.exit(f"variant '{name}': the line to patch is gone from {path}; update this script")
        open(path, "w").write(src.replace(old, new))
        try:
            out = subprocess.run(
                ["cargo", "test", "-p", "crdt", "-p", "proofs", "--no-fail-fast"],
                capture_output=True, text=True,
            )
        finally:
            open(path, "w").write(src)
        text = out.stdout + out.stderr
        if "error[" in text:
            sys.exit(f"variant '{name}' does not compile:\n{text[:2000]}")
        failed = re.findall(r"^test (\S+) \.\.\. FAILED", text, re.M)
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
