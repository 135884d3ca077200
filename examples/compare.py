"""A small data-type comparison (real raw vs synthetic raw vs 8-bit RGB) from Python: the shipped
experiment config with smaller settings, its report written to OUT/REPORT.md.

    python examples/compare.py --train a.dng --test b.dng --steps 100 --out runs/compare
"""
import argparse

import rawzoom_isp as rz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--test", nargs="+", required=True)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--crops", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", default="runs/compare")
    args = parser.parse_args()
    settings = [f"compare.train={args.train!r}".replace("'", '"'), f"compare.test={args.test!r}".replace("'", '"'),
                f'compare.out="{args.out}"', "compare.seeds=[0]", f"compare.crops={args.crops}",
                f"compare.size={args.size}", 'compare.phases="native"', f"optim.steps={args.steps}",
                f"optim.decay_steps={args.steps}", "optim.batch_size=4", "data.patch=16", "model.width=16",
                "model.blocks=2"]
    result = rz.experiments.compare("data-type", overrides=settings)
    print(f"wrote {result['report']}")


if __name__ == "__main__":
    main()
