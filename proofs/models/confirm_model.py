"""Executable model of "confirm before down" in apps/healthcheck.

Today the owner of an origin (rank 1 by rendezvous hash among the agents it
sees live) writes `down` as soon as `fall` of its checks in a row failed,
and every agent shows it: one agent with a bad route (all its checks fail
while the origin is up) takes an origin down cluster-wide. The rules below
are the design under test; the Rust change follows them. (c), (d)... name
the broken variant that undoes a rule.

* **Suspect, don't write down.** When the owner O's streak turns an origin
  down and O sees >= 2 live agents (itself included), O keeps its record's
  status and adds `suspect = {round, asker: O, confirmer: C}`, C being the
  agent ranked just below O for the origin among the agents O sees live
  (just above, if O ranks last; never O itself (d)). A round id is unique
  across restarts of O: (a per-start nonce, a counter); an in-memory counter
  alone is not (e).
* **The confirmer checks at once.** An agent that finds, in any sibling of
  an origin's health record, a suspect naming it for a round it has not
  answered (it remembers the last round answered per origin and asker; an
  answer of its own already in `confirm` counts as answered) checks the
  origin at once from where it is and writes
  `confirm[origin] = {round, asker, ok, by}`. Only confirmers write
  `confirm`; a later answer replaces an earlier one (one key per origin).
* **The asker decides on its own round only (b).** An answer counts when
  its asker is O and its round is O's open round (O looks at every sibling
  of `confirm[origin]`). Failed: O writes `{down, confirmed_by: C}`.
  Succeeded: `{up, disputed_by: C}` and a `disputed` event. No answer within
  B on O's clock: `{down, unconfirmed}`.
* **Re-asked at every failing check (c, f).** At most one round is open per
  (owner, origin); a failing check while one is open opens none. While O's
  streak is down, each failing check with no round open opens a new one,
  whatever O's record says: up (disputed), so that a later real death is
  confirmed (c); and down, so that a down confirmed while the origin was
  dead, or written unconfirmed or alone, is lifted (`up, disputed`) once
  the origin is back and only O still fails (f: the rule as first stated
  opened no round once the record was down). While the record is down the
  status stays down until an answer says otherwise; a round with no answer
  leaves it as it is.
* **Rises need no confirmation.** When O's streak turns up, O writes `up`
  as usual: the open round is dropped, `disputed` and `suspect` cleared.
* **Alone, the owner's verdict stands.** With no other live agent, O writes
  `{down, unconfirmed (alone)}`.
* **The confirmer leaves, the round moves on (g).** If C leaves O's live
  view while the round is open, O drops the round and opens a new one with
  the agent now next-ranked, at once (alone: down, unconfirmed).
* Ownership, takeover of a silent owner, streaks, intervals, the record
  refresh and the rendezvous tiebreak of concurrent records are those of
  ownership.rs, schedule.rs and check_core.rs. A new owner (view change,
  takeover, restart) starts its streak from the visible record's status,
  keeps a visible down's confirmation as its own verdict, and opens its own
  rounds. A crash loses streaks, rounds and what the confirmer remembers;
  the replica survives on disk, or, in some crashes, is lost (a fresh
  actor). A restarted agent writes nothing (health or confirm) until it has
  caught up (every peer it sees answered one pull, or the startup timeout).

Replication: each agent holds a state-based dot store of the two maps,
concurrent siblings kept until overwritten. A write notifies the writer's
live peers, which pull (3 hops); every agent also pulls a random live peer
every second. A hop takes a random delay (lost once and retried in 10 % of
the hops), 5 % of answers are delivered twice, a rare hop takes B to 4 B,
and in slow spells every hop takes up to B. An away agent sends and
receives nothing. Live views (SWIM) drop a crashed or away agent after a
random detection delay and add it back after a random join delay; some
agents suspect a live one for a while.

Time unit: 100 ms. Per run: 3-5 agents, 1-3 origins, interval 2 s or 5 s,
timeout 0.5-2 s, settling interval a quarter of the interval, rise and fall
1-3, hop delay up to 0.05-0.3 s, B = timeout + 2 R + 0.2-5 s.

Run: python3 proofs/models/confirm_model.py [SEEDS]
Checks, on random schedules of deaths and returns of origins, one agent
whose route goes bad and good again (70 % of the runs), crashes at any
point (also just after an owner's first round, or while a confirmer
checks) and restarts (lost stores too), an away agent (sometimes the one
with the bad route, which stays bad a while after it returns), slow spells,
late, duplicated and lost-then-retried messages, false suspicions:
 1. no confirmed down from one bad vantage point (the owner's and the
    confirmer's failing checks both ran while the origin was up), no down
    without confirmation; a false down (unconfirmed or alone while the
    origin is up) is counted with its cause: confirmer crashed or away,
    owner away or alone, slow replication, live views differing, another
    agent restarting; one without a cause fails, and so does any false down
    in a run with no crash, no away agent, no slow message and no false
    suspicion; and false downs are lifted: once nothing disturbed the run
    for P, no connected agent shows down once the origin has been up for U;
 2. a death (>= 2 connected agents, nothing disturbing the run from P
    before it to L after it) is down on every connected agent within
      L = ok + 1.1 interval + timeout + (fall - 1) (1.1 settling + timeout)
          + R (suspect to C) + timeout (C's check) + R (answer to O)
          + R (down to all),
    R = 3 hops of at most 2 x the hop delay (notify, pull, answer); also
    when the owner had a bad route and the record was disputed; and in a
    death that began during a disturbance, down everywhere connected once
    the run has been undisturbed for P + L;
 3. no answer to another round (older, or of another owner or another life
    of this one) decides a round, and no check older than the round;
 4. one open round per (owner, origin), confirm keys only for origins, no
    more siblings under a key than actors, bounded confirmer memory;
 5. after quiescence every replica shows the same record and confirm entry
    for every origin, and the record shows the origin's true status.
Then directed scenarios (three agents, the owner's route bad and staying
bad; then the origin dies; the owner crashes right after its first round;
the confirmer crashes while it checks) and the broken variants (a) down at
once, (b) any answer for the origin counts, (c) no re-request while
disputed, (d) the owner asks itself, (e) the round counter restarts with
the process, (f) no re-request while the record is down, (g) a confirmer
that left the view is waited for until B: each must be caught by a random
seed or a directed scenario. Two more changes are only measured. Exit 0
only if the design passes everything and every variant is caught.
"""
import bisect
import hashlib
import heapq
import random
import sys
from collections import Counter

UP, DOWN = 'up', 'down'

# --- rendezvous ---------------------------------------------------------------

_W = {}


def weight(node, origin):
    k = (node, origin)
    w = _W.get(k)
    if w is None:
        w = int.from_bytes(hashlib.blake2b(f'{node}\0{origin}'.encode(), digest_size=8).digest(),
                           'little')
        _W[k] = w
    return w


def outranks(a, b, origin):
    # (weight, Reverse(name)) as in rendezvous::outranks
    wa, wb = weight(a, origin), weight(b, origin)
    return wa > wb or (wa == wb and a < b)


def ranked(origin, names):
    return sorted(names, key=lambda n: (-weight(n, origin), n))


# --- the design under test ------------------------------------------------------


class Rules:
    confirm = True           # (a) False: the owner writes down at once
    match_round = True       # (b) False: any answer for the origin counts
    reask_disputed = True    # (c) False: a round only when the streak turns down
    confirmer_other = True   # (d) False: the owner asks itself
    round_per_start = True   # (e) False: round ids restart with the process
    reask_down = True        # (f) False: no re-request while the record is down
    repick = True            # (g) False: a confirmer leaving the view is waited for (B)
    siblings = True          # False: confirmer and asker read only the visible value
    lone_loses = False       # True: a record written alone loses ties (not adopted)


class Streak:
    __slots__ = ('status', 'ok', 'bad')

    def __init__(self, status):
        self.status, self.ok, self.bad = status, 0, 0

    def record(self, ok, rise, fall):
        before = self.status
        if ok:
            self.ok += 1
            self.bad = 0
            if self.ok >= rise:
                self.status = UP
        else:
            self.bad += 1
            self.ok = 0
            if self.bad >= fall:
                self.status = DOWN
        return self.status != before

    def settling(self):
        return (self.status != UP and self.ok > 0) or (self.status != DOWN and self.bad > 0)


class Check:
    """Ghost facts of one check (for the checks, not seen by the agents)."""
    __slots__ = ('id', 'by', 'start', 'origin_up', 'ok')

    def __init__(self, id, by, start, origin_up, ok):
        self.id, self.by, self.start, self.origin_up, self.ok = id, by, start, origin_up, ok


class Rec:
    """A health record. `ev` and `wid` are ghosts: the evidence of a down
    (trigger check, answer check, whether it is a false down) and a write id."""
    __slots__ = ('status', 'by', 'tag', 'confirmer', 'disputed', 'suspect', 'lone', 'ev', 'wid')

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)

    def fields(self):
        return (self.status, self.tag, self.confirmer, self.disputed, self.suspect)


class Ans:
    """A confirm entry. `ghost` (the round opening it answers) and `check` are ghosts."""
    __slots__ = ('round', 'asker', 'ok', 'by', 'ghost', 'check', 'wid')

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


class Round:
    __slots__ = ('id', 'ghost', 'confirmer', 'opened', 'trigger')

    def __init__(self, id, ghost, confirmer, opened, trigger):
        self.id, self.ghost, self.confirmer, self.opened, self.trigger = \
            id, ghost, confirmer, opened, trigger


# --- replicated maps (state-based dot store, as the delta ORMap's full state) ----

class Replica:
    def __init__(self, actor):
        self.actor = actor
        self.vv = {}
        self.maps = {'h': {}, 'c': {}}

    def write(self, m, k, v):
        c = self.vv.get(self.actor, 0) + 1
        self.vv[self.actor] = c
        self.maps[m][k] = {(self.actor, c): v}

    def state(self):
        # sibling dicts are replaced, never changed in place: sharing them is safe
        return (dict(self.vv), {m: dict(km) for m, km in self.maps.items()})

    def merge(self, snap):
        """Joins a full state; returns the (map, key, value) new here."""
        bvv, bmaps = snap
        new = []
        vv = self.vv
        if all(c <= vv.get(actor, 0) for actor, c in bvv.items()):
            return new   # nothing this replica has not seen (and so nothing it dropped)
        for m in ('h', 'c'):
            A, Bm = self.maps[m], bmaps[m]
            for k in set(A) | set(Bm):
                a, b = A.get(k, {}), Bm.get(k, {})
                s = {d: v for d, v in a.items() if d in b or d[1] > bvv.get(d[0], 0)}
                for d, v in b.items():
                    if d not in a and d[1] > vv.get(d[0], 0):
                        s[d] = v
                        new.append((m, k, v))
                if s:
                    A[k] = s
                else:
                    A.pop(k, None)
        for actor, c in bvv.items():
            if c > vv.get(actor, 0):
                vv[actor] = c
        return new

    def siblings(self, m, k):
        return self.maps[m].get(k, {})

    def vis_h(self, o, lone_loses):
        s = self.maps['h'].get(o)
        if not s:
            return None
        if lone_loses:
            return max(s.items(), key=lambda dv: (not dv[1].lone, weight(dv[1].by, o), dv[0]))[1]
        return max(s.items(), key=lambda dv: (weight(dv[1].by, o), dv[0]))[1]

    def vis_c(self, o):
        s = self.maps['c'].get(o)
        if not s:
            return None
        return max(s.items())[1]


# --- agents ---------------------------------------------------------------------

class OState:
    """One origin at one agent: the check_core Origin, the ownership Watch and
    the owner's confirmation state."""
    __slots__ = ('streak', 'checking', 'in_flight', 'last_write', 'round', 'verdict',
                 'due', 'due_seq', 'since', 'rank', 'rank_gen', 'seen')

    def __init__(self, now):
        self.streak = None
        self.checking = False
        self.in_flight = False
        self.last_write = None
        self.round = None
        # (status, tag, confirmer, disputed_by, evidence)
        self.verdict = None
        self.due = None
        self.due_seq = 0
        self.since = now
        self.rank = None
        self.rank_gen = None
        self.seen = {}


class Agent:
    def __init__(self, sim, idx):
        self.name = f'hc{idx}'
        self.up = True
        self.away = False
        self.bad = False
        self.token = 0           # bumped by a crash: the old process's events are dropped
        self.epoch = 0           # bumped by crash/restart/away changes (SWIM removals)
        self.replica = Replica(sim.new_actor())
        self.start_uid = sim.new_uid()
        self.round_n = 0
        self.view = {self.name}
        self.view_gen = 0
        self.os = {}
        self.answered = {}       # (origin, asker) -> last round answered
        self.confirming = set()
        self.caught_up = True
        self.heard = set()


# --- the simulation -------------------------------------------------------------

class Params:
    pass


def make_params(rng):
    p = Params()
    p.N = rng.randint(3, 5)
    p.origins = [f'o{i}' for i in range(rng.randint(1, 3))]
    p.I = rng.choice([20.0, 50.0])
    p.T = rng.choice([t for t in (5.0, 10.0, 20.0) if t <= p.I])
    p.rise = rng.randint(1, 3)
    p.fall = rng.randint(1, 3)
    p.hmax = rng.choice([0.5, 1.0, 3.0])
    p.B_margin = rng.choice([2.0, 10.0, p.I])
    return derive(p)


def derive(p):
    """The timings that follow from the chosen ones, and the bounds checked."""
    p.fast = max(1.0, p.I / 4)
    p.ok_max = 1.0
    p.R = 3 * 2 * p.hmax                 # notify, pull, answer: each hop at most 2 x hmax
    p.B = p.T + 2 * p.R + p.B_margin     # the confirmation bound
    p.slow_max = p.B                     # a hop in a slow spell: up to B
    p.G = 10.0                           # pull interval
    p.Dmin, p.Dmax = 5.0, 30.0           # SWIM: detection of a crashed or away agent
    p.Jmin, p.Jmax = 5.0, 20.0           # SWIM: a (re)joining agent seen live
    p.refresh = 12 * p.I
    p.grace = 20.0
    p.startup = 50.0
    p.H = 60 * p.I
    # check 2: the owner's next check after the death (the one in flight
    # succeeds), fall - 1 more at the settling interval, each failing after
    # the timeout; the suspect reaches C, C checks, the answer reaches O, the
    # down reaches everyone.
    p.L = p.ok_max + 1.1 * p.I + p.T + (p.fall - 1) * (1.1 * p.fast + p.T) + 3 * p.R + p.T
    gap = 1.1 * p.I + p.T
    conf = 2 * p.R + p.T
    # check 1 (false downs are lifted): two owner checks (one may fall in an
    # open round), two confirmations, a rise, replication.
    p.U = 2 * gap + 2 * conf + p.rise * (1.1 * p.fast + p.T) + p.R
    # settling after a disturbance: views, catch-up, rounds opened before.
    p.P = p.Dmax + p.Jmax + p.startup + p.B + 2 * p.R + gap
    return p


class Sim:
    def __init__(self, seed, rules, script=None):
        self.seed = seed
        self.rng = random.Random(seed)
        self.rules = rules
        self.p = p = make_params(self.rng)
        if script is not None:
            script.params(p)
            derive(p)
        self.now = 0.0
        self.q = []
        self.seq = 0
        self.uid = 0
        self.actors = 0
        self.frozen = False
        self.violations = []
        self.st = Counter()
        self.false_downs = Counter()
        self.open_rounds = {}
        self.agents = [Agent(self, i) for i in range(p.N)]
        self.by_name = {a.name: a for a in self.agents}
        names = set(self.by_name)
        for a in self.agents:
            a.view = set(names)
        self.dead = {o: False for o in p.origins}
        self.phase_since = {o: 0.0 for o in p.origins}
        self.deaths = {}          # origin -> current death record
        self.latencies = []       # (latency, L, disputed before)
        self.fd_since = {}
        self.fd_total = 0.0
        self.fd_max = 0.0
        self.fd_by = {}
        self.fd_max_by = {}
        self.max_siblings = 0
        self.max_answered = 0
        self.slow = False
        self.suspecting = set()
        self.down_iv = {a.name: [] for a in self.agents}
        self.away_iv = {a.name: [] for a in self.agents}
        self.slow_iv = []
        self.susp_iv = []
        self.points = [0.0]       # disturbance instants
        self.spans = []           # disturbance intervals (slow spells and their tails)
        if script is None:
            self.generate()
        else:
            script.world(self)
        self.points.sort()
        for a in self.agents:
            self.start_agent(a, first=True)
        t = p.I / 2
        while t < p.H + self.quiet_len():
            self.at(t, self.probe)
            t += p.I / 2

    # events
    def at(self, t, fn, *args):
        self.seq += 1
        heapq.heappush(self.q, (t, self.seq, fn, args))

    def new_uid(self):
        self.uid += 1
        return self.uid

    def new_actor(self):
        self.actors += 1
        return self.actors

    def jit(self):
        return 0.9 + 0.2 * self.rng.random()

    def hop(self):
        if self.slow:
            return self.rng.uniform(0.1, self.p.slow_max)
        if self.rng.random() < 0.0001 and self.now < self.p.H:
            # a rare message far beyond the bound, outside any slow spell
            d = self.rng.uniform(self.p.B, 4 * self.p.B)
            self.spans.append((self.now, self.now + d))
            self.slow_iv.append((self.now, self.now + d))
            self.clean = False
            self.st['late_messages'] += 1
            return d
        d = self.rng.uniform(0.1, self.p.hmax)
        if self.rng.random() < 0.1:
            d += self.rng.uniform(0.0, self.p.hmax)   # lost once, retried
        return d

    def violate(self, what):
        self.violations.append(f't={self.now:.1f}: {what}')

    def quiet_len(self):
        p = self.p
        return p.P + p.L + p.U + 20 * p.I

    # --- the schedule of the world ---------------------------------------------

    def generate(self):
        rng, p = self.rng, self.p
        H, I = p.H, p.I
        self.kind = 'bad-route' if rng.random() < 0.7 else 'normal'
        feats = {f for f, pr in (('crash', 0.4), ('away', 0.35), ('slow', 0.3), ('suspicion', 0.3))
                 if rng.random() < pr}
        self.features = feats
        self.clean = not feats
        names = [a.name for a in self.agents]
        x = rng.choice(names) if self.kind == 'bad-route' else None
        self.x = x
        self.round_crash = None
        # origins: up and dead phases
        for o in p.origins:
            t = rng.uniform(3, 15) * I
            while t < H - 2 * I:
                dur = rng.uniform(0.2, 2) * I if rng.random() < 0.5 else rng.uniform(3, 10) * I
                self.at(t, self.set_dead, o, True)
                self.at(min(t + dur, H - I), self.set_dead, o, False)
                t += dur + rng.uniform(5, 20) * I
        # the bad route
        if x is not None:
            t = rng.uniform(0, 10) * I
            while t < H:
                dur = rng.uniform(3, 20) * I
                self.at(t, self.set_bad, x, True)
                self.at(t + dur, self.set_bad, x, False)
                t += dur + rng.uniform(3, 15) * I
        if 'crash' in feats:
            for _ in range(rng.randint(1, 4)):
                v = x if (x is not None and rng.random() < 0.5) else rng.choice(names)
                t = rng.uniform(5, 55) * I
                r = rng.random()
                back = (t + rng.uniform(0.1, 0.4) * I if r < 0.15 else
                        None if r < 0.3 else t + rng.uniform(0.5, 12) * I)
                lose = rng.random() < 0.25
                self.at(t, self.crash, v, back, lose)
                self.points.append(t)
                if back is not None and back < H:
                    self.points.append(back)
            if rng.random() < 0.6:
                # a crash at a point of a round: after `arm`, the first owner
                # to open the first round of its life, or the first confirmer
                # to start a check
                self.round_crash = {'who': rng.choice(['asker', 'confirmer']),
                                    'arm': rng.uniform(5, 45) * I,
                                    'back': rng.uniform(0.5, 5) * I, 'lose': rng.random() < 0.2}
        if 'away' in feats:
            v = x if (x is not None and rng.random() < 0.5) else rng.choice(names)
            t = rng.uniform(5, 40) * I
            end = t + rng.uniform(3, 15) * I
            self.at(t, self.set_away, v, True)
            self.at(end, self.set_away, v, False)
            self.points += [t, end]
            if v == x and rng.random() < 0.5:
                # a network outage: the route is bad while away, and a while after
                self.at(t, self.set_bad, x, True)
                self.at(end + rng.choice([0.0, rng.uniform(0, 10) * I]), self.set_bad, x, False)
        if 'slow' in feats:
            for _ in range(rng.randint(1, 2)):
                t = rng.uniform(5, 55) * I
                end = t + rng.uniform(2, 6) * I
                self.at(t, self.set_slow, True)
                self.at(end, self.set_slow, False)
                self.slow_iv.append((t, end + 3 * p.slow_max))
                self.spans.append((t, end + 3 * p.slow_max))
        if 'suspicion' in feats:
            for _ in range(rng.randint(1, 3)):
                a, b = rng.sample(names, 2)
                t = rng.uniform(5, 55) * I
                dur = rng.uniform(0.3, 3) * I
                self.at(t, self.suspect_start, a, b, dur)
                self.susp_iv.append((t, t + dur + p.Jmax))
                self.points += [t, t + dur]
        self.at(H, self.quiesce)
        self.points.append(H)

    def mark(self, t):
        i = bisect.bisect_left(self.points, t)
        if i == len(self.points) or self.points[i] != t:
            self.points.insert(i, t)

    def last_disturbance(self, t):
        i = bisect.bisect_right(self.points, t)
        q = self.points[i - 1] if i else 0.0
        for s, e in self.spans:
            if s <= t:
                q = max(q, min(e, t))
        return q

    def quiet(self, a, b):
        i = bisect.bisect_left(self.points, a)
        if i < len(self.points) and self.points[i] <= b:
            return False
        return not any(s <= b and e >= a for s, e in self.spans)

    # world changes
    def set_dead(self, o, dead):
        if self.dead[o] == dead:
            return
        self.dead[o] = dead
        self.phase_since[o] = self.now
        if dead:
            disputed = any(self.vis(a, o) is not None and
                           (self.vis(a, o).disputed or self.vis(a, o).suspect)
                           for a in self.connected())
            d = {'t': self.now, 'first': None, 'disputed': disputed,
                 'settled': self.quiet(self.now - self.p.P, self.now) and len(self.connected()) >= 2}
            self.deaths[o] = d
            self.at(self.now + self.p.L, self.tight_check, o, d)
            self.all_down(o)
        else:
            self.deaths.pop(o, None)
        for a in self.agents:
            self.track_fd(a, o)

    def set_bad(self, name, on):
        self.by_name[name].bad = on

    def set_slow(self, on):
        self.slow = on

    def connected(self):
        return [a for a in self.agents if a.up and not a.away]

    def crash(self, name, back, lose):
        b = self.by_name[name]
        if not b.up or self.frozen:
            return
        b.up = False
        b.token += 1
        b.epoch += 1
        self.down_iv[name].append([self.now, None])
        self.mark(self.now)
        for key in [k for k in self.open_rounds if k[0] == name]:
            del self.open_rounds[key]
        b.os = {}
        b.answered = {}
        b.confirming = set()
        b.view = set()
        if lose:
            b.replica = Replica(self.new_actor())
        for a in self.agents:
            if a is not b:
                self.at(self.now + self.rng.uniform(self.p.Dmin, self.p.Dmax),
                        self.view_remove, a.name, name, b.epoch)
        for o in self.p.origins:
            self.track_fd(b, o)
        self.st['crashes'] += 1
        if back is not None and back < self.p.H:
            self.at(back, self.restart, name)

    def restart(self, name):
        b = self.by_name[name]
        if b.up:
            return
        b.up = True
        b.epoch += 1
        self.down_iv[name][-1][1] = self.now
        self.mark(self.now)
        self.start_agent(b)

    def start_agent(self, b, first=False):
        p = self.p
        b.start_uid = self.new_uid()
        b.round_n = 0
        b.os = {o: OState(self.now) for o in p.origins}
        spread = p.I if first else min(p.I, 10.0)
        for o in p.origins:
            self.set_due(b, o, self.now + self.rng.uniform(0, spread))
        self.at(self.now + self.rng.uniform(0, p.G), self.tick, b, b.token)
        if first:
            return
        b.view = {b.name}
        b.view_gen += 1
        b.caught_up = False
        b.heard = set()
        self.at(self.now + p.startup, self.catch_up, b, b.token)
        for a in self.agents:
            if a is not b:
                self.at(self.now + self.rng.uniform(p.Jmin, p.Jmax), self.view_add, a.name, b.name)
                self.at(self.now + self.rng.uniform(p.Jmin, p.Jmax), self.view_add, b.name, a.name)

    def set_away(self, name, on):
        b = self.by_name[name]
        if b.away == on:
            return
        b.away = on
        b.epoch += 1
        p = self.p
        if on:
            self.away_iv[name].append([self.now, None])
            for a in self.agents:
                if a is not b:
                    self.at(self.now + self.rng.uniform(p.Dmin, p.Dmax),
                            self.view_remove, a.name, name, b.epoch)
                    self.at(self.now + self.rng.uniform(p.Dmin, p.Dmax),
                            self.view_remove, name, a.name, b.epoch, True)
        else:
            self.away_iv[name][-1][1] = self.now
            for a in self.agents:
                if a is not b:
                    self.at(self.now + self.rng.uniform(p.Jmin, p.Jmax), self.view_add, a.name, name)
                    self.at(self.now + self.rng.uniform(p.Jmin, p.Jmax), self.view_add, name, a.name)
        for o in p.origins:
            self.track_fd(b, o)
        self.all_down_all()

    def suspect_start(self, a, b, dur):
        self.suspecting.add((a, b))
        self.view_remove(a, b, None)
        self.at(self.now + dur, self.suspect_end, a, b)

    def suspect_end(self, a, b):
        self.suspecting.discard((a, b))
        self.view_add(a, b)

    # SWIM views
    def view_add(self, an, bn):
        a, b = self.by_name[an], self.by_name[bn]
        if not a.up or not b.up or a.away or b.away or (an, bn) in self.suspecting:
            return
        if bn in a.view:
            return
        a.view.add(bn)
        self.view_changed(a)

    def view_remove(self, an, bn, epoch, mine=False):
        a, b = self.by_name[an], self.by_name[bn]
        if epoch is not None and (a if mine else b).epoch != epoch:
            return
        if not a.up or bn not in a.view or an == bn:
            return
        a.view.discard(bn)
        self.view_changed(a)

    def view_changed(self, a):
        a.view_gen += 1
        for o, st in a.os.items():
            if not st.checking and self.decide(a, o) >= 0:
                self.advance(a, o)
            r = st.round
            if r is not None and r.confirmer not in a.view and self.rules.repick:
                self.close_round(a, o)
                self.st['repicks'] += 1
                if st.streak is not None and st.streak.status == DOWN:
                    self.ask(a, o, r.trigger)
                self.maybe_write(a, o)
        if a.caught_up is False and len(a.view) >= 2 and (a.view - {a.name}) <= a.heard:
            self.catch_up(a, a.token)

    def catch_up(self, a, token):
        if a.token != token or not a.up or a.caught_up:
            return
        a.caught_up = True
        for o in self.p.origins:
            self.scan_suspects(a, o)

    # --- ownership (ownership.rs) --------------------------------------------

    def decide(self, a, o):
        """0: own, r > 0: take over at rank r, -1: stand by."""
        st = a.os[o]
        if st.rank_gen != a.view_gen:
            r = sum(1 for n in a.view if n != a.name and outranks(n, a.name, o))
            if st.rank_gen is not None:
                st.since = self.now
            st.rank_gen = a.view_gen
            st.rank = r
        r = st.rank
        if r == 0:
            return 0
        latest = None
        for w, t in st.seen.items():
            if w in a.view and outranks(w, a.name, o) and (latest is None or t > latest):
                latest = t
        base = st.since if latest is None else max(latest, st.since)
        if self.now - base > self.p.refresh + self.p.grace * r:
            return r
        return -1

    # --- checks (check_core.rs) -------------------------------------------------

    def set_due(self, a, o, t):
        st = a.os[o]
        st.due_seq += 1
        st.due = t
        self.at(t, self.on_due, a, a.token, o, st.due_seq)

    def advance(self, a, o):
        st = a.os[o]
        if st.in_flight:
            return
        if st.due is None or st.due > self.now:
            self.set_due(a, o, self.now)

    def on_due(self, a, token, o, seq):
        if a.token != token or not a.up or self.frozen:
            return
        st = a.os[o]
        if st.due_seq != seq:
            return
        st.due = None
        d = self.decide(a, o)
        if d >= 0:
            if not st.checking:
                st.checking = True
                if d > 0:
                    self.st['takeovers'] += 1
            if not st.in_flight:
                st.in_flight = True
                self.start_check(a, o, None)
        else:
            if st.checking:
                self.hand_over(a, o)
            self.set_due(a, o, self.now + self.p.I * self.jit())

    def hand_over(self, a, o):
        st = a.os[o]
        st.checking = False
        st.streak = None
        st.last_write = None
        st.verdict = None
        if st.round is not None:
            self.close_round(a, o)

    def start_check(self, a, o, suspect):
        p = self.p
        origin_up = not self.dead[o]
        ok = origin_up and not a.bad
        ck = Check(self.new_uid(), a.name, self.now, origin_up, ok)
        if ok:
            dur = self.rng.uniform(0.1, p.ok_max)
        elif a.bad or self.rng.random() < 0.5:
            dur = p.T                                # timed out
        else:
            dur = self.rng.uniform(0.1, p.ok_max)    # refused at once
        phase = 'up' if origin_up else 'dead'
        if suspect is None:
            self.st['owner_checks'] += 1
            self.st['owner_checks_' + phase] += 1
            if a.bad and origin_up:
                self.st['owner_checks_bad'] += 1
            self.at(self.now + dur, self.on_result, a, a.token, o, ck)
        else:
            self.st['confirm_checks'] += 1
            self.st['confirm_checks_' + phase] += 1
            if self.by_name[suspect[1]].bad and origin_up:
                self.st['confirm_checks_bad'] += 1
            self.at(self.now + dur, self.on_confirm_result, a, a.token, o, ck, suspect)

    def verdict_from(self, vis):
        if vis is not None and vis.status == DOWN:
            return (DOWN, vis.tag, vis.confirmer, None, vis.ev)
        return (UP, None, None, None, None)

    def on_result(self, a, token, o, ck):
        if a.token != token or not a.up or self.frozen:
            return
        p, rules = self.p, self.rules
        st = a.os[o]
        st.in_flight = False
        if self.decide(a, o) < 0:
            # usurped while the check ran
            if st.checking:
                self.hand_over(a, o)
            st.streak = None
            self.set_due(a, o, self.now + p.I * self.jit())
            return
        st.checking = True
        if st.streak is None:
            vis = self.vis(a, o)
            st.streak = Streak(vis.status if vis is not None else UP)
            st.verdict = self.verdict_from(vis)
        changed = st.streak.record(ck.ok, p.rise, p.fall)
        if a.caught_up:
            if st.streak.status == UP:
                if st.round is not None:
                    self.close_round(a, o)
                st.verdict = (UP, None, None, None, None)
            elif not ck.ok and st.round is None and self.may_ask(st, changed):
                self.ask(a, o, ck)
            self.maybe_write(a, o, at_result=True)
        settling = st.streak.settling() or not a.caught_up
        self.set_due(a, o, self.now + (p.fast if settling else p.I) * self.jit())

    def may_ask(self, st, changed):
        rules = self.rules
        if not rules.confirm:
            return st.verdict[0] != DOWN
        if st.verdict[0] == DOWN:
            return rules.reask_down
        return changed or rules.reask_disputed

    def ask(self, a, o, trigger):
        """The owner's streak says down: suspect (open a round), or decide."""
        rules, st = self.rules, a.os[o]
        if not rules.confirm:
            self.decide_down(a, o, None, None, trigger, None, None)
            return
        if len(a.view) < 2:
            if st.verdict[0] != DOWN:
                self.decide_down(a, o, 'alone', None, trigger, None, None)
            return
        order = ranked(o, a.view)
        if rules.confirmer_other:
            i = order.index(a.name)
            c = order[i + 1] if i + 1 < len(order) else order[i - 1]
        else:
            c = a.name
        a.round_n += 1
        rid = (a.start_uid, a.round_n) if rules.round_per_start else (a.name, a.round_n)
        ghost = self.new_uid()
        if self.open_rounds.get((a.name, o)):
            self.violate(f'{a.name} opens a second round for {o}')
        self.open_rounds[(a.name, o)] = ghost
        st.round = Round(rid, ghost, c, self.now, trigger)
        self.st['rounds'] += 1
        self.at(self.now + self.p.B, self.on_deadline, a, a.token, o, ghost)
        self.crash_at('asker', a)
        self.maybe_write(a, o)
        self.scan_answers(a, o)

    def crash_at(self, who, a):
        rc = self.round_crash
        if (rc is None or rc['who'] != who or self.now < rc['arm'] or self.now >= self.p.H - 5 * self.p.I
                or (who == 'asker' and a.round_n != 1)):
            return
        self.round_crash = None
        within = rc.get('within') or (self.p.B if who == 'asker' else self.p.T)
        t = self.now + self.rng.uniform(0, within)
        self.at(t, self.crash, a.name, t + rc['back'], rc['lose'])

    def close_round(self, a, o):
        a.os[o].round = None
        self.open_rounds.pop((a.name, o), None)

    def scan_answers(self, a, o):
        st = a.os.get(o)
        r = st.round if st is not None else None
        if r is None or not a.up:
            return
        sibs = a.replica.siblings('c', o)
        if not sibs:
            return
        match = None
        if not self.rules.match_round:
            match = a.replica.vis_c(o)
        else:
            for e in (sibs.values() if self.rules.siblings else [a.replica.vis_c(o)]):
                if e.asker == a.name and e.round == r.id:
                    match = e
                    break
        if match is None:
            return
        if match.ghost != r.ghost:
            self.violate(f'check 3: {a.name} took an answer to another round (round {match.round} '
                         f'of {match.asker}) as the answer to its round {r.id} for {o}')
        self.close_round(a, o)
        if match.ok:
            if st.verdict[3] is None:
                self.st['disputed_events'] += 1
            self.st['answers_ok'] += 1
            st.verdict = (UP, None, None, match.by, None)
        else:
            self.st['answers_fail'] += 1
            self.decide_down(a, o, 'confirmed', match.by, r.trigger, match.check, r)
        self.maybe_write(a, o)

    def on_deadline(self, a, token, o, ghost):
        if a.token != token or not a.up or self.frozen:
            return
        st = a.os.get(o)
        if st is None or st.round is None or st.round.ghost != ghost:
            return
        r = st.round
        self.close_round(a, o)
        self.st['timeouts'] += 1
        if st.verdict[0] != DOWN:
            self.decide_down(a, o, 'unconfirmed', None, r.trigger, None, r)
        self.maybe_write(a, o)

    def decide_down(self, a, o, tag, confirmer, trigger, answer, r):
        """O's verdict becomes down (tag: 'confirmed', 'unconfirmed', 'alone' or
        None for a plain down); check 1 classifies it."""
        up_now = not self.dead[o]
        false = trigger.origin_up and up_now
        if tag == 'confirmed':
            if trigger.origin_up and answer.origin_up:
                self.violate(f'check 1: confirmed down of {o} from one bad vantage point '
                             f'(owner {a.name}, confirmer {answer.by}: both checks ran while it was up)')
            if answer.start < r.opened:
                self.violate(f'check 3: {a.name} confirmed {o} with a check that ran before its round')
            false = False
        elif tag is None:
            if false:
                self.violate(f'check 1: {a.name} wrote {o} down without confirmation while it was up '
                             f'(its route was bad)')
        excuse = None
        if false and tag is not None:
            excuse = 'owner alone' if tag == 'alone' else self.excuse(a, o, r)
            if self.clean or excuse is None:
                self.violate(f'check 1: unexplained unconfirmed down of {o} by {a.name} '
                             f'({tag}, confirmer {r.confirmer if r else None})')
            excuse = excuse or 'unexplained'
            self.false_downs[excuse] += 1
        a.os[o].verdict = (DOWN, tag, confirmer, None, (trigger, answer, false, excuse or 'no confirmation'))

    def excuse(self, a, o, r):
        t0, t1 = r.opened, self.now
        c = r.confirmer

        def overlaps(ivs):
            return any(s <= t1 and (e is None or e >= t0) for s, e in ivs)
        if overlaps(self.down_iv[c]):
            return 'confirmer crashed'
        if overlaps(self.away_iv[c]):
            return 'confirmer away'
        if overlaps(self.away_iv[a.name]):
            return 'owner away'
        if any(s <= t1 and e >= t0 - self.p.slow_max for s, e in self.slow_iv):
            return 'slow replication (> B)'
        if any(s <= t1 and e >= t0 - self.p.P for s, e in self.susp_iv):
            return 'live views differ'
        if any(s <= t1 and (e is None or e >= t0 - self.p.P)
               for n, ivs in self.down_iv.items() for s, e in ivs):
            return 'another agent restarting'
        return None

    def maybe_write(self, a, o, at_result=False):
        if not a.up or not a.caught_up or self.frozen:
            return
        st = a.os[o]
        if not st.checking or st.verdict is None:
            return
        v, r = st.verdict, st.round
        sus = (r.id, a.name, r.confirmer, r.ghost) if r is not None else None
        fields = (v[0], v[1], v[2], v[3], sus)
        vis = self.vis(a, o)
        ours = vis is not None and vis.by == a.name
        differs = vis is None or vis.fields() != fields
        refresh = at_result and (st.last_write is None or
                                 self.now - st.last_write >= self.p.refresh)
        if ours and not differs and not refresh:
            return
        rec = Rec(status=v[0], by=a.name, tag=v[1], confirmer=v[2], disputed=v[3], suspect=sus,
                  lone=len(a.view) < 2, ev=v[4], wid=self.new_uid())
        a.replica.write('h', o, rec)
        st.last_write = self.now
        self.st['writes'] += 1
        self.notify(a)
        self.changed(a, o, own=True)

    def on_confirm_result(self, a, token, o, ck, s):
        if a.token != token or not a.up or self.frozen:
            return
        key = (o, s[1])
        a.confirming.discard((o, s[1], s[0]))
        a.answered[key] = s[0]
        self.max_answered = max(self.max_answered, len(a.answered))
        e = Ans(round=s[0], asker=s[1], ok=ck.ok, by=a.name, ghost=s[3], check=ck,
                wid=self.new_uid())
        a.replica.write('c', o, e)
        self.notify(a)
        self.changed(a, o, own=True)

    def scan_suspects(self, a, o):
        if not a.up or not a.caught_up or self.frozen:
            return
        recs = (list(a.replica.siblings('h', o).values()) if self.rules.siblings
                else [self.vis(a, o)] if a.replica.siblings('h', o) else [])
        for rec in recs:
            s = rec.suspect
            if s is None or s[2] != a.name:
                continue
            if a.answered.get((o, s[1])) == s[0] or (o, s[1], s[0]) in a.confirming:
                continue
            if any(e.by == a.name and e.asker == s[1] and e.round == s[0]
                   for e in a.replica.siblings('c', o).values()):
                a.answered[(o, s[1])] = s[0]
                continue
            a.confirming.add((o, s[1], s[0]))
            self.start_check(a, o, s)
            self.crash_at('confirmer', a)

    # --- replication ----------------------------------------------------------------

    def notify(self, w):
        for pn in w.view:
            if pn != w.name:
                self.at(self.now + self.hop(), self.on_notify, self.by_name[pn], w)

    def on_notify(self, p, w):
        if p.up and not p.away and not w.away:
            self.at(self.now + self.hop(), self.on_serve, w, p)

    def tick(self, a, token):
        if a.token != token or not a.up:
            return
        peers = sorted(a.view - {a.name})
        if peers and not a.away:
            self.at(self.now + self.hop(), self.on_serve, self.by_name[self.rng.choice(peers)], a)
        self.at(self.now + self.p.G * self.jit(), self.tick, a, token)

    def on_serve(self, w, p):
        if not w.up or w.away or p.away:
            return
        snap = w.replica.state()
        self.at(self.now + self.hop(), self.on_deliver, p, p.token, snap, w.name)
        if self.rng.random() < 0.05:
            self.at(self.now + self.hop() + self.rng.uniform(0, 6 * self.p.hmax),
                    self.on_deliver, p, p.token, snap, w.name)

    def on_deliver(self, p, token, snap, src):
        if not p.up or p.token != token or p.away or self.by_name[src].away:
            return
        new = p.replica.merge(snap)
        if not p.caught_up:
            p.heard.add(src)
            if len(p.view) >= 2 and (p.view - {p.name}) <= p.heard:
                self.catch_up(p, p.token)
        keys = set()
        for m, k, v in new:
            keys.add(k)
            if m == 'h' and v.by != p.name:
                st = p.os.get(k)
                if st is not None:
                    st.seen[v.by] = max(st.seen.get(v.by, self.now), self.now)
        for o in keys:
            self.changed(p, o)

    def changed(self, a, o, own=False):
        """After a write or a merge touched origin o at agent a."""
        self.scan_suspects(a, o)
        self.scan_answers(a, o)
        self.track_fd(a, o)
        if self.dead[o]:
            self.all_down(o)
        sib = max(len(a.replica.siblings('h', o)), len(a.replica.siblings('c', o)))
        if sib > self.max_siblings:
            self.max_siblings = sib
            if sib > self.actors:
                self.violate(f'check 4: {sib} siblings under {o}, more than the {self.actors} actors')

    def vis(self, a, o):
        return a.replica.vis_h(o, self.rules.lone_loses)

    # --- ghost bookkeeping and the checks -----------------------------------------------

    def track_fd(self, a, o):
        """Time during which a connected agent shows a false down."""
        vis = self.vis(a, o) if a.up else None
        cur = (a.up and not a.away and vis is not None and vis.status == DOWN and vis.ev is not None
               and vis.ev[2] and not self.dead[o])
        key = (a.name, o)
        since = self.fd_since.get(key)
        if cur and since is None:
            self.fd_since[key] = (self.now, vis.ev[3])
        elif not cur and since is not None:
            self.fd_end(key)

    def fd_end(self, key):
        since, cause = self.fd_since.pop(key)
        d = self.now - since
        self.fd_total += d
        self.fd_max = max(self.fd_max, d)
        self.fd_by[cause] = self.fd_by.get(cause, 0.0) + d
        self.fd_max_by[cause] = max(self.fd_max_by.get(cause, 0.0), d)

    def all_down(self, o):
        d = self.deaths.get(o)
        if d is None or d['first'] is not None:
            return
        conn = self.connected()
        for a in conn:
            v = self.vis(a, o)
            if v is None or v.status != DOWN:
                return
        if conn:
            d['first'] = self.now

    def all_down_all(self):
        for o in self.p.origins:
            self.all_down(o)

    def tight_check(self, o, d):
        if self.deaths.get(o) is not d or self.frozen:
            return
        p = self.p
        if not d['settled'] or not self.quiet(d['t'] - p.P, self.now) or len(self.connected()) < 2:
            return
        self.st['deaths_checked'] += 1
        if d['disputed']:
            self.st['deaths_after_dispute'] += 1
        if d['first'] is None:
            self.violate(f'check 2: {o} died at {d["t"]:.1f}, not down on every connected agent '
                         f'within L={p.L:.1f}' + (' (owner disputed before)' if d['disputed'] else ''))
        else:
            self.latencies.append((d['first'] - d['t'], p.L, d['disputed']))

    def probe(self):
        if self.frozen:
            return
        p = self.p
        conn = self.connected()
        for a in self.agents:
            if a.up:
                if len(a.replica.maps['c']) > len(p.origins) or any(
                        k not in self.dead for k in a.replica.maps['c']):
                    self.violate('check 4: more confirm keys than origins')
                if len(a.answered) > len(p.origins) * p.N:
                    self.violate('check 4: the confirmer remembers unboundedly')
        if len(conn) < 2:
            return
        q = self.last_disturbance(self.now)
        for o in p.origins:
            since = self.phase_since[o]
            if self.dead[o]:
                if self.now >= max(since, q + p.P) + p.L:
                    for a in conn:
                        v = self.vis(a, o)
                        if v is None or v.status != DOWN:
                            self.violate(f'check 2: {o} dead since {since:.1f}, settled since '
                                         f'{q:.1f}, {a.name} shows {v.status if v else None}')
                            break
            elif self.now >= max(since, q + p.P) + p.U:
                for a in conn:
                    v = self.vis(a, o)
                    if v is not None and v.status == DOWN:
                        self.violate(f'check 1: {o} up since {since:.1f}, settled since {q:.1f}, '
                                     f'{a.name} still shows down ({v.tag}, by {v.by})')
                        break

    def quiesce(self):
        """The schedule ends: everyone back, no bad route, calm network."""
        for a in self.agents:
            a.bad = False
            if a.away:
                self.set_away(a.name, False)
        self.slow = False
        for a, b in list(self.suspecting):
            self.suspect_end(a, b)
        for a in self.agents:
            if not a.up:
                self.restart(a.name)

    def run(self):
        p = self.p
        end = p.H + self.quiet_len()
        while self.q and self.q[0][0] <= end:
            t, _, fn, args = heapq.heappop(self.q)
            self.now = t
            fn(*args)
        for key in list(self.fd_since):
            self.fd_end(key)
        # freeze the checks; let replication finish (pulls, late answers)
        self.frozen = True
        tail = end + 40 * p.G + 10 * p.hmax
        while self.q and self.q[0][0] <= tail:
            t, _, fn, args = heapq.heappop(self.q)
            self.now = t
            fn(*args)
        self.final_checks()
        return self

    def final_checks(self):
        p = self.p
        agents = self.agents
        for o in p.origins:
            hs = [self.vis(a, o) for a in agents]
            cs = [a.replica.vis_c(o) for a in agents]
            if len({h.wid if h else None for h in hs}) != 1:
                self.violate(f'check 5: replicas differ on the record of {o}: '
                             f'{[(h.by, h.status) if h else None for h in hs]}')
            if len({c.wid if c else None for c in cs}) != 1:
                self.violate(f'check 5: replicas differ on the confirm entry of {o}')
            want = DOWN if self.dead[o] else UP
            if hs[0] is None or hs[0].status != want:
                self.violate(f'check 5: {o} is {want} but the records say '
                             f'{hs[0].status if hs[0] else None}')
        for a in agents:
            for o, st in a.os.items():
                if st.round is not None and self.open_rounds.get((a.name, o)) != st.round.ghost:
                    self.violate('check 4: open-round registry out of step')


# --- directed scenarios -------------------------------------------------------------

class Scenario:
    """Three agents, one origin, fixed timings; the owner's route goes bad at
    5 intervals and stays bad."""
    name = 'the owner has a bad route: disputed, never down'
    die = False
    round_crash = None

    def params(self, p):
        p.N, p.origins, p.I, p.T, p.rise, p.fall, p.hmax, p.B_margin = \
            3, ['o0'], 50.0, 20.0, 2, 3, 1.0, 10.0

    def world(self, sim):
        I = sim.p.I
        sim.kind, sim.features, sim.clean = 'bad-route', set(), True
        sim.x = ranked('o0', [a.name for a in sim.agents])[0]
        sim.round_crash = None
        sim.at(5 * I, sim.set_bad, sim.x, True)
        if self.die:
            sim.at(25 * I, sim.set_dead, 'o0', True)
            sim.at(40 * I, sim.set_dead, 'o0', False)
        if self.round_crash:
            sim.features, sim.clean = {'crash'}, False
            sim.round_crash = dict(self.round_crash, back=3 * I, lose=False)
        sim.at(sim.p.H, sim.quiesce)
        sim.points.append(sim.p.H)

    def expect(self, sim):
        """What the scenario must show besides passing the checks."""
        out = []
        if sim.st['disputed_events'] < 1:
            out.append('no dispute')
        if self.die and not any(d for _, _, d in sim.latencies):
            out.append('the death after the dispute was not measured against L')
        return out


class DiesLater(Scenario):
    name = 'then the origin dies: confirmed within L'
    die = True


class OwnerCrashAfterFirstRound(Scenario):
    name = 'the owner crashes after its first round and comes back'
    round_crash = {'who': 'asker', 'arm': 0.0}


class ConfirmerCrashWhileChecking(Scenario):
    name = 'the confirmer crashes while it checks (detected within B): no false down'
    round_crash = {'who': 'confirmer', 'arm': 0.0, 'within': 0.1}

    def expect(self, sim):
        out = Scenario.expect(self, sim)
        if sim.p.B <= sim.p.Dmax:
            out.append('B too short for this scenario')
        if sim.false_downs:
            out.append(f'false down: {dict(sim.false_downs)}')
        if sim.round_crash is not None:
            out.append('the confirmer did not crash')
        return out


SCENARIOS = [Scenario(), DiesLater(), OwnerCrashAfterFirstRound(), ConfirmerCrashWhileChecking()]


def directed(rules, seeds=5):
    """Each scenario on a few seeds (jitter, delays); what failed."""
    out = []
    for sc in SCENARIOS:
        for s in range(seeds):
            sim = Sim(1000 + s, rules, sc).run()
            bad = sim.violations + sc.expect(sim)
            if bad:
                out.append((sc.name, 1000 + s, bad[0]))
                break
    return out


# --- runs and figures -------------------------------------------------------------


def run_all(rules, seeds, collect=None):
    failed = []
    for s in range(seeds):
        sim = Sim(s, rules).run()
        if sim.violations:
            failed.append((s, sim.violations[0], len(sim.violations)))
        if collect is not None:
            collect.append(sim)
    return failed


def figures(sims):
    out = []
    for kind in ('normal', 'bad-route'):
        ks = [s for s in sims if s.kind == kind]
        if not ks:
            continue
        st = Counter()
        fd = Counter()
        for s in ks:
            st.update(s.st)
            fd.update(s.false_downs)
        fd_runs = sum(bool(s.false_downs) for s in ks)

        def pct(c, o):
            return f"{100.0 * st[c] / max(st[o], 1):.1f} %"
        lat = [(l, L, dsp) for s in ks for (l, L, dsp) in s.latencies]
        worst = max(lat, key=lambda x: x[0] / x[1], default=None)
        dl = [x for x in lat if x[2]]
        worstd = max(dl, key=lambda x: x[0] / x[1], default=None)
        out.append(f"  {kind} runs: {len(ks)} ({sum(s.clean for s in ks)} without crash, away agent, "
                   f"slow spell or false suspicion)")
        out.append(f"    extra checks (confirmer / owner): {pct('confirm_checks', 'owner_checks')} "
                   f"({st['confirm_checks']} / {st['owner_checks']}); while the origin is up "
                   f"{pct('confirm_checks_up', 'owner_checks_up')}, while it is dead "
                   f"{pct('confirm_checks_dead', 'owner_checks_dead')}"
                   + (f", for an owner with a bad route (origin up) "
                      f"{pct('confirm_checks_bad', 'owner_checks_bad')}" if st['owner_checks_bad'] else ''))
        out.append(f"    rounds {st['rounds']}: confirmed down {st['answers_fail']}, disputed "
                   f"{st['answers_ok']} ({st['disputed_events']} disputed events), no answer within "
                   f"B {st['timeouts']}, moved to a new confirmer {st['repicks']}")
        out.append(f"    false downs (origin up, the owner's route bad): {sum(fd.values())} in {fd_runs} "
                   f"runs; shown on connected agents {sum(s.fd_total for s in ks) / 10:.0f} agent-s in "
                   f"all, longest {max(s.fd_max for s in ks) / 10:.1f} s")
        for cause in sorted(fd):
            out.append(f"      {cause}: {fd[cause]} in {sum(bool(s.false_downs.get(cause)) for s in ks)} "
                       f"runs, shown {sum(s.fd_by.get(cause, 0) for s in ks) / 10:.0f} agent-s, "
                       f"longest {max(s.fd_max_by.get(cause, 0) for s in ks) / 10:.1f} s")
        if worst:
            out.append(f"    deaths checked against L: {len(lat)}, slowest {worst[0] / 10:.1f} s of "
                       f"L = {worst[1] / 10:.1f} s ({100 * worst[0] / worst[1]:.0f} % of L)"
                       + (f"; {len(dl)} after a dispute, slowest {worstd[0] / 10:.1f} s of "
                          f"{worstd[1] / 10:.1f} s ({100 * worstd[0] / worstd[1]:.0f} %)"
                          if worstd else ''))
        out.append(f"    stand-ins took over a silent owner {st['takeovers']} times; crashes "
                   f"{st['crashes']}; records written {st['writes']}")
    mx = max(s.max_siblings for s in sims)
    ma = max(s.max_answered for s in sims)
    out.append(f"  bounded state: at most {mx} siblings under one key, confirmer memory at most "
               f"{ma} entries, one open round per (owner, origin) throughout")
    return out


def variant(**flips):
    class R(Rules):
        pass
    for k, v in flips.items():
        setattr(R, k, v)
    return R()


REQUIRED = [
    ("(a) the owner writes down at once (no confirmation)", {'confirm': False}),
    ("(b) answers matched without the round (any answer counts)", {'match_round': False}),
    ("(c) no re-request while disputed", {'reask_disputed': False}),
    ("(d) the owner asks itself", {'confirmer_other': False}),
    ("(e) the round counter restarts with the process", {'round_per_start': False}),
    ("(f) no re-request while the record is down", {'reask_down': False}),
    ("(g) a confirmer that left the view is waited for until B", {'repick': False}),
]
MEASURED = [
    ("confirmer and asker read only the visible value, not all siblings", {'siblings': False}),
    ("records written alone lose ties (not adopted)", {'lone_loses': True}),
]


def fd_summary(sims):
    fd = Counter()
    for s in sims:
        fd.update(s.false_downs)
    return (f"{sum(fd.values())} false downs in {sum(bool(s.false_downs) for s in sims)} runs, "
            f"shown {sum(s.fd_total for s in sims) / 10:.0f} agent-s, longest "
            f"{max(s.fd_max for s in sims) / 10:.1f} s")


if __name__ == '__main__':
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    d = directed(Rules())
    print('directed scenarios:', 'ok' if not d else d)
    sims = []
    failed = run_all(Rules(), seeds, sims)
    print(f"design: {seeds - len(failed)} of {seeds} runs passed, {len(failed)} failed")
    for s, v, n in failed[:8]:
        print(f"  seed {s}: {v}" + (f" (+{n - 1} more)" if n > 1 else ''))
    for line in figures(sims):
        print(line)
    bad = bool(failed or d)
    for name, flips in REQUIRED:
        r = variant(**flips)
        d = directed(r)
        f = run_all(r, seeds)
        print(f"broken variant {name}: caught in {len(f)} of {seeds} seeds"
              + (f" (e.g. seed {f[0][0]}: {f[0][1]})" if f else '')
              + (f"; directed: {d[0][0]} (seed {d[0][1]}: {d[0][2]})" if d else '; directed: not caught'))
        bad |= not (f or d)
    for name, flips in MEASURED:
        vs = []
        f = run_all(variant(**flips), seeds, vs)
        print(f"refinement undone, {name}: {len(f)} of {seeds} seeds fail a check"
              + (f" (e.g. seed {f[0][0]}: {f[0][1]})" if f else '') + f"; {fd_summary(vs)}")
    print(f"design, for comparison: {fd_summary(sims)}")
    sys.exit(1 if bad else 0)
