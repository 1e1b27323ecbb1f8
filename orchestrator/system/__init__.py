"""What decides a benchmark's numbers on each host, read, warned about, recorded with every
run, and changed on request with an undo (`orch system`, `orch run --tune`).

collector.py  the stdlib-only program that reads the files under a root (`/`, a tree)
access.py     a host and its root: the collector run there, paths under the root
model.py      SystemFacts, SystemWarning, SystemRecord (pure data)
change_set.py ChangeSet: changes with their undo, as saved and recorded (pure data)
changes.py    plan_changes / apply / reset_from_saved: the generic change-with-an-undo
services.py   services stopped and started again (systemd)
ethtool.py    ethtool's queues, coalescing and offloads
warning_rules.py the warnings; machines (host entries grouped by boot id)
tune.py       what a tune wishes on a machine
session.py    an inventory's hosts: read, tune, reset, and what a killed run left
describe.py   facts in words (pure: the report uses it too)
differences.py two runs' facts compared (pure: orch compare)
show.py       what the commands print
"""
