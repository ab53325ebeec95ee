"""Executable model of the causal dot-store core of issue 13 (the palette).

One core for every type, after Almeida, Shoker & Baquero, "Delta State
Replicated Data Types" (2018):

* **Dot stores.** A leaf is a *dot fun* (dot -> value; a dot set is a dot
  fun whose values are None). A map is key -> dot store. One join rule for
  all: a dot survives a join if both sides hold it, or one side holds it and
  the other side's context has not seen it; a map joins key by key and drops
  keys that end up empty.
* **One causal context per top-level replica**, never one per nested value.
* **Types are mutators over that core**, each choosing which observed dots
  it removes and which dot it adds:
  - counter (G/PN): one dotted entry per actor holding its running totals
    (p, n); an increment replaces the actor's entry with a new dot;
  - AWSet: element -> dot set; add replaces the element's observed dots with
    a new one, remove drops them (add wins over a concurrent remove);
  - EWFlag: enable replaces the observed dots with a new one, disable drops
    them; DWFlag the other way round (disable adds, enable drops);
  - MVReg / LWW register: a write replaces the observed dots (LWW reads one
    of the survivors by a tiebreak; MV reads all);
  - map: key -> any of these (maps of maps included); removing a key drops
    every dot observed under it, so a concurrent update inside survives.
* **A removal mints a tombstone dot** in its top-level key's tomb set
  (replacing the tombs it observed), so that `delta_since` -- which ships
  the whole state of every top-level key holding a dot the digest has not
  seen, plus the whole context -- ships the key whose dots were dropped.
* **Purge.** A tomb dot that is causally stable (in the meet of the present
  replicas' digests) is dropped and added to the purge frontier. A digest
  that does not cover the frontier gets the full state.
* **The fix of issue 13 item 4.** The purge frontier travels with *every*
  answer (also one that ships no key) and is joined; a join drops every tomb
  dot the joined frontier covers. Without it two converged replicas read
  the same but differ as states forever (cases (a) and (b) of the issue,
  `case_a` and `case_b` below).

Run: python3 proofs/models/dotstore_model.py [SEEDS]
Checks, on random schedules of mutations of every type at every nesting
depth (top level, a map, a map of maps), pulls whose answers arrive late,
duplicated or not at all, purges, lost stores (a fresh actor, an empty
state) and an away replica, with 2-8 replicas:
  - the delta-mutator law: X join m_delta(X) == m(X), as states;
  - the delta_since law: Y join delta_since_X(digest(Y)) reads as Y join X,
    and holds the same live dots;
  - convergence to an oracle computed from the history of operations alone
    (which minted dots survive, by causality and scope), and a converged
    counter equals the sum of its increments minus its decrements exactly;
  - converged replicas are equal as states (store, context, frontier).
Then broken variants, each of which must be caught.
"""
import copy
import random
import sys

# --- dot stores --------------------------------------------------------------
# A dot is (actor, n). A leaf is a dict keyed by dots; a map is a dict keyed by
# strings. Top-level entries are maps {'v': store, '#': tomb leaf}.


def is_leaf(node):
    return any(isinstance(k, tuple) for k in node)


def dots(node):
    out = set()
    for k, v in node.items():
        if isinstance(k, tuple):
            out.add(k)
        else:
            out |= dots(v)
    return out


def join_node(a, b, ca, cb):
    """The one join rule of every dot store."""
    if is_leaf(a) or is_leaf(b):
        s = {d: v for d, v in a.items() if d in b or d not in cb}
        s.update({d: v for d, v in b.items() if d in a or d not in ca})
        return s
    out = {}
    for k in set(a) | set(b):
        j = join_node(a.get(k, {}), b.get(k, {}), ca, cb)
        if j:
            out[k] = j
    return out


def get_path(node, path):
    for p in path:
        node = node.get(p, {})
    return node


def set_path(node, path, value):
    """Sets node[path] = value, removing empty maps on the way back."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    child = set_path(node.get(head, {}), rest, value)
    out = dict(node)
    if child:
        out[head] = child
    else:
        out.pop(head, None)
    return out


def nest(path, value):
    for p in reversed(path):
        value = {p: value}
    return value


# --- a replica ----------------------------------------------------------------

BROKEN = set()  # names of broken variants switched on


class Replica:
    def __init__(self, actor):
        self.actor = actor
        self.n = 0
        self.ctx = set()
        self.store = {}  # top key -> {'v': ..., '#': {...}}
        self.frontier = set()

    def state(self):
        return (self.store, self.ctx, self.frontier)

    def mint(self):
        self.n += 1
        d = (self.actor, self.n)
        return d

    # Every mutation is expressed as: the dots it removes (observed, in its
    # scope), the entries it adds (path -> {dot: value}), and whether it mints
    # a tomb. It returns the delta and the event for the oracle.
    def mutate(self, key, path, op, arg=None):
        entry = self.store.get(key, {})
        leaf_path = ['v'] + path
        at = get_path(entry, leaf_path)
        removed, add, tomb = set(), None, False
        if op in ('inc', 'dec'):
            own = {d: v for d, v in at.items() if d[0] == self.actor}
            p, n = max(own.values(), default=(0, 0))
            removed = set(own) if 'counter_keeps_old' not in BROKEN else set()
            add = (p + 1, n) if op == 'inc' else (p, n + 1)
        elif op in ('add', 'write', 'enable_ew', 'disable_dw'):
            removed = set(at)
            add = arg
        elif op in ('remove_elem', 'disable_ew', 'enable_dw', 'remove_key'):
            removed = dots(at)
            tomb = 'no_tomb' not in BROKEN
        else:
            raise ValueError(op)
        if op in ('remove_elem', 'disable_ew', 'enable_dw', 'remove_key') and not removed:
            return None  # nothing observed: a no-op, as the Rust mutators
        delta_store, delta_ctx = {}, set(removed)
        new_dots, tomb_dot = [], None
        if add is not None or op in ('inc', 'dec', 'add', 'enable_ew', 'disable_dw'):
            d = self.mint()
            new_dots.append(d)
            delta_store = nest(leaf_path, {d: add})
            delta_ctx.add(d)
        if tomb:
            t = self.mint()
            tomb_dot = t
            old = set(entry.get('#', {}))
            delta_store = {'#': {t: None}}
            delta_ctx |= old | {t}
        delta = {'keys': {key: delta_store} if delta_store else {}, 'ctx': delta_ctx,
                 'frontier': set(), 'full': False}
        scope = ('actor', self.actor) if op in ('inc', 'dec') else (
            'subtree' if op == 'remove_key' else 'leaf')
        event = {'key': key, 'path': tuple(path), 'dots': new_dots, 'ctx': set(self.ctx),
                 'scope': scope, 'op': op, 'arg': add, 'tomb': tomb_dot}
        self.apply_local(delta)
        event['ctx_after'] = set(self.ctx)
        return delta, event

    def apply_local(self, delta):
        """X join m_delta(X): the delta of a local mutation, joined."""
        self.join(copy.deepcopy(delta))

    def digest(self):
        return set(self.ctx)

    def delta_since(self, digest):
        if not self.frontier <= digest and 'no_fallback' not in BROKEN:
            return {'keys': copy.deepcopy(self.store), 'ctx': set(self.ctx),
                    'frontier': set(self.frontier), 'full': True}
        if 'partial_keys' in BROKEN:
            out = {}
            for k, e in self.store.items():
                part = prune_to(e, digest)
                if part:
                    out[k] = part
        else:
            out = {k: copy.deepcopy(e) for k, e in self.store.items() if not dots(e) <= digest}
        frontier = set(self.frontier)
        if 'frontier_only_with_keys' in BROKEN and not out:
            frontier = set()
        return {'keys': out, 'ctx': set(self.ctx), 'frontier': frontier, 'full': False}

    def join(self, delta):
        bctx = delta['ctx']
        touched = set(delta['keys']) | (set(self.store) if delta['full'] else set())
        for k in touched:
            if 'union_join' in BROKEN:
                j = union(self.store.get(k, {}), delta['keys'].get(k, {}))
            else:
                j = join_node(self.store.get(k, {}), delta['keys'].get(k, {}), self.ctx, bctx)
            if j:
                self.store[k] = j
            else:
                self.store.pop(k, None)
        self.ctx |= bctx
        self.frontier |= delta['frontier']
        if 'frontier_not_applied' not in BROKEN:
            self.drop_tombs(self.frontier)

    def drop_tombs(self, covered):
        """Drops every tomb dot in `covered` (the Rust core finds them by its
        dot index: O(what the frontier adds))."""
        for k in list(self.store):
            e = self.store[k]
            tomb = {d: v for d, v in e.get('#', {}).items() if d not in covered}
            e = set_path(e, ['#'], tomb)
            if e:
                self.store[k] = e
            else:
                del self.store[k]

    def purge(self, stable):
        stable_tombs = set()
        for e in self.store.values():
            stable_tombs |= {d for d in e.get('#', {}) if d in stable}
        self.frontier |= stable_tombs
        self.drop_tombs(stable_tombs)

    def live(self):
        """(key, path) -> {dot: value} of every value dot (tombs excluded)."""
        out = {}

        def walk(key, path, node):
            if is_leaf(node):
                out[(key, tuple(path))] = dict(node)
            else:
                for k, v in node.items():
                    walk(key, path + [k], v)
        for k, e in self.store.items():
            if 'v' in e:
                walk(k, [], e['v'])
        return out


def prune_to(node, digest):
    """Only the dots a digest has not seen (the 'partial key states' bug)."""
    if is_leaf(node):
        return {d: v for d, v in node.items() if d not in digest}
    out = {}
    for k, v in node.items():
        p = prune_to(v, digest)
        if p:
            out[k] = p
    return out


def union(a, b):
    if is_leaf(a) or is_leaf(b):
        return {**a, **b}
    return {k: union(a.get(k, {}), b.get(k, {})) for k in set(a) | set(b)}


# --- the types, as operations over paths --------------------------------------
# Top-level keys: c* counter, s* AWSet, e* EWFlag, w* DWFlag, r* MVReg,
# m* map of {c*, s*, m* (map of {c*, s*})}. A path is the list of keys below
# the top-level key, down to a leaf.

def random_op(rng, rep):
    key = rng.choice(['c0', 'c1', 's0', 'e0', 'w0', 'r0', 'm0', 'm1'])
    path = []
    kind = key[0]
    if kind == 'm':
        depth = rng.choice([1, 1, 2])
        path = [rng.choice(['m0', 'm1'])] if depth == 2 else []
        leaf = rng.choice(['c0', 's0', 's1'])
        if rng.random() < 0.12:
            # remove a nested key (a whole sub-map or a leaf): observed-remove
            target = path + [leaf] if rng.random() < 0.6 or not path else path
            return key, target, 'remove_key', None
        path = path + [leaf]
        kind = leaf[0]
    if kind == 'c':
        return key, path, rng.choice(['inc', 'inc', 'dec']), None
    if kind == 's':
        elem = str(rng.randrange(4))
        if rng.random() < 0.65:
            return key, path + [elem], 'add', None
        return key, path + [elem], 'remove_elem', None
    if kind == 'e':
        return key, path, rng.choice(['enable_ew', 'enable_ew', 'disable_ew']), None
    if kind == 'w':
        return key, path, rng.choice(['disable_dw', 'enable_dw', 'enable_dw']), None
    if kind == 'r':
        return key, path, 'write', rng.randrange(100)
    raise ValueError(key)


def top_remove(rng):
    """Removing a whole top-level key (any type)."""
    return rng.choice(['c0', 's0', 'e0', 'r0', 'm0', 'm1']), [], 'remove_key', None


# --- the oracle: from the history of operations alone --------------------------

def covers(event, key, path, dot):
    """Whether event removes a value dot `dot` at (key, path) it has seen."""
    if event['key'] != key or dot not in event['ctx_after'] or dot in event['dots']:
        return False
    kind, ep = event['scope'], event['path']
    if kind == 'subtree':
        return path[:len(ep)] == ep
    if kind == 'leaf':
        return path == ep
    return path == ep and dot[0] == event['scope'][1]  # a counter's own entry


def oracle(events):
    minted = {}
    for e in events:
        for d in e['dots']:
            minted[d] = (e['key'], e['path'], e['arg'])
    out = {}
    for d, (key, path, value) in minted.items():
        if not any(covers(e, key, path, d) for e in events):
            out.setdefault((key, path), {})[d] = value
    return out


def counter_total(events, key, path):
    return sum(1 if e['op'] == 'inc' else -1 for e in events
               if e['key'] == key and e['path'] == path and e['op'] in ('inc', 'dec'))


def counter_value(leaf):
    # each actor's surviving entry holds its totals; at most one per actor
    per_actor = {}
    for d, (p, n) in leaf.items():
        per_actor[d[0]] = max(per_actor.get(d[0], (0, 0)), (p, n))
    return sum(p - n for p, n in per_actor.values())


# --- schedules ------------------------------------------------------------------

def exchange_all(reps, rounds=4):
    for _ in range(rounds):
        for a in reps:
            for b in reps:
                if a is not b:
                    a.join(b.delta_since(a.digest()))


def run(seed, steps=500):
    rng = random.Random(seed)
    nrep = rng.randint(2, 8)
    reps = [Replica(i) for i in range(nrep)]
    next_actor = nrep
    events, inflight = [], []
    away, away_from, away_to = None, rng.randrange(steps), None
    away_to = away_from + rng.randrange(50, 200)
    for step in range(steps):
        if nrep > 2 and step == away_from:
            away = rng.choice(reps)
        if step == away_to:
            away = None
        present = [x for x in reps if x is not away]
        a = rng.choice(present)
        r = rng.random()
        if r < 0.35:
            key, path, op, arg = top_remove(rng) if rng.random() < 0.05 else random_op(rng, a)
            before = copy.deepcopy(a)
            res = a.mutate(key, path, op, arg)
            if res:
                delta, event = res
                events.append(event)
                # the delta-mutator law, as states
                check = copy.deepcopy(before)
                check.n = a.n
                check.join(copy.deepcopy(delta))
                if check.state() != a.state():
                    return f"seed {seed}: delta-mutator law broken by {op} at {key}{path}"
        elif r < 0.65:
            b = rng.choice(present)
            if a is b:
                continue
            ans = b.delta_since(a.digest())
            if rng.random() < 0.2:  # the delta_since law, against the full state
                y = copy.deepcopy(a)
                z = copy.deepcopy(a)
                y.join(copy.deepcopy(ans))
                full = {'keys': copy.deepcopy(b.store), 'ctx': set(b.ctx),
                        'frontier': set(b.frontier), 'full': True}
                z.join(full)
                if y.live() != z.live():
                    return f"seed {seed}: delta_since law broken"
            inflight.append((a, ans, b))
        elif r < 0.88 and inflight:
            i = rng.randrange(len(inflight))
            tgt, ans, _ = inflight[i]
            if rng.random() < 0.7:
                inflight.pop(i)  # else: delivered again later (duplicate)
            if tgt is not away and tgt in reps:
                tgt.join(copy.deepcopy(ans))
        elif r < 0.91 and inflight:
            inflight.pop(rng.randrange(len(inflight)))  # dropped
        elif r < 0.97:
            stable = set.intersection(*[x.digest() for x in present])
            a.purge(stable)
        elif r < 0.98 and len(present) > 1:
            # a lost store: a fresh actor and an empty state. What only it
            # had seen is lost with it (what is acknowledged, and when, is
            # the identity model's part: durable, or held by a peer).
            i = reps.index(a)
            reps[i] = Replica(next_actor)
            next_actor += 1
            # its answers still in flight are lost with it
            inflight = [m for m in inflight if a not in (m[0], m[2])]
    away = None
    exchange_all(reps)
    # The history that survived: the operations some live replica has seen
    # (after convergence every context is the same).
    known = reps[0].ctx
    events = [e for e in events if set(e['dots']) <= known and tomb_dots_of(e) <= known]
    first = reps[0]
    for x in reps[1:]:
        if x.live() != first.live():
            return f"seed {seed}: replicas read differently"
        if x.state() != first.state():
            return f"seed {seed}: converged replicas differ as states"
    want = oracle(events)
    got = {k: v for k, v in first.live().items() if v}
    if got != want:
        return f"seed {seed}: != oracle ({len(got)} vs {len(want)} leaves)"
    for (key, path), leaf in got.items():
        # A counter never removed (with its key or a map above it) equals
        # the sum of its increments minus its decrements, exactly; one that
        # was removed keeps the entries the removal did not observe
        # (observed-remove), which the dot-level oracle above checks.
        removed = any(e['op'] == 'remove_key' and e['key'] == key and path[:len(e['path'])] == e['path']
                      for e in events)
        if not removed and (key[0] == 'c' or (path and path[-1][0] == 'c')):
            if counter_value(leaf) != counter_total(events, key, path):
                return f"seed {seed}: counter {key}{path} is {counter_value(leaf)}, " \
                       f"increments minus decrements {counter_total(events, key, path)}"
    return None


def tomb_dots_of(event):
    return {event['tomb']} if event['tomb'] else set()


# --- directed cases (issue 13 item 4) -------------------------------------------

def case_a():
    """a inserts k, b pulls; a removes k, b pulls; a purges with the meet of
    both digests, b does not; b inserts k, a pulls: equal states?"""
    a, b = Replica(0), Replica(1)
    a.mutate('s0', ['k'], 'add')
    b.join(a.delta_since(b.digest()))
    a.mutate('s0', ['k'], 'remove_elem')
    b.join(a.delta_since(b.digest()))
    a.purge(a.digest() & b.digest())
    b.mutate('s0', ['k'], 'add')
    a.join(b.delta_since(a.digest()))
    exchange_all([a, b])
    if a.state() != b.state():
        return f"case (a): states differ: frontier {a.frontier} vs {b.frontier}"
    return None


def case_b():
    """p inserts k, m pulls; p removes k; m inserts k concurrently and pulls;
    p purges, then pulls: equal states?"""
    p, m = Replica(0), Replica(1)
    p.mutate('r0', [], 'write', 1)
    m.join(p.delta_since(m.digest()))
    p.mutate('r0', [], 'remove_key')
    m.mutate('r0', [], 'write', 5)
    m.join(p.delta_since(m.digest()))
    p.purge(p.digest() & m.digest())
    p.join(m.delta_since(p.digest()))
    exchange_all([p, m])
    if p.state() != m.state():
        return f"case (b): states differ: {p.store} vs {m.store}"
    if p.live() != {('r0', ()): {(1, 1): 5}}:
        return f"case (b): the concurrent write is lost: {p.live()}"
    return None


def nested_concurrent_update_survives_remove():
    """Removing a map key removes what was observed; a concurrent update
    inside it survives (at two levels of nesting)."""
    a, b = Replica(0), Replica(1)
    a.mutate('m0', ['m1', 'c0'], 'inc')
    b.join(a.delta_since(b.digest()))
    a.mutate('m0', ['m1'], 'remove_key')          # a removes the inner map
    b.mutate('m0', ['m1', 'c0'], 'inc')           # b increments inside it
    exchange_all([a, b])
    leaf = a.live().get(('m0', ('m1', 'c0')), {})
    if counter_value(leaf) != 1 or a.state() != b.state():
        return f"nested: want the concurrent increment (1), got {counter_value(leaf)}"
    return None


def counters_never_count_twice():
    """Late and duplicated answers never count an increment twice."""
    a, b, c = Replica(0), Replica(1), Replica(2)
    old = None
    for i in range(5):
        a.mutate('c0', [], 'inc')
        if i == 1:
            old = a.delta_since(b.digest())
    b.join(a.delta_since(b.digest()))
    for _ in range(3):
        b.join(copy.deepcopy(old))   # late and duplicated
        c.join(copy.deepcopy(old))
    exchange_all([a, b, c])
    values = [counter_value(x.live().get(('c0', ()), {})) for x in (a, b, c)]
    return None if values == [5, 5, 5] else f"counter: {values}"


DIRECTED = [case_a, case_b, nested_concurrent_update_survives_remove, counters_never_count_twice]


def check(seeds):
    failures = []
    for f in DIRECTED:
        try:
            bad = f()
        except Exception as e:  # noqa: BLE001 - a crash is a failure
            bad = f"{f.__name__}: crash {e!r}"
        if bad:
            failures.append(bad)
    for s in range(seeds):
        try:
            bad = run(s)
        except Exception as e:  # noqa: BLE001
            bad = f"seed {s}: crash {e!r}"
        if bad:
            failures.append(bad)
    return failures


VARIANTS = [
    ('a removal mints no tomb dot', 'no_tomb'),
    ('the frontier travels only with keys', 'frontier_only_with_keys'),
    ('a join does not drop tombs the frontier covers', 'frontier_not_applied'),
    ('answers ship only unseen dots, not whole key states', 'partial_keys'),
    ('no full state below the purge frontier', 'no_fallback'),
    ('a join that ignores contexts (union)', 'union_join'),
    ('an increment keeps the old entry', 'counter_keeps_old'),
]

if __name__ == '__main__':
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    failures = check(seeds)
    print(f"dot-store core: {len(DIRECTED)} directed cases and {seeds} random schedules: "
          f"{len(failures)} failed")
    for f in failures[:5]:
        print("  ", f)
    uncaught = []
    for name, flag in VARIANTS:
        BROKEN.clear()
        BROKEN.add(flag)
        caught = check(min(seeds, 100))
        BROKEN.clear()
        print(f"broken variant '{name}': caught by {len(caught)} of {len(DIRECTED) + min(seeds, 100)}"
              + (f" (e.g. {caught[0]})" if caught else ""))
        if not caught:
            uncaught.append(name)
    if failures or uncaught:
        print("FAILED" + (f": not caught: {uncaught}" if uncaught else ""))
        sys.exit(1)
    print("ok")
