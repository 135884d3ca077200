"""Train a tiny learned zoom on emulated pairs from your raws, then score it against LibRaw + bicubic
on a held-out raw (mean, standard error, win rate over windows at every CFA phase).

    python examples/train_tiny.py --train a.dng b.dng --test c.dng --steps 200 --out runs/tiny
"""
import argparse
import os

import rawzoom_isp as rz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--test", nargs="+", required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--crops", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", default="runs/tiny")
    args = parser.parse_args()
    config = {
        "data": {"files": args.train, "patch": 16, "noise_range": [0.5, 4.0], "texture_candidates": 3},
        "model": {"arch": "packed", "width": 16, "blocks": 2},
        "optim": {"lr": 5e-4, "batch_size": 4, "steps": args.steps, "decay_steps": args.steps},
        "train": {"out": args.out, "checkpoint_every": 50, "log_every": 10},
    }
    # Run again, it continues the run in --out (a finished one is left as it is).
    weights = rz.train.train(config, resume=os.path.exists(os.path.join(args.out, "last.pt")))
    cases = rz.eval.emulated_cases(args.test, scale=4, size=args.size, crops=args.crops)
    result = rz.eval.evaluate({"tiny": weights}, cases, scale=4, baselines=("libraw",))
    print(rz.eval.markdown_table(result, phases=False))


if __name__ == "__main__":
    main()
