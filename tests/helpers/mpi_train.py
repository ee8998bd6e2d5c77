"""Run by the MPI tests, under `mpiexec -n N` or alone: trains the tiny model through the Trainer with
`training.distributed.world()` and has rank 0 write the final parameters and the history to --result
(an .npz). Options make one rank misbehave, to test that the others notice.

    mpiexec -n 2 python tests/helpers/mpi_train.py --data add.txt --result out.npz --dtype float64
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiny_model  # noqa: E402,F401 - registers tiny-s2s

import tinygrad_s2s as tg  # noqa: E402
from tinygrad_s2s.data import load_dataset  # noqa: E402
from tinygrad_s2s.training import Trainer, distributed  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--limit", type=int, help="training examples (default: steps x batch size)")
    ap.add_argument("--max-grad", type=float, default=0.05)      # small: every step is clipped
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, or 'fake' for the strict fake device")
    ap.add_argument("--check-every", type=int, default=distributed.CHECK_EVERY)
    ap.add_argument("--perturb-rank", type=int, help="this rank adds noise to its weights ...")
    ap.add_argument("--perturb-step", type=int, default=3, help="... in the update of this step")
    args = ap.parse_args(argv)

    comm = distributed.world(check_every=args.check_every)
    ds = load_dataset(args.data)
    ds = ds.limit(args.limit or args.steps * args.batch_size, 16)
    tg.manual_seed(0)
    model = tg.create_model("tiny-s2s", len(ds.vocab), wordvec_size=4, hidden_size=8).to(np.dtype(args.dtype))
    context = None
    if args.device == "fake":
        from tinygrad_s2s.testing.fake_device import fake_device
        context = fake_device()
        model.to(context.__enter__())
    elif args.device != "cpu":
        model.to(args.device)
    trainer = Trainer(model, ds, config={"seed": 0, "batch_size": args.batch_size, "max_grad": args.max_grad,
                                         "lr": args.lr}, log=io.StringIO(), progress=False, comm=comm)
    if args.perturb_rank == comm.rank:
        step = trainer.optimizer.step

        def perturbed():
            step()
            if trainer.step + 1 == args.perturb_step:
                p = model.parameters()[0]
                p.data = p.data + 1e-3
        trainer.optimizer.step = perturbed
    history = trainer.fit(1)
    if comm.is_root:
        state = {k: tg.backend.to_numpy(v) for k, v in model.state_dict().items()}
        np.savez(args.result, **state, __history__=np.array(json.dumps(history)),
                 __size__=np.array(comm.size), __step__=np.array(trainer.step),
                 __path__=np.array(getattr(comm, "path", None) or "one process"))
    if context is not None:
        context.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
