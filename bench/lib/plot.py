"""Draws the benchmark's PNG plots from a results JSON (bench/run.js calls this).

    python3 bench/lib/plot.py bench/results/latest.json bench/results

Writes accuracy.png (accuracy per round, IID vs non-IID), throughput.png (training
samples/s per implementation, log scale), aggregation.png and scale.png when those sections
ran. Prints the written paths as one JSON line.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, outdir = sys.argv[1], sys.argv[2]
with open(src) as f:
    res = json.load(f)
sections = res.get("sections", {})
machine = res.get("machine", {})
subtitle = f"{machine.get('cpuModel', '?')} × {machine.get('cores', '?')}, node {machine.get('node', '?')}{' (quick)' if res.get('quick') else ''}"
written = []


def save(fig, name):
    path = os.path.join(outdir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)


acc = sections.get("accuracy")
if acc and acc.get("rows"):
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for r in acc["rows"]:
        ys = r.get("accuracyByRound") or []
        if ys:
            ax.plot(range(1, len(ys) + 1), ys, marker="o", label=r["partition"])
    ax.set_xlabel("round")
    ax.set_ylabel("global accuracy (2,000 held-out digits)")
    ax.set_title(f"Demo federation, {acc.get('clients', 3)} clients, mlp\n{subtitle}", fontsize=9)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, "accuracy.png")

tr = sections.get("training")
if tr and tr.get("rows"):
    rows = [r for r in tr["rows"] if r.get("samplesPerSec")]
    presets = [p for p in ("mlp", "cnn") if any(r["preset"] == p for r in rows)]
    labels = []
    for r in rows:
        lab = f"{r['impl']} {r['threads']}t" if r.get("kind") == "torch" else r["impl"]
        if lab not in labels:
            labels.append(lab)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    width = 0.8 / max(1, len(labels))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, lab in enumerate(labels):
        xs, ys = [], []
        for i, p in enumerate(presets):
            for r in rows:
                rl = f"{r['impl']} {r['threads']}t" if r.get("kind") == "torch" else r["impl"]
                if r["preset"] == p and rl == lab:
                    xs.append(i + (j - (len(labels) - 1) / 2) * width)
                    ys.append(r["samplesPerSec"])
        bars = ax.bar(xs, ys, width, label=lab, color=colors[j % len(colors)])
        for b, y in zip(bars, ys):
            ax.annotate(f"{y:.0f}" if y >= 10 else f"{y:.1f}", (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(presets)), presets)
    ax.set_yscale("log")
    ax.set_ylabel("training samples/s (batch 32, Adam), log scale")
    ax.set_title(f"Local training throughput\n{subtitle}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3, which="both")
    save(fig, "throughput.png")

ag = sections.get("aggregation")
if ag and ag.get("rows"):
    rows = ag["rows"]
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    names = [r["impl"] for r in rows]
    vals = [r["gbPerSec"] for r in rows]
    bars = ax.barh(range(len(rows)), vals, color=["#1f77b4", "#9467bd", "#ff7f0e", "#ffbb78"][: len(rows)])
    for b, v in zip(bars, vals):
        ax.annotate(f"{v:.2f}", (v, b.get_y() + b.get_height() / 2), va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("GB/s of float32 updates summed (higher is better)")
    ax.set_title(f"FedAvg of K={ag.get('k')} updates × P={ag.get('p'):,} params\n{subtitle}", fontsize=9)
    save(fig, "aggregation.png")

sc = sections.get("scale")
if sc and sc.get("rows"):
    rows = [r for r in sc["rows"] if r.get("roundSeconds")]
    if rows:
        fig, ax1 = plt.subplots(figsize=(6.4, 4))
        ns = [r["clients"] for r in rows]
        ax1.plot(ns, [max(r["roundSeconds"]) for r in rows], marker="o", color="#1f77b4", label="slowest round wall time (s)")
        ax1.set_xlabel("concurrent clients")
        ax1.set_ylabel("round wall time (s)", color="#1f77b4")
        ax2 = ax1.twinx()
        ax2.plot(ns, [r.get("rssPeakMiB") or 0 for r in rows], marker="s", color="#d62728", label="server peak RSS (MiB)")
        ax2.set_ylabel("server peak RSS (MiB)", color="#d62728")
        ax1.set_title(f"One server, N clients (7,850-param model)\n{subtitle}", fontsize=9)
        ax1.grid(alpha=0.3)
        save(fig, "scale.png")

print(json.dumps({"written": written}))
