#!/usr/bin/env python3
"""Re-records tests/audit_wrap/expected.tsv from `kekkai audit --compare --format json` outputs.

    tests/audit_wrap/record.py WHO=FILE.json [WHO=FILE.json ...] > tests/audit_wrap/expected.tsv

WHO is `root` or `rootless`; each FILE is the JSON matrix of one --compare run (the wrappers as
tests/audit_wrap.rs runs them: bwrap, bwrap --new-session, firejail; or podman). The column of
a sandbox is LABEL:WHO, with bwrap#2 named bwrap-new-session. Review the difference before
committing it: every changed verdict is a changed claim about a sandbox.
"""
import json
import sys

RENAME = {"bwrap#2": "bwrap-new-session"}
cols, data, order = [], {}, []
for arg in sys.argv[1:]:
    who, path = arg.split("=", 1)
    m = json.load(open(path))
    labels = [s["label"] for s in m["sandboxes"]]
    for row in m["probes"]:
        if row["name"] not in order:
            order.append(row["name"])
        for label, cell in zip(labels, row["cells"]):
            col = f"{RENAME.get(label, label)}:{who}"
            if col not in cols:
                cols.append(col)
            data.setdefault(col, {})[row["name"]] = cell["verdict"] if cell else "-"
cols.sort(key=lambda c: tuple(c.split(":")))
width = max(len(p) for p in order) + 2
widths = [max(len(c), 14) + 2 for c in cols]
print(("# probe".ljust(width) + "".join(c.ljust(w) for c, w in zip(cols, widths))).rstrip())
for p in order:
    print((p.ljust(width) + "".join(data[c].get(p, "-").ljust(w) for c, w in zip(cols, widths))).rstrip())
