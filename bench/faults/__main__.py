"""``make faults``: the fault campaign. ``--quick`` is the short one ``make test`` runs.

    .venv/bin/python -m bench.faults                  # ~30 rounds, bounded (~17 min)
    .venv/bin/python -m bench.faults --quick          # one fault of each kind, ~2-3 min
    .venv/bin/python -m bench.faults --seed 1234      # replay a campaign's choices

Exits 1 when anything was lost, duplicated, stuck or leaked, or on any finding; 2 when the
servers it needs (PostgreSQL's binaries, redis-server) are not installed.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.faults.campaign import LONG, QUICK, Campaign
from bench.faults.report import failures, table, write_json
from bench.faults.services import MissingService, require_binaries
from bench.harness import ROOT
from bench.run import _git_head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one fault of each kind")
    parser.add_argument("--seed", type=int, help="replay the choices of an earlier campaign")
    parser.add_argument("--json", type=Path, help="where to write the result "
                        "(default bench/results/faults-<time>.json)")
    args = parser.parse_args(argv)
    try:
        require_binaries()
    except MissingService as exc:
        print(f"make faults: {exc}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    print(f"fault campaign: seed {seed} ({'quick' if args.quick else 'long'})", flush=True)
    result = Campaign(QUICK if args.quick else LONG, seed).run()
    result["git"] = _git_head()
    print(table(result), flush=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = args.json or ROOT / "bench" / "results" / f"faults-{stamp}.json"
    write_json(result, path)
    print(f"result: {path}")
    return 1 if failures(result) else 0


if __name__ == "__main__":
    sys.exit(main())
