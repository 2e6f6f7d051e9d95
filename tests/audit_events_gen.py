#!/usr/bin/env python3
"""Synthetic audit logs for testing `medveil audit alerts` (used by tests/t_audit_alerts.py).

Writes OUTDIR/events.jsonl in the on-disk contract of the audit log (canonical JSON, one event a
line, in time order, seq from 0), months of ordinary work by many actors with a few injected misuse
patterns of each kind, plus OUTDIR/sensitive.txt, OUTDIR/alerts.conf and OUTDIR/injected.json (the
ground truth: rule, actor, the day chosen and the UTC days its events fall on).

Ordinary work, per actor profile:
  day       radiologists and technologists: weekdays, a shift starting about 07:00-09:00 UTC for
            8-9 hours, now and then a weekend day at half volume
  night     night-shift readers: 20:00-06:00 UTC, five nights a week on average
  research  researchers: weekdays 09:00-18:00, fewer views, de-identification batches
  ops       operators: imports (vault.put) during the day and a nightly backup at 02:00
Each actor has their own daily volume (Poisson around a personal mean, with day-to-day log-normal
noise and a weekly rhythm), reopens studies they already viewed that day, unlocks a few times a day
and mistypes the passphrase now and then; 2% of events fall just outside the shift (overtime).

Injected, each on a different actor and day after the first 45 days (so that baselines exist):
  volume     six times the actor's usual number of accesses in one day
  distinct   80-100 distinct studies opened within one clock hour
  bulk       four vault.get of 100 objects each within half an hour
  offhours   a dozen accesses between 02:00 and 03:00 UTC by a day-shift actor
  unlock     eight failed unlocks within five minutes
  sensitive  one access to a study on the sensitive list
"""
import argparse
import datetime as dt
import json
import math
import os
import random

RULES = ["volume", "distinct", "bulk", "offhours", "unlock", "sensitive"]


def uid(rng, root="1.2.826.0.1.3680043.10.1"):
    return f"{root}.{rng.randrange(10**9, 10**10)}.{rng.randrange(10**5, 10**6)}"


def poisson(rng, lam):
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class Actor:
    def __init__(self, rng, index, profile):
        self.name = f"{profile[:3]}{index:03d}"
        self.profile = profile
        self.start_hour = rng.uniform(7.0, 9.0)
        self.length = rng.uniform(8.0, 9.0)
        if profile == "night":
            self.start_hour, self.length = rng.uniform(19.5, 20.5), rng.uniform(9.0, 10.0)
        elif profile == "research":
            self.start_hour, self.length = 9.0, 9.0
        elif profile == "ops":
            self.start_hour, self.length = rng.uniform(8.0, 9.0), 8.0
        self.mean = {"day": rng.uniform(15, 45), "night": rng.uniform(15, 35), "research": rng.uniform(6, 14),
                     "ops": rng.uniform(10, 20)}[profile]

    def works(self, rng, weekday):
        if self.profile == "night":
            return rng.random() < 5 / 7
        if weekday >= 5:
            return rng.random() < 0.10
        return rng.random() < 0.95

    def event_time(self, rng, day_start):
        if rng.random() < 0.02:  # overtime, just before or after the shift
            offset = rng.choice([-rng.uniform(0, 1.5), self.length + rng.uniform(0, 1.5)])
        else:
            offset = rng.uniform(0, self.length)
        return day_start + dt.timedelta(hours=self.start_hour + offset)


def event(when, action, actor, objects, outcome="success", detail=None, purpose=None, host="pacs-1"):
    ev = {"action": action, "actor": actor, "host": host, "objects": objects, "outcome": outcome,
          "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    if detail is not None:
        ev["detail"] = detail
    if purpose is not None:
        ev["purpose"] = purpose
    return ev


def ordinary_day(rng, actor, day_start, studies, out):
    weekday = day_start.weekday()
    if not actor.works(rng, weekday):
        return
    scale = 0.5 if weekday >= 5 and actor.profile != "night" else 1.0
    n = poisson(rng, actor.mean * scale * math.exp(rng.gauss(0, 0.2)))
    seen = []
    times = sorted(actor.event_time(rng, day_start) for _ in range(n))
    # Unlocks at the start of the shift and after breaks; a typo now and then.
    for t in times[:: max(1, len(times) // 3 or 1)][:3]:
        if rng.random() < 0.05:
            out.append(event(t - dt.timedelta(seconds=40), "auth.unlock", actor.name, [], "failure",
                             detail="wrong passphrase"))
            if rng.random() < 0.2:
                out.append(event(t - dt.timedelta(seconds=20), "auth.unlock", actor.name, [], "failure",
                                 detail="wrong passphrase"))
        out.append(event(t - dt.timedelta(seconds=5), "auth.unlock", actor.name, []))
    for t in times:
        r = rng.random()
        if actor.profile == "ops":
            objs = [rng.choice(studies) for _ in range(rng.randint(1, 4))]
            action = "vault.put" if r < 0.8 else "vault.ls"
            out.append(event(t, action, actor.name, objs if action == "vault.put" else []))
            continue
        if actor.profile == "research" and r < 0.15:
            objs = [rng.choice(studies) for _ in range(rng.randint(5, 30))]
            out.append(event(t, "deid", actor.name, objs, purpose="research"))
            continue
        if r < 0.10:
            out.append(event(t, "vault.ls", actor.name, []))
            continue
        if seen and rng.random() < 0.4:
            objs = [rng.choice(seen)]
        else:
            objs = [rng.choice(studies) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
            seen.extend(objs)
        out.append(event(t, "vault.get", actor.name, objs, purpose="treatment"))
    if actor.profile == "ops" and rng.random() < 0.9:
        out.append(event(day_start + dt.timedelta(hours=2, minutes=rng.randint(0, 10)), "vault.backup",
                         actor.name, []))


def inject(rng, rule, actor, day_start, studies, sensitive, out):
    if rule == "volume":
        for _ in range(int(actor.mean * 6)):
            out.append(event(actor.event_time(rng, day_start), "vault.get", actor.name, [rng.choice(studies)]))
    elif rule == "distinct":
        base = day_start + dt.timedelta(hours=int(actor.start_hour) + 2, minutes=2)
        for i in range(rng.randint(80, 100)):
            out.append(event(base + dt.timedelta(seconds=30 * i), "vault.get", actor.name, [uid(rng)]))
    elif rule == "bulk":
        base = day_start + dt.timedelta(hours=int(actor.start_hour) + 3, minutes=5)
        for i in range(4):
            out.append(event(base + dt.timedelta(minutes=7 * i), "vault.get", actor.name,
                             [rng.choice(studies) for _ in range(100)]))
    elif rule == "offhours":
        base = day_start + dt.timedelta(hours=2)
        for i in range(12):
            out.append(event(base + dt.timedelta(minutes=4 * i + 1), "vault.get", actor.name, [rng.choice(studies)]))
    elif rule == "unlock":
        base = day_start + dt.timedelta(hours=int(actor.start_hour) + 1)
        for i in range(8):
            out.append(event(base + dt.timedelta(seconds=35 * i), "auth.unlock", actor.name, [], "failure",
                             detail="wrong passphrase"))
    elif rule == "sensitive":
        t = actor.event_time(rng, day_start)
        out.append(event(t, "vault.get", actor.name, [rng.choice(sensitive)]))


def generate(outdir, days=120, n_actors=50, seed=1, per_rule=2):
    rng = random.Random(seed)
    studies = [uid(rng) for _ in range(20000)]
    sensitive = [uid(rng, "1.2.826.0.1.3680043.10.9") for _ in range(20)] + ["vault0123456789abcdef"]
    profiles = ["day"] * 30 + ["night"] * 8 + ["research"] * 7 + ["ops"] * 5
    actors = [Actor(rng, i, profiles[i % len(profiles)]) for i in range(n_actors)]
    start = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)  # a Monday
    events = []
    for d in range(days):
        day_start = start + dt.timedelta(days=d)
        for a in actors:
            ordinary_day(rng, a, day_start, studies, events)

    injected, used = [], set()
    for rule in RULES:
        for _ in range(per_rule):
            while True:
                a = rng.choice([x for x in actors if x.profile == "day"] if rule == "offhours"
                               else [x for x in actors if x.profile != "ops"])
                d = rng.randrange(45, days)
                day_start = start + dt.timedelta(days=d)
                if day_start.weekday() >= 5 or (a.name, d) in used:
                    continue
                used.add((a.name, d))
                break
            added = []
            inject(rng, rule, a, day_start, studies, sensitive, added)
            events.extend(added)
            # The UTC days the injected events fall on (a night shift crosses midnight).
            touched = sorted({e["time"][:10] for e in added})
            injected.append({"rule": rule, "actor": a.name, "day": day_start.strftime("%Y-%m-%d"), "days": touched})

    events.sort(key=lambda e: e["time"])
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "events.jsonl"), "w", encoding="utf-8") as f:
        for seq, ev in enumerate(events):
            ev["seq"] = seq
            f.write(json.dumps(ev, sort_keys=True, separators=(",", ":")) + "\n")
    with open(os.path.join(outdir, "sensitive.txt"), "w") as f:
        f.write("# studies of patients who asked for extra protection (opaque UIDs)\n")
        f.write("\n".join(sensitive) + "\n")
    with open(os.path.join(outdir, "alerts.conf"), "w") as f:
        f.write("# thresholds for the synthetic hospital: the documented defaults, plus the sensitive list\n")
        f.write("sensitive.file = sensitive.txt\n")
    with open(os.path.join(outdir, "injected.json"), "w") as f:
        json.dump(injected, f, indent=1)
    return len(events), injected


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--actors", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    n, injected = generate(args.outdir, args.days, args.actors, args.seed)
    print(f"{n} events, {len(injected)} injections written to {args.outdir}")


if __name__ == "__main__":
    main()
