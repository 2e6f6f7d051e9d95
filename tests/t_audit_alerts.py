#!/usr/bin/env python3
"""`medveil audit alerts` on a synthetic hospital (tests/audit_events_gen.py): 120 days of
ordinary work by 50 actors with two injected misuse patterns of each of the six kinds. Every
injection must be found (an alert of its rule, for its actor, on a day its events fall on), and
false alerts (actor-days with an alert but no injection) must stay under 1% of actor-days; both
figures are printed. Also: each alert is logged as an audit.alert event unless --no-log, the exit
status is 3 when there are alerts and 0 when there are none, --since limits the report but not
the baselines, and a bad configuration file is a usage error naming the line."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MV_SOURCE_DIR", os.path.join(HERE, ".."))
BUILD = os.environ.get("MV_BUILD_DIR", os.path.join(SRC, "build"))
sys.path.insert(0, HERE)
import audit_events_gen  # noqa: E402

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def command():
    """The test program (the command's code with a stand-in audit hook that records what would be
    logged); `medveil audit` itself only when the program is missing."""
    prog = os.path.join(BUILD, "tests", "test_audit_cli")
    if os.path.exists(prog):
        return [prog], True
    medveil = os.environ.get("MEDVEIL", "")
    if medveil and subprocess.run([medveil, "audit", "alerts", "--help"], capture_output=True).returncode == 0:
        return [medveil, "audit"], False
    print("SKIP: neither", prog, "nor `medveil audit alerts` is available")
    sys.exit(77)


CMD, STUB_LOG = command()


def run(*args):
    p = subprocess.run(CMD + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def main():
    work = tempfile.mkdtemp(prefix="mv_audit_alerts_")
    try:
        home = os.path.join(work, "home")
        audit = os.path.join(home, "audit")
        n_events, injected = audit_events_gen.generate(audit, days=120, n_actors=50, seed=6)

        rc, out, err = run("alerts", "--home", home, "--json", "--no-log")
        check(rc == 3, f"alerts found: exit {rc}, want 3; {err}")
        report = json.loads(out)
        alerts = report["alerts"]
        check(report["events"] == n_events, f"events read {report['events']}, written {n_events}")
        check(report["bad_lines"] == 0, f"bad lines {report['bad_lines']}")

        found = 0
        for inj in injected:
            hit = [a for a in alerts if a["rule"] == inj["rule"] and a["actor"] == inj["actor"] and a["day"] in inj["days"]]
            if hit:
                found += 1
            else:
                near = [(a["rule"], a["day"]) for a in alerts if a["actor"] == inj["actor"]]
                check(False, f"injected {inj['rule']} by {inj['actor']} on {inj['days']} not found; "
                             f"alerts for that actor: {near}")
        injected_days = {(inj["actor"], d) for inj in injected for d in inj["days"]}
        false_days = sorted({(a["actor"], a["day"]) for a in alerts} - injected_days)
        actor_days = report["actor_days"]
        rate = 100.0 * len(false_days) / max(1, actor_days)
        print(f"injected patterns found: {found} of {len(injected)}")
        print(f"false alerts: {len(false_days)} actor-day(s) of {actor_days} ({rate:.2f}%), "
              f"{len(alerts)} alert(s) over {n_events} events")
        for actor, day in false_days:
            print("  false alert:", actor, day, [a["rule"] for a in alerts if a["actor"] == actor and a["day"] == day])
        check(found == len(injected), "an injected pattern was missed")
        check(rate < 1.0, f"false alerts on {rate:.2f}% of actor-days, limit 1%")
        sens = [a for a in alerts if a["rule"] == "sensitive"]
        check(all(a["objects"] for a in sens), "a sensitive alert does not name the object")

        # Text output, and every alert logged as an audit.alert event.
        rc, out, err = run("alerts", "--home", home)
        check(rc == 3, f"text run: exit {rc}")
        check(out.count("ALERT ") == len(alerts), f"text run printed {out.count('ALERT ')} alerts, want {len(alerts)}")
        if STUB_LOG:
            with open(os.path.join(audit, "logged.jsonl")) as f:
                logged = [json.loads(line) for line in f]
            check(len(logged) == len(alerts) and all(e["action"] == "audit.alert" for e in logged),
                  f"{len(logged)} events logged for {len(alerts)} alerts")
            check(all(e["detail"].startswith("rule=") for e in logged), "an audit.alert event lacks its detail")
            os.unlink(os.path.join(audit, "logged.jsonl"))
            rc, out, err = run("alerts", "--home", home, "--no-log")
            check(not os.path.exists(os.path.join(audit, "logged.jsonl")), "--no-log logged something")
            env_fail = dict(os.environ, MV_TEST_AUDIT_FAIL="1")
            p = subprocess.run(CMD + ["alerts", "--home", home], capture_output=True, text=True, env=env_fail)
            check(p.returncode == 3 and "could not log" in p.stderr, f"logging failure: exit {p.returncode} {p.stderr}")

        # --since: only later alerts, judged with the full baseline.
        cut = "2026-04-01"
        rc, out, err = run("alerts", "--home", home, "--json", "--no-log", "--since", cut)
        later = json.loads(out)["alerts"]
        want = [a for a in alerts if a["end"] >= cut]
        check([(a["rule"], a["actor"], a["day"]) for a in later] == [(a["rule"], a["actor"], a["day"]) for a in want],
              f"--since {cut}: {len(later)} alerts, want {len(want)}")

        # Thresholds from the config: raising every limit silences the volume-type rules.
        conf = os.path.join(work, "quiet.conf")
        with open(conf, "w") as f:
            f.write("volume.min = 100000\ndistinct.min = 100000\nbulk.max_objects = 100000\n"
                    "offhours.min_count = 100000\nunlock.max_failures = 100000\n# no sensitive list\n")
        rc, out, err = run("alerts", "--home", home, "--json", "--no-log", "--config", conf)
        check(rc == 0 and json.loads(out)["alerts"] == [], f"quiet config: exit {rc}, {out[:300]}")
        with open(conf, "a") as f:
            f.write("volume.k = lots\n")
        rc, out, err = run("alerts", "--home", home, "--config", conf)
        check(rc == 2 and "line 7" in err and "volume.k" in err, f"bad value: exit {rc}, {err}")
        with open(conf, "w") as f:
            f.write("volume.kay = 3\n")
        rc, out, err = run("alerts", "--home", home, "--config", conf)
        check(rc == 2 and "unknown key" in err, f"unknown key: exit {rc}, {err}")
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)
    print(f"t_audit_alerts: {'FAILED' if failures else 'ok'} ({failures} failure(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
