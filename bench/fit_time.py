"""The cost of one fit, for comparing two source trees (issue 23: "fit time on Amazon MI
within +25 % of today").

Fits a registered dataset with the default settings and ``reuse = false`` (every step
computed; the texts' vectors come from the embedding cache once a first run made them), and
prints one JSON line with the fit's CPU and wall seconds and what it chose. Time whole
processes from outside and alternate the two trees, e.g. with GNU time::

    for i in 1 2 3; do
      PYTHONPATH=/tmp/before/src /usr/bin/time -f "%U %S %e %M" python bench/fit_time.py
      PYTHONPATH=src             /usr/bin/time -f "%U %S %e %M" python bench/fit_time.py
    done

(``git archive <commit> src | tar -x -C /tmp/before`` gives an older tree.)
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="amazon2014:musical-instruments")
    args = parser.parse_args()

    from usergroups import DiscoveryConfig, GroupDiscovery
    from usergroups.datasets import load_dataset

    dataset = load_dataset(args.dataset)
    cpu, wall = time.process_time(), time.perf_counter()
    gd = GroupDiscovery(DiscoveryConfig().with_overrides({"reuse": False})).fit(dataset)
    out = {
        "dataset": args.dataset,
        "fit_cpu_seconds": round(time.process_time() - cpu, 2),
        "fit_seconds": round(time.perf_counter() - wall, 2),
        "n_groups": int(gd.labels_.max()) + 1,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
