"""Run under mpirun: each rank runs `descent` (descent.cli.main) with its own arguments.

argv[1] is a JSON object: {"argv": [[rank 0's args], [rank 1's args], ...], "full_disk": r}
where the optional "full_disk" rank gets ENOSPC when it writes a checkpoint (an error only that
rank sees, in the middle of training). Exits with main()'s status, like the `descent` command.
"""

import errno
import json
import os
import sys

spec = json.loads(sys.argv[1])
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
if spec.get("full_disk") == rank:
    from descent import io as dio

    real = dio._write_bytes

    def full(f, data):
        if len(data) > 4096:  # the checkpoint, not the small run files
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, data)

    dio._write_bytes = full

from descent.cli import main  # noqa: E402

sys.exit(main(spec["argv"][rank]))
