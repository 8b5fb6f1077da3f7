"""The search's report: ``search.json`` (everything), ``report.md`` (per user action: the minimal cut sets, the
fault-tolerance depth, experiments against brute force, the replays) and ``cuts.png`` (the topology with every
minimal cut set drawn on it: a colour per set, on the instances, links and data centers it downs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos.search.atoms import POWER, Atom, atoms
from chaos.search.engine import SearchResult
from chaos.search.replay import Replay
from chaos.topology import Topology

SEARCH_JSON = "search.json"
SEARCH_NOTES = "report.md"
CUTS_PICTURE = "cuts.png"


def names(cut: frozenset[Atom]) -> list[str]:
    return [a.name for a in sorted(cut)]


def to_data(
    results: Sequence[SearchResult], replays: Sequence[Replay], meta: dict[str, Any], topology: Topology
) -> dict[str, Any]:
    return {
        **meta,
        "topology": topology.name,
        "actions": [
            {
                "action": r.label,
                "max_faults": r.max_faults,
                "atoms": r.atoms,
                "experiments": r.experiments,
                "brute_force": r.brute_force,
                "share_of_brute_force": round(r.experiments / r.brute_force, 4),
                "complete": r.complete,
                "seconds": r.seconds,
                "experiments_per_s": round(r.experiments / r.seconds, 1) if r.seconds else None,
                "supports": r.supports,
                "depth": r.depth,
                "baseline": r.baseline.verdict if r.baseline else None,
                "minimal_broken": [names(c) for c in r.minimal_broken],
                "why": [_why(r, c) for c in r.minimal_broken],
                "minimal_degraded": [names(c) for c in r.minimal_degraded],
            }
            for r in results
        ],
        "replays": [
            {
                "cut": names(item.cut),
                "breaks": [e.label for e in item.entries],
                "scenario": str(item.scenario),
                "run_dir": str(item.run_dir) if item.run_dir else None,
                "confirmed": item.confirmed,
                "reasons": list(item.reasons),
            }
            for item in replays
        ],
    }


def _why(result: SearchResult, cut: frozenset[Atom]) -> str:
    """What the user saw under the cut set: the last try's status, the time, and the reason."""
    outcome = result.outcomes.get(cut)
    if outcome is None:
        return ""
    return f"HTTP {outcome.status} after {outcome.latency_ms:.0f} ms: {outcome.detail}"[:160]


def notes(data: dict[str, Any]) -> str:
    lines = [
        f"# Fault-space search: profile {data['profile']}, topology {data['topology']}",
        "",
        f"Up to {data['max_faults']} faults, seed {data['seed']}, {data['seconds']:.0f} s in all "
        f"(search {data['search_seconds']:.0f} s, replays {data['replay_seconds']:.0f} s). "
        "Broken: the action failed or showed something false (0 views for a video with views); degraded: it "
        "answered with an honest fallback (stale or unavailable counts, a generic feed). Depth: the fewest faults "
        "that break it.",
        "",
        "| action | depth | minimal cut sets (broken) | experiments | brute force | share | time | complete |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in data["actions"]:
        cuts = (
            "<br>".join(
                f"{' + '.join(c) or '(no fault at all)'} ({why})"
                for c, why in zip(a["minimal_broken"], a["why"], strict=True)
            )
            or "none"
        )
        depth = a["depth"] if a["depth"] is not None else f"> {a['max_faults']}"
        lines.append(
            f"| {a['action']} | {depth} | {cuts} | {a['experiments']} | {a['brute_force']} | "
            f"{a['share_of_brute_force']:.1%} | {a['seconds']:.1f} s | {'yes' if a['complete'] else 'budget ran out'} |"
        )
    lines += ["", "## Degraded, not broken (minimal among the sets tried)", ""]
    for a in data["actions"]:
        shown = "; ".join(" + ".join(c) for c in a["minimal_degraded"][:12]) or "none"
        more = len(a["minimal_degraded"]) - 12
        lines.append(f"- {a['action']}: {shown}" + (f" and {more} more" if more > 0 else ""))
    lines += ["", "## Live replays (real faults, load generator on)", ""]
    if not data["replays"]:
        lines.append("none (no minimal cut set, or replays turned off)")
    for r in data["replays"]:
        verdict = {True: "confirmed", False: "NOT confirmed", None: "not run"}[r["confirmed"]]
        lines.append(f"- {' + '.join(r['cut'])} (breaks {', '.join(r['breaks'])}): **{verdict}**; `{r['scenario']}`")
        if r["confirmed"] is False:
            lines += [f"  - {reason}" for reason in r["reasons"][:3]]
    lines += ["", f"![the topology with the cut sets]({CUTS_PICTURE})", ""]
    return "\n".join(lines)


def write(out_dir: Path, data: dict[str, Any], topology: Topology) -> Path:
    (out_dir / SEARCH_JSON).write_text(json.dumps(data, indent=2))
    (out_dir / SEARCH_NOTES).write_text(notes(data))
    cuts = [frozenset(tuple(c)) for a in data["actions"] for c in a["minimal_broken"]]
    draw(topology, list(dict.fromkeys(cuts)), out_dir / CUTS_PICTURE, f"{data['profile']} on {topology.name}")
    return out_dir / SEARCH_NOTES


def _layout(topology: Topology) -> dict[str, tuple[float, float]]:
    """A column per data center, a row per service (gateways on top), the services staggered left and right."""
    rows = {
        "gateway": (1.2, 4.0),
        "earnings": (0.2, 3.0),
        "recommender": (2.2, 2.4),
        "auth": (0.2, 1.2),
        "views": (2.2, 0.4),
    }
    places: dict[str, tuple[float, float]] = {}
    for column, dc in enumerate(topology.data_centers):
        for name in topology.names(dc):
            dx, y = rows[topology.instances()[name][1].service]
            places[name] = (column * 5.0 + dx, y)
    return places


SINGLE, MULTIPLE = "#d62728", "#ff7f0e"  # in a cut set of one fault (a single point of failure); of several


def draw(topology: Topology, cuts: list[frozenset[str]], path: Path, title: str) -> None:
    """The topology (a box per data center, an arrow per dependency) with each minimal cut set numbered on the
    instances, links and data centers its faults hit: red where a single fault is a cut set, orange where it
    takes several together; the numbered sets are listed beside."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    places = _layout(topology)
    by_name = {a.name: a for a in atoms(topology)}
    marks: dict[tuple[str, ...], list[int]] = {}  # ("dc", name) | ("inst", name) | ("link", a, b) -> cut numbers
    single: set[tuple[str, ...]] = set()
    for n, cut in enumerate(cuts, start=1):
        for name in cut:
            atom = by_name.get(name)
            if atom is None:
                continue
            key = (
                ("dc", atom.target)
                if atom.kind == POWER
                else ("link", atom.source, atom.target)
                if atom.source
                else ("inst", atom.target)
            )
            marks.setdefault(key, []).append(n)
            if len(cut) == 1:
                single.add(key)

    def colour(key: tuple[str, ...], default: str) -> str:
        return SINGLE if key in single else MULTIPLE if key in marks else default

    def label(key: tuple[str, ...]) -> str:
        numbers = marks.get(key, [])
        text = ",".join(f"#{n}" for n in numbers[:6]) + ("..." if len(numbers) > 6 else "")
        return text

    fig, (ax, side) = plt.subplots(1, 2, figsize=(14, 7), gridspec_kw={"width_ratios": [2.3, 1]})
    for column, dc in enumerate(topology.data_centers):
        key = ("dc", dc)
        ax.add_patch(
            Rectangle(
                (column * 5.0 - 0.6, -0.3),
                3.6,
                5.0,
                fill=False,
                ec=colour(key, "#999999"),
                lw=3 if key in marks else 1,
                ls="--" if key in marks else "-",
            )
        )
        ax.text(
            column * 5.0 + 1.2,
            4.8,
            f"{dc} {label(key)}".strip(),
            ha="center",
            fontsize=11,
            color=colour(key, "#555555"),
        )
    for caller, (_, inst) in topology.instances().items():
        for callees in inst.depends_on.values():
            for callee in callees:
                key = ("link", caller, callee)
                (x0, y0), (x1, y1) = places[caller], places[callee]
                ax.add_patch(
                    FancyArrowPatch(
                        (x0, y0),
                        (x1, y1),
                        arrowstyle="-|>",
                        mutation_scale=10,
                        color=colour(key, "#cccccc"),
                        lw=2.5 if key in marks else 0.8,
                        shrinkA=18,
                        shrinkB=18,
                        connectionstyle="arc3,rad=0.1",
                    )
                )
                if key in marks:
                    t = 0.35 if caller < callee else 0.65  # a link's label off the middle, so two don't overlap
                    ax.text(
                        x0 + (x1 - x0) * t,
                        y0 + (y1 - y0) * t,
                        label(key),
                        fontsize=7,
                        color=colour(key, ""),
                        ha="center",
                        bbox={"fc": "white", "ec": "none", "pad": 0.5},
                    )
    for name, (x, y) in places.items():
        key = ("inst", name)
        ax.scatter(
            [x],
            [y],
            s=1500,
            c="#f7f7f7",
            edgecolors=colour(key, "#333333"),
            linewidths=3 if key in marks else 1,
            zorder=3,
        )
        ax.text(x, y, name.replace("-", "\n"), ha="center", va="center", fontsize=7, zorder=4)
        if key in marks:
            ax.text(x, y - 0.42, label(key), ha="center", fontsize=7, color=colour(key, ""), zorder=4)
    ax.set_xlim(-1.0, 5.0 * len(topology.data_centers) - 1.2)
    ax.set_ylim(-0.6, 5.2)
    ax.axis("off")
    ax.set_title(f"Minimal cut sets: {title} (red: one fault suffices; orange: only together)")
    side.axis("off")
    listed = [f"#{n}: {' + '.join(sorted(cut)) or '(no fault)'}" for n, cut in enumerate(cuts, start=1)]
    if not listed:
        listed = ["no cut set up to the search's bound"]
    shown = listed[:40] + ([f"... and {len(listed) - 40} more (report.md)"] if len(listed) > 40 else [])
    side.text(0.0, 1.0, "\n".join(shown), va="top", fontsize=7.5, family="monospace", transform=side.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
