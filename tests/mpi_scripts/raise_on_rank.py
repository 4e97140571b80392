"""Run under mpirun: rank 1 raises while rank 0 waits in a collective that can never finish.

Without the abort-on-exception hook installed by `dist.init()` this job would hang forever;
with it, mpirun ends the whole job within seconds and rank 1's traceback is printed.
"""

import time

import descent
import descent.distributed as dist

dist.init()
if dist.get_rank() == 1:
    time.sleep(0.5)
    raise ValueError("boom: rank 1 failed on purpose")
t = descent.tensor([1.0])
dist.all_reduce(t)  # rank 1 never joins: this blocks until the job is aborted
print("UNREACHABLE: all_reduce returned", flush=True)
