"""Executable model of replica identity, durability and restarts (issue 11).

The rules it checks, as implemented in `sync` (storage) and `apps/healthcheck`:

* **One stable actor per node.** The actor id is random, created with the
  store and persisted in it. A restart loads the store (rows, context, purge
  frontier, actor) before anything else and keeps minting with that actor, so
  a causal context holds one entry per node, not one per start.
* **Durable before exposed.** A node's own dots leave it (in an answer to a
  pull, in a notification) only once they are persisted: a pull that finds
  own dots above the durable mark is answered after the next commit. A crash
  can then lose only writes that nobody saw and nobody was told about
  (never acknowledged: an acknowledgement waits for the commit).
* **A lost store takes a fresh actor.** No store, no actor: a new random one.
* **A reused actor is verified first.** After a restart with a persisted
  actor, the node mints nothing until every member that was live when it
  started has answered one of its pulls (it serves its persisted view
  meanwhile). An answer whose context holds a dot of its actor above what its
  store holds means the store is older than what it exposed (a data dir
  restored from a snapshot): it takes a fresh actor. A member that does not
  answer within the bound makes it unsure: fresh actor. Alone (no live
  member), it trusts its store.

Known limit, reported and classified by the model rather than hidden: a store
restored from a snapshot older than writes that only *currently unreachable*
nodes have seen cannot be told from a good one; the model counts the runs
where such a "hidden witness" existed and checks that every dot reuse it
finds is one of them.

Everything else is the delta ORMap of ../../../shared/models/ormap_model.py
(whole key states + whole context per answer, tombstones with their own dot,
purge of stable tombstones, full state for a digest below the purge frontier).

Run: python3 proofs/models/identity_model.py [SEEDS]
Checks, on random schedules of writes, removes, commits, pulls (answers late,
duplicated or dropped), purges, crashes at any point, concurrent restarts,
lost stores, restored snapshots and an away node: no dot is ever minted
twice, every acknowledged write is kept (replicas converge to the oracle of
the surviving events), and every context has at most one actor per node plus
one per lost or stale store. Then five broken variants, each of which must be
caught.
"""
import copy
import random
import sys

# --- the delta ORMap (as in shared/models/ormap_model.py) -------------------


class Replica:
    def __init__(self, actor):
        self.actor = actor
        self.ctx = set()
        self.keys = {}
        self.purged = set()

    def max_counter(self, actor):
        return max((c for a, c in self.ctx if a == actor), default=0)

    def mint(self):
        # The real CausalContext::next_dot: one past the highest counter seen.
        return (self.actor, self.max_counter(self.actor) + 1)

    def write(self, k, v):
        d = self.mint()
        self.keys[k] = {d: v}
        self.ctx.add(d)
        return d

    def delta_since(self, digest):
        # The purge frontier travels with every answer (as in `crdt`): a
        # replica that learned of a purge second-hand passes it on. (The
        # reference model leaves this out; restarts from older stores need
        # it, seed 202 of this model found it again.)
        if not self.purged <= digest:
            return {'keys': copy.deepcopy(self.keys), 'ctx': set(self.ctx), 'full': True,
                    'purged': set(self.purged)}
        out = {k: dict(s) for k, s in self.keys.items() if any(d not in digest for d in s)}
        return {'keys': out, 'ctx': set(self.ctx), 'full': False, 'purged': set(self.purged)}

    def join(self, delta):
        bctx = delta['ctx']
        touched = set(delta['keys']) | (set(self.keys) if delta['full'] else set())
        for k in touched:
            a = self.keys.get(k, {})
            b = delta['keys'].get(k, {})
            s = {d: v for d, v in a.items() if d in b or d not in bctx}
            s.update({d: v for d, v in b.items() if d in a or d not in self.ctx})
            if s:
                self.keys[k] = s
            else:
                self.keys.pop(k, None)
        self.ctx |= bctx
        self.purged |= delta.get('purged', set())

    def purge(self, stable):
        for k in list(self.keys):
            s = self.keys[k]
            if all(v is None for v in s.values()) and all(d in stable for d in s):
                self.purged |= set(s)
                del self.keys[k]

    def read(self):
        out = {}
        for k, s in self.keys.items():
            live = [(d, v) for d, v in s.items() if v is not None]
            if live:
                out[k] = max(live)[1]
        return out


def oracle(events):
    """The visible map implied by the surviving events alone."""
    out, bykey = {}, {}
    for e in events:
        bykey.setdefault(e['key'], []).append(e)
    for k, es in bykey.items():
        maximal = [e for e in es if not any(f is not e and e['dot'] in f['seen'] for f in es)]
        live = [(e['dot'], e['value']) for e in maximal if e['value'] is not None]
        if live:
            out[k] = max(live)[1]
    return out


# --- nodes: a store on disk, a replica in memory ----------------------------

class Rules:
    """The design under test; each broken variant flips one rule."""
    identity = 'stable'        # 'stable' | 'derived' (name + generation) | 'per_start'
    gate_exposure = True       # own dots leave only once durable
    verify = True              # a reused actor mints only once verified
    load_before_mint = True    # the store is loaded before the actor writes
    verify_all = True          # every live member must answer (not just one)


class Cluster:
    def __init__(self, rng, rules, nodes=4):
        self.rng = rng
        self.rules = rules
        self.next_actor = 100
        self.minted = {}          # dot -> event
        self.events = []          # every event ever minted
        self.reused = []          # dots minted twice
        self.inflight = []        # (to node, from name, answer)
        # The bound on actors in a context: one per node, plus one per start
        # without a store (lost data dir) and one per stale or unverifiable
        # store.
        self.bound = nodes
        self.hidden_witness = set()  # actors whose reuse the known limit explains
        self.nodes = [self.new_node(f"n{i}") for i in range(nodes)]
        for n in self.nodes:
            self.start(n)

    def fresh_actor(self):
        self.next_actor += 1
        return self.next_actor

    def new_node(self, name):
        return {'name': name, 'store': None, 'mem': None, 'snapshots': [], 'gen': 0,
                'verify': None, 'away': False, 'started': 0, 'durable': 0,
                'pending_load': None}

    def up(self, n):
        return n['mem'] is not None

    def present(self):
        return [n for n in self.nodes if self.up(n) and not n['away']]

    def start(self, n):
        """A (re)start: load the store, or begin with a fresh actor."""
        n['started'] += 1
        store = n['store']
        rules = self.rules
        if store is None and n['started'] > 1:
            self.bound += 1
        if rules.identity == 'derived':
            # issue 11's bug: actor = hash(name, generation), the generation
            # kept only in the data dir
            n['gen'] = (store['gen'] if store else 0) + 1
            actor = hash((n['name'], n['gen'])) % 10**9
            reused = False
        elif rules.identity == 'per_start' or store is None:
            actor = self.fresh_actor()
            reused = False
        else:
            actor = store['actor']
            reused = True
        mem = Replica(actor)
        n['pending_load'] = None
        if store is not None:
            if rules.load_before_mint or not reused:
                mem.ctx = set(store['ctx'])
                mem.keys = copy.deepcopy(store['keys'])
                mem.purged = set(store['purged'])
            else:
                n['pending_load'] = store
        n['mem'] = mem
        store_max = max((c for a, c in store['ctx'] if a == actor), default=0) if store else 0
        n['durable'] = store_max
        others = [m for m in self.present() if m is not n]
        n['verify'] = None
        if reused and rules.verify and others:
            waiting = {m['name'] for m in others}
            if not rules.verify_all:
                waiting = {others[0]['name']}
            n['verify'] = {'waiting': waiting, 'deadline': 40, 'store_max': store_max}
        if reused and n.get('restored'):
            # the known limit: a node that is not live now has seen more of
            # this actor than the store holds
            for m in self.nodes:
                if m is not n and m not in others and self.seen_max(m, actor) > store_max:
                    self.hidden_witness.add(actor)
        n['restored'] = False
        if n['pending_load'] is None:
            self.persist(n)  # the actor is durable before any of its dots exists

    def seen_max(self, m, actor):
        best = m['mem'].max_counter(actor) if self.up(m) else 0
        if m['store']:
            best = max(best, max((c for a, c in m['store']['ctx'] if a == actor), default=0))
        return best

    def may_mint(self, n):
        return self.up(n) and n['verify'] is None

    # persistence
    def persist(self, n):
        mem = n['mem']
        if n['pending_load'] is not None:
            self.finish_load(n)
        n['store'] = {'actor': mem.actor, 'ctx': set(mem.ctx), 'keys': copy.deepcopy(mem.keys),
                      'purged': set(mem.purged), 'gen': n['gen']}
        n['durable'] = mem.max_counter(mem.actor)
        if self.rng.random() < 0.3:
            n['snapshots'].append(copy.deepcopy(n['store']))
        for e in self.events:
            if e['node'] is n and e['dot'] in mem.ctx and self.minted.get(e['dot']) is e:
                e['acked'] = True

    def exposable(self, n):
        mem = n['mem']
        return not self.rules.gate_exposure or mem.max_counter(mem.actor) <= n['durable']

    # operations
    def write(self, n, k, v):
        mem = n['mem']
        if v is None and k not in mem.keys:
            return
        if n['pending_load'] is not None and self.rng.random() < 0.5:
            self.finish_load(n)
        seen = set(mem.ctx)
        d = mem.write(k, v)
        # Reusing the counter of an event that nobody holds any more (it
        # never left a node that crashed before persisting it) is harmless;
        # any other reuse is the defect.
        if d in self.minted and self.held_anywhere(d, but=n):
            self.reused.append(d)
        e = {'key': k, 'dot': d, 'value': v, 'seen': seen, 'node': n, 'acked': False,
             'disk_lost_after': False}
        self.minted[d] = e
        self.events.append(e)

    def finish_load(self, n):
        """Broken variant: the store's rows arrive after the actor wrote."""
        st = n['pending_load']
        n['pending_load'] = None
        n['mem'].join({'keys': copy.deepcopy(st['keys']), 'ctx': set(st['ctx']), 'full': False})

    def answer(self, b, a):
        """b's answer to a's pull, or None if b holds it back (not durable)."""
        if not self.up(b) or not self.up(a) or not self.exposable(b):
            return None
        return b['mem'].delta_since(set(a['mem'].ctx))

    def deliver(self, a, b_name, ans):
        if ans is None or not self.up(a):
            return
        mem = a['mem']
        v = a['verify']
        if v is not None:
            seen = max((c for x, c in ans['ctx'] if x == mem.actor), default=0)
            if seen > v['store_max']:
                self.retire(a)
        mem.join(copy.deepcopy(ans))
        v = a['verify']
        if v is not None:
            v['waiting'].discard(b_name)
            if not v['waiting']:
                a['verify'] = None

    def retire(self, a):
        """Take a fresh actor: the reused one cannot be trusted."""
        a['mem'].actor = self.fresh_actor()
        self.bound += 1
        a['verify'] = None
        self.persist(a)

    def tick_verification(self):
        for n in self.nodes:
            v = n['verify']
            if v is None or not self.up(n):
                continue
            v['deadline'] -= 1
            if v['deadline'] <= 0:
                self.retire(n)  # unsure

    def crash(self, n):
        """Power off: memory is gone, and so are answers on their way to it.
        What was not persisted and never left the node is gone (it was never
        acknowledged)."""
        if not self.up(n):
            return
        self.inflight = [x for x in self.inflight if x[0] is not n]
        n['mem'] = None
        n['verify'] = None

    def lose_disk(self, n, store):
        """The data dir is replaced by `store` (None: lost; else an older
        snapshot). An acknowledged write whose only copy was on it may be
        gone with the disk: physics, not the protocol."""
        n['store'] = store
        n['restored'] = store is not None
        for e in self.events:
            if e['node'] is n:
                e['disk_lost_after'] = True

    def held_anywhere(self, d, but):
        for m in self.nodes:
            if self.up(m) and m is not but and d in m['mem'].ctx:
                return True
            if m['store'] and d in m['store']['ctx']:
                return True
        return any(d in ans['ctx'] for _, _, ans in self.inflight)


def schedule(seed, rules, steps=500, nodes=4):
    rng = random.Random(seed)
    c = Cluster(rng, rules, nodes)
    away = None
    for step in range(steps):
        c.tick_verification()
        if step == 150:
            away = rng.choice(c.nodes)
            away['away'] = True
        if step == 300 and away is not None:
            away['away'] = False
        r = rng.random()
        n = rng.choice(c.nodes)
        if r < 0.3:
            if c.may_mint(n):
                k = rng.randrange(6)
                c.write(n, k, rng.randrange(100) if rng.random() < 0.7 else None)
        elif r < 0.4:
            if c.up(n):
                c.persist(n)
        elif r < 0.65:
            b = rng.choice(c.nodes)
            if b is not n and not n['away'] and not b['away']:
                ans = c.answer(b, n)
                if ans is not None:
                    c.inflight.append((n, b['name'], ans))
        elif r < 0.8 and c.inflight:
            i = rng.randrange(len(c.inflight))
            tgt, src, ans = c.inflight[i]
            if rng.random() < 0.7:
                c.inflight.pop(i)
            c.deliver(tgt, src, ans)
        elif r < 0.83 and c.inflight:
            c.inflight.pop(rng.randrange(len(c.inflight)))
        elif r < 0.88:
            present = c.present()
            if present:
                stable = set.intersection(*[set(m['mem'].ctx) for m in present])
                for m in present:
                    m['mem'].purge(stable)
        elif r < 0.95:
            # crash, then (now or later) restart; sometimes two at once,
            # sometimes with the store lost or restored from a snapshot
            victims = [n] if rng.random() < 0.7 else rng.sample(c.nodes, 2)
            fate = rng.random()
            for v in victims:
                c.crash(v)
                if fate < 0.1:
                    c.lose_disk(v, None)
                elif fate < 0.25 and v['snapshots']:
                    c.lose_disk(v, copy.deepcopy(rng.choice(v['snapshots'])))
            if rng.random() < 0.6:
                for v in victims:
                    c.start(v)
        else:
            for m in c.nodes:
                if not c.up(m):
                    c.start(m)
    # heal: everyone up and present, late answers dropped, full exchanges
    c.inflight = []
    for m in c.nodes:
        m['away'] = False
        if not c.up(m):
            c.start(m)
    for _ in range(60):
        c.tick_verification()
        for a in c.nodes:
            for b in c.nodes:
                if a is not b:
                    c.deliver(a, b['name'], c.answer(b, a))
            c.persist(a)
        if all(m['verify'] is None for m in c.nodes):
            break
    for _ in range(3):
        for a in c.nodes:
            for b in c.nodes:
                if a is not b:
                    c.deliver(a, b['name'], c.answer(b, a))
    return c


def check(c):
    """None if every property holds, else what broke."""
    unexplained = [d for d in c.reused if d[0] not in c.hidden_witness]
    if unexplained:
        return f"dot reused: {unexplained[:3]}"
    if c.reused:
        return 'known-limit'
    reads = [m['mem'].read() for m in c.nodes]
    if any(r != reads[0] for r in reads):
        return 'replicas differ'
    contexts = [m['mem'].ctx for m in c.nodes]
    if any(x != contexts[0] for x in contexts):
        return 'contexts differ'
    surviving = [e for e in c.events if e['dot'] in contexts[0] and c.minted[e['dot']] is e]
    if reads[0] != oracle(surviving):
        return 'differs from the oracle of surviving events'
    for e in c.events:
        if e['acked'] and e['dot'] not in contexts[0] and not e['disk_lost_after']:
            return f"acknowledged write lost: {e['dot']}"
    actors = max(len({a for a, _ in x}) for x in contexts)
    if actors > c.bound:
        return f"context grew with restarts: {actors} actors, bound {c.bound}"
    return None


def directed():
    """Crash at each point of a write's life, then a restart."""
    out = []
    for point in ['before persist', 'after persist, before expose', 'after a peer pulled']:
        rng = random.Random(7)
        c = Cluster(rng, Rules(), 2)
        a, b = c.nodes
        c.write(a, 'k', 1)
        if point != 'before persist':
            c.persist(a)
        if point == 'after a peer pulled':
            c.deliver(b, a['name'], c.answer(a, b))
        c.crash(a)
        c.start(a)
        c.deliver(a, b['name'], c.answer(b, a))
        c.write(a, 'k2', 2)
        c.persist(a)
        c.deliver(b, a['name'], c.answer(a, b))
        c.deliver(a, b['name'], c.answer(b, a))
        want = {'k2': 2} if point == 'before persist' else {'k': 1, 'k2': 2}
        got = [a['mem'].read(), b['mem'].read()]
        if c.reused or got != [want, want]:
            out.append(f"{point}: reused={c.reused} reads={got}")
    return out


def directed_exposure(rules):
    """A peer pulls a write before it is durable, then that peer and the
    writer crash; the writer comes back alone, trusts its store, writes; the
    peer comes back. Only the durable-before-exposed rule keeps the dot from
    being minted twice."""
    c = Cluster(random.Random(3), rules, 2)
    a, b = c.nodes
    c.write(a, 'k', 1)
    c.deliver(b, a['name'], c.answer(a, b))   # held back when gated
    c.persist(b)
    c.crash(b)
    c.crash(a)
    c.start(a)                               # alone: trusts its store
    c.write(a, 'k', 2)
    c.persist(a)
    c.start(b)
    return c.reused


def run_all(rules, seeds):
    results = {'ok': 0, 'known-limit': 0, 'failed': []}
    for s in range(seeds):
        verdict = check(schedule(s, rules))
        if verdict is None:
            results['ok'] += 1
        elif verdict == 'known-limit':
            results['known-limit'] += 1
        else:
            results['failed'].append((s, verdict))
    return results


def variant(**flips):
    class R(Rules):
        pass
    for k, v in flips.items():
        setattr(R, k, v)
    return R()


if __name__ == '__main__':
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    bad = directed()
    print('directed crash points:', 'ok' if not bad else bad)
    res = run_all(Rules(), seeds)
    print(f"design: {res['ok']} passed, {res['known-limit']} hit the known limit "
          f"(snapshot older than what only an unreachable node saw), {len(res['failed'])} failed")
    for s, v in res['failed'][:5]:
        print(f"  seed {s}: {v}")
    exposure = (directed_exposure(Rules()), directed_exposure(variant(gate_exposure=False)))
    print('directed exposure before durability:',
          'ok' if exposure[0] == [] and exposure[1] else f'unexpected {exposure}')
    failed = bool(bad or res['failed'] or exposure[0] or not exposure[1])
    for name, flips in [
        ("actor from name + generation (issue 11's bug)", {'identity': 'derived'}),
        ("a fresh actor per start (contexts grow)", {'identity': 'per_start'}),
        ("own dots exposed before they are durable", {'gate_exposure': False}),
        ("a reused actor mints before it is verified", {'verify': False}),
        ("verified by one member instead of all", {'verify_all': False}),
        ("the actor writes before its store is loaded", {'load_before_mint': False}),
    ]:
        r = run_all(variant(**flips), seeds)
        caught = len(r['failed'])
        print(f"broken variant '{name}': caught in {caught} of {seeds} seeds"
              + (f" (e.g. seed {r['failed'][0][0]}: {r['failed'][0][1]})" if caught else ''))
        failed |= caught == 0
    sys.exit(1 if failed else 0)
